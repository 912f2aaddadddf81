"""Segmentation in a real browser: paint on the canvas with the mouse and watch the mask follow.

A background stroke across the object removes the mask there; a foreground stroke outside it adds
the mask there; the canvas's Undo takes the last stroke back and the mask with it. The mask is read
from the page's own "Mask (PNG)" download, at the photo's resolution.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import (
    as_json,
    as_png,
    brush,
    download,
    error_alert,
    expect_no_exception,
    image_sources,
    open_page,
    settle,
    shot,
    stroke,
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


def _background_band(mask: np.ndarray, length: float = 0.15):
    """The horizontal stroke (canvas fractions) with the least foreground under it, away from the edges."""
    candidates = [((x, y), (x + length, y)) for y in np.arange(0.05, 0.96, 0.05) for x in np.arange(0.03, 0.83, 0.05)]
    return min(candidates, key=lambda stroke: _band(mask, *stroke).mean())


def test_painting_seeds_moves_the_mask_and_undo_restores_it(page, server):
    open_page(page, server.url, "segmentation")
    canvas = page.locator("canvas.upper-canvas").first
    expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert abs(box["width"] / box["height"] - CAT_WH[0] / CAT_WH[1]) < 0.02
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
    shot(page, "segmentation_background_stroke")

    outside = _background_band(shrunk)  # where the mask is background now (the default cut takes most of the cat photo)
    assert _band(shrunk, *outside).mean() < 0.5
    brush(page, "foreground")
    stroke(page, canvas.bounding_box(), *outside)
    grown = _mask(page)
    assert _band(grown, *outside, half=1).mean() > 0.95  # hard foreground under the stroke
    assert grown.sum() > shrunk.sum()
    shot(page, "segmentation_foreground_stroke")

    before = image_sources(page)
    page.get_by_role("button", name="Undo", exact=True).click()
    page.wait_for_function("""(before) => Array.from(document.querySelectorAll('[data-testid="stImage"] img'))
                              .map(i => i.src).join(' ') !== before""", arg=before, polling=200)
    settle(page)
    undone = _mask(page)
    assert (undone == shrunk).mean() > 0.999  # back to the mask after the background stroke
    expect(error_alert(page)).to_have_count(0)
    expect_no_exception(page)
    shot(page, "segmentation_undo")

    record = as_json(download(page, re.compile(r"^Box, settings and mask")))
    assert record["image_size"] == list(CAT_WH) and record["mask_rle"]["size"] == [CAT_WH[1], CAT_WH[0]]
    seeds = np.asarray(as_png(download(page, "Seed map (PNG)")))
    assert seeds.shape == CAT_WH[::-1]
