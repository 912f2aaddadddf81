"""Click and box modes on the segmentation page, in a real browser (issue 17).

A negative click inside the automatic mask removes the region around it, not only the clicked disc;
"Undo last click" brings the automatic mask back exactly; a positive click outside the mask adds
the clicked place. A box dragged around part of the photo leaves nothing of the mask outside it.
The mask is read from the page's own "Mask (PNG)" download, at the photo's resolution.
"""
from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect
from scipy import ndimage

from tests.e2e.browser import as_png, download, error_alert, expect_no_exception, image_sources, open_page, settle, shot

pytestmark = pytest.mark.e2e
DISC = np.pi * 5 ** 2  # a click's disc at the photo's resolution (engine.segmentation.clicks.RADIUS)


def _mask(page) -> np.ndarray:
    settle(page)
    return np.asarray(as_png(download(page, "Mask (PNG)"))) > 0


def _radio(page, group: str, option: str) -> None:
    page.locator('[data-testid="stRadio"]').filter(has_text=group).get_by_text(option, exact=True).click()
    settle(page)


def _after(page, action) -> None:
    """Do ``action`` and wait until the page has redrawn its pictures after it."""
    before = image_sources(page)
    action()
    page.wait_for_function("""(before) => Array.from(document.querySelectorAll('[data-testid="stImage"] img'))
                              .map(i => i.src).join(' ') !== before""", arg=before, polling=200)
    settle(page)


def _deepest(region: np.ndarray) -> tuple[int, int]:
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(distance.argmax()), distance.shape)
    return int(y), int(x)


def _click(page, canvas, yx, shape) -> None:
    box = canvas.bounding_box()
    x = box["x"] + (yx[1] + 0.5) / shape[1] * box["width"]
    y = box["y"] + (yx[0] + 0.5) / shape[0] * box["height"]
    _after(page, lambda: page.mouse.click(x, y))


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
    _click(page, canvas, inside, automatic.shape)
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
    _click(page, canvas, outside, automatic.shape)
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
