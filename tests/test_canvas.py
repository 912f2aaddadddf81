"""The drawing canvas reports a stroke at once (issue 20): streamlit-drawable-canvas's own frontend,
copied with the one constant that delays its report after mouse-up changed, and nothing else."""
from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path

import pytest

import ui.canvas_frontend
from tests.conftest import open_page


def stock_build() -> Path:
    spec = importlib.util.find_spec("streamlit_drawable_canvas")
    return Path(list(spec.submodule_search_locations)[0]) / "frontend" / "build"


def test_the_copy_differs_from_the_stock_frontend_only_in_the_report_delay(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    build = ui.canvas_frontend._fast_canvas_build()
    assert build is not None, "the pinned streamlit-drawable-canvas frontend no longer has the delay this patches"
    assert build.is_relative_to(tmp_path / "deep-inside")
    [stock_js] = stock_build().glob("index-*.js")
    [stock_css] = stock_build().glob("index-*.css")
    assert (build / stock_css.name).read_bytes() == stock_css.read_bytes()
    ours = (build / stock_js.name).read_text(encoding="utf-8").splitlines()
    theirs = stock_js.read_text(encoding="utf-8").splitlines()
    changed = [line for line in difflib.unified_diff(theirs, ours, lineterm="", n=0) if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert len(changed) == 2, changed
    assert "= 200," in changed[0] and f"= {ui.canvas_frontend.CANVAS_REPORT_MS}," in changed[1]
    assert changed[0].replace("= 200,", f"= {ui.canvas_frontend.CANVAS_REPORT_MS},")[1:] == changed[1][1:]
    # made once: a second call (another session, another server) finds it, and no staging folder is left
    assert ui.canvas_frontend._fast_canvas_build() == build
    assert sorted(p.name for p in (tmp_path / "deep-inside").iterdir()) == [build.parent.name]


def fresh_process(monkeypatch) -> None:
    """As in a new server process: the copy not looked for yet (the stock mount function, once seen, kept)."""
    monkeypatch.setattr(ui.canvas_frontend, "_canvas_mounts", {k: v for k, v in ui.canvas_frontend._canvas_mounts.items() if k == "stock"})


def canvas_components(at) -> list[str]:
    return [e.proto.component_name for e in at.get("bidi_component")]


@pytest.mark.slow
def test_the_pages_mount_the_copy_and_fall_back_to_the_stock_canvas(tmp_path, monkeypatch):
    fresh_process(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert canvas_components(open_page("pages/segmentation.py")) == [ui.canvas_frontend.FAST_CANVAS]
    # a cache that cannot be written (here a file where the folder would be): the stock canvas, no error
    fresh_process(monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    at = open_page("pages/segmentation.py")
    assert canvas_components(at) == ["streamlit-drawable-canvas.streamlit_drawable_canvas"]
    assert not at.error and not at.exception
