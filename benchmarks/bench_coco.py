"""COCO export of a review workspace: 1,000 photos with 512×512 masks (goal: under 10 s on 2 cores).

    .venv/bin/python benchmarks/bench_coco.py [--photos 1000] [--repeats 3]

Builds a workspace in a temporary folder (an ellipse mask per photo, one photo in four accepted
through ``Workspace.save``), then prints the median time of ``export_coco`` with ``include="all"``
(every mask) and ``"accepted"``, and of ``Workspace.items()`` alone (the queue the export starts from).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, report, seconds  # noqa: E402
from engine.images import encode_png  # noqa: E402
from engine.runs.coco import export_coco  # noqa: E402
from engine.runs.workspace import Workspace, open_workspace  # noqa: E402
from engine.segmentation.cut import AUTO_BACKGROUND, bounding_box  # noqa: E402
from engine.segmentation.masks import encode_seed_map  # noqa: E402
from engine.segmentation.presets import PRESETS, segmentation_record  # noqa: E402

SIDE = 512


def ellipse(rng: np.random.Generator) -> np.ndarray:
    """A random filled ellipse, bool (SIDE, SIDE): a mask of the size and shape segment-folder gives."""
    cy, cx = rng.uniform(120, SIDE - 120, 2)
    ry, rx = rng.uniform(40, 110, 2)
    y, x = np.ogrid[:SIDE, :SIDE]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def build(root: Path, photos: int) -> Workspace:
    for folder in ("images", "segmentations"):
        (root / folder).mkdir(parents=True)
    photo = encode_png(np.full((SIDE, SIDE, 3), 128, np.uint8))
    seeds = np.zeros((SIDE, SIDE), np.uint8)
    seeds[:4] = AUTO_BACKGROUND
    seeds_png = encode_seed_map(seeds)
    rng = np.random.default_rng(0)
    for n in range(photos):
        stem, mask = f"photo{n:05d}", ellipse(rng)
        result = SimpleNamespace(is_foreground_hw=mask, bbox=bounding_box(mask), seeds_promoted=False, area=int(mask.sum()))
        record = segmentation_record(result, class_index=n % 1000, label=f"class {n % 1000}", model="bench",
                                     weights="none", preset=PRESETS["paper"])
        record.update(image=f"{stem}.png", quality=float(rng.uniform()))
        (root / "images" / f"{stem}.png").write_bytes(photo)
        (root / "segmentations" / f"{stem}.json").write_text(json.dumps(record))
        (root / "segmentations" / f"{stem}_mask.png").write_bytes(encode_png(mask.astype(np.uint8) * 255))
        (root / "segmentations" / f"{stem}_seeds.png").write_bytes(seeds_png)
    space = open_workspace(root)
    for n in range(0, photos, 4):
        entry = space.load(f"photo{n:05d}")
        space.save(entry.stem, mask_hw=np.roll(entry.mask_hw, 3, axis=1), seeds_hw=entry.seeds_hw, record=entry.record,
                   base_version=0, status="accepted")
    return space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        space = build(Path(folder) / "space", args.photos)
        export_coco(space, include="accepted")  # warm-up: imports torch and the class tables
        for name, fn in (("Workspace.items()", space.items),
                         (f"export_coco include=all ({args.photos} masks)", lambda: export_coco(space, include="all")),
                         (f"export_coco include=accepted ({len(range(0, args.photos, 4))} masks)",
                          lambda: export_coco(space, include="accepted"))):
            report(name, statistics.median(seconds(fn) for _ in range(args.repeats)))


if __name__ == "__main__":
    main()
