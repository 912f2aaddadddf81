"""AppTest of the segmentation page (§3.2). The drawable canvas is a Components-v2 element that
AppTest cannot paint on; how strokes become seeds is tested in test_segmentation.py
(seeds_from_strokes) and painting in the real-browser test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine import masks
from engine import segmentation as seg

APP = str(Path(__file__).resolve().parents[1] / "app.py")
pytestmark = pytest.mark.slow


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("pages/segmentation.py")
    at.run()
    return at


def test_page_segments_the_demo_photo():
    at = open_page()
    assert not at.exception, at.exception
    assert at.title[0].value == "Weakly supervised segmentation"
    assert not at.error
    at.slider(key="seg_fg_quantile").set_value(0.9)
    at.slider(key="seg_bg_quantile").set_value(0.4)
    at.number_input(key="seg_iterations").set_value(2)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    labels = [b.label for b in at.get("download_button")]
    assert any("COCO RLE" in label for label in labels) and any("Seed map" in label for label in labels)


def test_page_resumes_from_a_download_and_resets():
    at = open_page()
    record = {"fg_quantile": 0.9, "bg_quantile": 0.2, "iterations": 2, "gamma": 50.0, "views": 1, "class_index": 281}
    at.file_uploader(key="seg_resume_json").set_value(("saved.json", json.dumps(record).encode(), "application/json"))
    seeds = np.zeros((300, 451), np.uint8)
    seeds[150, 200] = seg.HAND_FOREGROUND
    at.file_uploader(key="seg_resume_seeds").set_value(("seeds.png", masks.encode_seed_map(seeds), "image/png"))
    at.run()
    assert not at.exception, at.exception
    assert at.slider(key="seg_fg_quantile").value == 0.9 and at.number_input(key="seg_iterations").value == 2
    at.file_uploader(key="seg_resume_json").set_value(("bad.json", b"{}", "application/json"))
    at.run()
    assert any("not a segmentation JSON" in e.value for e in at.error)
    at.button(key="seg_reset").click()
    at.run()
    assert not at.exception, at.exception
