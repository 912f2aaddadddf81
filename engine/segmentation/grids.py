"""The grids a §3.2 graph cut runs on (Simonyan et al. 2013): the photo at the working size, the
coarse grid of the GrabCut rounds, and the maps moved between them.

``PreparedImage`` holds what every cut of one photo shares, whatever its seeds: the working image
and its colours, their palette of distinct colours (unaries are computed once per colour), the
coarse image, and the Potts weights of both grids. A top-5 localisation cuts one photo five times,
and the page re-cuts it after every stroke.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.segmentation.graphcut import pairwise_weights

GAMMA_SHORT_SIDE = 256  # γ is given at a 256-pixel short side and scaled with each grid's short side


@dataclass(frozen=True, eq=False)
class PreparedImage:
    shape_hw: tuple[int, int]  # the photo's
    max_side: int
    coarse_side: int
    gamma: float  # as given, at a 256-pixel short side
    work_hwc: np.ndarray  # float32 (h, w, 3), whole 0..255 values
    colours: np.ndarray  # float32 (h·w, 3), the working image's pixels
    palette: tuple[np.ndarray, np.ndarray]  # (distinct colours (K, 3) float32, index (h·w,) into them)
    coarse_hwc: np.ndarray  # float32 (hc, wc, 3)
    coarse_pairwise: list[np.ndarray]  # Potts weights of the coarse grid, per direction
    work_pairwise: list[np.ndarray]  # ... of the working grid


def prepare_image(image_hwc: np.ndarray, *, max_side: int, coarse_side: int, gamma: float) -> PreparedImage:
    coarse_side = min(coarse_side, max_side)
    work_hwc = shrink_image(image_hwc, max_side)
    coarse_hwc = shrink_image(image_hwc, coarse_side)
    colours = work_hwc.reshape(-1, 3)
    packed, index = np.unique(_pack(colours), return_inverse=True)
    return PreparedImage(
        image_hwc.shape[:2], int(max_side), int(coarse_side), float(gamma), work_hwc, colours, (_unpack(packed), index.ravel()),
        coarse_hwc, pairwise_weights(coarse_hwc, gamma_at(gamma, coarse_hwc.shape[:2])),
        pairwise_weights(work_hwc, gamma_at(gamma, work_hwc.shape[:2])))


def gamma_at(gamma: float, shape: tuple[int, int]) -> float:
    """γ on a grid of ``shape``: unaries add up over the area (∝ side²) and the Potts term over the
    boundary (∝ γ·side), so scaling γ with the side keeps their balance, and the cut's shape."""
    return gamma * min(shape) / GAMMA_SHORT_SIDE


def fitted_shape(shape_hw: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(h, w) with the long side at most ``max_side``, the aspect ratio kept."""
    h, w = shape_hw
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return h, w
    return max(1, round(h * scale)), max(1, round(w * scale))


def shrink_image(image_hwc: np.ndarray, max_side: int) -> np.ndarray:
    """The photo as float32 with its long side at most ``max_side`` (box filter: cell means)."""
    h, w = fitted_shape(image_hwc.shape[:2], max_side)
    if (h, w) == image_hwc.shape[:2]:
        return image_hwc.astype(np.float32)
    return np.asarray(Image.fromarray(image_hwc).resize((w, h), Image.Resampling.BOX), dtype=np.float32)


def resize_codes(codes_hw: np.ndarray, shape: tuple[int, int], precedence: tuple[int, ...], hard: tuple[int, ...]) -> np.ndarray:
    """A code map shrunk to ``shape``: codes painted in ``precedence`` order, each where it covers more
    than half a cell, or any part of it for the ``hard`` codes."""
    if codes_hw.shape == tuple(shape):
        return codes_hw
    small = np.zeros(shape, np.uint8)
    sizes = cell_sizes(codes_hw.shape, shape)
    for code in precedence:
        counts = cell_counts(codes_hw == code, shape)
        small[counts > 0 if code in hard else 2 * counts > sizes] = code
    return small


def cell_starts(size: int, cells: int) -> np.ndarray:
    """The first pixel of each cell when ``size`` pixels are shrunk to ``cells``: each pixel belongs to the
    cell that holds its centre, as in a box filter (Pillow's BOX, which also drops the odd pixel whose
    centre falls on a cell's edge by rounding)."""
    owner = np.minimum(np.ceil((np.arange(size) + 0.5) * cells / size).astype(np.int64) - 1, cells - 1)
    return np.searchsorted(owner, np.arange(cells))


def cell_sizes(shape_hw: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Pixels in each cell (int64 (h, w)) when a (H, W) grid is shrunk to ``shape``."""
    rows, cols = (np.diff(np.append(cell_starts(n, m), n)) for n, m in zip(shape_hw, shape))
    return rows[:, None] * cols[None, :]


def cell_counts(mask_hw: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """How many True pixels of a bool (H, W) map each cell of a coarser grid of ``shape`` holds (int64 (h, w)),
    by exact integer sums over the rows that hold any (a 12 MP seed map is mostly empty of most codes:
    this is ~10× faster than a float box filter of the whole map)."""
    h, w = shape
    rows, cols = cell_starts(mask_hw.shape[0], h), cell_starts(mask_hw.shape[1], w)
    counts = np.zeros(shape, np.int64)
    held = np.flatnonzero(mask_hw.any(axis=1))
    if held.size == 0:
        return counts
    first, last = np.searchsorted(rows, held[0], side="right") - 1, np.searchsorted(rows, held[-1], side="right")
    band = mask_hw[rows[first]: rows[last] if last < h else mask_hw.shape[0]].view(np.uint8)
    per_cell_column = np.add.reduceat(band, cols, axis=1, dtype=np.int32)
    counts[first:last] = np.add.reduceat(per_cell_column, rows[first:last] - rows[first], axis=0)
    return counts


def downscale(values_hw: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Cell means of a float map (H, W) on a coarser grid of ``shape``."""
    if values_hw.shape == tuple(shape):
        return values_hw
    return np.asarray(Image.fromarray(values_hw.astype(np.float32)).resize(shape[::-1], Image.Resampling.BOX), np.float64)


def shrink_map(values_hw: np.ndarray, max_side: int) -> np.ndarray:
    """A float map (H, W) as float32 with its long side at most ``max_side`` (box filter: cell means)."""
    values = np.asarray(values_hw, dtype=np.float32)
    h, w = fitted_shape(values.shape, max_side)
    if (h, w) == values.shape:
        return values
    return np.asarray(Image.fromarray(values, mode="F").resize((w, h), Image.Resampling.BOX), np.float32)


def upsample(is_foreground: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if is_foreground.shape == tuple(shape):
        return is_foreground.copy()
    # Bilinear, then ≥ 1/2: on 0/256 values (scaling by a power of two is exact) Pillow's float-to-8-bit
    # conversion truncates, so ≥ 128 there is ≥ 1/2 here, and the array read back is 12 MB, not 48, at 12 MP.
    soft = Image.fromarray(is_foreground.astype(np.float32) * 256).resize(shape[::-1], Image.Resampling.BILINEAR)
    return np.asarray(soft.convert("L")) >= 128


def _pack(colours_n3: np.ndarray) -> np.ndarray:
    rgb = np.asarray(colours_n3).round().astype(np.uint32)  # working images hold whole 0..255 values
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def _unpack(packed: np.ndarray) -> np.ndarray:
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.float32)
