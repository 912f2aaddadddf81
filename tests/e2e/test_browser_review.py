"""The review page in a real browser: a workspace pre-segmented by ``segment-folder``, one photo refined
with a stroke on the canvas and accepted, then found saved and counted as done after a reload and
after a server restart.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from playwright.sync_api import expect

from engine.runs.workspace import open_workspace
from tests.e2e.browser import brush, choose, error_alert, expect_no_exception, open_page, settle, shot, stroke
from tests.e2e.conftest import ROOT, streamlit_server

pytestmark = pytest.mark.e2e
PHOTOS = ROOT / "tests" / "data" / "localisation" / "images"


@pytest.fixture(scope="module")
def workspace_root(tmp_path_factory):
    """images/ and the segmentations/ that segment-folder writes for them: the documented way to make one."""
    root = tmp_path_factory.mktemp("workspace")
    shutil.copytree(PHOTOS, root / "images")
    done = subprocess.run([sys.executable, "-m", "engine", "segment-folder", str(root / "images"),
                           "--out", str(root / "segmentations"), "--jobs", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def _progress(page) -> str:
    return page.locator('[data-testid="stProgress"]').inner_text()



def _page(browser, *, timeout_ms: int):
    """A fresh browser context (closed by the caller) and its page, at the size the screenshots use."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    context.set_default_timeout(timeout_ms)
    return context, context.new_page()

def test_a_stroke_then_accept_is_saved_and_counted_after_a_reload_and_a_restart(browser, workspace_root):
    space = open_workspace(workspace_root)
    first = space.items()[0]  # the queue's head: the likeliest bad mask
    assert first.version == 0 and first.status == "automatic"
    before = space.load(first.stem)
    env = {"DEEP_INSIDE_WORKSPACE": str(workspace_root)}
    context, page = _page(browser, timeout_ms=90_000)
    try:
        with streamlit_server("streamlit-review-server.log", env) as server:
            open_page(page, server.url, "review")
            expect(page.get_by_text(f"0 of {len(space.items())} accepted")).to_be_visible()
            canvas = page.locator("canvas.upper-canvas").first
            canvas.scroll_into_view_if_needed()
            brush(page, "background")
            across = ((0.25, 0.5), (0.75, 0.5))  # through the middle of the photo
            stroke(page, canvas.bounding_box(), *across)
            expect(page.get_by_text("Re-cut with your strokes")).to_be_visible()
            shot(page, "review_stroke")
            page.get_by_role("heading", name="Review segmentations").click()  # focus the page, off the canvas
            page.keyboard.press("a")  # the Accept shortcut
            settle(page)
            expect(page.get_by_text(f"Saved {first.stem} as accepted")).to_be_visible()
            expect(error_alert(page)).to_have_count(0)
            expect_no_exception(page)

            saved = space.load(first.stem)  # on disk: a new version, the old one kept
            assert (saved.version, saved.status) == (1, "accepted") and space.history(first.stem) == [0, 1]
            height, width = saved.mask_hw.shape
            under = saved.mask_hw[height // 2 - 1: height // 2 + 2, round(0.3 * width): round(0.7 * width)]
            assert not under.any() and before.mask_hw[height // 2, round(0.3 * width): round(0.7 * width)].any()

            page.reload()
            settle(page)
            expect(page.get_by_text(f"1 of {len(space.items())} accepted")).to_be_visible()

        with streamlit_server("streamlit-review-server-2.log", env) as restarted:
            open_page(page, restarted.url, "review")
            expect(page.get_by_text(f"1 of {len(space.items())} accepted")).to_be_visible()
            # the accepted photo has gone to the back of the queue; open it from there
            page.locator('[data-testid="stExpander"] summary').filter(has_text="Queue").click()
            choose(page, "Go to", first.stem)
            expect(page.get_by_text("version 1 (accepted)")).to_be_visible()
            shot(page, "review_after_restart")
            expect_no_exception(page)
    finally:
        context.close()
    assert np.array_equal(space.load(first.stem).mask_hw, saved.mask_hw)
    assert all(space.load(i.stem).version == 0 for i in space.items() if i.stem != first.stem)  # nothing else saved


def test_the_demo_workspace_is_built_from_the_review_page_and_a_photo_is_accepted_there(browser, tmp_path):
    """No workspace set by the operator: the page builds the demo from the bundled photos (a progress bar),
    in the user's cache directory, and opens its queue; accepting a photo saves it there."""
    cache = tmp_path / "cache"
    env = {"DEEP_INSIDE_WORKSPACE": "", "XDG_CACHE_HOME": str(cache)}
    context, page = _page(browser, timeout_ms=180_000)
    try:
        with streamlit_server("streamlit-review-demo-server.log", env) as server:
            open_page(page, server.url, "review")
            expect(page.get_by_text("No review workspace is set")).to_be_visible()
            page.get_by_role("button", name="Build a demo workspace from the 5 bundled photos").click()
            # the build runs on a worker (ui.jobs), its progress bar polled; once built, the page opens the queue
            expect(page.get_by_text(re.compile(r"Cut [0-4] of 5 demo photos|Cutting the demo photos"))).to_be_visible()
            expect(page.get_by_text("0 of 5 accepted")).to_be_visible()
            root = cache / "deep-inside" / "demo-workspace"
            expect(page.locator('[data-testid="stAlertContentInfo"]').filter(has_text=str(root))).to_be_visible()
            settle(page)
            first = open_workspace(root).items()[0].stem
            expect(page).to_have_url(re.compile(rf"/review\?photo={first}$"))
            shot(page, "review_demo_workspace")
            page.get_by_role("button", name="Accept").click()
            settle(page)
            expect(page.get_by_text(f"Saved {first} as accepted")).to_be_visible()
            expect(page.get_by_text("1 of 5 accepted")).to_be_visible()
            expect(error_alert(page)).to_have_count(0)
            expect_no_exception(page)
    finally:
        context.close()
    saved = open_workspace(root).load(first)
    assert (saved.version, saved.status) == (1, "accepted")
    assert not (ROOT / "deep-inside").exists()
