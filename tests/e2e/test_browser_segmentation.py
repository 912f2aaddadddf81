"""Segmentation in a real browser: paint on the canvas with the mouse and watch the mask follow.

A background stroke across the object removes the mask there; a foreground stroke outside it adds
the mask there; the canvas's Undo takes the last stroke back and the mask with it. The canvas is the copy
of streamlit-drawable-canvas's frontend that reports a stroke at mouse-up (``ui.canvas_frontend.canvas_component``). The mask is read
from the page's own "Mask (PNG)" download, at the photo's resolution. On a 12 MP photo, shown at a
fraction of its size, the downloads keep the photo's size and the picture shown is that mask.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

import ui.canvas_frontend
from tests.e2e.browser import (
    after_background_changes,
    as_json,
    as_png,
    brush,
    caption,
    download,
    error_alert,
    expect_no_exception,
    open_page,
    settle,
    shot,
    stroke,
    upload,
)

pytestmark = pytest.mark.e2e
CAT_WH = (451, 300)  # the default demo photo


def _mask(page) -> np.ndarray:
    settle(page)
    return np.asarray(as_png(download(page, "Mask (PNG)"))) > 0


def _band(mask: np.ndarray, start, end, half: int = 2) -> np.ndarray:
    """The mask's pixels under a horizontal stroke given in canvas fractions (photo coordinates)."""
    height, width = mask.shape
    row = round(start[1] * height)
    return mask[row - half: row + half + 1, round(start[0] * width): round(end[0] * width)]


def _background_band(mask: np.ndarray, length: float = 0.15, away_from: float | None = None):
    """The horizontal stroke (canvas fractions) with the least foreground under it, away from the edges
    (and from the row ``away_from``, where an earlier stroke said the opposite)."""
    candidates = [((x, y), (x + length, y)) for y in np.arange(0.05, 0.96, 0.05) for x in np.arange(0.03, 0.83, 0.05)
                  if away_from is None or abs(y - away_from) > 0.12]
    return min(candidates, key=lambda stroke: _band(mask, *stroke).mean())


def test_painting_seeds_moves_the_mask_and_undo_restores_it(page, server):
    open_page(page, server.url, "segmentation")
    canvas = page.locator("canvas.upper-canvas").first
    expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert abs(box["width"] / box["height"] - CAT_WH[0] / CAT_WH[1]) < 0.02
    # the canvas is the copy that reports a stroke at mouse-up (ui.canvas_frontend.canvas_component), served by this server
    scripts = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert any(f"/_stcore/bidi-components/{ui.canvas_frontend.FAST_CANVAS}/index-" in name for name in scripts), scripts
    automatic = _mask(page)
    assert automatic.shape == CAT_WH[::-1] and automatic.any()
    shot(page, "segmentation_automatic")

    across = ((0.30, 0.50), (0.70, 0.50))  # through the middle of the cat's face
    assert _band(automatic, *across).mean() > 0.5, "the automatic mask should cover the face"
    brush(page, "background")
    stroke(page, canvas.bounding_box(), *across)
    shrunk = _mask(page)
    assert _band(shrunk, *across, half=1).mean() < 0.05  # hard background under the stroke
    assert shrunk.sum() < automatic.sum()
    canvas.evaluate("el => el.scrollIntoView({block: 'center'})")  # the whole canvas in the picture (the README's)
    shot(page, "segmentation_background_stroke")

    outside = _background_band(shrunk, away_from=across[0][1])  # background now, not under the background stroke
    assert _band(shrunk, *outside).mean() < 0.5
    brush(page, "foreground")
    stroke(page, canvas.bounding_box(), *outside)
    grown = _mask(page)
    assert _band(grown, *outside, half=1).mean() > 0.95  # hard foreground under the stroke
    assert grown.sum() > shrunk.sum()
    shot(page, "segmentation_foreground_stroke")

    after_background_changes(page, lambda: page.get_by_role("button", name="Undo", exact=True).click())  # the mask on the canvas
    undone = _mask(page)
    assert (undone == shrunk).mean() > 0.999  # back to the mask after the background stroke
    expect(error_alert(page)).to_have_count(0)
    expect_no_exception(page)
    shot(page, "segmentation_undo")

    record = as_json(download(page, re.compile(r"^Box, settings and mask")))
    assert record["image_size"] == list(CAT_WH) and record["mask_rle"]["size"] == [CAT_WH[1], CAT_WH[0]]
    seeds = np.asarray(as_png(download(page, "Seed map (PNG)")))
    assert seeds.shape == CAT_WH[::-1]


def _phone_photo() -> tuple[bytes, np.ndarray]:
    """The cat demo as a 4000×3000 JPEG (a phone photo's size), and its pixels as the page decodes them."""
    from PIL import Image

    from engine.images import load_image

    buffer = io.BytesIO()
    Image.open(Path(__file__).resolve().parents[2] / "assets" / "cat.jpg").resize((4000, 3000), Image.Resampling.BICUBIC).save(
        buffer, format="JPEG", quality=90)
    return buffer.getvalue(), load_image(buffer.getvalue())


def _shown_mask(page, photo: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The "After edits" picture as the browser got it, read back as a mask at its own size (the background
    is drawn at 35% brightness, the object at 100%), and the box its caption gives."""
    from engine.images import load_image
    from engine.render import display_shape, fit
    from ui.pictures import SHOWN_SIDE

    box = tuple(int(v) for v in re.findall(r"\d+", caption(page, re.compile(r"^After edits: box")).inner_text()))
    src = page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid="stImage"]'))
        .find(el => el.querySelector('[data-testid="stImageCaption"]')?.textContent.startsWith('After edits'))
        .querySelector('img').src""")
    shown = load_image(page.context.request.get(src).body())
    small = fit(photo, display_shape(photo.shape, SHOWN_SIDE))
    assert shown.shape == small.shape
    luma_shown, luma_photo = shown.astype(float).mean(-1), small.astype(float).mean(-1)
    readable = luma_photo > 40  # dark pixels look alike dimmed or not
    return np.where(readable, luma_shown > 0.675 * luma_photo, False), readable, box


def _edges(mask: np.ndarray, width: int = 2) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=width) & ~ndimage.binary_erosion(mask, iterations=width)


def _box_frame(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The box's outline as drawn at ``shape`` (a 3-pixel frame)."""
    from engine.render import fit_box
    from engine.segmentation import cut as seg

    frame = np.zeros(shape, bool)
    x0, y0, x1, y1 = fit_box(seg.bounding_box(mask), mask.shape, shape)
    frame[y0:y1, x0:x1] = True
    frame[y0 + 3:y1 - 3, x0 + 3:x1 - 3] = False
    return frame


def test_on_a_12_mp_photo_the_downloads_keep_its_size_and_the_picture_shown_is_the_mask_downloaded(page, server):
    from engine.render import display_shape, fit
    from engine.segmentation import cut as seg
    from ui.pictures import SHOWN_SIDE

    data, photo = _phone_photo()
    open_page(page, server.url, "segmentation")
    demo = caption(page, re.compile(r"^After edits: box")).inner_text()
    # the new photo is on the canvas (the demo's caption and mask stay on screen until its first run has ended,
    # and on a busy machine that run's rerun may come more than settle()'s quiet period later: wait for its box)
    after_background_changes(page, lambda: upload(page, "phone.jpg", data), timeout_ms=300_000)
    expect(caption(page, re.compile(r"^After edits: box"))).not_to_have_text(demo, timeout=300_000)
    canvas = page.locator("canvas.upper-canvas").first
    canvas.scroll_into_view_if_needed()
    automatic = _mask(page)
    assert automatic.shape == (3000, 4000)
    across = ((0.30, 0.50), (0.70, 0.50))  # the cat's face, as on the demo photo
    assert _band(automatic, *across).mean() > 0.5
    brush(page, "background")
    stroke(page, canvas.bounding_box(), *across)
    brush(page, "foreground")
    outside = _background_band(automatic)
    stroke(page, canvas.bounding_box(), *outside)
    shot(page, "segmentation_12mp_strokes")

    mask = _mask(page)  # the photo's size, the strokes applied at full resolution
    assert mask.shape == (3000, 4000)
    assert _band(mask, *across, half=8).mean() < 0.05 and _band(mask, *outside, half=8).mean() > 0.95
    seeds = np.asarray(as_png(download(page, "Seed map (PNG)")))
    assert seeds.shape == (3000, 4000) and (seeds == seg.HAND_BACKGROUND).any() and (seeds == seg.HAND_FOREGROUND).any()
    record = as_json(download(page, re.compile(r"^Box, settings and mask")))
    assert record["image_size"] == [4000, 3000] and record["area"] == int(mask.sum())

    shown, readable, box = _shown_mask(page, photo)
    assert box == seg.bounding_box(mask) == tuple(record["bbox"])
    expected = fit(mask, display_shape(photo.shape, SHOWN_SIDE))
    away = readable & ~_edges(expected) & ~_edges(_box_frame(mask, expected.shape))  # JPEG blurs edges and the box
    assert (shown == expected)[away].mean() > 0.999  # the picture is the downloaded mask
    assert (shown == fit(automatic, expected.shape))[away].mean() < 0.99  # ... and not the mask before the strokes
    expect(error_alert(page)).to_have_count(0)
    expect_no_exception(page)
