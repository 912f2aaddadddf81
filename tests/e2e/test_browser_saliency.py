"""The saliency page in a real browser: upload a photo, see predictions and maps, download them."""
from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import (
    as_npy,
    as_png,
    caption,
    download,
    expect_images_decoded,
    expect_no_exception,
    open_page,
    settle,
    shot,
    upload,
)
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e
ESPRESSO = (ROOT / "assets" / "espresso.jpg").read_bytes()  # 600×400


def test_the_home_page_links_every_tool(page, server):
    open_page(page, server.url)
    expect(page.get_by_role("heading", name="Deep Inside Convolutional Networks")).to_be_visible()
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("CPU")
    expect_no_exception(page)
    shot(page, "home")


def test_upload_shows_predictions_and_maps_and_downloads_decode(page, server):
    open_page(page, server.url, "saliency")
    upload(page, "my_espresso.jpg", ESPRESSO)
    expect(caption(page, "my_espresso.jpg (600×400)")).to_be_visible()
    settle(page)
    expect(caption(page, "Saliency for “espresso”")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_contain_text("espresso (967)")
    expect_images_decoded(page, 3)  # photo, heat map, overlay, all decoded by the browser
    expect_no_exception(page)
    shot(page, "saliency_upload")

    overlay, heat = as_png(download(page, "Overlay (PNG)")), as_png(download(page, "Heat map (PNG)"))
    assert overlay.size == heat.size == (600, 400) and overlay.mode == heat.mode == "RGB"
    saliency_hw = as_npy(download(page, "Raw map (.npy, float32 H×W)"))
    assert saliency_hw.shape == (400, 600) and saliency_hw.dtype == np.float32
    assert np.isfinite(saliency_hw).all() and saliency_hw.min() >= 0 and saliency_hw.max() > 0
    # the centre crop's map is zero outside the crop the network saw (short side 400 -> 256, crop 224)
    assert saliency_hw[:, :40].max() == 0 and saliency_hw[:, -40:].max() == 0

    page.get_by_text("10 views").click()  # the paper's 10 sub-images cover the whole resized photo
    settle(page)
    ten_view_hw = as_npy(download(page, "Raw map (.npy, float32 H×W)"))
    assert ten_view_hw.shape == (400, 600) and ten_view_hw[:, :40].max() > 0
    settle(page)
    expect_no_exception(page)
    shot(page, "saliency_10_views")
