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

from tests.e2e.browser import (as_json, as_png, download, error_alert, expect_no_exception, open_page, settle,
                               shot)

pytestmark = pytest.mark.e2e
CAT_WH = (451, 300)  # the default demo photo


def _mask(page) -> np.ndarray:
    settle(page)
    return np.asarray(as_png(download(page, "Mask (PNG)"))) > 0


def _brush(page, name: str) -> None:
    page.locator('[data-testid="stRadio"]').filter(has_text="Brush").get_by_text(name, exact=True).click()
    settle(page)


def _stroke(page, canvas_box, start, end) -> None:
    """Drag the mouse from ``start`` to ``end`` (fractions of the canvas) with the button down."""
    x0, y0 = canvas_box["x"] + start[0] * canvas_box["width"], canvas_box["y"] + start[1] * canvas_box["height"]
    x1, y1 = canvas_box["x"] + end[0] * canvas_box["width"], canvas_box["y"] + end[1] * canvas_box["height"]
    before = _sources(page)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=20)
    page.mouse.up()
    # the canvas sends the drawing 200 ms later; the server redraws the seed image
    page.wait_for_function("""(before) => Array.from(document.querySelectorAll('[data-testid="stImage"] img'))
                              .map(i => i.src).join(' ') !== before""", arg=before, polling=200)
    settle(page)


def _sources(page) -> str:
    return page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid="stImage"] img'))
                            .map(i => i.src).join(' ')""")


def _band(mask: np.ndarray, start, end, half: int = 2) -> np.ndarray:
    """The mask's pixels under a horizontal stroke given in canvas fractions (photo coordinates)."""
    height, width = mask.shape
    row = round(start[1] * height)
    return mask[row - half: row + half + 1, round(start[0] * width): round(end[0] * width)]


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
    _brush(page, "background")
    _stroke(page, canvas.bounding_box(), *across)
    shrunk = _mask(page)
    assert _band(shrunk, *across, half=1).mean() < 0.05  # hard background under the stroke
    assert shrunk.sum() < automatic.sum()
    shot(page, "segmentation_background_stroke")

    outside = ((0.03, 0.06), (0.20, 0.06))  # the top-left corner: background in the automatic mask
    assert _band(shrunk, *outside).mean() < 0.5
    _brush(page, "foreground")
    _stroke(page, canvas.bounding_box(), *outside)
    grown = _mask(page)
    assert _band(grown, *outside, half=1).mean() > 0.95  # hard foreground under the stroke
    assert grown.sum() > shrunk.sum()
    shot(page, "segmentation_foreground_stroke")

    before = _sources(page)
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
