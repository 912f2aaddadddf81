"""Importing a COCO instances file into a review workspace: 5,000 objects over 1,000 photos.

    .venv/bin/python benchmarks/bench_import.py [--photos 1000] [--objects 5] [--side 640]

Makes, in a temporary folder, ``--photos`` JPEG photos (``--side`` × 3/4 ``--side``) and a COCO file written
with pycocotools from generated masks: ``--objects`` random ellipses per photo, every other one a compressed
RLE (``pycocotools.mask.encode``) and the others a 64-point polygon round the ellipse. Then runs, each in its
own process (the command as a person runs it, so that its peak memory is its own):
1. ``python -m engine import-segmentations`` into an empty workspace: seconds and peak resident memory;
2. the same again on the same workspace (nothing to add: each object found already there);
3. ``python -m engine export-coco --all`` of the result.
Each is run once (the first run is what a person waits for); the machine's load is printed with it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine  # noqa: E402


def make_dataset(folder: Path, photos: int, objects: int, side: int) -> Path:
    from pycocotools import mask as mask_api

    width, height = side, side * 3 // 4
    rng = np.random.default_rng(0)
    images_dir = folder / "photos"
    images_dir.mkdir()
    y, x = np.ogrid[:height, :width]
    images, annotations = [], []
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    for n in range(photos):
        name = f"photo{n:05d}.jpg"
        Image.fromarray(np.roll(base, n, axis=1)).save(images_dir / name, quality=85)
        images.append({"id": n + 1, "file_name": name, "width": width, "height": height})
        for k in range(objects):
            cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
            rx, ry = rng.uniform(0.05, 0.18) * width, rng.uniform(0.05, 0.18) * height
            if k % 2 == 0:
                mask = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
                rle = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))
                segmentation = {"size": rle["size"], "counts": rle["counts"].decode()}
            else:
                angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
                segmentation = [np.round(np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], 1), 2).ravel().tolist()]
            annotations.append({"id": len(annotations) + 1, "image_id": n + 1, "category_id": 1 + k % 3,
                                "segmentation": segmentation, "iscrowd": 0, "area": 0.0, "bbox": [0, 0, 0, 0]})
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [
        {"id": 1, "name": "person", "supercategory": "person"}, {"id": 2, "name": "dog", "supercategory": "animal"},
        {"id": 3, "name": "kite", "supercategory": "outdoor"}]}))
    return path


def timed(argv: list[str]) -> tuple[float, float, dict]:
    """(seconds, peak resident MB, the printed summary) of one ``python -m engine`` run in its own process."""
    started = time.perf_counter()
    # VmHWM, not ru_maxrss: Linux carries the forking parent's high-water mark over into the child's ru_maxrss
    script = ("import re, sys; from engine.__main__ import main; code = main(sys.argv[1:]); "
              "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1], file=sys.stderr); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, *argv], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return seconds, peak_kb / 1024, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=5, help="objects per photo")
    parser.add_argument("--side", type=int, default=640, help="photo width (height: 3/4 of it)")
    args = parser.parse_args()
    print(machine(), f"· load average {os.getloadavg()[0]:.1f}")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        started = time.perf_counter()
        source = make_dataset(folder, args.photos, args.objects, args.side)
        print(f"made {args.photos} photos, {args.photos * args.objects} objects ({source.stat().st_size / 1e6:.1f} MB JSON) "
              f"in {time.perf_counter() - started:.0f} s")
        space = str(folder / "space")
        importing = ["import-segmentations", str(folder / "photos"), str(source), "--out", space]
        for name, argv in (
                ("import-segmentations, empty workspace", importing),
                ("import-segmentations again (nothing to add)", importing),
                ("export-coco --all", ["export-coco", space, "--out", str(folder / "out.json"), "--all"])):
            seconds, peak_mb, summary = timed(argv)
            counts = {k: summary[k] for k in ("objects", "already_imported", "annotations") if k in summary}
            print(f"{name:<46} {seconds:7.1f} s   peak {peak_mb:6.0f} MB   {counts}")


if __name__ == "__main__":
    main()
