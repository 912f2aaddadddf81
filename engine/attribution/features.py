"""Per-pixel features from the classifier's own inner layers, for hand refinement of §3.2 masks.

Simonyan, Vedaldi & Zisserman (2013) segment from the class saliency of a trained ConvNet; when a
person corrects such a mask, the same network also says which pixels look alike: pixels of one
object share their mid- and high-level activations even where their colours differ (a person's
face, shirt and trousers), and differ from a background of the same colour. This module runs the
network once over the whole photo (no crop, any size: the models here are fully convolutional up to
their global pooling) and returns its activations at strides 8, 16 and 32, each normalised to unit
length per pixel, brought to the stride-8 grid, concatenated and projected on their first principal
components. ``engine.segmentation.refine`` compares clicked pixels with the rest in this space.

The shared model is not touched: the layers are read from a cached structural copy that shares its
weights and wraps the chosen layers in ``Capture`` (per-thread slots, no hooks).
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from engine.attribution.rules import Capture, share_copy
from engine.models import LoadedModel
from engine.views import normalise

LAYERS = {  # (stride 8, 16, 32) outputs of each architecture's stages
    "EfficientNet": ("blocks.2", "blocks.4", "blocks.6"),
    "VGG": ("features.16", "features.23", "features.30"),
    "AlexNet": ("features.2", "features.5", "features.12"),
    "ResNet": ("layer2", "layer3", "layer4"),
}
UPSCALE = 2.0  # the photo is enlarged before the network sees it: stride 8 then resolves 4 photo pixels
MAX_SIDE = 1024  # ... up to this long side (a 12 MP photo is run at 1024 px)
DIMENSIONS = 32  # principal components kept: enough for the clicks to tell parts apart, cheap to compare
GRID_SIDE = 160  # the long side of the returned grid: the cut's unaries are interpolated from it


@dataclass(frozen=True, eq=False)
class PixelFeatures:
    """Features of one photo on a coarse grid covering the whole photo."""

    features_hwk: np.ndarray  # float32 (h, w, K): unit-variance principal components, h/w ∝ the photo's
    image_hw: tuple[int, int]  # the photo's size


_COPIES: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def feature_layers_of(module: nn.Module) -> tuple[str, ...]:
    for cls in type(module).__mro__:
        if cls.__name__ in LAYERS:
            return LAYERS[cls.__name__]
    raise ValueError(f"No feature layers are known for {type(module).__name__}; known: {', '.join(LAYERS)}.")


def _capturing_copy(module: nn.Module) -> nn.Module:
    with _LOCK:
        if module not in _COPIES:
            twin = share_copy(module)
            for name in feature_layers_of(module):
                twin.set_submodule(name, Capture(twin.get_submodule(name)))
            _COPIES[module] = twin
        return _COPIES[module]


def pixel_features(model: LoadedModel, image_hwc: np.ndarray, *, upscale: float = UPSCALE, max_side: int = MAX_SIDE,
                   dimensions: int = DIMENSIONS, grid_side: int = GRID_SIDE) -> PixelFeatures:
    """The photo's per-pixel features (see the module docstring); one forward pass."""
    image = np.asarray(image_hwc)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"The image must be (H, W, 3) uint8; got {image.shape} {image.dtype}.")
    if not (upscale > 0 and max_side >= 32 and dimensions >= 1 and grid_side >= 8):
        raise ValueError("upscale must be positive, max_side ≥ 32, dimensions ≥ 1 and grid_side ≥ 8.")
    maps = _layer_maps(model, image, min(upscale, max_side / max(image.shape[:2])))
    return PixelFeatures(_project(maps, dimensions, _grid_shape(image.shape[:2], grid_side)), tuple(image.shape[:2]))


def _layer_maps(model: LoadedModel, image_hwc: np.ndarray, scale: float) -> list[torch.Tensor]:
    """(1, C, h, w) activations of each feature layer for the photo resized by ``scale``."""
    twin = _capturing_copy(model.module)
    h, w = image_hwc.shape[:2]
    size = (max(32, round(h * scale)), max(32, round(w * scale)))
    if size[0] < h:  # a large photo is shrunk by Pillow first (a 12 MP float tensor would be 144 MB)
        image_hwc = np.asarray(Image.fromarray(np.asarray(image_hwc)).resize(size[::-1], Image.Resampling.BICUBIC, reducing_gap=3.0))
    pixels = torch.from_numpy(np.array(image_hwc, np.uint8)).permute(2, 0, 1)[None].float().div(255.0)  # a writable copy
    if tuple(pixels.shape[2:]) != size:
        pixels = F.interpolate(pixels, size=size, mode="bicubic", align_corners=False).clamp(0.0, 1.0)
    with torch.inference_mode():
        twin(normalise(pixels, model.preprocessing).to(model.device))
        return [twin.get_submodule(name).take().float().cpu() for name in feature_layers_of(model.module)]


def _grid_shape(image_hw: tuple[int, int], grid_side: int) -> tuple[int, int]:
    h, w = image_hw
    scale = grid_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _project(maps: list[torch.Tensor], dimensions: int, grid_hw: tuple[int, int]) -> np.ndarray:
    """Each map unit-normalised per pixel and brought to the grid, concatenated, centred and projected
    on its first principal components (scaled to unit variance overall)."""
    parts = [F.interpolate(F.normalize(m, dim=1), size=grid_hw, mode="bilinear", align_corners=False) for m in maps]
    stacked = torch.cat(parts, 1)[0].flatten(1).T.double()  # (h·w, C)
    stacked -= stacked.mean(0)
    sample = stacked[:: max(1, len(stacked) // 4000)]
    _, vectors = torch.linalg.eigh(sample.T @ sample)  # ascending eigenvalues
    projected = stacked @ vectors[:, -dimensions:].flip(1)
    projected /= projected.std().clamp_min(1e-12)
    return projected.float().reshape(*grid_hw, -1).numpy()
