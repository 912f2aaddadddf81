"""Background runs (ui.jobs): heavy ones wait in line for a slot and know their place; a run stops when
its viewer leaves (websocket gone), moves to another page, or presses Stop; a session gone long is closed.
The liveness is driven here through a stand-in for Streamlit's runtime; the real one in tests/e2e."""
from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import pytest

from engine.runs.slots import HeavySlots
from engine.stopping import check
from ui import holds as ui_holds
from ui import jobs as ui_jobs
from ui.limits import Limits, read_limits


def _wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _steps(release: threading.Event | None = None):
    """A run's work: steps until stopped (asking should_stop, as the engine does), or until ``release``."""
    def work(run):
        run.progress = 0
        while release is None or not release.is_set():
            check(run.should_stop)
            run.progress += 1
            time.sleep(0.01)
        return "made"
    return work


@pytest.fixture
def one_slot(monkeypatch):
    monkeypatch.setattr(ui_jobs, "_slot_holder", [HeavySlots(1)])
    monkeypatch.setattr(ui_jobs, "session_id", lambda: "session-a")


def test_a_heavy_run_beyond_the_slots_waits_shows_its_place_and_starts_when_one_frees(one_slot):
    release = threading.Event()
    first = ui_jobs.start("class_model", "first", _steps(release))
    _wait_until(lambda: first.state == "running")
    second = ui_jobs.start("class_model", "second", _steps(release))
    _wait_until(lambda: second.position == 1)
    assert second.state == "queued" and second.progress is None and ui_jobs.queue_length() == 1
    quick = ui_jobs.start("saliency", "quick", lambda run: "map", heavy=False)  # quick work never waits
    quick.thread.join(5)
    assert quick.state == "finished" and quick.result == "map" and second.state == "queued"
    release.set()
    first.thread.join(5)
    second.thread.join(5)
    assert (first.state, first.result, second.state, second.result) == ("finished", "made", "finished", "made")


def test_stop_drops_a_run_that_keeps_nothing_and_a_queued_run_leaves_the_line(one_slot):
    running = ui_jobs.start("faithfulness", "checks", _steps())
    _wait_until(lambda: running.state == "running")
    waiting = ui_jobs.start("faithfulness", "more checks", _steps())
    _wait_until(lambda: waiting.position == 1)
    waiting.stop()
    waiting.thread.join(5)
    assert waiting.state == "cancelled" and waiting.progress is None  # it never ran
    running.stop()
    running.thread.join(5)
    assert running.state == "cancelled" and running.result is None
    assert ui_jobs.live_runs() == 0


def test_a_run_stops_when_its_session_enters_another_page(one_slot):
    run = ui_jobs.start("class_model", "optimise", _steps())
    _wait_until(lambda: run.state == "running")
    ui_jobs.page_entered("class_model")  # a rerun of its own page: it goes on
    time.sleep(0.05)
    assert not run.done
    ui_jobs.page_entered("saliency")
    run.thread.join(5)
    assert run.state == "cancelled" and run.cancel_reason == "its viewer went to another page" and run.result is None


def test_a_run_ends_when_its_viewer_has_gone_and_the_session_is_closed_later(one_slot, monkeypatch):
    active, closed = {"session-a"}, []
    server = SimpleNamespace(is_active_session=lambda sid: sid in active, clear_user_info_for_session=closed.append)
    monkeypatch.setattr(ui_jobs, "runtime", SimpleNamespace(exists=lambda: False, get_instance=lambda: server))
    monkeypatch.setattr(ui_jobs, "_sessions", {})
    monkeypatch.setattr(ui_jobs, "_gone_since", {})
    monkeypatch.setattr(ui_holds, "_held", {})  # what earlier tests in this worker left held is not this server's
    ui_jobs.page_entered("class_model")
    run = ui_jobs.start("class_model", "optimise", _steps())
    _wait_until(lambda: run.state == "running")
    ui_jobs._sweep(100.0)
    assert not run.done
    active.clear()  # the tab closed
    ui_jobs._sweep(200.0)
    ui_jobs._sweep(200.0 + ui_jobs.VIEWER_GRACE_S / 2)  # a blip: not yet
    assert not run.should_stop()
    ui_jobs._sweep(200.0 + ui_jobs.VIEWER_GRACE_S)
    run.thread.join(5)
    assert run.state == "cancelled" and run.cancel_reason == "its viewer left" and closed == []
    ui_jobs._sweep(200.0 + ui_jobs.CLOSE_AFTER_S)
    assert closed == ["session-a"] and "session-a" not in ui_jobs._sessions


def test_a_failing_run_reports_its_error():
    run = ui_jobs.start("x", "broken", lambda run: 1 / 0, heavy=False)
    run.thread.join(5)
    assert run.state == "failed" and "division by zero" in run.error


def test_limits_come_from_the_command_line_then_the_environment_then_the_defaults():
    assert read_limits([], {}) == Limits()
    limits = read_limits(["--workspace", "w", "--max-steps", "300", "--max-views=1"], {"DEEP_INSIDE_MAX_STEPS": "50",
                                                                                        "DEEP_INSIDE_HEAVY_RUNS": "3"})
    assert (limits.max_steps, limits.max_views, limits.heavy_runs, limits.max_classes) == (300, 1, 3, Limits().max_classes)
    for argv, message in ((["--max-steps", "many"], "whole number"), (["--max-views", "5"], "1 or 10"), (["--heavy-runs=0"], "≥ 1")):
        with pytest.raises(ValueError, match=message):
            read_limits(argv, {})


def test_a_heavy_run_yields_the_cores_to_quick_work(one_slot):
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if base > ui_jobs.HEAVY_NICE:
        pytest.skip(f"the tests run at nice {base} already")

    def nice(run):
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    heavy, quick = ui_jobs.start("x", "heavy", nice), ui_jobs.start("x", "quick", nice, heavy=False)
    heavy.thread.join(5)
    quick.thread.join(5)
    assert (heavy.result, quick.result) == (ui_jobs.HEAVY_NICE, base)


def test_work_on_the_script_thread_learns_that_its_viewer_left_or_moved_on(one_slot, monkeypatch):
    monkeypatch.setattr(ui_jobs, "_sessions", {})
    monkeypatch.setattr(ui_jobs, "_gone_since", {})
    monkeypatch.setattr(ui_holds, "_held", {})  # what earlier tests in this worker left held is not this server's
    ui_jobs.page_entered("class_model")
    gone = ui_jobs.viewer_gone("class_model")
    assert not gone()
    ui_jobs.page_entered("saliency")
    assert gone()
    ui_jobs.page_entered("class_model")
    ui_jobs._gone_since["session-a"] = time.monotonic() - ui_jobs.VIEWER_GRACE_S  # as the watcher records a closed tab
    assert gone()


def test_heavy_runs_that_end_together_share_one_trim_and_a_run_that_never_ran_asks_for_none(monkeypatch):
    """Every leaver's run ends within a second or so: one malloc_trim for all (each walks every arena: CPU),
    none for a run that left the line before it had a slot."""
    for earlier in ui_jobs._trim_timer:  # other tests' runs' trims
        earlier.join(5)
    trims = []
    monkeypatch.setattr(ui_jobs, "_malloc_trim", lambda: trims.append)
    monkeypatch.setattr(ui_jobs, "_slot_holder", [HeavySlots(2)])
    monkeypatch.setattr(ui_jobs, "_trim_timer", [])
    runs = [ui_jobs.start("class_model", f"run {i}", _steps()) for i in range(3)]
    _wait_until(lambda: [r.state for r in runs].count("running") == 2 and sum(r.position for r in runs) == 1)
    for run in runs:
        run.cancel("its viewer left")
    for run in runs:
        run.thread.join(5)
    assert [r.ran for r in runs].count(True) == 2 and not trims  # not on the run's thread: after the last one ends
    ui_jobs._trim_timer[0].join(5)
    assert trims == [0]
    quick = ui_jobs.start("saliency", "quick", lambda run: "map", heavy=False)  # quick work frees little: no trim
    quick.thread.join(5)
    assert trims == [0] and not ui_jobs._trim_timer[0].is_alive()
