"""Weakly supervised segmentation from class saliency, Simonyan, Vedaldi & Zisserman (2013), §3.2.

Saliency quantiles give seeds (foreground above the 95% quantile, background below the 30%), the
seeds fit two colour mixtures (``engine.segmentation.gmm``), and a GrabCut-style graph cut (Boykov & Jolly 2001,
Rother et al. 2004) labels every pixel: unary = -log likelihood under each mixture, pairwise =
contrast-sensitive Potts ``γ·exp(-β‖z_p - z_q‖²)/dist(p, q)`` on the 8-neighbourhood with
``β = 1/(2⟨‖z_p - z_q‖²⟩)``. The largest connected component of the foreground is the object and its
bounding box the localisation.

Seed maps are uint8 (H, W) arrays of the codes below (saved as a palette PNG by ``engine.segmentation.masks``).
Hand seeds are hard constraints and override automatic ones; automatic seeds only fit the colour
models, except the optional hard ones (the reference code's 99.5% / 0.5% quantiles).

Resolution and speed: colour models and unaries use the pixels at the working size, the photo's own
size up to ``max_side`` (512 px long side; larger photos are cut at 512 px and the mask upsampled,
hard seeds re-imposed at full resolution). The GrabCut rounds (cut, re-fit, cut, ...) cut a coarse
grid, long side ``coarse_side`` (160 px), whose unaries are the cell means of the working-size ones,
re-using the search trees between rounds (``engine.segmentation.graphcut.GridCut``); one banded cut then
re-labels a band a few pixels wide around that boundary at the working size. γ is given at a
256-pixel short side (the reference code's γ=150 there) and scaled linearly with each grid's short
side: unaries add up over the area (∝ side²) and the Potts term over the boundary (∝ γ·side), so
this keeps their balance, and the cut's shape, across resolutions.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from engine.segmentation.gmm import COMPONENTS, EM_ITERATIONS, MAX_SAMPLES, GaussianMixture, fit_gmm, log_likelihood
from engine.segmentation.graphcut import GridCut, banded_cut, boundary_band
from engine.segmentation.grids import (  # noqa: F401
    GAMMA_SHORT_SIDE,
    PreparedImage,
    cell_counts,
    downscale,
    fitted_shape,
    prepare_image,
    resize_codes,
    shrink_map,
    upsample,
)

NONE, HAND_BACKGROUND, HAND_FOREGROUND = 0, 1, 2  # what a person paints: hard constraints
AUTO_BACKGROUND, AUTO_FOREGROUND = 3, 4  # saliency quantiles: fit the colour models only
AUTO_HARD_BACKGROUND, AUTO_HARD_FOREGROUND = 5, 6  # optional extreme quantiles: hard constraints
FOREGROUND_CODES = (HAND_FOREGROUND, AUTO_FOREGROUND, AUTO_HARD_FOREGROUND)
BACKGROUND_CODES = (HAND_BACKGROUND, AUTO_BACKGROUND, AUTO_HARD_BACKGROUND)
HAND_CODES = (HAND_BACKGROUND, HAND_FOREGROUND)
HARD_FOREGROUND_CODES = (HAND_FOREGROUND, AUTO_HARD_FOREGROUND)
HARD_BACKGROUND_CODES = (HAND_BACKGROUND, AUTO_HARD_BACKGROUND)

FG_QUANTILE = 0.95  # the paper's foreground seeds: saliency above the 95% quantile
BG_QUANTILE = 0.30  # ... background seeds: below the 30% quantile
HARD_QUANTILES = (0.995, 0.005)  # the reference code's clamped seeds, when asked for
GAMMA = 150.0  # the reference code's Potts weight at a 256-pixel short side (GrabCut's paper: 50)
ITERATIONS = 5  # GrabCut rounds (fit, cut); the labelling rarely changes after a few
KEEP_RULES = ("largest", "all", "peak")  # which foreground components make the object; the paper keeps the largest
PRIOR_FLOOR = 1e-3  # a prior probability of 0 or 1 would be a hard constraint: clip to keep it soft
MAX_SIDE = 512  # long side of the final cut; above it: downscale, cut, upsample
COARSE_SIDE = 160  # long side of the GrabCut rounds; a banded cut then refines up to MAX_SIDE

def has_code(seeds_hw: np.ndarray, codes: tuple[int, ...]) -> np.ndarray:
    """Boolean (H, W): where the seed map holds one of ``codes``. Comparisons, which vectorise: on a 12 MP
    map a table lookup took 60 ms and np.isin more; two comparisons take a few."""
    seeds_hw = np.asarray(seeds_hw)
    found = np.zeros(seeds_hw.shape, bool)
    for code in codes:
        found |= seeds_hw == code
    return found


@dataclass(frozen=True, eq=False)
class Segmentation:
    """A foreground mask at the photo's resolution, its box, and how it was obtained."""

    is_foreground_hw: np.ndarray  # bool (H, W): the kept component(s) of the cut's foreground
    bbox: tuple[int, int, int, int] | None  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive; None if empty
    seeds_hw: np.ndarray  # uint8 (H, W) seed codes used (hand over automatic)
    iterations: int
    energies: tuple[float, ...]  # the cut's energy after each round (non-increasing in theory)
    gamma: float  # as given, at a 256-pixel short side
    working_hw: tuple[int, int]  # the size the cut ran at
    colour_models: tuple[GaussianMixture, GaussianMixture]  # (foreground, background), last fitted
    unaries_hw: np.ndarray  # float32 (2, h, w) at working_hw: -log p(z) under (foreground, background), plus the prior's
    seeds_promoted: bool = False  # the soft cut was empty: the foreground seeds were made hard and cut again

    @property
    def area(self) -> int:
        return int(self.is_foreground_hw.sum())


def automatic_seeds(
    saliency_hw: np.ndarray,
    *,
    fg_quantile: float = FG_QUANTILE,
    bg_quantile: float = BG_QUANTILE,
    hard_quantiles: tuple[float, float] | None = None,
) -> np.ndarray:
    """Seed codes (H, W) uint8 from a saliency map: AUTO_FOREGROUND at or above the ``fg_quantile``
    quantile, AUTO_BACKGROUND at or below ``bg_quantile``; with ``hard_quantiles=(hi, lo)`` also the
    AUTO_HARD_* codes beyond those (e.g. ``HARD_QUANTILES``). Ties at a flat map go to foreground."""
    saliency = np.asarray(saliency_hw, dtype=np.float64)
    if saliency.ndim != 2 or saliency.size == 0:
        raise ValueError(f"The saliency map must be a non-empty (H, W) array; got shape {saliency.shape}.")
    if not 0.0 <= bg_quantile < fg_quantile <= 1.0:
        raise ValueError(f"Need 0 ≤ background quantile < foreground quantile ≤ 1; got {bg_quantile} and {fg_quantile}.")
    saliency = np.nan_to_num(saliency)
    fg_level, bg_level = np.quantile(saliency, [fg_quantile, bg_quantile])
    seeds = np.zeros(saliency.shape, np.uint8)
    seeds[saliency <= bg_level] = AUTO_BACKGROUND
    seeds[saliency >= fg_level] = AUTO_FOREGROUND
    if hard_quantiles is not None:
        hard_hi, hard_lo = hard_quantiles
        if not 0.0 <= hard_lo <= bg_quantile and fg_quantile <= hard_hi <= 1.0:
            raise ValueError(f"Hard quantiles {hard_quantiles} must lie outside ({bg_quantile}, {fg_quantile}).")
        hi_level, lo_level = np.quantile(saliency, [hard_hi, hard_lo])
        seeds[(saliency <= lo_level) & (seeds == AUTO_BACKGROUND)] = AUTO_HARD_BACKGROUND
        seeds[(saliency >= hi_level) & (seeds == AUTO_FOREGROUND)] = AUTO_HARD_FOREGROUND
    return seeds


def merge_seeds(automatic_hw: np.ndarray, hand_hw: np.ndarray | None) -> np.ndarray:
    """Automatic seed codes with the hand ones (HAND_* codes of ``hand_hw``) painted over them."""
    if hand_hw is None:
        return automatic_hw.copy()
    if hand_hw.shape != automatic_hw.shape:
        raise ValueError(f"The hand seed map is {hand_hw.shape[1]}×{hand_hw.shape[0]} but the image is "
                         f"{automatic_hw.shape[1]}×{automatic_hw.shape[0]}.")
    is_hand = has_code(hand_hw, HAND_CODES)
    return np.where(is_hand, hand_hw, automatic_hw).astype(np.uint8)


def segment(
    image_hwc: np.ndarray,
    seeds_hw: np.ndarray,
    *,
    iterations: int = ITERATIONS,
    gamma: float = GAMMA,
    components: int = COMPONENTS,
    max_side: int = MAX_SIDE,
    coarse_side: int = COARSE_SIDE,
    colour_models: tuple[GaussianMixture, GaussianMixture] | None = None,
    previous: Segmentation | None = None,
    prior_hw: np.ndarray | None = None,
    prior_weight: float = 0.0,
    keep: str = "largest",
    peak_hw: tuple[int, int] | None = None,
    prepared: PreparedImage | None = None,
    seed: int = 0,
    on_step: Callable[[int, int], None] | None = None,
) -> Segmentation:
    """GrabCut from seed codes: fit the colour models (or start from ``colour_models``), cut, re-fit
    on the cut, ``iterations`` cuts in all, at ``coarse_side``; then one banded cut at the working
    size; keep the largest component (and any holding a hand foreground seed). A re-cut after an
    edit: ``segment(image, new_seeds, previous=first, iterations=1)`` cuts once with ``first``'s colour
    models and reuses its unaries (same image and ``max_side``).

    ``prior_hw`` (H, W) in [0, 1] is a per-pixel probability of foreground (e.g. a normalised
    saliency map): it adds ``-prior_weight·log p`` to the foreground unary and ``-prior_weight·log(1-p)``
    to the background one, so the saliency itself pulls on the cut, not only through the colour models.
    It may also come already at the working size (``shrink_map(prior, max_side)``, what the cut uses).

    Soft seeds alone put nothing in the energy that holds the foreground: where the two colour models
    overlap and the Potts term is strong, labelling everything background is the exact minimum. So
    when the cut comes back empty although there are foreground seeds, those seeds are made hard and
    the cut is run once more (``seeds_promoted``); only a person's strokes can empty the result.

    ``prepared`` (``prepare_image`` of the same photo, ``max_side``, ``coarse_side`` and ``gamma``)
    carries what every cut of one photo shares: the working and coarse images, the colour palette and
    the Potts weights; the five classes of a top-5 localisation cut one photo five times."""
    image_hwc, seeds_hw = _validate(image_hwc, seeds_hw, iterations, gamma, max_side)
    if not has_code(seeds_hw, FOREGROUND_CODES).any():  # _validate let this through: the strokes removed them all
        return _empty(image_hwc, seeds_hw, gamma, max_side)
    if prepared is None:
        prepared = prepare_image(image_hwc, max_side=max_side, coarse_side=coarse_side, gamma=gamma)
    elif ((prepared.shape_hw, prepared.max_side, prepared.coarse_side, prepared.gamma)
          != (image_hwc.shape[:2], max_side, min(coarse_side, max_side), gamma)):
        raise ValueError("The prepared image was made for another photo size, max_side, coarse_side or γ.")
    prior_unaries = _prior_unaries(prior_hw, prior_weight, seeds_hw.shape, max_side)
    rng = np.random.default_rng(seed)
    work_seeds = _seeds_at(seeds_hw, prepared.work_hwc.shape[:2])
    colours = prepared.colours  # colour models always see the working-size pixels
    reused = None
    if previous is not None:
        colour_models = previous.colour_models
        reused = previous.unaries_hw if previous.unaries_hw.shape[1:] == work_seeds.shape else None
    if colour_models is None:
        colour_models = _fit_pair(colours, has_code(work_seeds, FOREGROUND_CODES).ravel(),
                                  has_code(work_seeds, BACKGROUND_CODES).ravel(), components, rng, None)
    coarse_hard = _hard_seeds_at(seeds_hw, prepared.coarse_hwc.shape[:2])
    colour_models, is_fg, unaries, energies = _grabcut(
        prepared, coarse_hard, iterations, components, colour_models, reused, prior_unaries, rng, on_step)
    if is_fg.shape != work_seeds.shape:
        is_fg = _refine(prepared, work_seeds, upsample(is_fg, work_seeds.shape), unaries)
    is_foreground = upsample(is_fg, seeds_hw.shape)
    is_foreground |= has_code(seeds_hw, HARD_FOREGROUND_CODES)  # re-imposed at full resolution
    is_foreground &= ~has_code(seeds_hw, HARD_BACKGROUND_CODES)
    is_foreground = keep_object(is_foreground, must_keep_hw=seeds_hw == HAND_FOREGROUND, rule=keep, peak_hw=peak_hw)
    if not is_foreground.any():  # every foreground seed was soft and the cut dropped them all
        promoted = np.where(seeds_hw == AUTO_FOREGROUND, AUTO_HARD_FOREGROUND, seeds_hw).astype(np.uint8)
        again = segment(image_hwc, promoted, iterations=1, gamma=gamma, components=components, max_side=max_side,
                        coarse_side=coarse_side, colour_models=colour_models, prior_hw=prior_hw,
                        prior_weight=prior_weight, keep=keep, peak_hw=peak_hw, prepared=prepared, seed=seed)
        return dataclasses.replace(again, energies=tuple(energies) + again.energies,
                                   iterations=len(energies) + again.iterations, seeds_promoted=True)
    return Segmentation(is_foreground, bounding_box(is_foreground), seeds_hw, len(energies), tuple(energies),
                        float(gamma), work_seeds.shape, colour_models, np.stack(unaries).astype(np.float32))


def _prior_unaries(prior_hw, weight, shape, max_side):
    """(-w·log p, -w·log(1 - p)) at the working size, or None without a prior."""
    if prior_hw is None or weight == 0:
        return None
    prior = np.asarray(prior_hw, dtype=np.float32)
    if prior.shape not in (tuple(shape), fitted_shape(shape, max_side)):
        raise ValueError(f"The prior map is {prior.shape[1]}×{prior.shape[0]} but the image is {shape[1]}×{shape[0]}.")
    if not (np.isfinite(prior).all() and 0.0 <= prior.min() and prior.max() <= 1.0):
        raise ValueError("The prior map must hold probabilities of foreground in 0..1.")
    if not weight >= 0:
        raise ValueError(f"The prior's weight must be non-negative; got {weight}.")
    prior = np.clip(shrink_map(prior, max_side), PRIOR_FLOOR, 1.0 - PRIOR_FLOOR).astype(np.float64)
    return -weight * np.log(prior), -weight * np.log1p(-prior)


def _empty(image_hwc, seeds_hw, gamma, max_side):
    """The result when a person's strokes left no foreground seed: nothing is the object."""
    work_hw = seeds_hw.shape if max(seeds_hw.shape) <= max_side else tuple(
        max(1, round(n * max_side / max(seeds_hw.shape))) for n in seeds_hw.shape)
    empty = np.zeros(seeds_hw.shape, bool)
    flat = GaussianMixture(np.ones(1), np.zeros((1, 3)), np.eye(3)[None])
    return Segmentation(empty, None, seeds_hw, 0, (), float(gamma), work_hw, (flat, flat), np.zeros((2, *work_hw), np.float32))


def _grabcut(prepared, coarse_hard, iterations, components, colour_models, reused, prior_unaries, rng, on_step):
    """GrabCut rounds cut on the coarse grid, whose unaries are the cell means of the working-size ones
    (so the coarse energy approximates the fine one); the models are re-fit on working-size pixels.
    Returns (colour models, coarse is_foreground, working-size (unary_fg, unary_bg), energies)."""
    hard_fg, hard_bg = coarse_hard
    work_shape = prepared.work_hwc.shape[:2]
    grid = GridCut(prepared.coarse_pairwise)
    energies = []
    for step in range(iterations):
        if step == 0 and reused is not None:
            unaries = tuple(u.astype(np.float64) for u in reused)
        else:
            palette, index = prepared.palette  # a photo has ~4× fewer distinct colours than pixels
            unaries = tuple(-log_likelihood(m, palette).astype(np.float64)[index].reshape(work_shape) for m in colour_models)
            if prior_unaries is not None:
                unaries = tuple(u + p for u, p in zip(unaries, prior_unaries))
        is_fg, energy = grid.solve(*(downscale(u, hard_fg.shape) for u in unaries), hard_fg, hard_bg)
        energies.append(energy)
        if on_step is not None:
            on_step(step + 1, iterations)
        if step + 1 == iterations or is_fg.all() or not is_fg.any():
            break  # done, or one side is empty: nothing to re-fit it on, the labelling is final
        labels = upsample(is_fg, work_shape).ravel()
        colour_models = _fit_pair(prepared.colours, labels, ~labels, components, rng, colour_models)
    return colour_models, is_fg, unaries, energies


def _refine(prepared, seeds_hw, initial_fg, unaries):
    """One banded cut at the working size around the upsampled coarse boundary."""
    unary_fg, unary_bg = (u.ravel() for u in unaries)
    radius = 2 + int(np.ceil(max(seeds_hw.shape) / max(prepared.coarse_hwc.shape[:2])))  # about two coarse pixels
    return banded_cut(
        initial_fg, boundary_band(initial_fg, radius), lambda flat: (unary_fg[flat], unary_bg[flat]),
        prepared.work_pairwise,
        has_code(seeds_hw, HARD_FOREGROUND_CODES), has_code(seeds_hw, HARD_BACKGROUND_CODES),
    )


def _validate(image_hwc, seeds_hw, iterations, gamma, max_side):
    image_hwc = np.asarray(image_hwc)
    if image_hwc.ndim != 3 or image_hwc.shape[2] != 3 or image_hwc.dtype != np.uint8:
        raise ValueError(f"The image must be (H, W, 3) uint8; got {image_hwc.shape} {image_hwc.dtype}.")
    seeds_hw = np.asarray(seeds_hw, dtype=np.uint8)
    if seeds_hw.shape != image_hwc.shape[:2]:
        raise ValueError(f"The seed map is {seeds_hw.shape[1]}×{seeds_hw.shape[0]} but the image is "
                         f"{image_hwc.shape[1]}×{image_hwc.shape[0]}.")
    if seeds_hw.max(initial=0) > AUTO_HARD_FOREGROUND:
        raise ValueError(f"Seed codes must be 0..{AUTO_HARD_FOREGROUND}; found {seeds_hw.max()}.")
    if not has_code(seeds_hw, FOREGROUND_CODES).any() and not (seeds_hw == HAND_BACKGROUND).any():
        raise ValueError("There are no foreground seeds: paint some foreground, or lower the foreground quantile.")
    if not has_code(seeds_hw, BACKGROUND_CODES).any():
        raise ValueError("There are no background seeds: paint some background, or raise the background quantile "
                         "(a flat saliency map puts every pixel at the foreground quantile).")
    if int(iterations) < 1:
        raise ValueError(f"Need at least one iteration (one cut); got {iterations}.")
    if not gamma >= 0:
        raise ValueError(f"γ must be non-negative; got {gamma}.")
    if int(max_side) < 8:
        raise ValueError(f"max_side must be at least 8 pixels; got {max_side}.")
    return image_hwc, seeds_hw


def _fit_pair(colours, is_fg, is_bg, components, rng, previous):
    """(foreground, background) mixtures on at most MAX_SAMPLES pixels of each side. From scratch: k-means++
    and EM; re-fitting: one EM step from the previous models, as GrabCut re-estimates once per round."""
    start_fg, start_bg = previous if previous is not None else (None, None)
    iterations = EM_ITERATIONS if previous is None else 0
    models = []
    for mask, start in ((is_fg, start_fg), (is_bg, start_bg)):
        index = np.flatnonzero(mask)
        if len(index) > MAX_SAMPLES:
            index = rng.choice(index, MAX_SAMPLES, replace=False)
        models.append(fit_gmm(colours[index], components=components, rng=rng, start=start, iterations=iterations))
    return tuple(models)


def keep_object(is_foreground_hw: np.ndarray, *, must_keep_hw: np.ndarray | None = None, rule: str = "largest",
                peak_hw: tuple[int, int] | None = None) -> np.ndarray:
    """The object's 8-connected component(s) by ``rule`` (``KEEP_RULES``): "largest" (the paper's;
    ties go to the first in raster order), "all", or "peak", the component holding ``peak_hw`` (the
    saliency maximum; the largest when the peak fell outside the foreground); plus any component
    touching ``must_keep_hw`` (hand seeds)."""
    if rule not in KEEP_RULES:
        raise ValueError(f"Unknown box rule {rule!r}; choose one of {', '.join(KEEP_RULES)}.")
    is_foreground_hw = np.asarray(is_foreground_hw, dtype=bool)
    if rule == "all":
        return is_foreground_hw.copy()
    kept_hw = np.zeros(is_foreground_hw.shape, bool)
    box = bounding_box(is_foreground_hw)  # labelled inside the foreground's box: a 12 MP mask is mostly outside it
    if box is None:
        return kept_hw
    x0, y0, x1, y1 = box
    labels, count = ndimage.label(is_foreground_hw[y0:y1, x0:x1], structure=np.ones((3, 3), bool))
    found = kept_hw[y0:y1, x0:x1]
    if count <= 1:
        found[:] = labels > 0
        return kept_hw
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    at_peak = 0
    if rule == "peak" and peak_hw is not None and y0 <= peak_hw[0] < y1 and x0 <= peak_hw[1] < x1:
        at_peak = labels[peak_hw[0] - y0, peak_hw[1] - x0]
    kept = {int(at_peak) if at_peak else int(sizes.argmax())}
    if must_keep_hw is not None:
        kept |= set(np.unique(labels[must_keep_hw[y0:y1, x0:x1]]).tolist()) - {0}
    if len(kept) > 4:
        keep = np.zeros(count + 1, bool)
        keep[sorted(kept)] = True
        found[:] = keep[labels]
        return kept_hw
    for label in kept:  # comparisons vectorise; a lookup over a 12 MP label map is 10× slower
        found |= labels == label
    return kept_hw


def bounding_box(is_foreground_hw: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the True pixels, x1 and y1 exclusive (width = x1 - x0); None when empty."""
    rows, cols = np.flatnonzero(is_foreground_hw.any(1)), np.flatnonzero(is_foreground_hw.any(0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# Codes by rising precedence when a seed map is shrunk: a hard seed survives if it covers any part of a cell.
_PRECEDENCE = (AUTO_BACKGROUND, AUTO_FOREGROUND, AUTO_HARD_BACKGROUND, AUTO_HARD_FOREGROUND, HAND_BACKGROUND, HAND_FOREGROUND)


def _seeds_at(seeds_hw: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The seed map at the working size (the photo's own when it fits)."""
    return resize_codes(seeds_hw, shape, _PRECEDENCE, HARD_FOREGROUND_CODES + HARD_BACKGROUND_CODES)


def _hard_seeds_at(seeds_hw: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(hard foreground, hard background) on a coarser grid: a cell is hard when any of its pixels is,
    unless it holds both kinds."""
    touched = [cell_counts(has_code(seeds_hw, codes), shape) > 0 for codes in (HARD_FOREGROUND_CODES, HARD_BACKGROUND_CODES)]
    return touched[0] & ~touched[1], touched[1] & ~touched[0]
