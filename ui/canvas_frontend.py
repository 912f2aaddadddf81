"""The drawing canvas's frontend: streamlit-drawable-canvas's own bundle, reporting a stroke at mouse-up.

Owns: the copy of the installed frontend (its 200 ms report delay set to 0) in the user cache dir and its
registration as a component of its own, with the stock canvas as the fallback. May import: engine.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import streamlit as st

CANVAS_REPORT_MS = 0  # streamlit-drawable-canvas 0.13.0 waits 200 ms after mouse-up before it reports a stroke
FAST_CANVAS = "deep-inside-canvas.canvas"
_canvas_lock = threading.Lock()
_canvas_mounts: dict[str, Any] = {}  # "stock" and "fast": the canvas's mount functions; "build": the fast one's files


def _fast_canvas_build() -> Path | None:
    """A copy of streamlit-drawable-canvas's frontend (under the user cache dir) in which the wait between
    mouse-up and reporting the drawing is ``CANVAS_REPORT_MS``; None (the stock component is used) where the
    installed frontend is not the one this was written against."""
    from engine.runs.demo_workspace import user_cache_dir

    spec = importlib.util.find_spec("streamlit_drawable_canvas")  # not imported: it registers its component
    if spec is None or not spec.submodule_search_locations:
        return None
    build = Path(list(spec.submodule_search_locations)[0]) / "frontend" / "build"
    scripts, styles = sorted(build.glob("index-*.js")), sorted(build.glob("index-*.css"))
    if len(scripts) != 1 or len(styles) != 1:
        return None
    text = scripts[0].read_text(encoding="utf-8")
    # the stroke sender is made as `h.sender = Nh((c) => Ic(h, c), Bc)`, its delay a constant `Bc = 200`
    sender = re.findall(r"\.sender = \w+\(\(\w+\) => \w+\(\w+, \w+\), (\w+)\)", text)
    if len(sender) != 1 or len(re.findall(rf"\b{sender[0]} = 200\b", text)) != 1:
        return None
    patched = re.sub(rf"\b{sender[0]} = 200\b", f"{sender[0]} = {CANVAS_REPORT_MS}", text)
    digest = hashlib.md5(patched.encode()).hexdigest()[:12]
    root = user_cache_dir() / f"canvas-{digest}"
    target = root / "build"
    if not (target / scripts[0].name).is_file():
        staging = root.with_name(f"{root.name}.{os.getpid()}.{threading.get_ident()}")
        (staging / "build").mkdir(parents=True, exist_ok=True)
        (staging / "build" / scripts[0].name).write_text(patched, encoding="utf-8")
        (staging / "build" / styles[0].name).write_bytes(styles[0].read_bytes())
        try:
            staging.rename(root)
        except OSError:  # another process made it first
            shutil.rmtree(staging, ignore_errors=True)
    return target if (target / scripts[0].name).is_file() else None


def canvas_component():
    """The drawing canvas's mount function: streamlit-drawable-canvas's own frontend, reporting a stroke
    ``CANVAS_REPORT_MS`` after mouse-up instead of 200 ms (issue 20), registered as a component of its own;
    the stock one where that cannot be done (another version of the package, no running server)."""
    import streamlit_drawable_canvas as sdc
    from streamlit.runtime import Runtime

    with _canvas_lock:
        stock = _canvas_mounts.setdefault("stock", sdc.out)
        if not Runtime.exists():
            return stock
        try:
            from streamlit.components.v2.manifest_scanner import (
                ComponentConfig,
                ComponentManifest,
            )

            if "build" not in _canvas_mounts:
                _canvas_mounts["build"] = _fast_canvas_build()
            build = _canvas_mounts["build"]
            if build is None:
                return stock
            manager = Runtime.instance().bidi_component_registry
            if manager.get_component_asset_root(FAST_CANVAS) is None:  # a new server (or AppTest) in this process
                package, name = FAST_CANVAS.split(".")
                manager.register_from_manifest(ComponentManifest(name=package, version=sdc.__version__,
                                                                 components=[ComponentConfig(name=name, asset_dir=build.name)]),
                                               build.parent)
            if "fast" not in _canvas_mounts:
                _canvas_mounts["fast"] = st.components.v2.component(
                    FAST_CANVAS, js="index-*.js", css="index-*.css", html='<div class="canvas-root"></div>', isolate_styles=True)
            return _canvas_mounts["fast"]
        except Exception as exc:  # noqa: BLE001 - Streamlit's component internals moved: the stock canvas still works
            print(f"deep-inside: the canvas reports strokes after the stock 200 ms ({type(exc).__name__}: {exc})", file=sys.stderr)
            _canvas_mounts["build"] = None
            return stock
