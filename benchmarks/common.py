"""Timing helpers shared by the benchmark scripts."""
from __future__ import annotations

import statistics
import time
from typing import Callable

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


def machine() -> str:
    import os
    import platform

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {device}, {torch.get_num_threads()} threads"
