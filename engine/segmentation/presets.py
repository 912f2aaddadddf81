"""Localisation presets: from a class saliency map to an object mask and box (Simonyan et al. 2013, §3.2).

One table, ``PRESETS``, names every recipe the segmentation page, ``segment`` and ``localise``
offer. ``paper`` is the paper's recipe as written: the gradient map (§3.1) on the 10 views, soft
seeds above its 95% and below its 30% quantile fit the colour models, GrabCut with γ = 150 at a
256-pixel short side, the largest component's box. ``paper-hard`` adds the Oxford reference code's
hard seeds at the 99.5% / 0.5% quantiles. The others depart from the paper where measurement on the
ILSVRC-2012 development photos said so (``benchmarks/README.md`` has every figure):

- the map is Grad-CAM (Selvaraju et al. 2017) on the whole photo (``views="full"``), not the
  gradient on a centre crop: the gradient is a speckle of edge pixels, so its 95% quantile picks
  scattered pixels whose colours are everywhere, and a crop cuts off objects that reach the border;
- seeds are levels of the normalised map (a fraction of its maximum), not quantiles: a quantile
  takes 5% of the photo whether the object fills a tenth of it or all of it;
- the map also pulls on the cut directly (``prior_weight``): ``p = sigmoid(slope·(map − level))``
  is a probability of foreground in the unary, not only a way to pick colour-model samples.

``instance-cut`` (issue 30) adds ``keep="instance"``: where the map has separate peaks it is split
into basins (``engine.segmentation.instances``), the basin with the most class evidence gives a
window around one instance, the prior is pushed to background outside it, and of the cut inside the
window the component with the most evidence is the object: one instance where the map has one hill
per instance, not a box spanning them. It does not find small objects: Grad-CAM's hill is wider than
they are and the prior pulls all of it into the cut (issue 30's figures in ``benchmarks/README.md``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from engine.segmentation import cut as seg
from engine.segmentation import instances as inst
from engine.segmentation.cut import Segmentation

SEED_RULES = ("quantile", "level")
KEEP_RULES = seg.KEEP_RULES + ("instance",)  # "instance": one instance of the class (engine.segmentation.instances)
INSTANCE_FIELDS = ("saddle", "window_level", "window_margin")  # the knobs of keep="instance" only


@dataclass(frozen=True)
class Preset:
    """A named localisation recipe; every field has the paper's value unless the preset departs from it."""

    name: str
    summary: str  # one line for help texts and tables
    method: str = "gradient"  # saliency method (engine.attribution.registry.METHODS)
    views: int | str = 10  # 1 (centre crop), 10 (the paper's sub-images) or "full" (the whole photo)
    smoothing: float = 0.0  # Gaussian σ before seeding, as a fraction of the map's long side; 0 = the raw map
    seeds: str = "quantile"  # "quantile": fg/bg are quantiles of the map; "level": fractions of its maximum
    fg: float = seg.FG_QUANTILE  # foreground seeds at or above this (the paper: 95% quantile)
    bg: float = seg.BG_QUANTILE  # background seeds at or below this (the paper: 30% quantile)
    hard_quantiles: tuple[float, float] | None = None  # the reference code's clamps, (0.995, 0.005)
    prior_weight: float = 0.0  # nats: how hard the map pulls on each pixel's label; 0 = colour models only
    prior_level: float = 0.2  # the map level (fraction of its maximum) where the prior is 1/2
    prior_slope: float = 10.0  # steepness of the prior around that level
    gamma: float = seg.GAMMA  # Potts weight at a 256-pixel short side (the reference code's 150)
    iterations: int = seg.ITERATIONS
    keep: str = "largest"  # which components make the object: largest (the paper's), all, peak, instance
    max_side: int = seg.MAX_SIDE  # the cut's working size
    coarse_side: int = seg.COARSE_SIDE  # the GrabCut rounds' grid (long side)
    saddle: float = inst.SADDLE  # keep="instance": a peak is an instance of its own when its pass is below this × its height
    window_level: float = 0.2  # keep="instance": the instance's window is its basin's map at or above this level ...
    window_margin: float = 0.15  # ... grown by this fraction of its width and height on each side

    def __post_init__(self):
        if self.views not in (1, 10, "full") or isinstance(self.views, bool):
            raise ValueError(f"Views must be 1, 10 or 'full'; got {self.views!r}.")
        if self.seeds not in SEED_RULES:
            raise ValueError(f"Unknown seed rule {self.seeds!r}; choose one of {', '.join(SEED_RULES)}.")
        if self.keep not in KEEP_RULES:
            raise ValueError(f"Unknown box rule {self.keep!r}; choose one of {', '.join(KEEP_RULES)}.")
        if not 0.0 <= self.bg < self.fg <= 1.0:
            raise ValueError(f"Need 0 ≤ background < foreground ≤ 1; got {self.bg} and {self.fg}.")
        if not 0.0 <= self.smoothing <= 0.5:
            raise ValueError(f"Smoothing is a fraction of the long side, 0..0.5; got {self.smoothing}.")
        if not self.prior_weight >= 0:
            raise ValueError(f"The prior's weight must be non-negative; got {self.prior_weight}.")
        if not (0.0 < self.saddle <= 1.0 and 0.0 <= self.window_level < 1.0 and 0.0 <= self.window_margin <= 2.0):
            raise ValueError(f"Need 0 < saddle ≤ 1, 0 ≤ window level < 1 and 0 ≤ window margin ≤ 2; got {self.saddle}, "
                             f"{self.window_level} and {self.window_margin}.")

    def settings(self) -> dict:
        """The preset's knobs as JSON-able values (for downloads and the command line); the instance
        window's only with ``keep="instance"``, which alone reads them."""
        skip = {"summary"} | (set() if self.keep == "instance" else set(INSTANCE_FIELDS))
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items() if k not in skip}


PAPER = Preset("paper", "Simonyan et al. §3.2 as written: gradient map on 10 views, soft 95%/30% quantile seeds, "
               "GrabCut γ=150, largest component")
PRESETS: dict[str, Preset] = {p.name: p for p in (
    PAPER,
    dataclasses.replace(PAPER, name="paper-hard", hard_quantiles=seg.HARD_QUANTILES,
                        summary="the paper plus the Oxford reference code's hard seeds at the 99.5%/0.5% quantiles"),
    Preset("gradcam-cut", "Grad-CAM on the whole photo, seeds at 40%/10% of its maximum, the map as a prior "
           "in the cut (γ=50, 2 GrabCut rounds), largest component",
           method="gradcam", views="full", smoothing=0.02, seeds="level", fg=0.4, bg=0.1, prior_weight=2.0,
           prior_level=0.2, gamma=50.0, iterations=2, coarse_side=128),
)}
PRESETS["instance-cut"] = dataclasses.replace(
    PRESETS["gradcam-cut"], name="instance-cut", keep="instance", saddle=0.5, window_level=0.1, window_margin=0.25,
    summary="gradcam-cut, one instance: the map split at separate peaks, the cut kept to a window around the peak with "
            "the most class evidence, its strongest component")
DEFAULT_PRESET = "gradcam-cut"  # the best GT-known localisation on the development photos (benchmarks/README.md)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.") from None


def normalised_map(saliency_hw: np.ndarray, preset: Preset) -> np.ndarray:
    """The map smoothed as the preset says and scaled to [0, 1] (min to max); float32 (H, W).

    The blur runs on a copy at most SMOOTHING_SIDE pixels long, upsampled after: a σ of 2% of the
    long side is ten pixels on a 500-pixel photo, and the full-size filter took 50 ms a map."""
    values = np.asarray(saliency_hw, dtype=np.float32)
    if not np.isfinite(values).all():  # one pass; nan_to_num's four took 0.2-0.4 s on a 12 MP map
        values = np.nan_to_num(values)
    if preset.smoothing > 0:
        values = _smooth(values, preset.smoothing)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    scaled = values - low
    scaled /= high - low  # in place, the same float32 operations: a 12 MP map is 48 MB a pass
    return scaled


SMOOTHING_SIDE = 128  # the blur's working size (long side)


def _smooth(values_hw: np.ndarray, sigma_fraction: float) -> np.ndarray:
    h, w = values_hw.shape
    small = seg.shrink_map(values_hw, SMOOTHING_SIDE)
    small = ndimage.gaussian_filter(small, sigma_fraction * max(small.shape), mode="nearest")
    if small.shape == (h, w):
        return small
    return np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BILINEAR), np.float32)


def preset_seeds(saliency_hw: np.ndarray, preset: Preset, *, level_map: np.ndarray | None = None) -> np.ndarray:
    """Automatic seed codes (H, W) from a saliency map (or its ``normalised_map``, when at hand); a flat
    map gives no background (a ValueError in ``segment``, as in the paper's recipe)."""
    if level_map is None:
        level_map = normalised_map(saliency_hw, preset)
    if preset.seeds == "quantile":
        return seg.automatic_seeds(level_map, fg_quantile=preset.fg, bg_quantile=preset.bg,
                                   hard_quantiles=preset.hard_quantiles)
    seeds = np.zeros(level_map.shape, np.uint8)
    seeds[level_map <= preset.bg] = seg.AUTO_BACKGROUND
    seeds[level_map >= preset.fg] = seg.AUTO_FOREGROUND
    if preset.hard_quantiles is not None:  # the reference code's clamps work on quantiles whatever the soft rule
        hard_hi, hard_lo = np.quantile(level_map, preset.hard_quantiles)
        seeds[(level_map <= hard_lo) & (seeds == seg.AUTO_BACKGROUND)] = seg.AUTO_HARD_BACKGROUND
        seeds[(level_map >= hard_hi) & (seeds == seg.AUTO_FOREGROUND)] = seg.AUTO_HARD_FOREGROUND
    return seeds


def preset_prior(level_map: np.ndarray, preset: Preset) -> np.ndarray | None:
    """P(foreground) per pixel from the normalised map, or None when the preset puts no prior in the cut."""
    if preset.prior_weight == 0:
        return None
    prior = level_map - preset.prior_level  # 1 / (1 + exp(-slope·(map - level))), in place: a 12 MP map is 48 MB
    prior *= -preset.prior_slope
    np.exp(prior, out=prior)
    prior += 1.0
    return np.reciprocal(prior, out=prior)


@dataclass(frozen=True, eq=False)
class PresetInputs:
    """What every cut of one photo from one map under one preset shares, whatever the hand seeds."""

    seeds_hw: np.ndarray  # uint8 (H, W) automatic seed codes
    prior_hw: np.ndarray | None  # float32 P(foreground) at the cut's working size (``seg.shrink_map``), or None
    peak_hw: tuple[int, int]  # the map's maximum, for ``keep="peak"``
    prepared: seg.PreparedImage
    window: tuple[int, int, int, int] | None = None  # keep="instance": the chosen instance's box (x0, y0, x1, y1)
    level_small: np.ndarray | None = None  # keep="instance": the normalised map at the cut's working size (evidence)


def preset_inputs(image_hwc: np.ndarray, saliency_hw: np.ndarray, preset: Preset, *,
                  prepared: seg.PreparedImage | None = None) -> PresetInputs:
    """The preset's seeds, prior and peak from the map, and the prepared photo: made once per photo and
    map, they serve the first cut and every re-cut after a stroke (on a 12 MP photo the map's
    normalisation, seeds and prior took 0.3–0.5 s a stroke)."""
    level_map = normalised_map(saliency_hw, preset)
    prior = preset_prior(level_map, preset)
    window = level_small = None
    if preset.keep == "instance":
        window = inst.instance_window(level_map, level=preset.window_level, margin=preset.window_margin, saddle=preset.saddle)
        if prior is not None:  # outside the window the map no longer pulls towards the object
            outside = np.ones(prior.shape, bool)
            outside[window[1]:window[3], window[0]:window[2]] = False
            prior[outside] = 0.0
        level_small = seg.shrink_map(level_map, preset.max_side)
    return PresetInputs(
        preset_seeds(saliency_hw, preset, level_map=level_map),
        None if prior is None else seg.shrink_map(prior, preset.max_side),
        tuple(int(i) for i in np.unravel_index(int(level_map.argmax()), level_map.shape)),
        prepared if prepared is not None else prepare_for(np.asarray(image_hwc), preset), window, level_small)


def segment_with_preset(image_hwc: np.ndarray, saliency_hw: np.ndarray, preset: Preset, *,
                        hand_hw: np.ndarray | None = None, previous: Segmentation | None = None,
                        iterations: int | None = None, prepared: seg.PreparedImage | None = None,
                        inputs: PresetInputs | None = None) -> Segmentation:
    """The preset's cut of ``image_hwc`` from its class saliency map, hand seeds painted over the
    automatic ones. With ``previous`` (the same image and preset, before the strokes) the colour
    models and unaries are reused and one cut is made, as after a stroke on the page. ``inputs``
    (``preset_inputs`` of the same photo, map and preset) saves remaking them."""
    if inputs is None:
        inputs = preset_inputs(image_hwc, saliency_hw, preset, prepared=prepared)
    result = seg.segment(
        image_hwc, seg.merge_seeds(inputs.seeds_hw, hand_hw), iterations=iterations or preset.iterations,
        gamma=preset.gamma, max_side=preset.max_side, coarse_side=preset.coarse_side, previous=previous,
        prior_hw=inputs.prior_hw, prior_weight=preset.prior_weight, keep="all" if preset.keep == "instance" else preset.keep,
        peak_hw=inputs.peak_hw, prepared=inputs.prepared,
    )
    if preset.keep != "instance":
        return result
    mask = one_instance(result.is_foreground_hw, inputs.window, inputs.level_small, must_keep_hw=result.seeds_hw == seg.HAND_FOREGROUND)
    return dataclasses.replace(result, is_foreground_hw=mask, bbox=seg.bounding_box(mask))


def one_instance(is_foreground_hw: np.ndarray, window: tuple[int, int, int, int], level_small: np.ndarray, *,
                 must_keep_hw: np.ndarray | None = None) -> np.ndarray:
    """``keep="instance"``: of the cut's foreground inside ``window``, the 8-connected component with the
    most class evidence (``level_small``, the normalised map at any smaller size, summed over its
    pixels), and any component a hand foreground stroke touches, inside the window or not. When
    nothing of the cut lies in the window, the strongest component anywhere."""
    mask = np.asarray(is_foreground_hw, dtype=bool)
    h, w = mask.shape
    inside = np.zeros_like(mask)
    x0, y0, x1, y1 = window
    inside[y0:y1, x0:x1] = mask[y0:y1, x0:x1]
    candidates = inside if inside.any() else mask
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3), bool))
    if count == 0:
        return candidates
    sh, sw = level_small.shape
    ys, xs = np.nonzero(labels)
    evidence = np.bincount(labels[ys, xs], weights=level_small[ys * sh // h, xs * sw // w], minlength=count + 1)
    evidence[0] = -1.0
    kept = labels == int(np.argmax(evidence))
    if must_keep_hw is not None and must_keep_hw.any():
        all_labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
        touched = np.unique(all_labels[must_keep_hw & mask])
        kept |= np.isin(all_labels, touched[touched > 0])
    return kept


def instance_segmentations(image_hwc: np.ndarray, saliency_hw: np.ndarray, preset: Preset, *, max_instances: int = 10,
                           min_fraction: float = 0.1, prepared: seg.PreparedImage | None = None) -> list[Segmentation]:
    """One segmentation per instance of the class in the preset's cut, the strongest first: the cut of
    the whole photo (every component kept, no instance window), split where the map has separate
    peaks (``instances.instances_of``), instances with under ``min_fraction`` of the strongest's
    evidence dropped, at most ``max_instances``. Each is the cut with its own mask and box; a map with
    one peak gives one. For writing several objects of a photo (``segment-folder``)."""
    whole = dataclasses.replace(preset, keep="all")
    result = segment_with_preset(image_hwc, saliency_hw, whole, prepared=prepared)
    level_map = normalised_map(saliency_hw, preset)
    found = inst.instances_of(result.is_foreground_hw, level_map, saddle=preset.saddle, min_fraction=min_fraction)
    return [dataclasses.replace(result, is_foreground_hw=i.mask_hw, bbox=i.bbox) for i in found[:max_instances]]


def prepare_for(image_hwc: np.ndarray, preset: Preset) -> seg.PreparedImage:
    """What every cut of this photo under this preset shares (``engine.segmentation.grids``)."""
    return seg.prepare_image(image_hwc, max_side=preset.max_side, coarse_side=preset.coarse_side, gamma=preset.gamma)


def cut_boxes(image_hwc: np.ndarray, saliency_maps, *, preset: Preset) -> list[tuple[int, int, int, int] | None]:
    """The preset's box for each class map of one photo, the photo prepared once; None only where a
    map is flat (no seeds of one kind)."""
    prepared = prepare_for(image_hwc, preset)
    boxes = []
    for saliency_hw in saliency_maps:
        try:
            boxes.append(segment_with_preset(image_hwc, saliency_hw, preset, prepared=prepared).bbox)
        except ValueError:
            boxes.append(None)
    return boxes


# ---------------------------------------------------------------- the segmentation JSON (page download, segment-folder)
RECORD_RANGES = {"fg": (0.0, 1.0), "bg": (0.0, 1.0), "iterations": (1, 10), "gamma": (0.0, 1000.0)}


def segmentation_record(result: Segmentation, *, class_index: int, label: str, model: str, weights: str,
                        preset: Preset) -> dict:
    """The JSON the page downloads and ``segment-folder`` writes: box, class, model, the preset and its
    settings, and the mask as COCO RLE; with the seed map PNG it resumes the work on the page."""
    from engine.segmentation.masks import encode_rle  # engine.segmentation.masks imports engine.segmentation.cut, not this module

    h, w = result.is_foreground_hw.shape
    return {"bbox": None if result.bbox is None else list(result.bbox), "class_index": int(class_index), "label": label,
            "model": model, "weights": weights, "preset": preset.name.removesuffix(CHANGED), "settings": preset.settings(),
            "seeds_promoted": result.seeds_promoted, "area": result.area, "image_size": [w, h],
            "mask_rle": encode_rle(result.is_foreground_hw)}


CHANGED = " (changed)"  # appended to a preset's name when a knob was moved off its value


def preset_from_record(record: dict) -> tuple[Preset, int]:
    """(preset with the record's settings, class index) from a segmentation JSON; ValueError when it is
    not one. Files written before presets existed (fg_quantile, bg_quantile, ... at the top) read as
    the paper's preset with those values."""
    try:
        if "settings" in record:
            base, settings = get_preset(str(record["preset"])), dict(record["settings"])
        else:  # the first format: the paper's recipe with its knobs at the top level
            base = PAPER
            settings = {"fg": record["fg_quantile"], "bg": record["bg_quantile"], "iterations": record["iterations"],
                        "gamma": record["gamma"], "views": record["views"]}
        changes = {}
        for key, (low, high) in RECORD_RANGES.items():
            value = settings.get(key, getattr(base, key))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"{key} = {value!r} is outside {low}..{high}")
            changes[key] = int(value) if key == "iterations" else float(value)
        changes["views"] = settings.get("views", base.views)
        class_index = record["class_index"]
        if isinstance(class_index, bool) or not isinstance(class_index, int) or not 0 <= class_index <= 999:
            raise ValueError(f"class_index = {class_index!r} is not a class index 0..999")
        preset = dataclasses.replace(base, **changes)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"missing or malformed field {exc}") from None
    if preset != base:
        preset = dataclasses.replace(preset, name=base.name + CHANGED)
    return preset, class_index


def restore_saved(result: Segmentation, record: dict, *, preset: Preset, class_index: int) -> Segmentation | None:
    """``result`` (this session's cut) carrying the mask saved in ``record``, when the record was made
    with the same settings and class on a photo of the same size; else None. A saved mask is shown as
    it was saved: recomputing it elsewhere (another machine, another CPU thread count) can move a
    pixel, and a person resuming their work expects to see exactly what they downloaded."""
    from engine.segmentation.masks import decode_rle

    try:
        saved_preset, saved_class = preset_from_record(record)
        mask = decode_rle(record["mask_rle"])
    except (ValueError, KeyError, TypeError):
        return None
    same = dataclasses.replace(saved_preset, name="", summary="") == dataclasses.replace(preset, name="", summary="")
    if not same or saved_class != class_index or mask.shape != result.is_foreground_hw.shape:
        return None
    return dataclasses.replace(result, is_foreground_hw=mask, bbox=seg.bounding_box(mask))
