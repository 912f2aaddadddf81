"""The review page opening a photo with 20 objects (AppTest rerun after Next, 512-pixel photos).

    .venv/bin/python benchmarks/bench_review_objects.py [ROUNDS] [--objects 20]

Two demo photos resized to a 512-pixel long side, each with ``--objects`` imported objects (random
ellipses, ``Workspace.add_object``), their qualities interleaved so that every Next in the queue opens the
other photo: the page lists the photo's objects, reads the chosen one's version and the others' masks,
draws their outlines and the canvas. Medians of the first lap round the queue (each object opened for the
first time: its canvas and pictures drawn) and of ``ROUNDS`` × 2 × objects later moves (reopened: drawn
from the caches). The same with one object a photo, for comparison (the same number of later moves).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_review import small_photos  # noqa: E402
from benchmarks.common import machine, page_app_test  # noqa: E402
from engine.images import load_image  # noqa: E402
from engine.runs.workspace import Category, open_workspace  # noqa: E402


def make_workspace(root: Path, objects: int) -> None:
    (root / "images").mkdir(parents=True)
    (root / "segmentations").mkdir()
    photos = dict(list(small_photos().items())[:2])
    rng = np.random.default_rng(0)
    space = open_workspace(root)
    for p, (name, data) in enumerate(photos.items()):
        (root / "images" / name).write_bytes(data)
        height, width = load_image(data).shape[:2]
        y, x = np.ogrid[:height, :width]
        for k in range(objects):
            cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
            ry, rx = rng.uniform(0.05, 0.15) * height, rng.uniform(0.05, 0.15) * width
            mask = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
            space.add_object(Path(name).stem, mask_hw=mask, category=Category(f"thing {k % 3}", id=1 + k % 3), image=name,
                             status="imported", quality=(2 * k + p) / (2 * objects))


def open_photo_ms(root: Path, later: int) -> tuple[list[float], list[float]]:
    """(the first lap's moves: each object opened for the first time; ``later`` moves after it: reopened)."""
    os.environ["DEEP_INSIDE_WORKSPACE"] = str(root)
    at = page_app_test("pages/review.py")
    assert not at.exception, at.exception
    moves = len(open_workspace(root).items())
    times = []
    for _ in range(moves + later):
        before = at.selectbox(key="review_stem").value
        started = time.perf_counter()
        at.button(key="rev_next").click().run()
        times.append((time.perf_counter() - started) * 1000)
        assert not at.exception, at.exception
        assert at.selectbox(key="review_stem").value != before  # every move opens the other photo
    return times[:moves], times[moves:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds", nargs="?", type=int, default=1)
    parser.add_argument("--objects", type=int, default=20)
    args = parser.parse_args()
    print(machine(), f"· load average {os.getloadavg()[0]:.1f}")
    for objects in (args.objects, 1):
        with tempfile.TemporaryDirectory() as folder:
            make_workspace(Path(folder), objects)
            first, again = open_photo_ms(Path(folder), args.rounds * 2 * args.objects)  # as many reopenings either way
        for lap, moves in (("first opening of each object", first), ("reopened (later laps)", again)):
            print(f"review page, Next to a photo with {objects:2d} objects, {lap:<30}: median "
                  f"{statistics.median(moves):6.1f} ms ({len(moves)} moves, {min(moves):.0f}-{max(moves):.0f} ms)")


if __name__ == "__main__":
    main()
