"""`segment-folder --objects several` (issue 30): an object per instance of the class, written into a review
workspace; the stages run here on photos and saliency maps built by hand, the command once end to end."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.__main__ import main
from engine.runs import workspace as ws
from engine.runs.batch import Proposal
from engine.runs.localisation import imagenet_wnids
from engine.runs.segment_folder import MADE_BY, SegmentJob, check_workspace_layout, mask_quality
from engine.segmentation.presets import get_preset, segment_with_preset, segmentation_record
from tests.test_instances import bump, photo

LEFT, RIGHT = (30, 40, 90, 100), (190, 40, 250, 100)  # two bright squares on a grey 280×140 photo
IMAGE = photo(140, 280, [LEFT, RIGHT])
TWO_PEAKS = bump(140, 280, 60, 70, 25, 0.85) + bump(140, 280, 220, 70, 25)  # a hill on each, the right one higher
ONE_PEAK = bump(140, 280, 220, 70, 25)
CLASS, LABEL = 281, "tabby"
DATA = Path(__file__).resolve().parent / "data" / "localisation" / "images"


@pytest.fixture
def root(tmp_path) -> Path:
    """A workspace with one photo, ``pair.png``, and nothing cut yet."""
    (tmp_path / "images").mkdir()
    Image.fromarray(IMAGE).save(tmp_path / "images" / "pair.png")
    return tmp_path


def cut_and_write(root: Path, saliency=TWO_PEAKS, *, objects: str = "several", out: str = "segmentations", **job) -> dict:
    """One photo through the cut stage and the driver's assemble, as a folder run does; its line."""
    job = SegmentJob(get_preset(job.pop("preset", "gradcam-cut")), str(root / out), CLASS, objects=objects, **job)
    stages = job.stages(with_model=False)
    cut = stages.finish(IMAGE, saliency)
    return stages.assemble(Proposal("pair.png", IMAGE, (saliency,), (CLASS, LABEL)), [cut])


def box_mask(box) -> np.ndarray:
    mask = np.zeros(IMAGE.shape[:2], bool)
    mask[box[1]:box[3], box[0]:box[2]] = True
    return mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def test_several_gives_an_object_per_instance_in_the_workspace(root):
    line = cut_and_write(root)
    assert line["objects"] == 2 and line["object_ids"] == [0, 1]
    space = ws.open_workspace(root)
    found = space.objects("pair")
    assert [(o.obj, o.status, o.version) for o in found] == [(0, "automatic", 0), (1, "automatic", 0)]
    strongest, other = (space.load("pair", obj=o).mask_hw for o in (0, 1))
    assert iou(strongest, box_mask(RIGHT)) > 0.5 and iou(strongest, box_mask(LEFT)) < 0.1
    assert iou(other, box_mask(LEFT)) > 0.5 and iou(other, box_mask(RIGHT)) < 0.1
    assert found[1].category == ws.Category(LABEL, class_index=CLASS, wnid=imagenet_wnids()[CLASS])
    assert found[0].category.class_index == CLASS and found[0].label == LABEL
    # object 0's JSON is the strongest instance's own: box, area, quality; and it counts the objects
    record = json.loads((root / "segmentations" / "pair.json").read_text())
    assert record["objects"] == 2 and tuple(record["bbox"]) == found[0].bbox and record["area"] == int(strongest.sum())
    assert record["quality"] == mask_quality(found[0].bbox, (280, 140)) == line["quality"]
    first = space.first_record("pair", 1)
    assert first["quality"] == mask_quality(found[1].bbox, (280, 140))
    source = {k: first["source"][k] for k in ("made_by", "instance", "preset")}
    assert source == {"made_by": MADE_BY, "instance": 1, "preset": "gradcam-cut"}


def test_one_writes_the_three_files_as_before(root):
    line = cut_and_write(root, objects="one")
    preset = get_preset("gradcam-cut")
    result = segment_with_preset(IMAGE, TWO_PEAKS, preset)  # the preset's own cut, as segment-folder has always written
    expected = segmentation_record(result, class_index=CLASS, label=LABEL, model="efficientnet_lite0", weights="pretrained",
                                   preset=preset)
    expected.update(quality=mask_quality(result.bbox, (280, 140)), image="pair.png")
    out = root / "segmentations"
    assert json.loads((out / "pair.json").read_text()) == expected
    assert np.array_equal(np.asarray(Image.open(out / "pair_mask.png")) > 0, result.is_foreground_hw)
    assert sorted(p.name for p in out.iterdir()) == ["pair.json", "pair_mask.png", "pair_seeds.png"]
    assert "objects" not in line and not (root / "refinements").exists()
    assert set(line) == {"image", "bbox", "class_index", "label", "area", "seeds_promoted", "quality", "files"}


def test_max_objects_caps_the_objects_of_a_photo(root):
    line = cut_and_write(root, max_objects=1)
    assert line["objects"] == 1 and line["object_ids"] == [0]
    assert [o.obj for o in ws.open_workspace(root).objects("pair")] == [0]
    with pytest.raises(ValueError, match="max_objects"):
        SegmentJob(get_preset("gradcam-cut"), str(root), objects="several", max_objects=0)
    with pytest.raises(ValueError, match="objects is one or several"):
        SegmentJob(get_preset("gradcam-cut"), str(root), objects="all")


def test_a_rerun_adds_no_object_twice(root):
    cut_and_write(root)
    again = cut_and_write(root)
    assert again["object_ids"] == [0, 1]
    assert [o.obj for o in ws.open_workspace(root).objects("pair")] == [0, 1]
    assert sorted(p.name for p in (root / "refinements" / "pair").iterdir()) == ["o0001"]
    assert ws.open_workspace(root).history("pair", obj=1) == [0]


def test_a_rerun_withdraws_its_own_untouched_objects_and_keeps_a_persons(root):
    cut_and_write(root)
    space = ws.open_workspace(root)
    imported = box_mask((100, 10, 130, 30))
    assert space.add_object("pair", mask_hw=imported, category=ws.Category("ball", id=1), status="imported") == 2
    # one hill now: the left square is no instance any more; segment-folder's untouched object 1 is withdrawn
    line = cut_and_write(root, ONE_PEAK)
    assert line["objects"] == 1 and line["object_ids"] == [0]
    withdrawn = space.load("pair", obj=1)
    assert withdrawn.status == "deleted" and withdrawn.record["deleted_by"] == MADE_BY and space.history("pair", obj=1) == [0, 1]
    assert (space.load("pair", obj=2).status, space.history("pair", obj=2)) == ("imported", [0])
    # two hills again: the left square comes back as a new object (a withdrawn one is not matched), once
    assert cut_and_write(root)["object_ids"] == [0, 3]
    assert cut_and_write(root)["object_ids"] == [0, 3]
    assert [(o.obj, o.status) for o in space.objects("pair")] == [(0, "automatic"), (1, "deleted"), (2, "imported"), (3, "automatic")]
    # a person refines object 3; a rerun that no longer finds it leaves it, and one that does matches it
    refined = space.load("pair", obj=3)
    space.save("pair", mask_hw=refined.mask_hw & box_mask((0, 0, 280, 80)), seeds_hw=None, record=refined.record,
               base_version=0, status="refined", obj=3)
    assert cut_and_write(root, ONE_PEAK)["object_ids"] == [0]
    assert (space.load("pair", obj=3).status, space.history("pair", obj=3)) == ("refined", [0, 1])
    assert cut_and_write(root)["object_ids"] == [0, 3]
    assert [o.obj for o in space.objects("pair")] == [0, 1, 2, 3]


def test_a_person_deleting_an_automatic_object_is_not_undone_by_a_rerun(root):
    cut_and_write(root)
    space = ws.open_workspace(root)
    space.delete_object("pair", 1, base_version=0)
    assert cut_and_write(root)["object_ids"] == [0, 1]  # the instance is that object: still deleted, not added again
    assert [(o.obj, o.status) for o in space.objects("pair")] == [(0, "automatic"), (1, "deleted")]


def test_several_needs_the_workspace_layout(root, tmp_path_factory):
    assert check_workspace_layout(root / "images", root / "segmentations") == root.resolve()
    elsewhere = tmp_path_factory.mktemp("photos")
    for images, out in ((elsewhere, root / "segmentations"), (root / "images", root / "masks")):
        with pytest.raises(ValueError, match="WORKSPACE/images .* WORKSPACE/segmentations"):
            check_workspace_layout(images, out)


def test_the_command_refuses_several_outside_a_workspace_before_any_work(root, tmp_path, capsys):
    out = tmp_path / "masks"
    assert main(["segment-folder", str(root / "images"), "--out", str(out), "--objects", "several"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Several objects a photo go into a review workspace") and err.count("\n") == 1
    assert not out.exists()
    assert main(["segment-folder", str(root / "images"), "--out", str(out), "--max-objects", "3"]) == 1
    assert "--max-objects counts the objects of --objects several" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_writes_several_objects_into_a_workspace_and_a_rerun_adds_none(tmp_path, capsys):
    shutil.copytree(DATA, tmp_path / "images")
    command = ["segment-folder", str(tmp_path / "images"), "--out", str(tmp_path / "segmentations"), "--jobs", "1",
               "--objects", "several", "--max-objects", "3"]
    assert main(command) == 0
    summary = json.loads(capsys.readouterr().out)
    lines = [json.loads(raw) for raw in (tmp_path / "segmentations" / "results.jsonl").read_text().splitlines()]
    assert summary["written"] == 2 and summary["objects"] == sum(line["objects"] for line in lines)
    space = ws.open_workspace(tmp_path)
    for line in lines:
        stem = Path(line["image"]).stem
        found = space.objects(stem)
        assert 1 <= line["objects"] <= 3 and [o.obj for o in found] == line["object_ids"] == list(range(line["objects"]))
        assert {o.status for o in found} == {"automatic"} and {o.class_index for o in found} == {line["class_index"]}
    assert main(command) == 0
    capsys.readouterr()
    assert len(space.items()) == summary["objects"]  # the same objects, none twice


@pytest.mark.slow
def test_the_review_page_lists_the_automatic_objects(root, monkeypatch):
    from tests.test_page_links import open_link

    cut_and_write(root)
    monkeypatch.setenv("DEEP_INSIDE_WORKSPACE", str(root))
    at = open_link("pages/review.py", weights="random")
    table = at.dataframe[1].value  # the photo's objects (the queue's table is the first)
    assert list(table["object"]) == [0, 1] and list(table["status"]) == ["automatic", "automatic"]
    assert list(table["category"]) == [LABEL, LABEL]
    for obj in (1, 0):
        at.selectbox(key="rev_object_pair").set_value(obj).run()
        assert not at.exception, at.exception
        assert any(f"object {obj}: {LABEL}" in c.value for c in at.caption)
