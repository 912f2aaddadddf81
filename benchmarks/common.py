"""Timing helpers shared by the benchmark scripts."""
from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call, with the GPU's queue drained on both sides."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], *, repeats: int = 15, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    return statistics.median(seconds(fn) for _ in range(repeats))


def report(name: str, seconds: float, baseline: float | None = None, baseline_name: str = "") -> None:
    ratio = f"   {seconds / baseline:5.2f}× {baseline_name}" if baseline else ""
    print(f"{name:<58} {seconds * 1000:9.1f} ms{ratio}")


def page_app_test(page: str, timeout: float = 900):
    """AppTest of app.py on ``page``, routed as the server routes it (see ui/__init__.py and tests/conftest.py)."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest, app_test

    import ui  # noqa: F401  (switches Streamlit's legacy pages/ mode off, as the server does)

    app_test.PagesManager = type("RoutedPagesManager", (PagesManager,), {})
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=timeout).run()
    return at.switch_page(page).run()


def phone_photo() -> bytes:
    """A 4000×3000 JPEG (the cat demo enlarged): the size of a phone photo."""
    from PIL import Image

    big = Image.open(Path(__file__).resolve().parents[1] / "assets" / "cat.jpg").resize((4000, 3000), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def machine() -> str:
    import os
    import platform

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {device}, "
            f"{torch.get_num_threads()} threads")
