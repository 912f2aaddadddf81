"""§2 class model visualisation speed on the embedded model, 224²: one step against a bare
forward+backward (goal ≤ 1.2×), every preset, and how a batch of classes scales.

Run: .venv/bin/python benchmarks/bench_classviz.py        (on CUDA it also times the issue's
200-step and 64-class targets; the CUDA-graph path in engine/classviz/step.py is used there)
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, median_seconds, report  # noqa: E402
from engine.classviz.visualise import PRESETS, visualise_class  # noqa: E402
from engine.models import load_model  # noqa: E402

CLASSES = (1, 130, 285, 954, 207, 417, 555, 963, 22, 340, 948, 812, 309, 987, 985, 13)


def step_seconds(model, preset: str, classes, steps: int, *, preview: bool = False) -> float:
    """Median wall time between consecutive steps; ``preview``: the displayed images fetched every step."""
    stamps = []

    def on_step(progress) -> None:
        if preview:
            progress.images()
        stamps.append(time.perf_counter())

    config = dataclasses.replace(PRESETS[preset], steps=steps)
    visualise_class(model, list(classes), config=config, on_step=on_step)
    return statistics.median(b - a for a, b in zip(stamps[1:], stamps[2:]))  # skip the first (warm-up) step


def run_seconds(model, preset: str, classes, steps: int) -> float:
    config = dataclasses.replace(PRESETS[preset], steps=steps)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    visualise_class(model, list(classes), config=config)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    print(machine())
    model = load_model()
    target = torch.tensor(CLASSES[:1]).view(-1, 1).to(model.device)

    def bare(batch: int) -> None:  # the floor: one forward, one backward to the input
        x = torch.zeros(batch, 3, 224, 224, device=model.device, requires_grad=True)
        torch.autograd.grad(model.module(x).gather(1, target.expand(batch, 1)).sum(), x)

    # a 2-core machine drifts by ~10% over minutes: each ratio is against bare runs just before and after
    floor = median_seconds(lambda: bare(1), repeats=20)
    report("bare forward+backward, 1×224²", floor)
    runs = [(f"visualise_class step, {preset}, 1 class", preset, False) for preset in PRESETS]
    for name, preset, preview in runs + [("paper step, preview image fetched every step", "paper", True)]:
        step = step_seconds(model, preset, CLASSES[:1], 30, preview=preview)
        after = median_seconds(lambda: bare(1), repeats=20)
        report(name, step, (floor + after) / 2, "bare before/after")
        floor = after

    for batch in (4, 16):
        floor_b = median_seconds(lambda: bare(batch), repeats=5, warmup=1)
        report(f"bare forward+backward, {batch}×224²", floor_b)
        step_b = step_seconds(model, "paper", CLASSES[:batch], 6)
        report(f"paper step, {batch} classes as one batch", step_b, floor_b, "bare")
        report("  … per class", step_b / batch, floor, "bare 1×")

    if model.device.type == "cuda":
        report("200 steps, 1 class, paper (goal < 1 s on an H100)", run_seconds(model, "paper", CLASSES[:1], 200))
        classes64 = [c * 15 % 1000 for c in range(64)]
        report("64 classes × 200 steps, paper (goal < 5 s)", run_seconds(model, "paper", classes64, 200))
        report("64 classes × 200 steps, olah", run_seconds(model, "olah", classes64, 200))


if __name__ == "__main__":
    main()
