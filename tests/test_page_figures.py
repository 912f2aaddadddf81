"""The figure for slides on each results page, made as a click would make it (AppTest runs the pages in
this process, so ``ui.downloads.download`` can be watched): PNG, SVG and PDF that decode, with a caption naming
the model, the class and the method."""
from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ElementTree

import pytest
from PIL import Image

import ui.downloads
from tests.conftest import finish_job
from tests.test_page_links import open_link

pytestmark = pytest.mark.slow
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def made(monkeypatch) -> dict[str, bytes | str]:
    """Every figure file the pages offer, by file name, made at once instead of on a click."""
    files: dict[str, bytes | str] = {}
    offer = ui.downloads.download

    def download(label, make, file_name, mime, key):
        if "_figure." in file_name:
            files[file_name] = make()
        offer(label, make, file_name, mime, key)

    monkeypatch.setattr(ui.downloads, "download", download)
    return files


def check(files: dict, *words: str, panels: int) -> None:
    png = next(v for k, v in files.items() if k.endswith(".png"))
    svg = next(v for k, v in files.items() if k.endswith(".svg"))
    pdf = next(v for k, v in files.items() if k.endswith(".pdf"))
    assert Image.open(io.BytesIO(png)).format == "PNG" and pdf.startswith(b"%PDF")
    root = ElementTree.fromstring(svg)
    assert len(root.findall(f"{SVG}image")) == panels
    text = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for word in ("efficientnet_lite0", *words):
        assert word in text, (word, text)


def test_saliency_figure_is_photo_map_and_overlay(made):
    open_link("pages/saliency.py", image="espresso")
    check(made, "espresso", "max-abs", panels=3)


def test_backward_rules_figure_is_the_three_maps_over_the_three_reconstructions(made):
    open_link("pages/backward_rules.py")
    check(made, "DeconvNet", "tiger cat", panels=8)


def test_class_model_figure_is_the_class_images_in_a_grid(made):
    at = open_link("pages/class_model.py", classes="99,9", preset="olah", steps="2", run="1")
    deadline = time.monotonic() + 300
    while at.session_state["cv_job"].result is None and time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
    at.run()
    check(made, "goose (99)", "ostrich (9)", "olah", panels=2)


def test_faithfulness_figure_is_a_row_of_maps_per_method(made):
    finish_job(open_link("pages/faithfulness.py", methods="gradient,gradcam", stages="1", step="3584", ig_steps="8", run="1"), "faith_job")
    check(made, "deletion AUC", "Spearman", panels=2 * 3)  # each method: centre view, trained map, one stage


def test_segmentation_figure_is_photo_map_and_mask_with_the_preset_in_its_caption(made):
    open_link("pages/segmentation.py", image="espresso", preset="paper", views="1")
    check(made, "espresso", "§3.2", "preset paper (changed)", "quantile seeds", "γ = 150", panels=3)


def test_review_figure_is_the_current_photo_its_map_and_mask(made, tmp_path, monkeypatch):
    from tests.test_workspace import make_workspace

    make_workspace(tmp_path, {"a": 0.9, "b": 0.1})
    monkeypatch.setenv("DEEP_INSIDE_WORKSPACE", str(tmp_path))
    open_link("pages/review.py", photo="a")
    assert any(name.startswith("a_v0_segmentation_figure.") for name in made), list(made)
    check(made, "version 0 (automatic)", "§3.2", panels=3)
