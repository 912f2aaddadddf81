"""AppTest of the segmentation page (§3.2). The drawable canvas is a Components-v2 element that
AppTest cannot paint on; how strokes become seeds is tested in test_segmentation.py
(seeds_from_strokes) and painting in the real-browser test."""
from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import ui.canvas
import ui.results
from engine.render import fit
from engine.segmentation import cut as seg
from engine.segmentation import masks
from tests.conftest import open_page

pytestmark = pytest.mark.slow


def segmentation_page() -> AppTest:
    return open_page("pages/segmentation.py")


def test_page_segments_the_demo_photo():
    at = segmentation_page()
    assert not at.exception, at.exception
    assert at.title[0].value == "Weakly supervised segmentation"
    assert not at.error
    assert at.selectbox(key="seg_preset").value == "gradcam-cut"
    at.slider(key="seg_fg").set_value(0.9)
    at.slider(key="seg_bg").set_value(0.4)
    at.number_input(key="seg_iterations").set_value(2)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    labels = [b.label for b in at.get("download_button")]
    assert any("COCO RLE" in label for label in labels) and any("Seed map" in label for label in labels)


def test_page_resumes_from_a_download_and_resets():
    at = segmentation_page()
    record = {"preset": "paper", "settings": {"fg": 0.9, "bg": 0.2, "iterations": 2, "gamma": 50.0, "views": 1},
              "class_index": 281}
    at.file_uploader(key="seg_resume_json").set_value(("saved.json", json.dumps(record).encode(), "application/json"))
    seeds = np.zeros((300, 451), np.uint8)
    seeds[150, 200] = seg.HAND_FOREGROUND
    at.file_uploader(key="seg_resume_seeds").set_value(("seeds.png", masks.encode_seed_map(seeds), "image/png"))
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="seg_preset").value == "paper"
    assert at.slider(key="seg_fg").value == 0.9 and at.number_input(key="seg_iterations").value == 2
    assert any("paper (changed)" in c.value for c in at.caption)
    at.file_uploader(key="seg_resume_json").set_value(("bad.json", b"{}", "application/json"))
    at.run()
    assert any("not a segmentation JSON" in e.value for e in at.error)
    at.button(key="seg_reset").click()
    at.run()
    assert not at.exception, at.exception


def test_a_segment_folder_result_opens_on_the_page_with_the_same_mask(tmp_path, capsys):
    """segment-folder writes the page's three files; uploading the photo, its JSON and seed map resumes
    the same cut (same preset, class and seeds), so the page shows the same box and area."""
    from pathlib import Path

    from engine.__main__ import main

    photos = Path(__file__).resolve().parent / "data" / "localisation" / "images"
    assert main(["segment-folder", str(photos), "--out", str(tmp_path), "--jobs", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 2
    record = json.loads((tmp_path / "espresso.json").read_text())
    at = segmentation_page()
    at.file_uploader(key="seg_image_upload").set_value(("espresso.jpg", (photos / "espresso.jpg").read_bytes(), "image/jpeg"))
    at.run()
    at.file_uploader(key="seg_resume_json").set_value(("espresso.json", json.dumps(record).encode(), "application/json"))
    at.file_uploader(key="seg_resume_seeds").set_value(("espresso_seeds.png", (tmp_path / "espresso_seeds.png").read_bytes(), "image/png"))
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="seg_preset").value == record["preset"]
    shown = [c.value for c in at.caption if c.value.startswith("After edits")]
    assert len(shown) == 1 and shown[0].startswith(f"After edits: box {tuple(record['bbox'])}, {record['area']} px"), shown


class BackgroundSpy:
    """Records every call of the canvas's cached background (``ui.canvas._canvas_background``) and what it gave."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[tuple, str]] = []
        real = ui.canvas._canvas_background

        def spy(*args):
            url = real(*args)
            self.calls.append((args, url))
            return url
        monkeypatch.setattr(ui.canvas, "_canvas_background", spy)

    def last(self) -> dict:
        (_, _, shape_hw, _, seeds, _, mask, opacity, *outlines), url = self.calls[-1]
        return {"shape": shape_hw, "seeds": seeds, "mask": mask, "opacity": opacity, "url": url,
                "outlines": outlines[1] if outlines else ()}


def canvas_background_url(at) -> str:
    """The background the page gave its canvas component (the component's data, as the browser gets it)."""
    [canvas] = at.get("bidi_component")
    field = canvas.proto.WhichOneof("data")
    return json.loads(canvas.proto.mixed.json if field == "mixed" else canvas.proto.json)["backgroundImageURL"]


def test_the_canvas_background_carries_the_mask_and_the_toggle_shows_the_seeds_alone(monkeypatch):
    cuts = []
    real_cut = ui.results.cached_cut
    monkeypatch.setattr(ui.results, "cached_cut", lambda *a, **k: cuts.append(real_cut(*a, **k)) or cuts[-1])
    spy = BackgroundSpy(monkeypatch)
    at = segmentation_page()
    shown = spy.last()
    assert shown["shape"] == (341, 512)  # the canvas's own pixels: 512 wide, the cat's 451×300 aspect
    automatic = cuts[-1].is_foreground_hw
    assert shown["mask"] is not None and np.array_equal(shown["mask"], fit(automatic, shown["shape"]))
    assert 0 < shown["mask"].mean() < 1 and shown["opacity"] == masks.MASK_OPACITY
    assert canvas_background_url(at) == shown["url"]  # what the canvas was given

    at.slider(key="seg_mask_opacity").set_value(0.7).run()
    assert spy.last()["opacity"] == 0.7 and np.array_equal(spy.last()["mask"], shown["mask"])
    at.toggle(key="seg_show_mask").set_value(False).run()
    assert not at.exception, at.exception
    alone = spy.last()
    assert alone["mask"] is None and np.array_equal(alone["seeds"], fit(cuts[-1].seeds_hw, shown["shape"]))  # every seed
    assert canvas_background_url(at) == alone["url"] != shown["url"]
