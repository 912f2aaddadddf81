"""Where the server's time goes in the rerun after a stroke (issue 20): cProfile of the page script.

    .venv/bin/python benchmarks/profile_stroke_rerun.py [--size small|12mp] [--page segmentation|review]
        [--strokes 3] [--top 30]

AppTest of app.py on the page (the segmentation page with the photo uploaded; the review page on a
temporary workspace of that photo, as ``bench_browser_stroke.py`` builds it). The canvas cannot be
painted in AppTest, so ``st_canvas`` is wrapped: the real component is still called (its background
encoding included), and it answers a new background stroke each rerun, as the browser's canvas would
send its drawing. The script thread is profiled from the first stroke on; prints each rerun's wall
time and the functions with the most cumulative time.
"""
from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_browser_stroke import make_workspace, photo_bytes  # noqa: E402
from benchmarks.common import page_app_test  # noqa: E402


def fake_strokes(width: int, height: int, row: float) -> str:
    """The canvas's drawing as its PNG data URL: one 12-px background stroke across the middle third."""
    from engine.segmentation import cut as seg
    from engine.segmentation import masks

    rgba = np.zeros((height, width, 4), np.uint8)
    y = round(row * height)
    rgba[y - 6: y + 6, width // 3: 2 * width // 3] = (*masks.STROKE_COLOURS[seg.HAND_BACKGROUND], 255)
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def patch_canvas(state: dict) -> None:
    import streamlit_drawable_canvas as sdc

    real = sdc.st_canvas

    def canvas(*args, **kwargs):
        result = real(*args, **kwargs)
        if state["row"] is None:
            return result
        url = fake_strokes(kwargs["width"], kwargs["height"], state["row"])
        return sdc.CanvasResult(json_data={"objects": [{}]}, image_data_url=url, return_image_data=True)

    sdc.st_canvas = canvas


def patch_profiler(profile: cProfile.Profile, state: dict) -> None:
    from streamlit.runtime.scriptrunner import script_runner

    real = script_runner.ScriptRunner._run_script

    def run(self, rerun_data):
        if not state["profile"]:
            return real(self, rerun_data)
        profile.enable()
        try:
            return real(self, rerun_data)
        finally:
            profile.disable()

    script_runner.ScriptRunner._run_script = run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="12mp", choices=["small", "12mp"])
    parser.add_argument("--page", default="segmentation", choices=["segmentation", "review"])
    parser.add_argument("--strokes", type=int, default=3)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    state = {"row": None, "profile": False}
    profile = cProfile.Profile()
    patch_profiler(profile, state)
    with tempfile.TemporaryDirectory() as folder:
        if args.page == "review":
            make_workspace(Path(folder), args.size, 1)
            os.environ["DEEP_INSIDE_WORKSPACE"] = folder
        at = page_app_test(f"pages/{args.page}.py")
        if args.page == "segmentation":
            name, data = photo_bytes(args.size)
            at.file_uploader(key="seg_image_upload").set_value((name, data, "image/png" if name.endswith(".png") else "image/jpeg")).run()
        assert not at.exception, at.exception
        patch_canvas(state)  # imported by the page's first run (it registers with the runtime)
        times = []
        state["profile"] = True
        for i in range(args.strokes):
            state["row"] = 0.45 + 0.05 * i
            started = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - started)
            assert not at.exception, at.exception
    print(f"{args.page} page, {args.size}: rerun after a stroke, median {statistics.median(times):.3f} s "
          f"({', '.join(f'{t:.3f}' for t in times)}); load {Path('/proc/loadavg').read_text().split()[:3]}")
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top // 2)


if __name__ == "__main__":
    main()
