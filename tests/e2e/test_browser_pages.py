"""The other tools in a real browser: class model visualisation (a short live run), backward rules
and sanity/faithfulness (upload a photo, see the maps and charts)."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from engine.attribution.sanity import DEFAULT_METHODS
from tests.e2e.browser import (
    as_png,
    caption,
    download,
    error_alert,
    expect_images_decoded,
    expect_no_exception,
    open_page,
    settle,
    shot,
    upload,
)
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e
ASTRONAUT = (ROOT / "assets" / "astronaut.jpg").read_bytes()


def _set_number(page, label: str, value: int) -> None:
    box = page.locator('[data-testid="stNumberInput"]').filter(has_text=label).locator("input")
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def test_class_model_short_run_shows_progress_then_the_image(page, server):
    open_page(page, server.url, "class_model")
    _set_number(page, "Steps", 10)
    page.get_by_role("button", name="Run", exact=True).click()
    progress = page.locator('[data-testid="stProgress"]')
    expect(progress).to_be_visible()
    finished = page.get_by_text(re.compile(r"(Finished|Stopped) after \d+ steps"))
    seen, shots = set(), []
    for _ in range(3000):  # the bar's value as the worker thread steps; stops when the run ends
        if progress.count() == 0 or finished.count():
            break
        try:
            value = progress.first.locator('[role="progressbar"]').get_attribute("aria-valuenow", timeout=2_000)
        except PlaywrightTimeoutError:  # the bar went away between the two calls: the run is over
            continue
        if value is not None:
            seen.add(float(value))
        if len(seen) == 2 and not shots and page.locator('[data-testid="stImage"] img').count():
            shots.append(shot(page, "class_model_running"))  # mid-run: the bar and the live image
        page.wait_for_timeout(200)
    assert len(seen) >= 2, f"the progress bar never moved: {seen}"
    expect(finished).to_be_visible()
    settle(page)
    expect(caption(page, re.compile(r"dumbbell: S_c = "))).to_be_visible()
    expect_images_decoded(page, 1)
    expect_no_exception(page)
    shot(page, "class_model_finished")
    image = as_png(download(page, re.compile(r"^PNG$")))
    assert image.size == (224, 224) and np.asarray(image).std() > 0
    gif = Image.open(io.BytesIO(download(page, "Animated GIF of the run")))  # made only when clicked
    assert gif.format == "GIF" and gif.size == (224, 224) and gif.n_frames == 10  # one frame a step of 10


def test_backward_rules_three_maps_and_reconstructions(page, server):
    open_page(page, server.url, "backward_rules")
    upload(page, "my_astronaut.jpg", ASTRONAUT)
    settle(page)
    for title in ("Gradient (this paper)", "DeconvNet (Zeiler & Fergus)", "Guided backprop (Springenberg et al.)"):
        expect(page.get_by_text(title, exact=True).first).to_be_visible()
    expect(page.locator('[data-testid="stMain"] .katex').first).to_be_visible()  # each rule in LaTeX
    expect_images_decoded(page, 7)  # 3 maps + centre view + 3 reconstructions
    expect(error_alert(page)).to_have_count(0)
    expect_no_exception(page)
    shot(page, "backward_rules")


def test_faithfulness_checks_on_an_uploaded_photo(page, server):
    open_page(page, server.url, "faithfulness?ig_steps=8")  # 8 fixed IG steps: the adaptive default is tests/test_page_backward_rules.py's
    upload(page, "my_astronaut.jpg", ASTRONAUT)
    settle(page)
    methods = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Methods")
    methods.locator("input").click()
    for _ in range(len(DEFAULT_METHODS) - 1):  # keep the first method only: a short run on CPU
        methods.locator("input").press("Backspace")
    methods.locator("input").press("Escape")
    settle(page)
    expect(methods).to_contain_text(DEFAULT_METHODS[0])
    for dropped in DEFAULT_METHODS[1:]:
        expect(methods).not_to_contain_text(dropped)
    page.get_by_role("button", name="Run the checks").click()
    settle(page, timeout_ms=300_000)
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(2)
    expect(page.get_by_text("Rank correlation with the trained model's map")).to_be_visible()
    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()  # IG completeness numbers
    expect(error_alert(page)).to_have_count(0)
    expect_no_exception(page)
    shot(page, "faithfulness")
