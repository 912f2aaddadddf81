"""Showcase-ready in a real browser: Home's gallery on screen without a click, a deep link restoring a
page in a fresh browser context (and its "Link to this view" doing the same), a bad link falling back
with a note, and the figure for slides downloading as a picture."""
from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from engine.runs.gallery import read_gallery
from tests.e2e.browser import (
    as_png,
    caption,
    download,
    expect_images_decoded,
    expect_no_exception,
    open_page,
    settle,
    shot,
)
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e
GALLERY = read_gallery(ROOT / "assets" / "gallery")
HOME_IMAGES = len(GALLERY.tiles) + len(GALLERY.section("3.1"))  # §3.1 shows each photo over its map
LINK = "saliency?image=espresso&class=967&views=10&opacity=0.3"


def expect_all_pictures(page, count: int) -> None:
    """Wait until ``count`` pictures in the main area are decoded by the browser (Home's are HTML <img>)."""
    page.wait_for_function("""(count) => Array.from(document.querySelectorAll('[data-testid="stMain"] img'))
                              .filter(img => img.complete && img.naturalWidth > 0).length === count""", arg=count, polling=100)


def test_home_shows_the_gallery_without_a_click_and_a_tile_opens_its_page(page, server):
    page.goto(server.url)
    expect_all_pictures(page, HOME_IMAGES)  # every tile, before any click
    settle(page)
    expect(page.get_by_role("heading", name="§2 Class model visualisation")).to_be_visible()
    for tile in (GALLERY.tiles[0], GALLERY.section("4")[-1]):
        expect(page.locator("figcaption").filter(has_text=tile["caption"])).to_be_visible()
    expect_no_exception(page)
    shot(page, "home_gallery")
    rule = GALLERY.section("4")[-1]  # guided backprop on the cat
    page.get_by_role("link", name="Open in its page").nth(GALLERY.tiles.index(rule)).click()
    settle(page)
    expect(page).to_have_url(re.compile(r"/backward_rules\?class=282$"))  # image=cat is the default: left out
    expect(caption(page, f"max-abs map for “{rule['label']}”").first).to_be_visible()
    expect_no_exception(page)


def test_a_deep_link_restores_the_page_in_a_fresh_browser_and_its_copy_link_does_too(page, browser, server):
    open_page(page, server.url, LINK)
    expect(caption(page, "espresso (600×400)")).to_be_visible()
    expect(caption(page, "Saliency for “espresso”")).to_be_visible()
    expect(page.get_by_role("combobox", name="Demo image")).to_have_value("espresso")
    expect(page.locator('[data-testid="stRadio"]').filter(has_text="Views").get_by_role("radio", name="10 views")).to_be_checked()
    expect(page.locator('[data-testid="stSlider"]').filter(has_text="Overlay opacity")).to_contain_text("0.30")
    expect_images_decoded(page, 3)
    page.get_by_role("button", name="Link to this view").click()
    copied = page.locator('[data-testid="stPopoverBody"] [data-testid="stCode"]').inner_text().strip()
    assert copied.startswith(f"{server.url}/saliency?") and "image=espresso" in copied and "views=10" in copied
    shot(page, "deep_link_saliency")

    fresh = browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        other = fresh.new_page()
        other.goto(copied)
        settle(other)
        expect(caption(other, "espresso (600×400)")).to_be_visible()
        expect(caption(other, "Saliency for “espresso”")).to_be_visible()
        expect(other.get_by_role("combobox", name="Demo image")).to_have_value("espresso")
        expect_images_decoded(other, 3)
        expect_no_exception(other)
    finally:
        fresh.close()


def test_a_bad_link_falls_back_to_the_defaults_with_a_note(page, server):
    open_page(page, server.url, "saliency?image=unicorn&class=not-a-class&views=7")
    alerts = page.locator('[data-testid="stAlertContentWarning"]')
    for name in ("image=unicorn", "class=not-a-class", "views=7"):
        expect(alerts.filter(has_text=f"{name} cannot be used")).to_be_visible()
    expect(caption(page, "cat (451×300)")).to_be_visible()  # the default photo, shown
    expect_images_decoded(page, 3)
    expect(page).to_have_url(re.compile(r"/saliency$"))  # the bad values left the URL
    expect_no_exception(page)
    shot(page, "bad_link_saliency")


def test_the_figure_for_slides_downloads_as_png_and_svg(page, server):
    open_page(page, server.url, "saliency?image=espresso")
    expect_images_decoded(page, 3)
    figure = as_png(download(page, "Figure (PNG)"))
    pixels = np.asarray(figure.convert("RGB"))
    assert figure.width > 600 and (pixels == 255).all(axis=-1).mean() > 0.05  # panels on white paper
    svg = ElementTree.fromstring(download(page, "Figure (SVG)"))
    images = svg.findall("{http://www.w3.org/2000/svg}image")
    assert len(images) == 3
    panel = Image.open(io.BytesIO(__import__("base64").b64decode(images[0].get("href").split(",", 1)[1])))
    assert panel.format == "PNG" and panel.width > 100
    texts = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
    assert "espresso" in texts and "efficientnet_lite0" in texts


SEGMENTATION_LINK = "segmentation?image=espresso&preset=paper&views=1&fg=0.9&iterations=2"


def expect_segmentation_link(page) -> None:
    expect(page.get_by_role("combobox", name="Demo image")).to_have_value("espresso")
    expect(page.get_by_role("combobox", name="Preset")).to_have_value("paper")
    expect(page.get_by_text("Running preset paper (changed)")).to_be_visible()
    expect(page.locator('[data-testid="stRadio"]').filter(has_text="Views").get_by_role("radio", name="1", exact=True)).to_be_checked()
    expect(caption(page, re.compile(r"^After edits: box"))).to_be_visible()
    expect(page.locator('[data-testid="stAlertContentWarning"]')).to_have_count(0)
    expect_no_exception(page)


def test_a_segmentation_link_restores_preset_and_knobs_in_a_fresh_browser_and_its_figure_downloads(page, browser, server):
    open_page(page, server.url, SEGMENTATION_LINK)
    expect_segmentation_link(page)
    page.get_by_role("button", name="Link to this view").click()
    copied = page.locator('[data-testid="stPopoverBody"] [data-testid="stCode"]').inner_text().strip()
    assert copied.startswith(f"{server.url}/segmentation?")
    assert set(SEGMENTATION_LINK.split("?")[1].split("&")) <= set(copied.split("?")[1].split("&"))
    page.keyboard.press("Escape")

    fresh = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    try:
        other = fresh.new_page()
        other.goto(copied)
        settle(other)
        expect_segmentation_link(other)
        figure = as_png(download(other, "Figure (PNG)"))
        assert figure.width > 600 and figure.height > 256
        svg = ElementTree.fromstring(download(other, "Figure (SVG)"))
        assert len(svg.findall("{http://www.w3.org/2000/svg}image")) == 3  # photo, map, mask
        texts = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
        assert "preset paper (changed)" in texts and "espresso" in texts
        shot(other, "deep_link_segmentation")
    finally:
        fresh.close()
