"""Turning maps into pictures: colour maps and overlays for saliency and masks (display only)."""
from __future__ import annotations

import numpy as np

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
