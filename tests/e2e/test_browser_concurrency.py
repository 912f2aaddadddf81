"""8 browser sessions at once against one server, different methods on different images: each result
equals the one computed alone, no errors, and the server's memory stays bounded."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from engine.attribution.saliency import compute_saliency
from engine.images import encode_png, load_image
from engine.models import load_model
from engine.render import colourise
from tests.e2e.browser import as_npy, caption, download, expect_no_exception, open_page, settle, shot, upload
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e
RSS_GROWTH_BOUND = 1.5 * 2**30  # generous: caches are bounded (st.cache_data max_entries) and one model serves all


def _photos() -> dict[str, bytes]:
    """8 different photos: the 5 demos and 3 edited copies (as PNG)."""
    files = {p.name: p.read_bytes() for p in sorted((ROOT / "assets").glob("*.jpg"))}
    cat, rocket, espresso = (load_image(files[f"{n}.jpg"]) for n in ("cat", "rocket", "espresso"))
    files["cat_mirrored.png"] = encode_png(np.ascontiguousarray(cat[:, ::-1]))
    files["rocket_top.png"] = encode_png(rocket[: rocket.shape[0] // 2 + 40])
    files["espresso_dark.png"] = encode_png(espresso // 2)
    return files


# (page, views, reduce) per session: saliency sessions download the raw map, rules sessions show 3 methods
SESSIONS = [("saliency", 1, "max-abs"), ("saliency", 10, "sum-abs"), ("saliency", 1, "l2"), ("saliency", 10, "signed-max"),
            ("backward_rules", 1, "max-abs"), ("saliency", 10, "max-abs"), ("backward_rules", 1, "max-abs"),
            ("saliency", 1, "sum-abs")]


def _choose(page, label: str, option: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def _fetch_image(page, img) -> np.ndarray:
    data = page.request.get(img.get_attribute("src")).body()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_eight_sessions_at_once_get_what_each_would_alone(browser, server):
    model = load_model("efficientnet_lite0", "pretrained", device="cpu")
    photos = list(_photos().items())
    assert len(photos) == len(SESSIONS) == 8
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True) for _ in SESSIONS]
    try:
        pages = [context.new_page() for context in contexts]
        for tab, (name, views, reduce) in zip(pages, SESSIONS):
            tab.set_default_timeout(180_000)
            open_page(tab, server.url, name)
            if views == 10:
                tab.get_by_text("10 views").click()
                settle(tab)
            if name == "saliency" and reduce != "max-abs":
                _choose(tab, "Channel reduction", reduce)
        rss_before = server.rss_bytes()

        for tab, (file_name, data) in zip(pages, photos):  # all 8 uploads in flight together
            upload(tab, file_name, data)
        for tab, (file_name, _), (name, _views, _reduce) in zip(pages, photos, SESSIONS):
            expect(tab.locator('[data-testid="stFileUploader"]').first).to_contain_text(file_name)
            settle(tab, timeout_ms=180_000)
            if name == "saliency":
                expect(caption(tab, re.compile(re.escape(file_name)))).to_be_visible()
            expect_no_exception(tab)
            expect(tab.locator('[data-testid="stAlertContentError"]')).to_have_count(0)

        for i, (tab, (file_name, data), (name, views, reduce)) in enumerate(zip(pages, photos, SESSIONS)):
            image_hwc = load_image(data)
            if name == "saliency":
                got = as_npy(download(tab, re.compile("Raw map")))
                alone = compute_saliency(model, image_hwc, views=views, reduce=reduce).saliency_hw
                np.testing.assert_allclose(got, alone, rtol=1e-4, atol=1e-6 * float(np.abs(alone).max()),
                                           err_msg=f"session {i}: {file_name} {views} {reduce}")
            else:  # three methods side by side, shown as (lossy) images: each nearest its own method
                shown = [_fetch_image(tab, tab.locator('[data-testid="stImage"] img').nth(k)) for k in range(3)]
                alone = [colourise(compute_saliency(model, image_hwc, method=m).saliency_hw).astype(np.int16)
                         for m in ("gradient", "deconvnet", "guided")]
                for k, picture in enumerate(shown):
                    distances = [np.abs(picture - a).mean() for a in alone]
                    others = min(d for j, d in enumerate(distances) if j != k)
                    assert distances[k] < 0.5 * others, (i, file_name, k, distances)  # JPEG noise << method gap
            shot(tab, f"concurrent_session_{i}_{name}")

        growth = server.rss_bytes() - rss_before
        assert growth < RSS_GROWTH_BOUND, f"server RSS grew by {growth / 2**20:.0f} MiB"
        assert "Traceback" not in server.log.read_text()
    finally:
        for context in contexts:
            context.close()
