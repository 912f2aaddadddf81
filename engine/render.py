"""Turning maps into pictures: colour maps and overlays for saliency and masks (display only)."""
from __future__ import annotations

import numpy as np
from PIL import Image

# Anchors of matplotlib's "inferno" (perceptually uniform, readable in greyscale), 9 stops.
_INFERNO = np.array([
    [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
    [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164],
], dtype=np.float64)
# A diverging blue-white-red for signed maps.
_DIVERGING = np.array([[5, 48, 97], [67, 147, 195], [247, 247, 247], [214, 96, 77], [103, 0, 31]], dtype=np.float64)


def _lut(anchors: np.ndarray) -> np.ndarray:
    positions = np.linspace(0, 1, len(anchors))
    grid = np.linspace(0, 1, 256)
    return np.stack([np.interp(grid, positions, anchors[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


INFERNO_LUT = _lut(_INFERNO)
DIVERGING_LUT = _lut(_DIVERGING)


def normalise_map(map_hw: np.ndarray, *, percentile: float = 99.5) -> np.ndarray:
    """Scale to [0, 1] by a high percentile (a few extreme pixels would otherwise wash it out);
    signed maps go to [-1, 1] by the percentile of their magnitude."""
    values = np.nan_to_num(np.asarray(map_hw, dtype=np.float64))
    scale = np.percentile(np.abs(values), percentile) if values.size else 0.0
    if scale <= 0:
        scale = np.abs(values).max() if values.size else 0.0
    if scale <= 0:
        return np.zeros_like(values)
    lower = -1.0 if values.min() < 0 else 0.0
    return np.clip(values / scale, lower, 1.0)


def colourise(map_hw: np.ndarray) -> np.ndarray:
    """A saliency map as an RGB heat map (H, W, 3) uint8; signed maps use a diverging palette."""
    scaled = normalise_map(map_hw)
    if scaled.min() < 0:
        return DIVERGING_LUT[np.round((scaled + 1) * 127.5).astype(np.int64)]
    return INFERNO_LUT[np.round(scaled * 255).astype(np.int64)]


def blend(image_hwc: np.ndarray, overlay_hwc: np.ndarray, opacity: float) -> np.ndarray:
    """``opacity`` of ``overlay`` over ``image``, both (H, W, 3) uint8."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"Opacity must be between 0 and 1; got {opacity}.")
    mixed = (1 - opacity) * image_hwc.astype(np.float32) + opacity * overlay_hwc.astype(np.float32)
    return np.clip(mixed.round(), 0, 255).astype(np.uint8)


DISPLAY_SIDE = 1280  # the long side of an image as shown: a page column is far narrower than a phone photo


def display_shape(shape_hw: tuple[int, ...], max_side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """(H, W) no larger than ``max_side`` on the long side, the aspect kept; unchanged if it fits."""
    height, width = shape_hw[:2]
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit(array: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """``array`` (H, W) or (H, W, 3) at ``shape_hw`` for display (the same array if it is that size):
    uint8 images by area averaging, float maps bilinearly, label and boolean maps by nearest pixel."""
    if array.shape[:2] == tuple(shape_hw):
        return array
    size = (shape_hw[1], shape_hw[0])
    if array.dtype == np.uint8 and array.ndim == 3:
        return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BOX))
    if np.issubdtype(array.dtype, np.floating):
        return np.asarray(Image.fromarray(array.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
    rows = (np.arange(shape_hw[0]) * array.shape[0] // shape_hw[0])[:, None]
    cols = (np.arange(shape_hw[1]) * array.shape[1] // shape_hw[1])[None, :]
    return array[rows, cols]


def fit_box(bbox, from_hw: tuple[int, ...], to_hw: tuple[int, int]):
    """An (x0, y0, x1, y1) box of an image of ``from_hw`` in the pixels of the same image at ``to_hw``."""
    if bbox is None:
        return None
    sy, sx = to_hw[0] / from_hw[0], to_hw[1] / from_hw[1]
    x0, y0, x1, y1 = bbox
    return (int(x0 * sx), int(y0 * sy), max(int(x0 * sx) + 1, round(x1 * sx)), max(int(y0 * sy) + 1, round(y1 * sy)))
