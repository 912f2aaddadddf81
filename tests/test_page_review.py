"""AppTest of the review page: the queue, accept / next / previous, history, a conflict between two
sessions, the COCO download, and the message when no workspace is set. Painting is in the browser test."""
from __future__ import annotations

import pytest

from engine.runs import workspace as ws
from tests.conftest import open_page
from tests.test_workspace import edited, make_workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    space = make_workspace(tmp_path, {"a": 0.9, "b": 0.1, "c": 0.5})
    monkeypatch.setenv("DEEP_INSIDE_WORKSPACE", str(tmp_path))
    return space


def current(at) -> str:
    return at.selectbox(key="review_stem").value


def test_without_a_workspace_the_page_says_how_to_set_one(monkeypatch):
    monkeypatch.delenv("DEEP_INSIDE_WORKSPACE", raising=False)
    at = open_page("pages/review.py")
    assert any("DEEP_INSIDE_WORKSPACE" in i.value and "--workspace" in i.value for i in at.info)


def test_the_queue_starts_with_the_worst_and_accept_saves_and_moves_on(workspace):
    at = open_page("pages/review.py")
    assert current(at) == "b"  # quality 0.1: the likeliest bad mask first
    assert "0 of 3 accepted" in at.get("progress")[0].proto.text
    at.button(key="rev_accept").click().run()
    assert not at.exception, at.exception
    assert workspace.load("b").status == "accepted" and workspace.load("b").version == 1
    assert current(at) == "c" and "1 of 3 accepted" in at.get("progress")[0].proto.text
    assert any("Saved b as accepted" in s.value for s in at.success)
    at.button(key="rev_previous").click().run()
    assert current(at) == "b"  # the queue as it was: b, c, a
    at.button(key="rev_next").click().run()
    assert current(at) == "c" and workspace.load("c").version == 0  # moving on without strokes saves nothing


def test_history_restores_an_older_version(workspace):
    entry = workspace.load("b")
    mask, seeds = edited(entry)
    workspace.save("b", mask_hw=mask, seeds_hw=seeds, record=entry.record, base_version=0, status="refined")
    at = open_page("pages/review.py")
    assert current(at) == "b"
    at.selectbox(key="rev_history_b").set_value(0).run()
    at.button(key="rev_restore").click().run()
    assert not at.exception, at.exception
    restored = workspace.load("b")
    assert restored.version == 2 and (restored.mask_hw == entry.mask_hw).all()


def test_a_save_over_newer_work_is_refused_and_the_newer_version_shown(workspace):
    at = open_page("pages/review.py")
    assert current(at) == "b"
    entry = workspace.load("b")  # another session saves b first
    mask, seeds = edited(entry)
    workspace.save("b", mask_hw=mask, seeds_hw=seeds, record=entry.record, base_version=0, status="refined")
    at.button(key="rev_accept").click().run()
    assert not at.exception, at.exception
    assert any("saved elsewhere" in e.value for e in at.error), [e.value for e in at.error]
    assert workspace.load("b").version == 1 and workspace.load("b").status == "refined"  # theirs kept
    assert current(at) == "b" and any("version 1 (refined)" in c.value for c in at.caption)


def test_the_coco_export_is_offered(workspace):
    at = open_page("pages/review.py")
    labels = [b.label for b in at.get("download_button")]
    assert any("COCO" in label for label in labels)
    assert isinstance(workspace, ws.Workspace)
