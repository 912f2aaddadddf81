"""Shared cache entries held by live sessions (ui.holds): a photo's features and cut inputs stay while a session
that used them is open, and go when the last such session is closed (ui.jobs' watcher); finished results stay.
The server is a stand-in here (AppTest has none); tests/e2e and benchmarks/bench_audience.py run the real one."""
from __future__ import annotations

import threading
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from streamlit.runtime import Runtime

import ui.results
from engine.segmentation import presets
from ui import holds
from ui import jobs as ui_jobs


@pytest.fixture
def server(monkeypatch):
    """A stand-in Streamlit server whose sessions are active until the test says otherwise."""
    active, closed = set(), []
    instance = SimpleNamespace(is_active_session=lambda sid: sid in active, clear_user_info_for_session=closed.append)
    monkeypatch.setattr(holds, "runtime", SimpleNamespace(exists=lambda: True, get_instance=lambda: instance))
    monkeypatch.setattr(ui_jobs, "runtime", SimpleNamespace(exists=lambda: False, get_instance=lambda: instance))
    monkeypatch.setattr(ui_jobs, "_ensure_watcher", lambda: None)  # no watcher thread: each test sweeps by hand
    for name, empty in (("_sessions", {}), ("_gone_since", {}), ("_trim_timer", [])):
        monkeypatch.setattr(ui_jobs, name, empty)
    monkeypatch.setattr(ui_jobs, "_malloc_trim", lambda: None)
    monkeypatch.setattr(holds, "_held", {})
    return SimpleNamespace(active=active, closed=closed)


def test_an_entry_is_released_once_when_the_last_session_that_held_it_is_closed(server):
    released = []
    for sid in ("a", "b"):
        with holds.working_for(sid):
            holds.hold("photo 1", lambda: released.append("photo 1"))
    with holds.working_for("a"):
        holds.hold("photo 2", lambda: released.append("photo 2"))
    assert holds.holders() == {"a", "b"}
    assert holds.let_go("a") == 1 and released == ["photo 2"]  # b still uses photo 1
    assert holds.let_go("b") == 1 and released == ["photo 2", "photo 1"] and holds.holders() == set()
    assert holds.let_go("b") == 0 and released == ["photo 2", "photo 1"]


def test_nothing_is_recorded_without_a_server_or_a_session(monkeypatch):
    monkeypatch.setattr(holds, "_held", {})
    holds.hold("photo", lambda: None)  # this thread has no session (and no server runs)
    with holds.working_for("a"):
        monkeypatch.setattr(holds, "runtime", SimpleNamespace(exists=lambda: False))
        holds.hold("photo", lambda: None)  # the command line: no server whose watcher would ever let go
        stand_in = mock.MagicMock(spec=Runtime)  # what AppTest installs as the Runtime while its script runs
        monkeypatch.setattr(holds, "runtime", SimpleNamespace(exists=lambda: True, get_instance=lambda: stand_in))
        holds.hold("photo", lambda: None)
    assert holds._held == {} and not holds.serving()


def test_the_watcher_lets_go_of_a_session_when_it_closes_it(server):
    released = []
    server.active.update({"a"})
    with holds.working_for("a"):
        holds.hold("features", lambda: released.append("features"))
    ui_jobs._sweep(100.0)
    server.active.clear()  # the tab closed
    ui_jobs._sweep(200.0)
    ui_jobs._sweep(200.0 + ui_jobs.CLOSE_AFTER_S / 2)
    assert released == [] and server.closed == []  # a tab that comes back within CLOSE_AFTER_S finds it all
    ui_jobs._sweep(200.0 + ui_jobs.CLOSE_AFTER_S)
    assert server.closed == ["a"] and released == ["features"] and holds.holders() == set()


def test_a_photos_features_are_made_once_while_held_and_again_after_the_last_session_closed(server, monkeypatch):
    made = []

    def pixel_features(model, image_hwc):
        made.append(image_hwc.shape)
        return SimpleNamespace(features_hwk=np.zeros((*image_hwc.shape[:2], 2), np.float32))

    monkeypatch.setattr(ui.results, "pixel_features", pixel_features)
    model = SimpleNamespace(name="fake", weights="none", device="cpu")
    image = ui.results.ImageInput("held", f"digest-held-{id(made)}", np.zeros((3, 4, 3), np.uint8))
    for sid in ("a", "b"):
        with holds.working_for(sid):
            ui.results.cached_pixel_features(model, image)
    assert len(made) == 1
    holds.let_go("a")
    ui.results.cached_pixel_features(model, image)  # b's still open: kept
    assert len(made) == 1
    holds.let_go("b")
    ui.results.cached_pixel_features(model, image)
    assert len(made) == 2


def test_a_cuts_inputs_go_with_the_last_session_and_the_cut_itself_stays(server, monkeypatch):
    calls = []
    real_inputs, real_cut = presets.preset_inputs, presets.segment_with_preset
    monkeypatch.setattr(presets, "preset_inputs", lambda *a, **k: (calls.append("inputs"), real_inputs(*a, **k))[1])
    monkeypatch.setattr(presets, "segment_with_preset", lambda *a, **k: (calls.append("cut"), real_cut(*a, **k))[1])
    photo = np.random.default_rng(7).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    saliency_hw = np.zeros((24, 32), np.float32)
    saliency_hw[8:16, 10:22] = 1.0
    saliency = SimpleNamespace(saliency_hw=saliency_hw, class_index=1, views=1, method="gradient")
    model = SimpleNamespace(name="fake", weights="none", device="cpu")
    digest, preset = f"digest-cut-{id(calls)}", presets.get_preset(presets.DEFAULT_PRESET)
    with holds.working_for("a"):
        first = ui.results.cached_cut(photo, digest, saliency, preset, model=model)
    assert calls == ["inputs", "cut"]
    holds.let_go("a")
    assert ui.results.cached_cut(photo, digest, saliency, preset, model=model) is first and calls == ["inputs", "cut"]
    key = ui.results._saliency_key(digest, saliency, model)
    ui.results._preset_inputs(photo, digest, saliency_hw, key, ui.results._preset_json(preset))  # released: made again
    assert calls == ["inputs", "cut", "inputs"]


def test_ahead_holds_what_it_makes_for_the_session_that_asked(server):
    seen = []
    done = threading.Event()

    def work():
        seen.append(holds.session_id())
        done.set()

    with holds.working_for("a"):  # as on session a's script thread
        ui.results.ahead(f"ahead-test-{id(seen)}", work)
    done.wait(5)
    assert seen == ["a"]
