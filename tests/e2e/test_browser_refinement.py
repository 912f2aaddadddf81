"""Click and box modes on the segmentation page, in a real browser (issue 17), and the mask on the canvas
(issue 27).

A negative click inside the automatic mask removes the region around it, not only the clicked disc;
"Undo last click" brings the automatic mask back exactly; a positive click outside the mask adds
the clicked place. A box dragged around part of the photo leaves nothing of the mask outside it.
The mask is read from the page's own "Mask (PNG)" download, at the photo's resolution. The canvas's
background, read back from the browser's own canvas element, carries that mask before and after a click,
and the toggle shows the seeds alone.
"""
from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect
from scipy import ndimage

from engine.images import load_image
from engine.render import fit
from engine.segmentation import masks
from tests.e2e.browser import (
    after_background_changes,
    as_png,
    canvas_background,
    click_photo,
    download,
    error_alert,
    expect_no_exception,
    open_page,
    settle,
    shot,
)
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e
DISC = np.pi * 5 ** 2  # a click's disc at the photo's resolution (engine.segmentation.clicks.RADIUS)


def _mask(page) -> np.ndarray:
    settle(page)
    return np.asarray(as_png(download(page, "Mask (PNG)"))) > 0


def _radio(page, group: str, option: str) -> None:
    page.locator('[data-testid="stRadio"]').filter(has_text=group).get_by_text(option, exact=True).click()
    settle(page)


def _after(page, action) -> None:
    """Do ``action`` and wait until the canvas shows the mask after it."""
    after_background_changes(page, action)


def _deepest(region: np.ndarray) -> tuple[int, int]:
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(distance.argmax()), distance.shape)
    return int(y), int(x)



def test_clicks_move_the_mask_by_region_and_undo_takes_the_last_one_back(page, server):
    open_page(page, server.url, "segmentation")
    canvas = page.locator("canvas.upper-canvas").first
    expect(canvas).to_be_visible()
    automatic = _mask(page)
    assert automatic.any() and not automatic.all()

    _radio(page, "Input", "Clicks")
    canvas = page.locator("canvas.upper-canvas").first
    canvas.scroll_into_view_if_needed()
    _radio(page, "Click", "not the object")
    inside = _deepest(automatic)
    click_photo(page, canvas, inside, automatic.shape)
    removed = _mask(page)
    y, x = inside
    assert not removed[y - 3:y + 4, x - 3:x + 4].any()  # the clicked disc is background
    assert (automatic & ~removed).sum() > 10 * DISC  # ... and so is the region around it, not only the disc
    shot(page, "refinement_negative_click")

    _after(page, lambda: page.get_by_role("button", name="Undo last click").click())
    assert np.array_equal(_mask(page), automatic)  # no click left: the automatic mask, exactly

    _radio(page, "Click", "object")
    canvas = page.locator("canvas.upper-canvas").first
    outside = _deepest(~automatic)
    click_photo(page, canvas, outside, automatic.shape)
    added = _mask(page)
    y, x = outside
    assert added[y - 3:y + 4, x - 3:x + 4].all()  # the clicked place is the object now
    assert added.sum() > automatic.sum()
    expect(error_alert(page)).to_have_count(0)
    expect_no_exception(page)
    shot(page, "refinement_positive_click")


def test_a_box_leaves_nothing_of_the_mask_outside_it(page, server):
    open_page(page, server.url, "segmentation")
    automatic = _mask(page)
    _radio(page, "Input", "Box")
    canvas = page.locator("canvas.upper-canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    start, end = (0.30, 0.25), (0.75, 0.90)  # canvas fractions: around the cat's head, cutting through the mask

    def drag():
        page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=15)
        page.mouse.up()

    _after(page, drag)
    mask = _mask(page)
    h, w = mask.shape
    x0, y0, x1, y1 = round(start[0] * w), round(start[1] * h), round(end[0] * w), round(end[1] * h)
    outside = np.ones_like(mask)
    outside[y0 - 3:y1 + 3, x0 - 3:x1 + 3] = False  # a few pixels' slack for the canvas's rounding
    assert mask.any() and not mask[outside].any()
    assert automatic[outside].any()  # the automatic mask did reach outside the box: the box changed it
    seeds = np.asarray(as_png(download(page, "Seed map (PNG)")))
    assert seeds.shape == mask.shape
    expect(error_alert(page)).to_have_count(0)
    expect_no_exception(page)
    shot(page, "refinement_box")


def _mask_on_canvas(page, photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask the canvas's background shows, read back pixel by pixel: a pixel is in the mask when it is nearer
    the photo tinted with the mask's colour (``masks.draw_mask``'s fill) than the photo; and the canvas's size."""
    shown = canvas_background(page).astype(float)
    small = fit(photo, shown.shape[:2]).astype(float)
    tinted = masks.draw_mask(small.astype(np.uint8), np.ones(shown.shape[:2], bool), opacity=masks.MASK_OPACITY).astype(float)
    return np.abs(shown - tinted).sum(-1) < np.abs(shown - small).sum(-1), shown


def _agreement(on_canvas: np.ndarray, mask: np.ndarray, seeds: np.ndarray) -> float:
    """How much of the canvas's mask is ``mask`` (at the canvas's size), away from the seeds drawn over it and
    from the mask's edges (the outline, JPEG's blur)."""
    from scipy import ndimage

    expected = fit(mask, on_canvas.shape)
    readable = (fit(seeds, on_canvas.shape) == 0) & ~ndimage.binary_dilation(
        ndimage.binary_dilation(expected) & ~ndimage.binary_erosion(expected), iterations=2)
    return float((on_canvas == expected)[readable].mean())


def test_the_mask_is_drawn_on_the_canvas_and_changes_there_after_a_click(page, server):
    photo = load_image((ROOT / "assets" / "cat.jpg").read_bytes())
    open_page(page, server.url, "segmentation")
    automatic = _mask(page)
    seeds = np.asarray(as_png(download(page, "Seed map (PNG)")))
    first, shown = _mask_on_canvas(page, photo)
    assert shown.shape[1] == 512  # the canvas's own pixels (ui.canvas.CANVAS_WIDTH): the background is encoded at that size
    assert first.mean() > 0.05 and _agreement(first, automatic, seeds) > 0.98  # the automatic mask, on the canvas

    _radio(page, "Input", "Clicks")
    canvas = page.locator("canvas.upper-canvas").first
    canvas.scroll_into_view_if_needed()
    _radio(page, "Click", "not the object")
    click_photo(page, canvas, _deepest(automatic), automatic.shape)  # returns once the canvas's background has changed
    removed = _mask(page)
    assert (automatic & ~removed).sum() > 10 * DISC
    clicked, _ = _mask_on_canvas(page, photo)
    seeds = np.asarray(as_png(download(page, "Seed map (PNG)")))
    assert _agreement(clicked, removed, seeds) > 0.98  # the new mask, on the canvas itself
    assert _agreement(clicked, automatic, seeds) < 0.97  # ... not the one before the click
    shot(page, "refinement_mask_on_canvas")

    toggle = page.locator('[data-testid="stCheckbox"]').filter(has_text="Mask")
    after_background_changes(page, lambda: toggle.locator("label").click())
    alone, _ = _mask_on_canvas(page, photo)
    assert _agreement(alone, np.zeros_like(removed), seeds) > 0.98  # the seeds alone: no mask drawn
    expect(error_alert(page)).to_have_count(0)
    expect_no_exception(page)
