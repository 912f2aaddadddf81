"""The paper at a glance (engine/runs/gallery.py, `python -m engine gallery`): the shipped gallery is
complete, small and described, and a tile made again now is the shipped one.

Pixel tolerance of a remade tile against the shipped JPEG, both decoded: mean |Δ| ≤ 1 level and the
99.9th percentile of |Δ| ≤ 8 levels (of 255). On the machine that made the gallery they are equal,
byte for byte; the tolerance absorbs another build of the JPEG codec, not another optimisation result.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.__main__ import main
from engine.runs import gallery
from engine.runs.gallery import MANIFEST, PAPER_CLASSES, build_gallery, decode_tile, gallery_specs, read_gallery
from tests.conftest import ASSETS

SHIPPED = ASSETS / "gallery"
PAGE_PARAMS = {  # what each page reads from its URL (ui.links.UrlParam names; the sidebar's model and weights everywhere)
    "class_model": {"classes", "typed", "preset", "seed", "steps", "run"},
    "saliency": {"image", "class", "views", "reduce", "opacity"},
    "backward_rules": {"image", "class", "layer", "channel"},
    "segmentation": {"image", "class", "preset"},  # read once that page adopts the links (the tiles already carry them)
}
MEAN_TOLERANCE, P999_TOLERANCE = 1.0, 8  # uint8 levels; see the module docstring


def test_tiles_come_in_the_papers_order_with_unique_ids_and_files():
    specs = gallery_specs()
    sections = [s.section for s in specs]
    assert sections == sorted(sections, key=["2", "3.1", "3.2", "4"].index)
    assert len({s.id for s in specs}) == len({s.file for s in specs}) == len(specs)
    classes = [s.class_index for s in specs if s.kind == "classviz"]
    assert classes[::2] == [c for c, _ in PAPER_CLASSES] and len(classes) == 2 * len(PAPER_CLASSES)  # paper | regularised
    assert {s.preset for s in specs if s.kind == "classviz"} == {"paper", "olah"}
    assert [s.method for s in specs if s.kind == "rule"] == ["gradient", "deconvnet", "guided"]


def test_the_papers_classes_are_the_models_labels():
    from engine.models import imagenet_categories

    labels = imagenet_categories()
    named = {index: labels[index] for index, _ in PAPER_CLASSES}
    assert named[99] == "goose" and named[9] == "ostrich" and named[251] == "dalmatian" and named[945] == "bell pepper"
    assert named[951] == "lemon" and named[248] == "Eskimo dog"  # ILSVRC's n02109961 "Eskimo dog, husky"


def test_the_shipped_gallery_is_complete_small_and_describes_each_tile():
    shipped = read_gallery(SHIPPED)
    assert [t["id"] for t in shipped.tiles] == [s.id for s in gallery_specs()]
    assert shipped.manifest["model"] == "efficientnet_lite0" and shipped.manifest["threads"] == 1
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024, f"{total / 1e6:.1f} MB"
    for tile in shipped.tiles:
        image = decode_tile(shipped.path(tile).read_bytes())
        assert image.shape == (tile["height"], tile["width"], 3)
        assert tile["command"].endswith(f"--only {tile['id']}") and tile["model"] and tile["caption"].startswith(tile["model"])
        assert tile["kind"] == "view" or (isinstance(tile["class_index"], int) and tile["label"])
        assert tile["kind"] not in ("classviz",) or (tile["seed"] == 0 and tile["settings"]["steps"] == tile["steps"])
        link = tile["link"]
        assert set(link["params"]) <= PAGE_PARAMS[link["page"]], (tile["id"], link)


def test_a_missing_or_damaged_manifest_says_how_to_make_it(tmp_path):
    with pytest.raises(ValueError, match="python -m engine gallery --out"):
        read_gallery(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match="damaged"):
        read_gallery(tmp_path)


def test_the_command_refuses_an_unknown_tile(capsys, tmp_path):
    assert main(["gallery", "--out", str(tmp_path), "--only", "classviz-paper-999"]) == 1
    assert "Unknown tile classviz-paper-999" in capsys.readouterr().err
    assert not (tmp_path / MANIFEST).exists()


@pytest.mark.slow
def test_the_command_writes_tiles_and_a_manifest_and_only_remakes_what_it_is_asked(capsys, tmp_path):
    threads = torch.get_num_threads()
    args = ["gallery", "--out", str(tmp_path), "--weights", "random", "--threads", str(threads)]
    assert main([*args, "--only", "view-cat", "saliency-cat"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["made"] == ["view-cat", "saliency-cat"] and summary["tiles"] == 2
    first = (tmp_path / "saliency" / "cat.jpg").stat().st_mtime_ns
    assert main([*args, "--only", "rule-guided-cat"]) == 0
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert [t["id"] for t in manifest["tiles"]] == ["saliency-cat", "view-cat", "rule-guided-cat"]  # kept, in the paper's order
    assert (tmp_path / "saliency" / "cat.jpg").stat().st_mtime_ns == first
    assert all(t["weights"] == "random" and t["link"]["params"]["weights"] == "random" for t in manifest["tiles"])
    assert torch.get_num_threads() == threads


@pytest.mark.slow
@pytest.mark.parametrize("tile_id", ["classviz-olah-099", "saliency-espresso", "segmentation-cat", "rule-guided-cat"])
def test_a_tile_made_again_now_is_the_shipped_tile(tile_id, embedded_model, tmp_path):
    shipped = {t["id"]: t for t in read_gallery(SHIPPED).tiles}[tile_id]
    spec = gallery.spec_of(shipped)
    threads = torch.get_num_threads()
    torch.set_num_threads(shipped_threads := read_gallery(SHIPPED).manifest["threads"])
    try:
        manifest = build_gallery(embedded_model, tmp_path, photos_dir=ASSETS, specs=[gallery.spec_of(shipped, top1=True)])
    finally:
        torch.set_num_threads(threads)
    remade = manifest["tiles"][0]
    assert shipped_threads == 1
    assert (remade["class_index"], remade["label"], remade["link"]) == (shipped["class_index"], shipped["label"], shipped["link"])
    assert spec.file == remade["file"]
    old = decode_tile((SHIPPED / shipped["file"]).read_bytes()).astype(np.int16)
    new = decode_tile((tmp_path / remade["file"]).read_bytes()).astype(np.int16)
    assert old.shape == new.shape
    difference = np.abs(old - new)
    assert difference.mean() <= MEAN_TOLERANCE and np.percentile(difference, 99.9) <= P999_TOLERANCE, (
        f"{tile_id}: mean |Δ| {difference.mean():.2f}, 99.9th percentile {np.percentile(difference, 99.9):.0f}")


def test_a_manifest_cannot_point_the_home_page_at_other_files(tmp_path):
    folder = tmp_path / "gallery"
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"tiles": [{"id": "x", "section": "4", "file": "../../etc/passwd", "photo": "../secret"}]}))
    tile = read_gallery(folder).tiles[0]
    with pytest.raises(ValueError, match="outside the gallery folder"):
        read_gallery(folder).picture(tile)
    with pytest.raises(ValueError, match="not a demo photo"):
        read_gallery(folder).photo(tile)
    shipped = read_gallery()  # the app's own, by default
    assert shipped.folder == SHIPPED and shipped.photo(shipped.section("3.1")[0]) == (ASSETS / "cat.jpg").read_bytes()
