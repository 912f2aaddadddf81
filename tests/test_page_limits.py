"""The operator's limits on the pages (ui.limits) and the line for heavy runs (ui.jobs), driven by AppTest:
a link asking beyond a limit is clamped with a note and its run=1 runs only within the limits; a run that
finds every heavy-run slot taken shows its place in line and starts when one frees."""
from __future__ import annotations

import time

import pytest

import ui.jobs
import ui.limits
from engine.runs.slots import HeavySlots
from tests.test_page_links import notes, open_link

pytestmark = pytest.mark.slow  # each opens the class model page on the embedded model


@pytest.fixture
def small_limits(monkeypatch):
    limits = ui.limits.Limits(max_steps=50, max_classes=2, max_views=1, max_ig_steps=16, heavy_runs=1)
    monkeypatch.setattr(ui.limits, "_LIMITS", [limits])
    monkeypatch.setattr(ui.jobs, "_slot_holder", [HeavySlots(1)])
    return limits


def _stop(at):
    job = at.session_state["cv_job"]
    job.stop()
    job.thread.join(30)
    return job


def test_a_link_beyond_the_limits_is_clamped_with_notes_and_runs_only_within_them(small_limits):
    at = open_link("pages/class_model.py", classes="1,2,3,4,5", steps="5000", run="1")
    said = notes(at)
    assert "`classes` asks for 5 classes; this server allows at most 2, so the first 2 it is." in said, said
    assert "`steps` asks for 5000 steps; this server allows at most 50, so 50 it is." in said, said
    assert at.multiselect(key="cv_classes").value == [1, 2] and at.number_input(key="cv_steps_maco").value == 50
    job = _stop(at)
    assert job.progress.steps == 50 and job.result.class_indices == (1, 2)  # the run it started is within the limits
    assert at.query_params["steps"] == "50" and at.query_params["classes"] == "1,2"
    at.run()
    assert "so 50 it is" in notes(at)  # the note stays until the person changes the value


def test_a_run_waits_in_line_while_the_slots_are_taken_and_starts_when_one_frees(small_limits):
    holder = ui.jobs._slots().hold()
    holder.__enter__()  # another session's long run holds the only slot
    try:
        at = open_link("pages/class_model.py", steps="50", run="1")
        job = at.session_state["cv_job"]
        deadline = time.monotonic() + 10
        while job.position != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        at.run()
        assert job.state == "queued" and any("place 1 in line" in i.value for i in at.info), [i.value for i in at.info]
    finally:
        holder.__exit__(None, None, None)
    deadline = time.monotonic() + 30
    while job.state == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.state in ("running", "finished")
    _stop(at)


def test_views_and_ig_steps_beyond_the_limits_are_clamped_with_a_note(small_limits):
    at = open_link("pages/saliency.py", image="espresso", views="10")
    assert "`views` asks for 10 views; this server allows at most 1, so 1 it is." in notes(at)
    assert at.radio(key="sal_views").value == 1 and at.radio(key="sal_views").options == ["centre crop"] and "views" not in at.query_params
    paper = open_link("pages/segmentation.py", image="espresso", preset="paper")  # the paper's preset asks for 10 views
    assert "`views` asks for 10 views" in notes(paper) and paper.radio(key="seg_views").value == 1
    ig = open_link("pages/faithfulness.py", ig_steps="64")
    assert "`ig_steps` asks for 64 steps; this server allows at most 16, so 16 it is." in notes(ig)
    assert ig.select_slider(key="faith_ig_steps").value == 16
