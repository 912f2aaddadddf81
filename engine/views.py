"""From a photo to the network's input views and back (Simonyan et al. 2013, §3.1).

The paper computes saliency on the classifier's test views: the centre 224×224 crop of the image
resized to 256 on its short side, or the 10 sub-images (4 corners + centre, each also mirrored).
Maps computed on the views are placed back into the resized frame, averaged where views overlap,
and resized to the photo's own resolution.

Beyond the paper, the ``"full"`` view is the whole photo, uncropped, resized so that its short side
is ``full_side`` (the crop × 10/7: 320 for a 224 crop): the network's global pooling takes any size,
and an object that reaches the photo's border stays whole, which a centre crop cuts off. On the
ILSVRC-2012 development photos it gave the best localisation boxes (``benchmarks/README.md``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from engine.models import LoadedModel, Preprocessing

VIEW_COUNTS = (1, 10)
VIEWS = (1, 10, "full")  # centre crop, the paper's 10 sub-images, the whole photo
FULL_SIDE_PER_CROP = 10 / 7  # the full view's short side per crop pixel: 320 for 224 (measured best of 224..384)
MAX_FULL_ASPECT = 4.0  # a longer photo's full view is cut to its centre 4:1 (a 20:1 panorama would be 5760 px long)


@dataclass(frozen=True)
class View:
    """A crop of the resized image: its top-left corner and whether it is mirrored."""

    top: int
    left: int
    flipped: bool = False


def resize_short_side(image_hwc: np.ndarray, size: int, interpolation: Image.Resampling) -> np.ndarray:
    """Resize so that the short side is ``size``, keeping the aspect ratio; (H', W', 3) uint8."""
    height, width = image_hwc.shape[:2]
    scale = size / min(height, width)
    new_hw = (max(size, round(height * scale)), max(size, round(width * scale)))
    if new_hw == (height, width):
        return image_hwc
    resized = Image.fromarray(image_hwc).resize((new_hw[1], new_hw[0]), interpolation)
    return np.asarray(resized)


def check_views(views) -> int | str:
    if views not in VIEWS or isinstance(views, bool):
        raise ValueError(f"Views must be 1 (centre crop), 10 (corners + centre, mirrored) or 'full' (the whole photo); got {views!r}.")
    return views


def full_side(prep: Preprocessing) -> int:
    return round(prep.crop * FULL_SIDE_PER_CROP)


def view_layout(resized_hw: tuple[int, int], crop: int, count: int) -> tuple[View, ...]:
    """The centre view, or the paper's 10: corners and centre, each plain and mirrored."""
    if count not in VIEW_COUNTS:
        check_views(count)
        raise ValueError(f"The full view has no crop layout; got {count!r}.")
    height, width = resized_hw
    centre = View((height - crop) // 2, (width - crop) // 2)
    if count == 1:
        return (centre,)
    corners = (View(0, 0), View(0, width - crop), View(height - crop, 0), View(height - crop, width - crop))
    plain = corners + (centre,)
    return plain + tuple(View(v.top, v.left, True) for v in plain)


def make_batch(model: LoadedModel, image_hwc: np.ndarray, views: int | str = 1) -> tuple[torch.Tensor, tuple[View, ...], tuple[int, int]]:
    """The normalised views as one batch (B, 3, crop, crop) on the model's device; the full view is
    one (1, 3, H', W') image whose short side is ``full_side``."""
    prep = model.preprocessing
    if check_views(views) == "full":
        resized = resize_short_side(_centre_aspect(image_hwc), full_side(prep), prep.interpolation)
        crops, layout = resized[None].copy(), (View(0, 0),)  # (1, H', W', 3) uint8, writable for torch
    else:
        resized = resize_short_side(image_hwc, prep.resize, prep.interpolation)
        layout = view_layout(resized.shape[:2], prep.crop, views)
        crops = np.stack([_crop(resized, v, prep.crop) for v in layout])  # (B, crop, crop, 3) uint8
    batch = torch.from_numpy(crops).to(model.device).permute(0, 3, 1, 2).float().div_(255.0)
    return normalise(batch, prep), layout, resized.shape[:2]


def _centre_aspect(image_hwc: np.ndarray) -> np.ndarray:
    """The centre of a photo longer than MAX_FULL_ASPECT:1 (place_views puts the map back in the middle)."""
    h, w = image_hwc.shape[:2]
    if max(h, w) <= MAX_FULL_ASPECT * min(h, w):
        return image_hwc
    long = int(MAX_FULL_ASPECT * min(h, w))
    return image_hwc[(h - long) // 2:(h - long) // 2 + long] if h > w else image_hwc[:, (w - long) // 2:(w - long) // 2 + long]


def _crop(resized_hwc: np.ndarray, view: View, size: int) -> np.ndarray:
    patch = resized_hwc[view.top : view.top + size, view.left : view.left + size]
    return patch[:, ::-1] if view.flipped else patch


def normalise(batch01: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """[0, 1] RGB (B, 3, H, W) to the network's input space."""
    mean = batch01.new_tensor(prep.mean).view(1, 3, 1, 1)
    std = batch01.new_tensor(prep.std).view(1, 3, 1, 1)
    return (batch01 - mean) / std


def denormalise(batch: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """The network's input space back to [0, 1] RGB (unclipped)."""
    mean = batch.new_tensor(prep.mean).view(1, 3, 1, 1)
    std = batch.new_tensor(prep.std).view(1, 3, 1, 1)
    return batch * std + mean


def place_views(maps_bhw: np.ndarray, layout: tuple[View, ...], resized_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    """Average view maps in the resized frame, then resize to the photo: float32 (H, W).

    Pixels no view covers (the margins of a centre crop) get 0: the network never saw them.
    """
    total = np.zeros(resized_hw, np.float64)
    count = np.zeros(resized_hw, np.float64)
    height, width = maps_bhw.shape[-2:]
    for view_map, view in zip(maps_bhw, layout):
        upright = view_map[:, ::-1] if view.flipped else view_map
        total[view.top : view.top + height, view.left : view.left + width] += upright
        count[view.top : view.top + height, view.left : view.left + width] += 1
    averaged = np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(np.float32)
    return _resize_map(averaged, image_hw)


def place_full_view(map_hw: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """The full view's map at the photo's resolution; a photo cut to MAX_FULL_ASPECT gets 0 beyond it."""
    h, w = image_hw
    if max(h, w) <= MAX_FULL_ASPECT * min(h, w):
        return _resize_map(map_hw, image_hw)
    long = int(MAX_FULL_ASPECT * min(h, w))
    placed = np.zeros(image_hw, np.float32)
    if h > w:
        placed[(h - long) // 2:(h - long) // 2 + long] = _resize_map(map_hw, (long, w))
    else:
        placed[:, (w - long) // 2:(w - long) // 2 + long] = _resize_map(map_hw, (h, long))
    return placed


def _resize_map(map_hw: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    map_hw = np.ascontiguousarray(map_hw, dtype=np.float32)
    if map_hw.shape == tuple(image_hw):
        return map_hw
    resized = Image.fromarray(map_hw, mode="F").resize((image_hw[1], image_hw[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)
