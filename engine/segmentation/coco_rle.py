"""COCO's mask encodings read without pycocotools (Lin et al. 2014, "Microsoft COCO", §3 and its API).

A COCO annotation's ``segmentation`` is one of
- polygons ``[[x0, y0, x1, y1, ...], ...]`` in pixel coordinates, rasterised as ``pycocotools.mask.frPyObjects``
  does (the boundary traced at 5× resolution, a pixel inside when its centre is; parts united);
- an uncompressed RLE ``{"size": [H, W], "counts": [int, ...]}`` (``engine.segmentation.masks.decode_rle``);
- a compressed RLE ``{"size": [H, W], "counts": "string"}``: the same counts, each from the third on
  stored as the difference with the count two before, in 5-bit groups with a continuation bit,
  each group a character from ASCII 48.

The polygon rule follows pycocotools' ``rleFrPoly`` step by step so that a mask decodes to the same pixels
with or without it; tests/test_import.py checks it against pycocotools on random polygons. The runtime
does not need pycocotools (a C extension, in requirements-dev.txt only).
"""
from __future__ import annotations

import numpy as np

from engine.images import MAX_PIXELS
from engine.segmentation.masks import decode_rle

_SCALE = 5  # pycocotools traces polygon boundaries on a 5× finer grid


def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """The bool (H, W) mask of a COCO ``segmentation`` on a ``width`` × ``height`` photo; ValueError when it is
    not one, is another size, or a polygon lies outside the photo."""
    if isinstance(segmentation, list):
        return _polygons(segmentation, height, width)
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise ValueError("segmentation is neither polygons nor an RLE {'size', 'counts'}.")
    size = segmentation["size"]
    if not (isinstance(size, list) and len(size) == 2 and list(size) == [height, width]):
        raise ValueError(f"the RLE is {size!r} (H, W) but the photo is {[height, width]}.")
    counts = segmentation["counts"]
    if isinstance(counts, (str, bytes)):
        counts = decode_counts(counts)
    return decode_rle({"size": [height, width], "counts": counts})


def decode_counts(text: str | bytes) -> list[int]:
    """The counts of a compressed COCO RLE string; ValueError on characters outside its alphabet."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    value = shift = 0
    for byte in data:
        group = byte - 48
        if not 0 <= group < 64:
            raise ValueError(f"a compressed RLE holds the characters '0'..'o'; found {chr(byte)!r}.")
        value |= (group & 0x1F) << shift
        shift += 5
        if group & 0x20:
            continue
        if group & 0x10:
            value -= 1 << shift  # the last group's high bit is the sign
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
        value = shift = 0
    if shift:
        raise ValueError("the compressed RLE ends in the middle of a count.")
    return counts


def encode_counts(counts) -> str:
    """A compressed COCO RLE string of uncompressed ``counts`` (pycocotools' ``rleToString``)."""
    out = bytearray()
    counts = [int(c) for c in counts]
    for i, count in enumerate(counts):
        value = count - counts[i - 2] if i > 2 else count
        while True:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            out.append((group | 0x20 if more else group) + 48)
            if not more:
                break
    return out.decode("ascii")


def _polygons(parts: list, height: int, width: int) -> np.ndarray:
    if not (0 < height and 0 < width and height * width <= MAX_PIXELS):
        raise ValueError(f"the photo's size {width}×{height} is outside 1 pixel .. {MAX_PIXELS / 1e6:.0f} MP.")
    if not parts:
        raise ValueError("the polygon list is empty.")
    mask = np.zeros((height, width), bool)
    for n, part in enumerate(parts):
        try:
            xy = np.asarray(part, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"polygon {n} is not a list of numbers.") from None
        if xy.size < 6 or xy.size % 2 or not np.isfinite(xy).all():
            raise ValueError(f"polygon {n} is not x, y pairs of at least 3 points.")
        xs, ys = xy[0::2], xy[1::2]
        if xs.min() < -1 or ys.min() < -1 or xs.max() > width + 1 or ys.max() > height + 1:
            raise ValueError(f"polygon {n} reaches ({xs.min():.1f}..{xs.max():.1f}, {ys.min():.1f}..{ys.max():.1f}), "
                             f"outside the {width}×{height} photo.")
        mask |= decode_rle({"size": [height, width], "counts": polygon_counts(xs, ys, height, width)})
    return mask


def polygon_counts(xs: np.ndarray, ys: np.ndarray, height: int, width: int) -> list[int]:
    """Uncompressed RLE counts of one polygon, pixel for pixel as pycocotools' ``rleFrPoly`` computes them."""
    x = np.trunc(_SCALE * xs + 0.5).astype(np.int64)  # C's (int) cast: towards zero
    y = np.trunc(_SCALE * ys + 0.5).astype(np.int64)
    x, y = np.append(x, x[0]), np.append(y, y[0])
    # 1. every point of every edge on the fine grid, stepping along the edge's longer axis
    xs0, xe0, ys0, ye0 = x[:-1], x[1:], y[:-1], y[1:]
    dx, dy = np.abs(xe0 - xs0), np.abs(ye0 - ys0)
    along_x = dx >= dy
    flip = (along_x & (xs0 > xe0)) | (~along_x & (ys0 > ye0))
    xs1, xe1 = np.where(flip, xe0, xs0), np.where(flip, xs0, xe0)
    ys1, ye1 = np.where(flip, ye0, ys0), np.where(flip, ys0, ye0)
    steps = np.where(along_x, dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(along_x, (ye1 - ys1) / dx, (xe1 - xs1) / dy)
    slope = np.where(steps == 0, 0.0, slope)  # a repeated vertex: one point, its slope unused
    n = steps + 1
    edge = np.repeat(np.arange(len(steps)), n)
    d = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    t = np.where(flip[edge], steps[edge] - d, d)
    across = np.trunc(np.where(along_x[edge], ys1[edge], xs1[edge]) + slope[edge] * t + 0.5).astype(np.int64)
    u = np.where(along_x[edge], t + xs1[edge], across)
    v = np.where(along_x[edge], across, t + ys1[edge])
    # 2. where the boundary crosses a pixel column's centre: that column's run starts or ends there
    moved = np.flatnonzero(u[1:] != u[:-1]) + 1
    col = np.where(u[moved] < u[moved - 1], u[moved], u[moved] - 1)
    col = (col + 0.5) / _SCALE - 0.5
    keep = (np.floor(col) == col) & (col >= 0) & (col <= width - 1)
    row = np.minimum(v[moved], v[moved - 1])
    row = np.ceil(np.clip((row + 0.5) / _SCALE - 0.5, 0, height))
    positions = (col[keep].astype(np.int64) * height + row[keep].astype(np.int64)).tolist()
    # 3. the sorted crossings as runs; a zero-length run joins the next one to the run before it
    runs = np.diff(np.sort(np.array([0] + positions + [height * width], np.int64))).tolist()
    counts, j = [runs[0]], 1
    while j < len(runs):
        if runs[j] > 0:
            counts.append(runs[j])
            j += 1
        else:
            j += 1
            if j < len(runs):
                counts[-1] += runs[j]
                j += 1
    return counts
