"""The class model visualisation page (§2), driven by Streamlit's AppTest."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import open_page


def class_model_page() -> AppTest:
    return open_page("pages/class_model.py")


def wait_for_job(at: AppTest, *, stop_after_progress: bool = False, timeout: float = 300) -> AppTest:
    """Rerun the page (as the fragment's timer would) until the worker thread has a result."""
    saw_progress = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        job = at.session_state["cv_job"]
        if job.done:
            return at
        if at.get("progress"):
            saw_progress = True
            if stop_after_progress and job.progress.step > 0:
                at.button(key="cv_stop").click()
        time.sleep(0.3)
    raise AssertionError(f"no result within {timeout} s (progress seen: {saw_progress})")


def test_the_page_opens_with_the_shipped_picture_of_its_default_class_and_preset():
    from engine.runs.gallery import read_gallery

    at = class_model_page()
    assert not at.exception and "cv_job" not in at.session_state  # nothing has run
    assert at.selectbox(key="cv_preset").value == "maco" and list(at.multiselect(key="cv_classes").value) == [543]
    images = at.get("image")
    assert len(images) == 1, "a picture before any click"
    tile = {t["id"]: t for t in read_gallery().tiles}["classviz-maco-543"]
    assert images[0].proto.imgs[0].caption == tile["caption"] and "maco preset" in tile["caption"]
    at.selectbox(key="cv_preset").set_value("yosinski").run()  # no shipped picture of that preset: nothing made up
    assert not at.exception and not at.get("image")


@pytest.mark.slow
def test_a_short_run_shows_progress_then_the_image_curves_and_downloads():
    at = class_model_page()
    at.selectbox(key="cv_preset").set_value("paper").run()
    at.multiselect(key="cv_classes").set_value([1])
    at.number_input(key="cv_steps_paper").set_value(3)
    at.button(key="cv_run").click().run()
    assert not at.exception and at.get("progress"), "the run starts with a progress bar"
    wait_for_job(at)
    assert not at.error
    assert "Finished after 3 steps" in at.success[0].value
    captions = [e.proto.imgs[0].caption for e in at.get("image")]
    assert any(c.startswith("goldfish: S_c =") for c in captions)
    assert at.get("plotly_chart")
    assert [b.label for b in at.get("download_button")] == ["PNG", "Animated GIF of the run", "Figure (PNG)", "Figure (SVG)",
                                                            "Figure (PDF)"]


@pytest.mark.slow
def test_paper_and_regularised_side_by_side():
    at = class_model_page()
    at.selectbox(key="cv_preset").set_value("olah").run()
    at.number_input(key="cv_steps_olah").set_value(2)
    at.button(key="cv_run").click().run()
    wait_for_job(at)
    at.toggle(key="cv_compare").set_value(True).run()
    assert not at.exception
    captions = [e.proto.imgs[0].caption for e in at.get("image")]
    assert captions[-2:] == ["paper (§2)", "olah"]


@pytest.mark.slow
def test_stop_keeps_the_image_so_far():
    at = class_model_page()
    at.selectbox(key="cv_preset").set_value("paper").run()
    at.number_input(key="cv_steps_paper").set_value(400)
    at.button(key="cv_run").click().run()
    wait_for_job(at, stop_after_progress=True)
    job = at.session_state["cv_job"]
    assert job.result.stopped_early and 0 < job.result.steps_run < 400
    assert "Stopped after" in at.success[0].value and at.get("image")


@pytest.mark.slow
@pytest.mark.parametrize("widget, value, message", [
    ("cv_steps_paper", -5, "steps must be a whole number ≥ 0"),
    ("cv_typed", "not a class", "No ImageNet class is called 'not a class'"),
    ("cv_paper_learning_rate", -1.0, "learning_rate must be > 0"),
])
def test_bad_parameters_give_a_clear_message_and_no_traceback(widget, value, message):
    at = class_model_page()
    at.selectbox(key="cv_preset").set_value("paper").run()
    element = at.text_input(key=widget) if widget == "cv_typed" else at.number_input(key=widget)
    element.set_value(value).run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert "cv_run" not in [b.key for b in at.button]  # nothing to run with bad parameters
