"""Integrated Gradients' completeness on development ILSVRC photos: the relative gap
|Σ IG − (S(x) − S(x'))| / |S(x) − S(x')|, the steps used and the seconds per photo, with the old fixed
32 Gauss-Legendre steps and with the adaptive default (32, 64, ... 256 until the gap is within 5%).
Centre view, black baseline, the embedded model's top-1 class (the sanity page's defaults).

Run: .venv/bin/python benchmarks/bench_ig_completeness.py [PHOTOS] [--every 33] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.attribution.methods import ADAPTIVE, integrated_gradients_check  # noqa: E402
from engine.attribution.saliency import predict  # noqa: E402
from engine.classviz.spectrum import photo_paths  # noqa: E402
from engine.images import load_image  # noqa: E402
from engine.models import load_model  # noqa: E402

PHOTOS = Path("/work/shared/data/ilsvrc2012-val-dev/images")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="?", type=Path, default=PHOTOS)
    parser.add_argument("--every", type=int, default=33, help="every N-th photo in name order (default: %(default)s: 20 of 654)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("efficientnet_lite0", device="cpu")
    rows = {"fixed 32": [], "adaptive": []}
    for path in photo_paths(args.photos, every=args.every):
        image = load_image(path)
        target = predict(model, image, top=1)[0].index
        for name, steps in (("fixed 32", 32), ("adaptive", ADAPTIVE)):
            start, start_cpu = time.perf_counter(), time.process_time()
            check = integrated_gradients_check(model, image, target=target, steps=steps)
            rows[name].append((check.relative_gap, check.steps, time.perf_counter() - start, time.process_time() - start_cpu))
            print(f"{path.name} {name}: gap {check.relative_gap:.3%}, {check.steps} steps, "
                  f"{rows[name][-1][2]:.1f} s wall, {rows[name][-1][3]:.1f} s CPU", file=sys.stderr, flush=True)
    print(f"{len(rows['adaptive'])} photos, {args.threads} thread(s)")
    print("| IG steps | relative gap: median, worst | within 5% | steps used: median, max | s/photo wall: median, worst | CPU s: median |")
    print("|---|---|---|---|---|---|")
    for name, found in rows.items():
        gaps, steps, wall, cpu = (np.array(v) for v in zip(*found))
        print(f"| {name} | {statistics.median(gaps):.1%}, {gaps.max():.1%} | {np.mean(gaps <= 0.05):.0%} | "
              f"{statistics.median(steps):.0f}, {steps.max()} | {statistics.median(wall):.1f}, {wall.max():.1f} | "
              f"{statistics.median(cpu):.1f} |")


if __name__ == "__main__":
    main()
