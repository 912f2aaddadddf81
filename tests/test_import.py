"""Importing anyone's segmentations: COCO files written by pycocotools and instance-PNG folders go in and come
back out of a workspace unchanged; bad annotations are reported and skipped; objects of one photo are edited
apart; a failure at any point leaves a workspace that opens."""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
from PIL import Image

from engine.cli import export_coco, import_segmentations
from engine.runs import coco
from engine.runs import workspace as ws
from engine.runs.import_segmentations import import_segmentations as run_import
from engine.segmentation.coco_rle import decode_counts, decode_segmentation, encode_counts
from tests.test_workspace import make_workspace

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")
mask_api = pytest.importorskip("pycocotools.mask")
coco_api = pytest.importorskip("pycocotools.coco")
CATEGORIES = [{"id": 3, "name": "person", "supercategory": "human"}, {"id": 7, "name": "dog", "supercategory": "animal"},
              {"id": 12, "name": "kite", "supercategory": "outdoor"}]  # kite: used by no annotation


def photo(path, width: int, height: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)


def blob(rng, height: int, width: int) -> np.ndarray:
    y, x = np.ogrid[:height, :width]
    cy, cx, ry, rx = rng.uniform(8, height - 8), rng.uniform(8, width - 8), rng.uniform(3, 9), rng.uniform(3, 9)
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def coco_dataset(folder, *, photos: int = 3) -> dict:
    """Photos of different sizes, three objects each: a polygon (two parts on the first photo), a compressed
    RLE from pycocotools.mask.encode, an uncompressed RLE with iscrowd=1."""
    rng = np.random.default_rng(1)
    images, annotations = [], []
    for n in range(photos):
        width, height = 64 + 8 * n, 48
        photo(folder / f"p{n}.jpg", width, height, n)
        images.append({"id": 100 + n, "file_name": f"p{n}.jpg", "width": width, "height": height})
        parts = [[5.0, 5.0, 30.5, 8.0, 20.0, 30.0]] + ([[40.0, 30.0, 60.0, 30.0, 60.0, 45.0, 40.0, 47.5]] if n == 0 else [])
        rle = mask_api.encode(np.asfortranarray(blob(rng, height, width).astype(np.uint8)))
        crowd = blob(rng, height, width)
        flat = crowd.ravel(order="F").astype(np.int8)
        counts = np.diff(np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])).tolist()
        counts = ([0] + counts) if flat[0] else counts
        for k, (segmentation, category, iscrowd) in enumerate([
                (parts, 3, 0), ({"size": rle["size"], "counts": rle["counts"].decode()}, 7, 0),
                ({"size": [height, width], "counts": counts}, 3, 1)]):
            annotations.append({"id": 1000 + 10 * n + k, "image_id": 100 + n, "category_id": category,
                                "segmentation": segmentation, "iscrowd": iscrowd, "area": 0, "bbox": [0, 0, 1, 1]})
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def write_json(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def masks_by_annotation(path) -> dict:
    reader = coco_api.COCO(str(path))
    files = {i["id"]: i["file_name"] for i in reader.dataset["images"]}
    return {(files[a["image_id"]], a["id"]): (reader.annToMask(a).astype(bool), a["category_id"], a["iscrowd"])
            for a in reader.dataset["annotations"]}, reader.dataset["categories"]


# ------------------------------------------------------------------------------------------------ the decoder
def test_the_decoder_agrees_with_pycocotools_on_random_polygons_and_rles():
    rng = np.random.default_rng(0)
    for trial in range(400):
        height, width = (int(v) for v in rng.integers(1, 50, 2))
        parts = []
        for _ in range(int(rng.integers(1, 3))):
            k = int(rng.integers(3, 8))
            xy = np.stack([rng.uniform(-0.9, width + 0.9, k), rng.uniform(-0.9, height + 0.9, k)], 1)
            parts.append((np.round(xy * 2) / 2 if trial % 2 else xy).ravel().tolist())  # half pixels: the rounding edge
        expected = mask_api.decode(mask_api.merge(mask_api.frPyObjects(parts, height, width))).astype(bool)
        np.testing.assert_array_equal(decode_segmentation(parts, height, width), expected)
        mask = rng.random((height, width)) < 0.3
        text = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()
        np.testing.assert_array_equal(decode_segmentation({"size": [height, width], "counts": text}, height, width), mask)
        assert encode_counts(decode_counts(text)) == text


@pytest.mark.parametrize("segmentation, message", [
    ([[1, 1, 2, 2]], "at least 3 points"), ([[0, 0, 500, 0, 500, 20]], "outside"), ([], "empty"),
    ({"size": [10, 10], "counts": [100]}, "photo is"), ({"size": [20, 30], "counts": "~~"}, "characters"),
    ({"size": [20, 30], "counts": [5, 5]}, "add up"), ("polygon", "neither")])
def test_bad_segmentations_are_refused_with_a_reason(segmentation, message):
    with pytest.raises(ValueError, match=message):
        decode_segmentation(segmentation, 20, 30)


# ------------------------------------------------------------------------------------------------ COCO round trip
def test_a_coco_file_from_pycocotools_comes_back_unchanged(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    source = write_json(tmp_path / "instances.json", coco_dataset(images))
    summary = run_import(images, source, tmp_path / "space")
    assert summary["problems"] == [] and (summary["photos"], summary["objects"], summary["categories"]) == (3, 9, 3)
    space = ws.open_workspace(tmp_path / "space")
    objects = space.objects("p0")
    assert [(o.obj, o.status, o.version, o.label, o.iscrowd) for o in objects] == [
        (1, "imported", 0, "person", False), (2, "imported", 0, "dog", False), (3, "imported", 0, "person", True)]
    assert objects[0].category == ws.Category("person", id=3, supercategory="human")
    assert space.first_record("p0", 2)["source"]["annotation_id"] == 1001
    out = tmp_path / "export.json"
    coco.write_coco(space, out, include="all")
    before, categories_before = masks_by_annotation(source)
    after, categories_after = masks_by_annotation(out)
    assert sorted(before) == sorted(after)  # the same photos and annotation ids
    for key, (mask, category, iscrowd) in before.items():
        np.testing.assert_array_equal(after[key][0], mask)
        assert after[key][1:] == (category, iscrowd)
    assert categories_after == categories_before  # ids, names, supercategories; the unused one too
    assert {i["file_name"]: i["id"] for i in json.loads(out.read_text())["images"]} == {"p0.jpg": 100, "p1.jpg": 101, "p2.jpg": 102}


def test_imagenet_and_new_categories_are_appended_after_the_imported_ones(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    run_import(images, write_json(tmp_path / "instances.json", coco_dataset(images, photos=1)), tmp_path / "space")
    space = ws.open_workspace(tmp_path / "space")
    space.set_category("p0", 1, ws.Category("tabby", class_index=281, wnid="n02123045"), base_version=0)
    space.set_category("p0", 2, ws.Category("my thing"), base_version=0)
    space.set_category("p0", 3, ws.Category("dog"), base_version=0)  # a typed name that is an imported category's
    dataset = coco.export_coco(space, include="all")
    assert dataset["categories"] == CATEGORIES + [
        {"id": 13, "name": "tabby", "supercategory": "imagenet", "wnid": "n02123045"}, {"id": 14, "name": "my thing"}]
    assert [a["category_id"] for a in dataset["annotations"]] == [13, 14, 7]


# ------------------------------------------------------------------------------------------------ PNG folders
def test_an_instance_png_folder_comes_back_unchanged(tmp_path):
    images, masks = tmp_path / "photos", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(2)
    expected = {}
    for n, mode in enumerate(("P", "L")):
        photo(images / f"f{n}.png", 50, 40, n)
        ids = np.zeros((40, 50), np.uint8)
        for value in (1, 2, 5):
            ids[blob(rng, 40, 50)] = value
        voc = ids.copy()
        voc[(ids > 0) & (np.roll(ids, 1, 0) != ids)] = 255  # VOC's void border: not an object
        picture = Image.fromarray(voc, mode=mode)
        if mode == "P":
            picture.putpalette(coco.instance_palette())
        picture.save(masks / f"f{n}.png")
        expected[f"f{n}"] = {v: voc == v for v in (1, 2, 5)}
    photo(images / "g.jpg", 50, 40, 9)  # binary masks, one file per object
    for k in (1, 2):
        Image.fromarray(blob(rng, 40, 50).astype(np.uint8) * 255).save(masks / f"g_{k}.png")
    summary = run_import(images, masks, tmp_path / "space")
    assert summary["problems"] == [] and (summary["photos"], summary["objects"]) == (3, 8)
    space = ws.open_workspace(tmp_path / "space")
    for stem, by_value in expected.items():
        loaded = {space.first_record(stem, o.obj)["source"]["value"]: space.load(stem, obj=o.obj).mask_hw for o in space.objects(stem)}
        assert sorted(loaded) == [1, 2, 5]
        for value, mask in by_value.items():
            np.testing.assert_array_equal(loaded[value], mask)
    out = tmp_path / "export"
    written = coco.write_instance_pngs(space, out, include="all")
    assert written == {"images": 3, "objects": 8, "skipped": []}
    again = run_import(images, out, tmp_path / "space2")
    assert again["objects"] == 8 and again["problems"] == []
    second = ws.open_workspace(tmp_path / "space2")
    for stem in ("f0", "f1", "g"):
        first_masks = [space.load(stem, obj=o.obj).mask_hw for o in space.objects(stem)]
        second_masks = [second.load(stem, obj=o.obj).mask_hw for o in second.objects(stem)]
        assert len(first_masks) == len(second_masks)
        for a, b in zip(first_masks, second_masks, strict=True):  # the objects do not overlap here: nothing covered
            np.testing.assert_array_equal(a, b)
    assert np.asarray(Image.open(out / "f0.png")).max() == 3 and Image.open(out / "f0.png").mode == "P"
    assert coco.export_coco(space, include="all")["categories"] == [{"id": 1, "name": "object"}]  # PNGs name no category


# ------------------------------------------------------------------------------------------------ bad input, re-runs
def test_bad_annotations_are_reported_by_file_and_object_and_the_rest_is_imported(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    data = coco_dataset(images, photos=2)
    data["annotations"] += [
        {"id": 1, "image_id": 100, "category_id": 3, "segmentation": [[0, 0, 400, 0, 400, 40]]},  # outside the photo
        {"id": 2, "image_id": 100, "category_id": 3, "segmentation": {"size": [10, 10], "counts": [100]}},  # another size
        {"id": 3, "image_id": 100, "category_id": 99, "segmentation": [[1, 1, 9, 1, 9, 9]]},  # unknown category
        {"id": 4, "image_id": 200, "category_id": 3, "segmentation": [[1, 1, 9, 1, 9, 9]]}]  # no such image
    data["annotations"] += [{"id": 6, "image_id": [100], "category_id": 3}, {"id": 7, "image_id": 100, "category_id": {"id": 3}}]
    data["images"].append({"id": 300, "file_name": "gone.jpg", "width": 10, "height": 10})
    data["annotations"].append({"id": 5, "image_id": 300, "category_id": 3, "segmentation": [[1, 1, 9, 1, 9, 9]]})
    summary = run_import(images, write_json(tmp_path / "instances.json", data), tmp_path / "space")
    reasons = {(p["file"], p["object"]): p["reason"] for p in summary["problems"]}
    assert set(reasons) == {("instances.json", 3), ("instances.json", 4), ("gone.jpg", 5), ("instances.json", 1),
                            ("instances.json", 2), ("instances.json", 6), ("instances.json", 7)}
    assert "outside" in reasons[("instances.json", 1)] and "photo is" in reasons[("instances.json", 2)]
    assert "unknown category id 99" in reasons[("instances.json", 3)] and "not in" in reasons[("gone.jpg", 5)]
    assert summary["objects"] == 6 and len(ws.open_workspace(tmp_path / "space").items()) == 6

    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(masks / "p0.png")
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(masks / "p1.png")  # another size
    (masks / "p0_2.png").write_bytes(b"not a png")
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(masks / "nobody.png")
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(masks / "p0_3.png")  # RGB
    summary = run_import(images, masks, tmp_path / "space")
    reasons = {(p["file"], p["object"]): p["reason"] for p in summary["problems"]}
    assert set(reasons) == {("p1.png", None), ("p0_2.png", None), ("nobody.png", None), ("p0_3.png", None)}
    assert "10×10" in reasons[("p1.png", None)] and "unreadable" in reasons[("p0_2.png", None)]
    assert "no photo" in reasons[("nobody.png", None)] and "RGB" in reasons[("p0_3.png", None)]
    assert summary["objects"] == 1


def test_importing_again_adds_nothing_twice(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    source = write_json(tmp_path / "instances.json", coco_dataset(images))
    first = run_import(images, source, tmp_path / "space", mode="link")
    assert first["objects"] == 9 and os.path.samefile(images / "p0.jpg", tmp_path / "space" / "images" / "p0.jpg")
    space = ws.open_workspace(tmp_path / "space")
    space.save("p0", mask_hw=~space.load("p0", obj=1).mask_hw, seeds_hw=None, record=space.load("p0", obj=1).record,
               base_version=0, status="accepted", obj=1)
    second = run_import(images, source, tmp_path / "space")
    assert (second["objects"], second["already_imported"], second["problems"]) == (0, 9, [])
    assert len(space.items()) == 9 and space.history("p0", obj=1) == [0, 1]


def test_the_commands_import_and_export(tmp_path, capsys):
    images = tmp_path / "photos"
    images.mkdir()
    source = write_json(tmp_path / "instances.json", coco_dataset(images, photos=2))
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    import_segmentations.register(commands)
    export_coco.register(commands)
    args = parser.parse_args(["import-segmentations", str(images), source, "--out", str(tmp_path / "space"), "--copy"])
    args.run(args)
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert (summary["objects"], summary["format"], summary["problems"]) == (6, "coco", [])
    assert "2/2" in captured.err  # the progress bar, on stderr
    args = parser.parse_args(["export-coco", str(tmp_path / "space"), "--out", str(tmp_path / "pngs"), "--all", "--format", "png"])
    args.run(args)
    assert json.loads(capsys.readouterr().out)["objects"] == 6
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["p0.png", "p1.png"]


# ------------------------------------------------------------------------------------------------ objects
def test_objects_of_one_photo_are_added_deleted_and_saved_apart(tmp_path):
    space = make_workspace(tmp_path, {"cat": 0.3})
    base = space.load("cat")
    extra = np.zeros_like(base.mask_hw)
    extra[2:8, 2:8] = True
    assert space.add_object("cat", mask_hw=extra, category=ws.Category("ball")) == 1
    assert space.add_object("cat", mask_hw=np.roll(extra, 5, 0), category=None) == 2
    assert [(o.obj, o.status, o.label, o.area) for o in space.objects("cat")] == [
        (0, "automatic", "class 285", 441), (1, "added", "ball", 36), (2, "added", "", 36)]
    # two sessions, two objects of one photo: both save; the same object: the second is refused
    first, second = ws.open_workspace(tmp_path), ws.open_workspace(tmp_path)
    one, two = first.load("cat", obj=1), second.load("cat", obj=2)
    assert first.save("cat", mask_hw=~one.mask_hw, seeds_hw=None, record=one.record, base_version=0, status="refined", obj=1) == 1
    assert second.save("cat", mask_hw=~two.mask_hw, seeds_hw=None, record=two.record, base_version=0, status="accepted", obj=2) == 1
    with pytest.raises(ws.SaveConflict, match="Object 1 of cat"):
        second.save("cat", mask_hw=one.mask_hw, seeds_hw=None, record=one.record, base_version=0, status="accepted", obj=1)
    np.testing.assert_array_equal(space.load("cat", obj=1).mask_hw, ~one.mask_hw)
    # delete: a version, the history kept, out of the queue and the export
    assert space.delete_object("cat", 1, base_version=1) == 2
    assert space.load("cat", obj=1).status == "deleted" and space.history("cat", obj=1) == [0, 1, 2]
    np.testing.assert_array_equal(space.load("cat", 1, obj=1).mask_hw, ~one.mask_hw)
    assert [i.key for i in space.items()] == [("cat", 0), ("cat", 2)]
    assert [o.obj for o in space.objects("cat", include_deleted=False)] == [0, 2]
    assert len(coco.export_coco(space, include="all")["annotations"]) == 2
    with pytest.raises(ws.SaveConflict):
        space.delete_object("cat", 2, base_version=0)
    space.set_category("cat", 2, ws.Category("ball"), base_version=1)
    assert space.load("cat", obj=2).status == "accepted" and space.objects("cat")[2].label == "ball"


def test_the_queue_orders_objects_of_all_photos_worst_first(tmp_path):
    space = make_workspace(tmp_path, {"a": 0.5, "b": 0.2})
    mask = space.load("a").mask_hw
    space.add_object("a", mask_hw=mask, category=None, quality=0.1, status="imported")
    space.add_object("b", mask_hw=mask, category=None, quality=None, status="imported")
    space.add_object("b", mask_hw=mask, category=None, quality=0.9, status="imported")
    assert [i.key for i in space.items()] == [("b", 1), ("a", 1), ("b", 0), ("a", 0), ("b", 2)]
    space.save("a", mask_hw=mask, seeds_hw=None, record=space.load("a", obj=1).record, base_version=0, status="accepted", obj=1)
    assert [i.key for i in space.items()] == [("b", 1), ("b", 0), ("a", 0), ("b", 2), ("a", 1)]
    assert space.progress() == (1, 5)


def test_an_object_added_from_an_empty_photo_needs_its_name_and_size(tmp_path):
    space = make_workspace(tmp_path, {"a": 0.5})
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "images" / "new.png")
    with pytest.raises(ws.WorkspaceError, match="no object yet"):
        space.add_object("new", mask_hw=np.ones((20, 30), bool), category=None)
    with pytest.raises(ValueError, match="photo of new is"):
        space.add_object("new", mask_hw=np.ones((30, 20), bool), category=None, image="new.png")
    assert space.add_object("new", mask_hw=np.ones((20, 30), bool), category=None, image="new.png") == 1
    assert space.objects("new")[0].image_size == (30, 20)


# ------------------------------------------------------------------------------------------------ crashes
def test_a_failure_at_any_step_of_adding_an_object_leaves_no_half_object(tmp_path, monkeypatch):
    from tests.test_workspace import FailAt

    space = make_workspace(tmp_path, {"cat": 0.3})
    mask = space.load("cat").mask_hw
    with monkeypatch.context() as patch:
        counter = FailAt(patch, None, False)
        space.add_object("cat", mask_hw=mask, category=None)
    steps, count = counter.calls, 1
    for at in range(1, steps + 1):
        with monkeypatch.context() as patch:
            FailAt(patch, at, at % 2 == 0)
            try:
                space.add_object("cat", mask_hw=mask, category=ws.Category(f"try {at}"))
            except OSError as exc:
                assert "injected failure" in str(exc)
        objects = space.objects("cat")  # every object there reads whole
        assert len(objects) - 1 in (count, count + 1) and space.problems() == []
        assert not list((tmp_path / "refinements" / "cat").glob(".tmp-*"))
        count = len(objects) - 1
        for o in objects:
            np.testing.assert_array_equal(space.load("cat", obj=o.obj).mask_hw, mask)


def test_an_import_that_fails_midway_leaves_a_workspace_that_opens_and_a_rerun_finishes_it(tmp_path, monkeypatch):
    images = tmp_path / "photos"
    images.mkdir()
    source = write_json(tmp_path / "instances.json", coco_dataset(images))
    real_add, calls = ws.Workspace.add_object, []

    def crash_on_the_fifth(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # as if killed
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(ws.Workspace, "add_object", crash_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        run_import(images, source, tmp_path / "space")
    monkeypatch.setattr(ws.Workspace, "add_object", real_add)
    space = ws.open_workspace(tmp_path / "space")
    assert len(space.items()) == 4 and space.problems() == []
    again = run_import(images, source, tmp_path / "space")
    assert (again["objects"], again["already_imported"]) == (5, 4) and len(space.items()) == 9


KILLED_IMPORT = """
import os, signal, sys
sys.path.insert(0, {root!r})
from engine.runs import workspace_files
from engine.runs.import_segmentations import import_segmentations
real, calls = workspace_files.publish, []
def publish(parent, target, files, **kwargs):
    calls.append(target)
    if len(calls) == {at}:  # half of this object's files written aside, then killed
        real_write = os.write
        os.write = lambda fd, data: (real_write(fd, bytes(data[:len(data) // 2])), os.kill(os.getpid(), signal.SIGKILL))
    return real(parent, target, files, **kwargs)
workspace_files.publish = publish
import engine.runs.workspace
engine.runs.workspace.publish = publish
import_segmentations({images!r}, {source!r}, {out!r})
print("not killed")
"""


@pytest.mark.parametrize("at", [1, 5])
def test_an_import_killed_midway_leaves_a_workspace_that_opens_and_a_rerun_finishes_it(tmp_path, at):
    import signal
    import subprocess
    import sys

    from tests.test_workspace import ROOT

    images = tmp_path / "photos"
    images.mkdir()
    source = write_json(tmp_path / "instances.json", coco_dataset(images))
    script = KILLED_IMPORT.format(root=str(ROOT), at=at, images=str(images), source=source, out=str(tmp_path / "space"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    space = ws.open_workspace(tmp_path / "space")
    assert len(space.items()) == at - 1 and space.problems() == []  # the objects before; nothing half-written
    again = run_import(images, source, tmp_path / "space")
    assert (again["objects"], again["already_imported"], again["problems"]) == (10 - at, at - 1, [])
    assert len(space.items()) == 9


def test_an_unreadable_object_is_left_out_and_reported_and_a_reimport_adds_it_again(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    source = write_json(tmp_path / "instances.json", coco_dataset(images, photos=1))
    run_import(images, source, tmp_path / "space")
    (tmp_path / "space" / "refinements" / "p0" / "o0002" / "v0000" / "record.json").write_text("")  # as a power cut may leave it
    space = ws.open_workspace(tmp_path / "space")
    assert [o.obj for o in space.objects("p0")] == [1, 3] and [i.obj for i in space.items()] == [1, 3]
    assert [(stem, reason.split(":")[0]) for stem, reason in space.problems()] == [("p0", "object 2")]
    again = run_import(images, source, tmp_path / "space")
    assert (again["objects"], again["already_imported"]) == (1, 2)
    assert [o.label for o in space.objects("p0")] == ["person", "person", "dog"]


def test_the_other_objects_are_drawn_as_outlines():
    from engine.segmentation.masks import draw_outlines

    square = np.zeros((9, 9), bool)
    square[2:7, 2:7] = True  # 5×5: its outline is the 16 pixels of its border
    drawn = draw_outlines(np.zeros((9, 9, 3), np.uint8), [square], colour=(255, 215, 0))
    ring = square.copy()
    ring[3:6, 3:6] = False
    np.testing.assert_array_equal(drawn.any(2), ring)
    assert (drawn[ring] == (255, 215, 0)).all() and ring.sum() == 16
