"""COCO export of a review workspace: pycocotools reads back every saved mask pixel for pixel."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

import engine.__main__
from engine.cli import export_coco
from engine.runs import coco
from tests.test_workspace import BOX, H, W, add_item, make_workspace


def accept(space, stem: str, *, mask_hw=None, status: str = "accepted") -> None:
    entry = space.load(stem)
    space.save(stem, mask_hw=entry.mask_hw if mask_hw is None else mask_hw, seeds_hw=entry.seeds_hw,
               record=entry.record, base_version=entry.version, status=status)


@pytest.fixture
def space(tmp_path):
    """Five photos: two accepted (one edited), one refined, one automatic, one accepted with an empty mask."""
    space = make_workspace(tmp_path / "space", {"a": 0.4, "b": 0.1, "c": None, "d": 0.9})
    add_item(tmp_path / "space", "e", 0.3, class_index=1)
    accept(space, "a")
    edited = np.zeros((H, W), bool)
    edited[5:12, 3:50] = edited[30:38, 10:20] = True  # two parts: the RLE must keep both
    accept(space, "b", mask_hw=edited)
    accept(space, "c", status="refined")
    accept(space, "e", mask_hw=np.zeros((H, W), bool))
    return space


def saved_mask(space, stem: str) -> np.ndarray:
    version = space.history(stem)[-1]
    path = (space.root / "segmentations" / f"{stem}_mask.png" if version == 0
            else space.root / "refinements" / stem / f"v{version:04d}" / "mask.png")
    return np.asarray(Image.open(path)) > 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")  # its own numpy 2 copy= warning
def test_pycocotools_reads_every_mask_back_pixel_for_pixel(space, tmp_path):
    pycoco = pytest.importorskip("pycocotools.coco")
    out = tmp_path / "dataset.json"
    dataset = coco.write_coco(space, out, include="all")
    assert json.loads(out.read_text()) == dataset
    reader = pycoco.COCO(str(out))
    assert sorted(img["file_name"] for img in reader.dataset["images"]) == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    assert len(reader.getAnnIds()) == 4  # e's mask is empty: an image entry, no annotation
    for ann in reader.loadAnns(reader.getAnnIds()):
        image = reader.loadImgs(ann["image_id"])[0]
        stem = image["file_name"].removesuffix(".png")
        expected = saved_mask(space, stem)
        np.testing.assert_array_equal(reader.annToMask(ann).astype(bool), expected)
        assert (image["width"], image["height"]) == (W, H)
        assert ann["area"] == int(expected.sum()) and ann["iscrowd"] == 0
        rows, cols = np.flatnonzero(expected.any(1)), np.flatnonzero(expected.any(0))
        assert ann["bbox"] == [cols[0], rows[0], cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0]]
        assert all(isinstance(v, float) for v in ann["bbox"])
    bbox_a = next(a["bbox"] for a in dataset["annotations"] if a["image_id"] == 1)
    assert bbox_a == [BOX[0], BOX[1], BOX[2] - BOX[0], BOX[3] - BOX[1]]
    assert reader.loadCats(reader.getCatIds()) == [
        {"id": 286, "name": "Egyptian cat", "supercategory": "imagenet", "wnid": "n02124075"}]  # e's goldfish is unused


def test_accepted_only_versus_all(space):
    accepted = coco.export_coco(space)
    assert [img["file_name"] for img in accepted["images"]] == ["a.png", "b.png", "e.png"]
    assert len(accepted["annotations"]) == 2 and len(accepted["categories"]) == 1
    assert [a["id"] for a in accepted["annotations"]] == [1, 2]
    everything = coco.export_coco(space, include="all")
    assert len(everything["images"]) == 5 and len(everything["annotations"]) == 4
    assert set(everything["info"]) >= {"description", "version", "year", "date_created"}
    with pytest.raises(ValueError, match="accepted or all"):
        coco.export_coco(space, include="some")


def run_export(capsys, *argv: str) -> dict:
    parser = argparse.ArgumentParser()
    export_coco.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export-coco", *argv])
    args.run(args)
    return json.loads(capsys.readouterr().out)


def test_the_command_prints_a_summary_and_writes_the_file(space, tmp_path, capsys):
    out = tmp_path / "dataset.json"
    summary = run_export(capsys, str(space.root), "--out", str(out))
    assert summary == {"images": 3, "annotations": 2, "categories": 1, "include": "accepted", "out": str(out),
                       "skipped": []}
    assert len(json.loads(out.read_text())["images"]) == 3
    summary = run_export(capsys, str(space.root), "--out", str(out), "--all")
    assert (summary["images"], summary["annotations"], summary["include"]) == (5, 4, "all")
    assert len(json.loads(out.read_text())["images"]) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.json", "space"]  # no temporary file left


def test_the_command_through_main_reports_a_missing_workspace(tmp_path, capsys, monkeypatch):
    if "export_coco" not in engine.__main__.COMMANDS:
        monkeypatch.setattr(engine.__main__, "COMMANDS", engine.__main__.COMMANDS + ("export_coco",))
    code = engine.__main__.main(["export-coco", str(tmp_path / "nowhere"), "--out", str(tmp_path / "d.json")])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == "" and captured.err.count("\n") == 1
    assert "segment-folder WORKSPACE/images --out WORKSPACE/segmentations" in captured.err
    assert not (tmp_path / "d.json").exists()
