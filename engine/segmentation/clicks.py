"""Clicks on a segmentation, and the simulated user of the interactive-segmentation benchmarks.

Refining a §3.2 mask by hand (Simonyan, Vedaldi & Zisserman 2013) is measured the way the field
measures interactive segmentation: the number of clicks a simulated user needs to bring the mask to
IoU 0.85 / 0.90 with the truth (NoC@85, NoC@90). The user is the one of RITM's and BRS's evaluation
code (Sofiiuk et al. 2022; Jang & Kim 2019): it clicks in the middle of the largest error region,
positive in a missed part of the object, negative in a wrongly included part.

A click is a disc of hand seed codes (``HAND_FOREGROUND`` / ``HAND_BACKGROUND``) painted exactly as
a canvas stroke is, at the photo's resolution; later clicks are painted over earlier ones.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from engine.segmentation.cut import HAND_BACKGROUND, HAND_FOREGROUND

IGNORE = 128  # benchmark masks: the undecided band along an outline, left out of every IoU
RADIUS = 5  # px at the photo's resolution: the disc a click paints (the protocol's default)


@dataclass(frozen=True)
class Click:
    y: int
    x: int
    positive: bool  # True: "this is the object"; False: "this is not"

    def to_list(self) -> list:
        return [int(self.y), int(self.x), bool(self.positive)]


def read_truth(mask_hw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is_object, is_ignored) bool (H, W) from a benchmark mask: 0 background, 128 the ignored band,
    any other value the object."""
    mask = np.asarray(mask_hw)
    if mask.ndim == 3:
        mask = mask[..., 0]
    is_ignored = mask == IGNORE
    return (mask != 0) & ~is_ignored, is_ignored


def masked_iou(predicted_hw: np.ndarray, truth_hw: np.ndarray, ignored_hw: np.ndarray | None = None) -> float:
    """IoU of two boolean masks outside ``ignored_hw``; 1.0 when both are empty there."""
    keep = np.ones(truth_hw.shape, bool) if ignored_hw is None else ~ignored_hw
    union = ((predicted_hw | truth_hw) & keep).sum()
    return 1.0 if union == 0 else float((predicted_hw & truth_hw & keep).sum() / union)


def next_click(predicted_hw: np.ndarray, truth_hw: np.ndarray, ignored_hw: np.ndarray | None = None) -> Click:
    """The simulated user's next click. Missed = truth and not predicted, wrongly included =
    predicted and not truth, both outside the ignored band; each is padded by one pixel of
    "no error" (so the photo's border counts as an edge of the region) and distance-transformed
    (exact Euclidean). The click goes to the deepest point of the deeper map: positive when the
    missed map's maximum is strictly deeper, negative otherwise; among equal maxima the first in
    row order."""
    keep = np.ones(truth_hw.shape, bool) if ignored_hw is None else ~ignored_hw
    depths = [_depth(truth_hw & ~predicted_hw & keep), _depth(predicted_hw & ~truth_hw & keep)]
    positive = depths[0].max() > depths[1].max()
    depth = depths[0] if positive else depths[1]
    y, x = np.unravel_index(int(depth.argmax()), depth.shape)  # argmax: the first maximum in row order
    return Click(int(y), int(x), bool(positive))


def _depth(region_hw: np.ndarray) -> np.ndarray:
    padded = np.pad(region_hw, 1, constant_values=False)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]


def paint_clicks(shape_hw: tuple[int, int], clicks, *, radius: float = RADIUS, under_hw: np.ndarray | None = None) -> np.ndarray:
    """Hand seed codes (H, W) uint8 with each click's disc (pixels within ``radius`` of its centre),
    in order, over ``under_hw`` (earlier strokes) or nothing."""
    if not radius >= 0:
        raise ValueError(f"A click's radius must be non-negative; got {radius}.")
    codes = np.zeros(shape_hw, np.uint8) if under_hw is None else np.array(under_hw, np.uint8)
    reach = int(np.floor(radius))
    dy, dx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    inside = dy * dy + dx * dx <= radius * radius
    dy, dx = dy[inside], dx[inside]
    h, w = shape_hw
    for click in clicks:
        ys, xs = click.y + dy, click.x + dx
        on = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        codes[ys[on], xs[on]] = HAND_FOREGROUND if click.positive else HAND_BACKGROUND
    return codes


def clicks_to_reach(ious, threshold: float, max_clicks: int) -> int:
    """NoC@threshold: the number of clicks after which IoU first reaches ``threshold`` (``ious[0]`` is
    before any click, so a start that is already good counts 0); ``max_clicks`` when it never does."""
    for clicks, iou in enumerate(ious):
        if iou >= threshold:
            return clicks
    return max_clicks


@dataclass(frozen=True)
class Simulation:
    """One object's run of the simulated user."""

    ious: tuple[float, ...]  # [0]: the start (before any click), then after each click
    clicks: tuple[Click, ...]
    seconds: tuple[float, ...]  # each response's time (the re-cut after a click)


def simulate_user(truth_hw: np.ndarray, respond, *, ignored_hw: np.ndarray | None = None, start_hw: np.ndarray | None = None,
                  max_clicks: int = 20, radius: float = RADIUS) -> Simulation:
    """Click ``max_clicks`` times, each where ``next_click`` says, and let ``respond(hand_hw, shown_hw)``
    (the hand seed codes of every click so far, and the mask shown before this click) give the next
    mask; ``start_hw`` is the mask before any click (None: an empty one)."""
    if int(max_clicks) < 1:
        raise ValueError(f"The simulated user needs at least one click; got {max_clicks}.")
    shown = np.zeros(truth_hw.shape, bool) if start_hw is None else np.asarray(start_hw, bool)
    ious, clicks, seconds = [masked_iou(shown, truth_hw, ignored_hw)], [], []
    for _ in range(int(max_clicks)):
        clicks.append(next_click(shown, truth_hw, ignored_hw))
        hand = paint_clicks(truth_hw.shape, clicks, radius=radius)
        started = time.perf_counter()
        shown = np.asarray(respond(hand, shown), bool)
        seconds.append(time.perf_counter() - started)
        ious.append(masked_iou(shown, truth_hw, ignored_hw))
    return Simulation(tuple(ious), tuple(clicks), tuple(seconds))
