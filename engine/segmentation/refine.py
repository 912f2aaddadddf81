"""Hand refinement of a §3.2 mask that follows the person (Simonyan, Vedaldi & Zisserman 2013, §3.2,
and the interactive segmentation it feeds: Boykov & Jolly 2001, Rother et al. 2004).

The automatic cut starts from the classifier's saliency; a person then clicks or paints where it is
wrong. Painted seeds alone are hard constraints on a few pixels, and the colour models and the
saliency prior fitted before them outvote everything else, so most clicks barely move a wrong mask.
Here each input spreads to the region it belongs to:

- every connected group of hand seeds (a click's disc, a stroke) is a *prototype*: its mean in the
  network's own per-pixel feature space (``engine.attribution.features``); a pixel's evidence for
  the object is how much nearer it lies to the nearest foreground prototype than to the nearest
  background one, ``logit = (d_bg - d_fg) / temperature``. Before any background input the
  background is "farther than the Otsu threshold of the first foreground prototype's distances";
  with background inputs only, the object is what the previous mask holds farther than the Otsu
  threshold of the first background prototype's distances (else a few negative clicks that take away
  the automatic prototypes leave nothing saying where the object is, and the mask stops moving);
  the automatic mask contributes prototypes of its own that fade (a growing margin) with every input;
- the colour models (5-component GMMs, as in §3.2) are re-fitted on the previous mask with the new
  seeds, GrabCut-style, for a few rounds; the previous mask also costs ``stickiness`` per changed pixel;
- the cut keeps the components that hold a foreground seed (a negative click elsewhere cannot be
  undone by a far-away positive one), or the largest when there is none.

Everything here works on arrays at the working size (the photo up to ``max_side``); the GrabCut rounds
run on a coarse grid and one banded cut re-labels the outline at the working size (``engine.segmentation.cut``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy import ndimage

from engine.segmentation.cut import HAND_BACKGROUND, HAND_FOREGROUND, Segmentation, bounding_box
from engine.segmentation.gmm import fit_gmm, log_likelihood
from engine.segmentation.graphcut import GridCut, banded_cut, boundary_band
from engine.segmentation.grids import PreparedImage, cell_counts, cell_sizes, downscale, prepare_image, resize_codes, upsample

_EIGHT = np.ones((3, 3), bool)
GROUP_CELLS = 150  # feature-grid cells per prototype of a large group of seeds
GROUP_PROTOTYPES = 4
IMPLICIT_BACKGROUNDS = ("everywhere", "outside-previous")


@dataclass(frozen=True)
class RefineOptions:
    """The knobs of ``refine``; defaults tuned on the development halves of GrabCut and Berkeley."""

    temperature: float = 0.5  # feature-distance units per nat of the feature evidence
    feature_weight: float = 1.0  # nats: the feature evidence's weight in the unary
    colour_weight: float = 1.5  # ... the colour models'
    stickiness: float = 1.0  # nats a pixel pays to change its label from the previous mask
    gamma: float = 20.0  # Potts weight at a 256-pixel short side (GrabCut's paper: 50)
    rounds: int = 2  # GrabCut rounds (re-fit the colour models on the last cut, cut again)
    max_side: int = 512  # the working size
    coarse_side: int = 160  # the GrabCut rounds' grid; the outline is then re-cut at the working size
    band: int = 3  # working-size pixels added to the banded cut's reach around the coarse outline
    band_every: bool = False  # re-cut the outline after every round, not only the last (slower, rarely better)
    auto_prototypes: int = 2  # k-means prototypes of the automatic mask's inside and outside
    auto_margin: float = 0.5  # feature-distance added to them before any input ...
    auto_fade: float = 0.5  # ... and after each group of hand seeds: the automatic evidence yields
    sure: float = 2.0  # feature evidence (nats, before its weight) that overrides the previous mask
    implicit_background: str = "outside-previous"  # a positive input's implicit background ("farther than
    #   Otsu's threshold") spares what the previous mask holds, so a positive stroke only adds; or "everywhere"

    def __post_init__(self):
        if not (self.temperature > 0 and self.feature_weight >= 0 and self.colour_weight >= 0 and self.stickiness >= 0
                and self.gamma >= 0 and self.rounds >= 1 and self.max_side >= 8 and self.coarse_side >= 8):
            raise ValueError("Refinement needs temperature > 0, non-negative weights and γ, at least one round, "
                             "and working sizes of at least 8 pixels.")
        if self.implicit_background not in IMPLICIT_BACKGROUNDS:
            raise ValueError(f"implicit_background must be one of {', '.join(IMPLICIT_BACKGROUNDS)}; got {self.implicit_background!r}.")


def refine(image_hwc: np.ndarray, hand_hw: np.ndarray, *, features_hwk: np.ndarray | None = None,
           previous_hw: np.ndarray | None = None, automatic_hw: np.ndarray | None = None,
           options: RefineOptions = RefineOptions(), prepared: PreparedImage | None = None, seed: int = 0) -> Segmentation:
    """The mask after a person's hand seeds ``hand_hw`` (codes ``HAND_FOREGROUND`` / ``HAND_BACKGROUND``,
    (H, W) at the photo's resolution: clicks' discs and strokes alike).

    ``previous_hw`` is the mask shown before this input (bool (H, W)), None when starting from nothing;
    ``automatic_hw`` the automatic mask, whose inside and outside give fading prototypes; ``features_hwk``
    the photo's per-pixel features (``engine.attribution.features.PixelFeatures.features_hwk``), on
    any grid covering the photo; without them only colour and the previous mask guide the cut.
    ``prepared``: ``prepare_image`` of this photo with ``options``' sizes and γ (made here if None)."""
    hand_hw = np.asarray(hand_hw, np.uint8)
    image_hw = hand_hw.shape
    if prepared is None:
        prepared = prepare_for_refine(image_hwc, options)
    work_hw = prepared.work_hwc.shape[:2]
    hand = resize_codes(hand_hw, work_hw, (HAND_BACKGROUND, HAND_FOREGROUND), (HAND_BACKGROUND, HAND_FOREGROUND))
    is_pos, is_neg = hand == HAND_FOREGROUND, hand == HAND_BACKGROUND
    previous = None if previous_hw is None else _at(previous_hw, work_hw)
    automatic = None if automatic_hw is None else _at(automatic_hw, work_hw)
    evidence = None
    if features_hwk is not None:
        evidence = feature_evidence(features_hwk, hand, automatic, options, previous)  # (2, h, w) unaries at the feature grid
        evidence = np.stack([_resize(u, work_hw) for u in evidence])
    contradicts = None
    if evidence is None:
        start = np.zeros(work_hw, bool) if previous is None else previous
    else:
        says_object = evidence[1] - evidence[0]  # nats: > 0 where the features say "object"
        start = says_object > 0
        if previous is not None:  # the previous mask, except where the features firmly say otherwise
            sure = np.abs(says_object) > options.sure * options.feature_weight
            contradicts = sure & (start != previous)
            start = np.where(sure, start, previous)
    is_fg = _rounds(prepared, (start | is_pos) & ~is_neg, is_pos, is_neg, evidence, previous, contradicts, options,
                    np.random.default_rng(seed))
    is_foreground = upsample(is_fg, image_hw)  # its components were chosen at the working size (keep_clicked)
    is_foreground[hand_hw == HAND_FOREGROUND] = True  # the seeds hold at full resolution
    is_foreground[hand_hw == HAND_BACKGROUND] = False
    seeds = np.where(hand_hw > 0, hand_hw, 0).astype(np.uint8)
    return Segmentation(is_foreground, bounding_box(is_foreground), seeds, options.rounds, (), float(options.gamma),
                        work_hw, (None, None), np.zeros((2, 0, 0), np.float32))


def prepare_for_refine(image_hwc: np.ndarray, options: RefineOptions = RefineOptions()) -> PreparedImage:
    """What every refinement of one photo shares (``engine.segmentation.grids``)."""
    return prepare_image(image_hwc, max_side=options.max_side, coarse_side=options.coarse_side, gamma=options.gamma)


def keep_clicked(is_foreground_hw: np.ndarray, is_positive_hw: np.ndarray, previous_hw: np.ndarray | None = None) -> np.ndarray:
    """The 8-connected components that hold a foreground seed or lie mostly inside the previous mask
    (what was already the object stays unless the input says otherwise); the largest one when no
    component qualifies. A blob that appears away from every click is dropped."""
    labels, count = ndimage.label(is_foreground_hw, structure=_EIGHT)
    if count == 0:
        return np.zeros_like(is_foreground_hw, dtype=bool)
    keep = np.zeros(count + 1, bool)
    keep[np.unique(labels[is_positive_hw & (labels > 0)])] = True
    if previous_hw is not None:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        inside = np.bincount(labels.ravel(), weights=previous_hw.ravel(), minlength=count + 1)
        keep |= inside * 2 > sizes
    keep[0] = False
    if not keep.any():
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        sizes[0] = 0
        keep[int(sizes.argmax())] = True
    return keep[labels]


# ---------------------------------------------------------------- feature evidence
def feature_evidence(features_hwk: np.ndarray, hand_hw: np.ndarray, automatic_hw: np.ndarray | None,
                     options: RefineOptions, previous_hw: np.ndarray | None = None) -> np.ndarray:
    """(-log p(object), -log p(not object)) per feature-grid cell, weighted, float32 (2, h, w)."""
    grid_hw = features_hwk.shape[:2]
    hand = resize_codes(hand_hw, grid_hw, (HAND_BACKGROUND, HAND_FOREGROUND), (HAND_BACKGROUND, HAND_FOREGROUND))
    positives = _group_means(features_hwk, hand == HAND_FOREGROUND)
    negatives = _group_means(features_hwk, hand == HAND_BACKGROUND)
    d_fg, d_bg = _nearest(features_hwk, positives), _nearest(features_hwk, negatives)
    if positives:
        implicit = otsu_threshold(_nearest(features_hwk, positives[:1]))
        if options.implicit_background == "outside-previous" and previous_hw is not None:
            implicit = np.where(_at(previous_hw, grid_hw), np.inf, implicit)
        d_bg = np.minimum(d_bg, implicit)
    elif negatives and previous_hw is not None:  # only "not the object" so far: the object is what the previous
        implicit = otsu_threshold(_nearest(features_hwk, negatives[:1]))  # mask holds, less what looks like the clicks
        d_fg = np.minimum(d_fg, np.where(_at(previous_hw, grid_hw), implicit, np.inf))
    if automatic_hw is not None:
        auto_fg, auto_bg = automatic_prototypes(features_hwk, _at(automatic_hw, grid_hw), positives, negatives, options)
        margin = options.auto_margin + options.auto_fade * (len(positives) + len(negatives))
        d_fg = np.minimum(d_fg, _nearest(features_hwk, auto_fg) + margin)
        d_bg = np.minimum(d_bg, _nearest(features_hwk, auto_bg) + margin)
    if not np.isfinite(d_fg).any():  # nothing says where the object is: no evidence either way
        return np.zeros((2, *grid_hw), np.float32)
    logit = np.clip((d_bg - d_fg) / options.temperature, -30.0, 30.0)
    unaries = np.stack([np.logaddexp(0.0, -logit), np.logaddexp(0.0, logit)])  # -log σ(l), -log(1 - σ(l))
    return (options.feature_weight * unaries).astype(np.float32)


def automatic_prototypes(features_hwk, inside_hw, positives, negatives, options) -> tuple[list, list]:
    """k-means prototypes of the automatic mask's inside and outside, less those a person contradicted:
    a hand prototype whose nearest automatic prototype has the other label takes that one away (a click
    on an object the classifier never saw removes the background prototype that object fell into)."""
    rng = np.random.default_rng(0)
    auto = {True: kmeans(features_hwk[inside_hw], options.auto_prototypes, rng),
            False: kmeans(features_hwk[~inside_hw], options.auto_prototypes, rng)}
    dropped = {True: set(), False: set()}
    for is_object, hand in ((True, positives), (False, negatives)):
        for prototype in hand:
            label, index = min(((side, i) for side in (True, False) for i in range(len(auto[side]))),
                               key=lambda k: float(np.linalg.norm(auto[k[0]][k[1]] - prototype)), default=(is_object, -1))
            if label != is_object:
                dropped[label].add(index)
    return ([p for i, p in enumerate(auto[True]) if i not in dropped[True]],
            [p for i, p in enumerate(auto[False]) if i not in dropped[False]])


def _group_means(features_hwk: np.ndarray, is_seed_hw: np.ndarray) -> list[np.ndarray]:
    """Prototypes of each 8-connected group of seeds: a click's disc or a short stroke is one (its mean);
    a long stroke or a box's outside spans several kinds of pixel and gets k-means prototypes, one per
    ``GROUP_CELLS`` cells, at most ``GROUP_PROTOTYPES``."""
    labels, _ = ndimage.label(is_seed_hw, structure=_EIGHT)
    prototypes = []
    rng = np.random.default_rng(0)
    for label, window in enumerate(ndimage.find_objects(labels), start=1):
        cells = features_hwk[window][labels[window] == label]
        k = min(GROUP_PROTOTYPES, max(1, len(cells) // GROUP_CELLS))
        prototypes.extend([cells.mean(0)] if k == 1 else kmeans(cells, k, rng))
    return prototypes


def _nearest(features_hwk: np.ndarray, prototypes) -> np.ndarray:
    """Euclidean distance of each cell to its nearest prototype; inf without prototypes."""
    nearest = np.full(features_hwk.shape[:2], np.inf, np.float32)
    for prototype in prototypes:
        nearest = np.minimum(nearest, np.linalg.norm(features_hwk - prototype.astype(np.float32), axis=-1))
    return nearest


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu (1979): the level that best splits ``values`` into two classes (largest between-class variance;
    where several levels tie, the middle of them)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.min() == finite.max():
        return float(finite.max()) if finite.size else 0.0
    counts, edges = np.histogram(finite, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mean_low = np.cumsum(counts * centres) / np.maximum(weight_low, 1)
    mean_high = ((counts * centres).sum() - np.cumsum(counts * centres)) / np.maximum(weight_high, 1)
    between = (weight_low * weight_high * (mean_low - mean_high) ** 2)[:-1]
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))  # a plateau (two separated values): its middle
    return float((centres[best[0]] + centres[best[-1] + 1]) / 2)


def kmeans(samples: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 8, max_samples: int = 2000) -> list[np.ndarray]:
    """Lloyd's k-means from k random samples; at most ``max_samples`` samples; [] without samples."""
    samples = np.asarray(samples, np.float32)
    if len(samples) == 0 or k < 1:
        return []
    if len(samples) > max_samples:
        samples = samples[rng.choice(len(samples), max_samples, replace=False)]
    centres = samples[rng.choice(len(samples), min(k, len(samples)), replace=False)]
    for _ in range(iterations):
        nearest = ((samples[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([samples[nearest == j].mean(0) if (nearest == j).any() else centres[j] for j in range(len(centres))])
    return list(centres)


# ---------------------------------------------------------------- the cut
def _rounds(prepared, is_fg, is_pos, is_neg, evidence, previous, contradicts, options, rng) -> np.ndarray:
    """GrabCut rounds on the coarse grid (colour models re-fitted on the last labelling); the last one's
    outline re-cut at the working size (``options.band_every``: after every round); the clicked components."""
    work_hw, coarse_hw = prepared.work_hwc.shape[:2], prepared.coarse_hwc.shape[:2]
    coarse_pos = downscale(is_pos.astype(np.float32), coarse_hw) > 0
    coarse_neg = downscale(is_neg.astype(np.float32), coarse_hw) > 0
    coarse_pos, coarse_neg = coarse_pos & ~coarse_neg, coarse_neg & ~coarse_pos
    grid = GridCut(prepared.coarse_pairwise)
    base = np.zeros((2, *work_hw)) if evidence is None else evidence.astype(np.float64)
    if previous is not None and options.stickiness:  # the previous mask holds, except where the input contradicts it
        holds = options.stickiness * (1.0 if contradicts is None else ~contradicts)
        base = base + holds * np.stack([~previous, previous])
    palette, index = prepared.palette
    for round_ in range(options.rounds):
        unary_fg, unary_bg = base[0].copy(), base[1].copy()
        if options.colour_weight and is_fg.any() and not is_fg.all():
            colours = prepared.colours
            for unary, mask in ((unary_fg, is_fg), (unary_bg, ~is_fg)):
                model = fit_gmm(colours[mask.ravel()], rng=rng)
                unary -= options.colour_weight * log_likelihood(model, palette)[index].reshape(work_hw)
        coarse_fg, _ = grid.solve(downscale(unary_fg, coarse_hw), downscale(unary_bg, coarse_hw), coarse_pos, coarse_neg)
        is_fg = upsample(coarse_fg, work_hw)
        if coarse_hw != work_hw and (options.band_every or round_ + 1 == options.rounds):
            reach = options.band + int(np.ceil(max(work_hw) / max(coarse_hw)))
            flat_fg, flat_bg = unary_fg.ravel(), unary_bg.ravel()
            is_fg = banded_cut(is_fg, boundary_band(is_fg, reach), lambda cells, fg=flat_fg, bg=flat_bg: (fg[cells], bg[cells]),
                               prepared.work_pairwise, is_pos, is_neg)
        is_fg = keep_clicked(is_fg, is_pos, previous)
    return is_fg


def _at(mask_hw: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """A mask at ``shape_hw``: bilinear ≥ 1/2 up, a box filter's cell mean ≥ 1/2 down (exact integer counts)."""
    mask = np.asarray(mask_hw, bool)
    if mask.shape == tuple(shape_hw):
        return mask
    if mask.shape[0] < shape_hw[0]:
        return upsample(mask, shape_hw)
    return 2 * cell_counts(mask, shape_hw) >= cell_sizes(mask.shape, shape_hw)


def _resize(values_hw: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    if values_hw.shape == tuple(shape_hw):
        return values_hw
    return np.asarray(Image.fromarray(np.asarray(values_hw, np.float32), mode="F").resize(shape_hw[::-1], Image.Resampling.BILINEAR))


# ---------------------------------------------------------------- a person's inputs, one after another
BOX_ROUNDS = 5  # GrabCut rounds when a box is the first input (Rother et al. 2004 iterate until the labels settle)


def box_options(options: RefineOptions = RefineOptions()) -> RefineOptions:
    """``options`` for the cut that starts from a box: GrabCut's rounds until the labels settle, at the
    working size (no coarse grid: the whole box is unknown), no stickiness to the box itself."""
    return replace(options, rounds=BOX_ROUNDS, stickiness=0.0, coarse_side=options.max_side)


def continues(earlier_hw: np.ndarray, current_hw: np.ndarray) -> bool:
    """Whether ``current_hw`` holds every hand seed of ``earlier_hw`` with the same code: the person
    added input since (its result is the mask to refine from), rather than undoing or erasing some."""
    earlier = np.asarray(earlier_hw)
    if earlier.shape != np.asarray(current_hw).shape:
        return False
    is_hand = (earlier == HAND_FOREGROUND) | (earlier == HAND_BACKGROUND)
    return bool(np.array_equal(earlier[is_hand], np.asarray(current_hw)[is_hand]))


def box_mask(shape_hw: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """bool (H, W), True inside ``box`` = (x0, y0, x1, y1) in pixels, x1 and y1 excluded as in
    ``Segmentation.bbox`` (clipped to the photo)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inside = np.zeros(shape_hw, bool)
    inside[max(0, min(y0, y1)): max(0, max(y0, y1)), max(0, min(x0, x1)): max(0, max(x0, x1))] = True
    return inside


def with_box(hand_hw: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Hand seeds with everything outside ``box`` background (GrabCut's box: outside is surely not the
    object), the person's own seeds kept where they are."""
    hand = np.asarray(hand_hw, np.uint8)
    if box is None:
        return hand
    outside = ~box_mask(hand.shape, box)
    return np.where(outside & (hand != HAND_FOREGROUND) & (hand != HAND_BACKGROUND), HAND_BACKGROUND, hand).astype(np.uint8)


def box_start(shape_hw: tuple[int, int], box: tuple[int, int, int, int], automatic_hw: np.ndarray | None = None) -> np.ndarray:
    """The labelling a box starts from: the box (GrabCut), or the automatic mask inside it when there is
    one and it holds anything there (the saliency map's guess, cut to the box)."""
    inside = box_mask(shape_hw, box)
    if automatic_hw is not None:
        guess = inside & np.asarray(automatic_hw, bool)
        if guess.any():
            return guess
    return inside
