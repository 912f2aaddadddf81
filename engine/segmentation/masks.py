"""Masks, boxes and seed maps on disk, for the segmentation of §3.2 (Simonyan, Vedaldi & Zisserman 2013).

- Masks: COCO run-length encoding, uncompressed ``{"size": [H, W], "counts": [...]}``: counts of
  alternating 0s and 1s, starting with 0s, over the mask read column by column (Fortran order), as
  ``pycocotools`` writes it for ``iscrowd=1``.
- Boxes: ``(x0, y0, x1, y1)`` in pixels with x1, y1 exclusive; IoU as the ILSVRC protocol counts it.
- Seed maps: an 8-bit palette PNG whose pixel values are the codes of ``engine.segmentation.cut``
  (0 none, 1 hand background, 2 hand foreground, 3 automatic background, 4 automatic foreground,
  5/6 automatic hard background/foreground); the palette only makes them visible in a viewer.
  A greyscale PNG with the same values reads the same.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from engine.images import MAX_PIXELS
from engine.segmentation.cut import AUTO_HARD_FOREGROUND, HAND_BACKGROUND, HAND_CODES, HAND_FOREGROUND, NONE

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
        raw = list(rle["counts"])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"Not an uncompressed COCO RLE ({exc}); expected {{'size': [H, W], 'counts': [...]}}.") from exc
    if not (0 < h and 0 < w and h * w <= MAX_PIXELS):
        raise ValueError(f"The RLE's size {h}×{w} is outside 1 pixel .. {MAX_PIXELS / 1e6:.0f} MP.")
    if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c <= h * w for c in raw):
        raise ValueError(f"The RLE counts must be whole numbers of pixels in 0..{h * w}.")
    counts = np.asarray(raw, dtype=np.int64)
    if counts.ndim != 1 or counts.sum() != h * w:
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
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError(f"The seed map is {image.width}×{image.height}; the limit is {MAX_PIXELS / 1e6:.0f} MP.")
            if image.mode not in ("P", "L"):
                raise ValueError(f"A seed map is a palette or greyscale PNG of codes 0..{AUTO_HARD_FOREGROUND}; "
                                 f"this image is {image.mode}.")
            codes = np.asarray(image, dtype=np.uint8).copy()
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"The seed map is not a readable PNG ({exc}).") from exc
    if codes.max(initial=0) > AUTO_HARD_FOREGROUND:
        raise ValueError(f"A seed map holds codes 0..{AUTO_HARD_FOREGROUND}; found {codes.max()}.")
    return np.where(np.isin(codes, HAND_CODES), codes, 0).astype(np.uint8) if hand_only else codes


def colour_seeds(seeds_hw: np.ndarray) -> np.ndarray:
    """RGBA (H, W, 4) uint8 overlay of a seed map: each code in its colour, no seed transparent."""
    palette = np.array([c + (255,) for c in SEED_COLOURS], np.uint8)
    palette[0, 3] = 0
    return palette[seeds_hw]


STROKE_COLOURS = {  # canvas brush colour per meaning: hand foreground, hand background, erase
    HAND_FOREGROUND: SEED_COLOURS[HAND_FOREGROUND], HAND_BACKGROUND: SEED_COLOURS[HAND_BACKGROUND], NONE: (255, 255, 255),
}


def seeds_from_strokes(strokes_rgba: np.ndarray, shape: tuple[int, int], under_hw: np.ndarray | None = None) -> np.ndarray:
    """Hand seed codes (H, W) at image resolution from a drawing canvas' RGBA pixels (any size).

    Each painted pixel (alpha > 0) takes the code of the nearest ``STROKE_COLOURS`` entry, the
    topmost stroke winning as on the canvas; erase strokes clear the seeds of ``under_hw`` (e.g. a
    resumed seed map), which shows through where nothing was painted."""
    rgba = np.asarray(strokes_rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"Canvas pixels must be (h, w, 4) RGBA; got {rgba.shape}.")
    codes = np.array(list(STROKE_COLOURS), np.uint8)
    palette = np.array(list(STROKE_COLOURS.values()), np.float32)  # (3, 3)
    distance = ((rgba[:, :, None, :3].astype(np.float32) - palette) ** 2).sum(-1)  # (h, w, 3)
    painted = np.where(rgba[:, :, 3] > 0, codes[distance.argmin(-1)], 255).astype(np.uint8)  # 255: unpainted
    painted = np.asarray(Image.fromarray(painted).resize(shape[::-1], Image.Resampling.NEAREST))
    base = np.zeros(shape, np.uint8) if under_hw is None else np.asarray(under_hw, np.uint8)
    return np.where(painted == 255, base, painted).astype(np.uint8)


def draw_result(image_hwc: np.ndarray, is_foreground_hw: np.ndarray, bbox, *, colour=(40, 220, 90)) -> np.ndarray:
    """Display: the background dimmed, the object at full brightness, its box outlined (3 px)."""
    out = np.where(is_foreground_hw[:, :, None], image_hwc, (image_hwc * 0.35).astype(np.uint8)).astype(np.uint8)
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        t = max(1, min(3, (x1 - x0) // 4, (y1 - y0) // 4))
        for ys, xs in ((slice(y0, y0 + t), slice(x0, x1)), (slice(y1 - t, y1), slice(x0, x1)),
                       (slice(y0, y1), slice(x0, x0 + t)), (slice(y0, y1), slice(x1 - t, x1))):
            out[ys, xs] = colour
    return out


MASK_COLOUR = (40, 220, 90)  # green: none of the seeds' colours, so both read on one picture
MASK_OPACITY = 0.4  # the photo still shows through where the mask is (CVAT's and Label Studio's default looks alike)


def mask_outline(is_foreground_hw: np.ndarray) -> np.ndarray:
    """The mask's pixels with a 4-neighbour outside it (the photo's border is not outside: a mask that runs to
    the edge is not outlined along it)."""
    padded = np.pad(is_foreground_hw.astype(bool), 1, mode="edge")
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return is_foreground_hw.astype(bool) & ~inside


def _blend_at(out_hwc: np.ndarray, where_flat: np.ndarray, colours, opacity: float) -> None:
    """``colours`` (RGB, or one per pixel) at ``opacity`` over ``out_hwc``'s pixels at the flat indices ``where_flat``,
    in place. Only those pixels are touched: drawn on every input, a full-photo pass in floats cost 10-20 ms."""
    pixels = out_hwc.reshape(-1, 3)
    blended = pixels[where_flat].astype(np.float32) * np.float32(1 - opacity) + np.asarray(colours, np.float32) * np.float32(opacity)
    pixels[where_flat] = blended.round().astype(np.uint8)


def draw_mask(image_hwc: np.ndarray, is_foreground_hw: np.ndarray, *, opacity: float = MASK_OPACITY,
              colour=MASK_COLOUR) -> np.ndarray:
    """Display: the mask filled with ``colour`` at ``opacity`` over the photo, its outline in ``colour``."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity is a fraction in [0, 1]; got {opacity}")
    out = np.ascontiguousarray(image_hwc, np.uint8).copy()
    _blend_at(out, np.flatnonzero(is_foreground_hw), colour, opacity)
    out.reshape(-1, 3)[np.flatnonzero(mask_outline(is_foreground_hw))] = colour
    return out


def draw_outlines(image_hwc: np.ndarray, masks_hw, *, colour=(255, 215, 0)) -> np.ndarray:
    """Display: each mask's outline (``mask_outline``) drawn over the photo in ``colour``."""
    out = np.array(image_hwc, dtype=np.uint8, copy=True)
    for mask in masks_hw:
        out[mask_outline(mask)] = colour
    return out


def draw_seeds(image_hwc: np.ndarray, seeds_hw: np.ndarray, *, opacity: float = 0.75) -> np.ndarray:
    """Display: each seed pixel tinted with its code's colour over the photo."""
    out = np.ascontiguousarray(image_hwc, np.uint8).copy()
    seeded = np.flatnonzero(seeds_hw)
    _blend_at(out, seeded, np.array(SEED_COLOURS, np.uint8)[seeds_hw.reshape(-1)[seeded]], opacity)
    return out


def draw_mask_with_seeds(image_hwc: np.ndarray, is_foreground_hw: np.ndarray | None, seeds_hw: np.ndarray, *,
                         opacity: float = MASK_OPACITY) -> np.ndarray:
    """Display, as the seed canvas shows it: the mask (``draw_mask``) with the hand seeds over it; without a
    mask (None), every seed. The model's seeds are left off a mask: they cover most of a photo (the map's top
    and bottom quantiles) and would hide it."""
    if is_foreground_hw is None:
        return draw_seeds(image_hwc, seeds_hw)
    hand = np.where(np.isin(seeds_hw, HAND_CODES), seeds_hw, NONE).astype(np.uint8)
    return draw_seeds(draw_mask(image_hwc, is_foreground_hw, opacity=opacity), hand)
