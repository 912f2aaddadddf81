"""Clicks to a good mask (NoC@85 / NoC@90) on the interactive-segmentation development sets, our
refinement beside OpenCV's GrabCut driven by the same simulated user, in the same process.

The simulated user is ``engine.segmentation.clicks`` (RITM's); each click is a hand seed disc.
The peer is OpenCV's interactive sample as a user drives it: the mask keeps the last result as
probable labels, clicks as definite discs, ``cv2.grabCut(..., 3, GC_INIT_WITH_MASK)`` after each
click, starting from nothing ("probably background" everywhere). Ours: ``python -m engine noc``'s
path (``engine.runs.noc``): ``interactive`` from an empty start and from the automatic mask, and the
old page's ``recut`` from the automatic mask. Photos: ../shared/data/interactive-dev (research terms:
read there, never copied).

    .venv/bin/python benchmarks/bench_noc.py [grabcut|berkeley ...] [--only ours|peer] [--limit N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runs import noc  # noqa: E402
from engine.segmentation import clicks as ck  # noqa: E402
from engine.segmentation.presets import DEFAULT_PRESET, get_preset  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "interactive-dev"
OURS = (("interactive", "empty"), ("interactive", "auto"), ("recut", "auto"))


def opencv_grabcut(image_hwc: np.ndarray):
    """The peer's answer to a click: (hand seeds, shown mask) -> its next mask."""
    import cv2

    bgr = np.ascontiguousarray(image_hwc[:, :, ::-1])
    state = {"mask": np.full(image_hwc.shape[:2], cv2.GC_PR_BGD, np.uint8)}

    def respond(hand_hw, shown_hw):
        mask = np.where(np.isin(state["mask"], (cv2.GC_FGD, cv2.GC_PR_FGD)), cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        mask[hand_hw == 2] = cv2.GC_FGD
        mask[hand_hw == 1] = cv2.GC_BGD
        if np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).any() and np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            cv2.grabCut(bgr, mask, None, np.zeros((1, 65)), np.zeros((1, 65)), 3, cv2.GC_INIT_WITH_MASK)
        state["mask"] = mask
        return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD))

    return respond


def row(name: str, runs: list[ck.Simulation], clicks: int) -> str:
    ious = np.array([r.ious for r in runs])
    noc85 = statistics.fmean(ck.clicks_to_reach(r, 0.85, clicks) for r in ious)
    noc90 = statistics.fmean(ck.clicks_to_reach(r, 0.90, clicks) for r in ious)
    per_click = statistics.median(s for r in runs for s in r.seconds)
    return (f"{name:<34} {len(runs):>4} {noc85:7.2f} {noc90:7.2f} {int((ious[:, -1] < 0.9).sum()):>5} "
            f"{ious[:, 1].mean():7.3f} {ious[:, 5].mean():7.3f} {ious[:, -1].mean():7.3f} {per_click * 1000:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=["grabcut", "berkeley"])
    parser.add_argument("--only", choices=("ours", "peer"), default=None)
    parser.add_argument("--limit", type=int, default=None, help="the first N objects of each set")
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args()
    from engine.models import load_model
    from engine.runs.batch import one_thread

    model = load_model("efficientnet_lite0", "pretrained")
    print(f"{'set / method / start':<34} {'n':>4} {'NoC@85':>7} {'NoC@90':>7} {'<0.90':>5} {'IoU@1':>7} {'IoU@5':>7} "
          f"{'IoU@' + str(args.clicks):>7} {'ms/click':>8}")
    for name in args.sets:
        images, masks = noc.dataset_photos(DATA / name)
        images = images[: args.limit]
        photos = list(noc.read_photos(images, masks))
        results: dict[str, list] = {}
        if args.only != "peer":
            for refinement, start in OURS:
                job = noc.NocJob(get_preset(DEFAULT_PRESET), start, refinement, args.clicks)
                stages = job.stages(with_model=False)
                stages.model = model
                with one_thread():
                    proposals = [stages.propose(photo) for photo in photos]
                results[f"{name} / ours {refinement} / {start}"] = [stages.finish(p.image_hwc, p.payloads[0]) for p in proposals]
        if args.only != "ours":
            from engine.images import load_image

            runs = []
            for photo in photos:
                image = load_image(photo.data)
                is_object, is_ignored = ck.read_truth(noc.read_mask(photo.extra, image.shape[:2]))
                runs.append(ck.simulate_user(is_object, opencv_grabcut(image), ignored_hw=is_ignored, max_clicks=args.clicks))
            results[f"{name} / OpenCV grabCut / empty"] = runs
        for label, runs in results.items():
            print(row(label, runs, args.clicks), flush=True)
    print(f"({time.strftime('%Y-%m-%d %H:%M')}, {__import__('os').cpu_count()} cores, load {__import__('os').getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
