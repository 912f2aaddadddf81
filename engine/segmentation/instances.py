"""One object among several: the instances of a class in a cut, from where its saliency map peaks (issue 30).

A class's map over a photo with two dogs has two hills; the cut seeded from it usually takes both dogs
and the grass between, and its box matches neither dog. Here the map is split where it has separate
peaks, the way water fills a relief from the top (topological persistence): pixels are visited from
the highest level down, each joining the hill of its neighbours; where two hills meet, the lower one
stays a hill of its own when the pass between them (the saddle) lies below ``saddle`` times its peak,
and is merged into the higher one otherwise. Every pixel then belongs to the basin of one surviving
peak. The cut's foreground, cut along those basins, gives one mask per instance; each is scored by
its class evidence (the sum of the map over it) and the strongest is the object.

The split runs on a copy of the map at most ``SPLIT_SIDE`` pixels long: the map comes from a network
of stride 16 or 32, so finer grids add no hills, and a pass over a few thousand pixels costs
milliseconds; the basins are scaled back to the photo (nearest neighbour).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from engine.segmentation.cut import bounding_box
from engine.segmentation.grids import shrink_map

SPLIT_SIDE = 48  # long side of the grid the peaks are found on
SADDLE = 0.5  # a hill stays separate when its pass to a higher one is below this fraction of its peak
MIN_PEAK = 0.25  # hills whose peak is below this fraction of the map's maximum join their neighbour
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@dataclass(frozen=True, eq=False)
class Instance:
    """One instance of the class in a cut: its mask at the photo's resolution, box and evidence."""

    mask_hw: np.ndarray  # bool (H, W)
    bbox: tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive
    evidence: float  # the sum of the normalised map over the mask
    peak: float  # the map's highest value inside the mask


def peak_basins(level_map: np.ndarray, *, saddle: float = SADDLE, min_peak: float = MIN_PEAK,
                side: int = SPLIT_SIDE) -> tuple[np.ndarray, list[float]]:
    """(basins, peaks): int32 (H, W) labels 1..n of the basin each pixel drains to, and the n peaks'
    heights (as fractions of the map's maximum), highest first. ``level_map`` is a map in [0, 1] (e.g.
    ``presets.normalised_map``); a map with one hill, or a flat one, is one basin."""
    values = np.asarray(level_map, dtype=np.float32)
    h, w = values.shape
    small = shrink_map(values, side)
    top = float(small.max())
    labels_small, peaks = _flood(small / top if top > 0 else small, saddle, min_peak)
    if labels_small.shape != values.shape:
        labels = np.asarray(Image.fromarray(labels_small).resize((w, h), Image.Resampling.NEAREST), np.int32)
    else:
        labels = labels_small
    return labels, peaks


def _flood(values: np.ndarray, saddle: float, min_peak: float) -> tuple[np.ndarray, list[float]]:
    """Persistence flooding on a small grid: (labels 1..n by falling peak, peak heights)."""
    gh, gw = values.shape
    flat = values.ravel()
    order = np.argsort(-flat, kind="stable")
    parent = np.full(flat.size, -1, np.int64)  # union-find over visited pixels; -1: not visited yet
    peak_of = {}  # root -> its hill's peak height

    def find(i):
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    separate = set()  # roots of hills that met a higher one through a low pass: finished instances
    for index in order.tolist():
        y, x = divmod(index, gw)
        level = float(flat[index])
        roots = set()
        for dy, dx in _NEIGHBOURS:
            ny, nx = y + dy, x + dx
            if 0 <= ny < gh and 0 <= nx < gw and parent[ny * gw + nx] >= 0:
                roots.add(find(ny * gw + nx))
        parent[index] = index
        if not roots:
            peak_of[index] = level
            continue
        ranked = sorted(roots, key=lambda r: -peak_of[r])
        main = ranked[0]
        parent[index] = main
        for other in ranked[1:]:
            low_peak = peak_of[other]
            if other in separate or (low_peak >= min_peak and level < saddle * low_peak):
                separate.add(other)  # a hill of its own: it keeps its pixels; this pass pixel goes to the higher hill
                continue
            parent[other] = main  # a shoulder of the higher hill
    roots = np.array([find(i) for i in range(flat.size)])
    survivors = sorted(set(roots.tolist()), key=lambda r: -peak_of[r])
    number = {r: k + 1 for k, r in enumerate(survivors)}
    labels = np.array([number[r] for r in roots.tolist()], np.int32).reshape(gh, gw)
    return labels, [peak_of[r] for r in survivors]


def instances_of(is_foreground_hw: np.ndarray, level_map: np.ndarray, *, basins: np.ndarray | None = None,
                 saddle: float = SADDLE, min_peak: float = MIN_PEAK, min_fraction: float = 0.0) -> list[Instance]:
    """The instances of a cut, strongest first: the foreground cut along the map's basins
    (``peak_basins``), in each basin its 8-connected component with the most evidence. Components
    whose evidence is under ``min_fraction`` of the strongest's are dropped."""
    mask = np.asarray(is_foreground_hw, dtype=bool)
    level = np.asarray(level_map, dtype=np.float32)
    if basins is None:
        basins, _ = peak_basins(level, saddle=saddle, min_peak=min_peak)
    box = bounding_box(mask)
    if box is None:
        return []
    x0, y0, x1, y1 = box  # labelled inside the foreground's box: most of a large photo is outside it
    inside, level_in, basins_in = mask[y0:y1, x0:x1], level[y0:y1, x0:x1], basins[y0:y1, x0:x1]
    found = []
    for basin in np.unique(basins_in[inside]).tolist():
        part = inside & (basins_in == basin)
        labels, count = ndimage.label(part, structure=np.ones((3, 3), bool))
        sums = ndimage.sum_labels(level_in, labels, range(1, count + 1))
        best = int(np.argmax(sums)) + 1
        piece = labels == best
        full = np.zeros(mask.shape, bool)
        full[y0:y1, x0:x1] = piece
        found.append(Instance(full, bounding_box(full), float(sums[best - 1]), float(level_in[piece].max())))
    found.sort(key=lambda i: -i.evidence)
    if found and min_fraction > 0:
        found = [i for i in found if i.evidence >= min_fraction * found[0].evidence]
    return found


def strongest_component(is_foreground_hw: np.ndarray, level_map: np.ndarray) -> np.ndarray:
    """The 8-connected component of the foreground holding the most class evidence (sum of the map),
    rather than the largest: a bright small object beats a large dim patch of background."""
    mask = np.asarray(is_foreground_hw, dtype=bool)
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count <= 1:
        return mask.copy()
    sums = ndimage.sum_labels(np.asarray(level_map, np.float32), labels, range(1, count + 1))
    return labels == int(np.argmax(sums)) + 1


def instance_window(level_map: np.ndarray, *, level: float, margin: float, saddle: float = SADDLE,
                    min_peak: float = MIN_PEAK, basins: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) where one instance of the class lies: the map's basins
    (``peak_basins``), in the basin with the most evidence (the sum of the map at or above ``level``)
    the connected part at or above ``level`` holding the most evidence, its box grown by ``margin``
    of its width and height on each side and clipped to the photo. A map with nothing at or above
    ``level`` gives the whole photo."""
    values = np.asarray(level_map, dtype=np.float32)
    h, w = values.shape
    if basins is None:
        basins, _ = peak_basins(values, saddle=saddle, min_peak=min_peak)
    region = values >= level
    if not region.any():
        return 0, 0, w, h
    weights = np.where(region, values, 0.0)
    evidence = np.bincount(basins.ravel(), weights=weights.ravel())
    chosen = region & (basins == int(np.argmax(evidence)))
    labels, count = ndimage.label(chosen, structure=np.ones((3, 3), bool))
    if count > 1:
        chosen = labels == int(np.argmax(ndimage.sum_labels(values, labels, range(1, count + 1)))) + 1
    x0, y0, x1, y1 = bounding_box(chosen)
    grow_x, grow_y = margin * (x1 - x0), margin * (y1 - y0)
    return (max(0, int(np.floor(x0 - grow_x))), max(0, int(np.floor(y0 - grow_y))),
            min(w, int(np.ceil(x1 + grow_x))), min(h, int(np.ceil(y1 + grow_y))))
