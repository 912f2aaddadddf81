"""Masks, boxes and seed maps on disk, for the segmentation of §3.2 (Simonyan, Vedaldi & Zisserman 2013).

- Masks: COCO run-length encoding, uncompressed ``{"size": [H, W], "counts": [...]}``: counts of
  alternating 0s and 1s, starting with 0s, over the mask read column by column (Fortran order), as
  ``pycocotools`` writes it for ``iscrowd=1``.
- Boxes: ``(x0, y0, x1, y1)`` in pixels with x1, y1 exclusive; IoU as the ILSVRC protocol counts it.
- Seed maps: an 8-bit palette PNG whose pixel values are the codes of ``engine.segmentation``
  (0 none, 1 hand background, 2 hand foreground, 3 automatic background, 4 automatic foreground,
  5/6 automatic hard background/foreground); the palette only makes them visible in a viewer.
  A greyscale PNG with the same values reads the same.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from engine.segmentation import AUTO_HARD_FOREGROUND, HAND_CODES

SEED_COLOURS = (  # RGB per code, for the PNG palette and for overlays
    (0, 0, 0),  # 0 none
    (30, 110, 255),  # 1 hand background: blue
    (255, 40, 40),  # 2 hand foreground: red
    (120, 200, 255),  # 3 automatic background: light blue
    (255, 170, 60),  # 4 automatic foreground: orange
    (0, 60, 160),  # 5 automatic hard background: dark blue
    (160, 0, 0),  # 6 automatic hard foreground: dark red
)


def encode_rle(is_foreground_hw: np.ndarray) -> dict:
    """COCO uncompressed RLE of a boolean (H, W) mask."""
    mask = np.asarray(is_foreground_hw, dtype=bool)
    flat = mask.ravel(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts  # COCO counts always start with a run of zeros
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def decode_rle(rle: dict) -> np.ndarray:
    """The boolean (H, W) mask of a COCO uncompressed RLE; ValueError if it does not add up."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = np.asarray(rle["counts"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"Not an uncompressed COCO RLE ({exc}); expected {{'size': [H, W], 'counts': [...]}}.") from exc
    if counts.ndim != 1 or (counts < 0).any() or counts.sum() != h * w:
        raise ValueError(f"The RLE counts add up to {int(counts.sum())} pixels, not {h}×{w} = {h * w}.")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape((h, w), order="F")


def mask_iou(a_hw: np.ndarray, b_hw: np.ndarray) -> float:
    """Intersection over union of two boolean masks of the same shape (1.0 when both are empty)."""
    if a_hw.shape != b_hw.shape:
        raise ValueError(f"Masks differ in size: {a_hw.shape[::-1]} and {b_hw.shape[::-1]} (W, H).")
    union = np.logical_or(a_hw, b_hw).sum()
    return 1.0 if union == 0 else float(np.logical_and(a_hw, b_hw).sum() / union)


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """IoU of two (x0, y0, x1, y1) boxes, x1/y1 exclusive."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union <= 0 else float(inter / union)


def encode_seed_map(seeds_hw: np.ndarray) -> bytes:
    """Palette PNG bytes of a seed-code map."""
    image = Image.fromarray(np.asarray(seeds_hw, dtype=np.uint8), mode="P")
    image.putpalette([c for colour in SEED_COLOURS for c in colour])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_seed_map(data: bytes, *, hand_only: bool = True) -> np.ndarray:
    """Seed codes (H, W) uint8 from a palette or greyscale PNG; ``hand_only`` keeps codes 1 and 2
    (the automatic ones are recomputed from the saliency map)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode not in ("P", "L"):
                raise ValueError(f"A seed map is a palette or greyscale PNG of codes 0..{AUTO_HARD_FOREGROUND}; "
                                 f"this image is {image.mode}.")
            codes = np.asarray(image, dtype=np.uint8).copy()
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"The seed map is not a readable PNG ({exc}).") from exc
    if codes.max(initial=0) > AUTO_HARD_FOREGROUND:
        raise ValueError(f"A seed map holds codes 0..{AUTO_HARD_FOREGROUND}; found {codes.max()}.")
    return np.where(np.isin(codes, HAND_CODES), codes, 0).astype(np.uint8) if hand_only else codes


def colour_seeds(seeds_hw: np.ndarray) -> np.ndarray:
    """RGBA (H, W, 4) uint8 overlay of a seed map: each code in its colour, no seed transparent."""
    palette = np.array([c + (255,) for c in SEED_COLOURS], np.uint8)
    palette[0, 3] = 0
    return palette[seeds_hw]
