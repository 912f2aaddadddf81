"""A box around the object, no clicks: our box mode (``engine.segmentation.refine`` from the box, as the
segmentation page runs it) beside OpenCV's ``grabCut`` from the same rectangle, in the same process.

GrabCut's own protocol (Rother et al. 2004): the person drags a box around the object; outside it is
background. The box here is the object's bounding box in its mask, widened by ``--margin`` of its size
on every side (clipped to the photo). Ours runs with the network's per-pixel features, from the box
alone ("box") or from the automatic mask inside it ("saliency"); OpenCV with ``GC_INIT_WITH_RECT`` and
5 iterations. Prints mean IoU (the 128 band ignored), how many objects reach 0.90, and the median time.
Photos: ../shared/data/interactive-dev (research terms: read there, never copied).

    .venv/bin/python benchmarks/bench_box.py [grabcut|berkeley ...] [--margin 0.05] [--limit N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runs import noc  # noqa: E402
from engine.segmentation import clicks as ck  # noqa: E402
from engine.segmentation import refine as rf  # noqa: E402
from engine.segmentation.cut import bounding_box  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "interactive-dev"


def widened(box, shape_hw, margin: float):
    x0, y0, x1, y1 = box
    dx, dy = round((x1 - x0) * margin), round((y1 - y0) * margin)
    return max(0, x0 - dx), max(0, y0 - dy), min(shape_hw[1], x1 + dx), min(shape_hw[0], y1 + dy)


def opencv_box(image_hwc, box) -> np.ndarray:
    import cv2

    x0, y0, x1, y1 = box
    mask = np.zeros(image_hwc.shape[:2], np.uint8)
    try:
        cv2.grabCut(np.ascontiguousarray(image_hwc[:, :, ::-1]), mask, (x0, y0, x1 - x0, y1 - y0), np.zeros((1, 65)),
                    np.zeros((1, 65)), 5, cv2.GC_INIT_WITH_RECT)
    except cv2.error:  # a box that leaves no background (the object touches every border): the box is its answer
        return rf.box_mask(image_hwc.shape[:2], box)
    return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))


def ours_box(image_hwc, box, features, automatic):
    options = rf.box_options()
    hand = rf.with_box(np.zeros(image_hwc.shape[:2], np.uint8), box)
    return rf.refine(image_hwc, hand, features_hwk=features, previous_hw=rf.box_start(image_hwc.shape[:2], box, automatic),
                     automatic_hw=automatic, options=options).is_foreground_hw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=["grabcut", "berkeley"])
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    from engine.attribution.features import pixel_features
    from engine.attribution.saliency import compute_saliency
    from engine.images import load_image
    from engine.models import load_model
    from engine.segmentation.presets import DEFAULT_PRESET, get_preset, segment_with_preset

    model = load_model("efficientnet_lite0", "pretrained")
    preset = get_preset(DEFAULT_PRESET)
    print(f"{'set / method':<40} {'n':>4} {'mean IoU':>8} {'>=0.90':>6} {'ms':>6}")
    for name in args.sets:
        images, masks = noc.dataset_photos(DATA / name)
        scores: dict[str, list[tuple[float, float]]] = {"ours, box alone": [], "ours, saliency inside the box": [],
                                                        "OpenCV grabCut, GC_INIT_WITH_RECT": []}
        for path in images[: args.limit]:
            image = load_image(path.read_bytes())
            is_object, is_ignored = ck.read_truth(noc.read_mask(masks[path.name].read_bytes(), image.shape[:2]))
            box = widened(bounding_box(is_object), image.shape[:2], args.margin)
            features = pixel_features(model, image).features_hwk
            saliency = compute_saliency(model, image, views=preset.views, method=preset.method)
            automatic = segment_with_preset(image, saliency.saliency_hw, preset).is_foreground_hw
            for label, run in (("ours, box alone", lambda: ours_box(image, box, features, None)),
                               ("ours, saliency inside the box", lambda: ours_box(image, box, features, automatic)),
                               ("OpenCV grabCut, GC_INIT_WITH_RECT", lambda: opencv_box(image, box))):
                start = time.perf_counter()
                mask = run()
                scores[label].append((ck.masked_iou(mask, is_object, is_ignored), time.perf_counter() - start))
        for label, rows in scores.items():
            ious = [iou for iou, _ in rows]
            print(f"{name + ' / ' + label:<40} {len(rows):>4} {statistics.fmean(ious):8.3f} {sum(i >= 0.9 for i in ious):>6} "
                  f"{statistics.median(s for _, s in rows) * 1000:6.0f}", flush=True)
    print(f"({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, margin {args.margin})")


if __name__ == "__main__":
    main()
