"""Small helpers over Playwright for driving the Streamlit app like a person does."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
        ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff", ".gif": "image/gif"}


def open_page(page: Page, base_url: str, url_path: str = "") -> None:
    """Load a page of the app and wait until its first run has finished."""
    page.goto(f"{base_url}/{url_path}")
    page.locator('[data-testid="stApp"]').wait_for()
    settle(page)


def settle(page: Page, timeout_ms: int = 120_000, quiet_ms: int = 800) -> None:
    """Wait until the app is connected and its script has not been running for ``quiet_ms``.

    Streamlit marks its root with ``data-test-script-state`` ("initial", "running", "notRunning",
    ...); the quiet period catches the rerun that a click or upload asks for a moment later. It
    starts now: a quiet period left over from an earlier call let a click's rerun go unseen.
    """
    page.evaluate("() => { window.__busyAt = performance.now(); }")
    page.wait_for_function(
        """([quiet]) => {
            const app = document.querySelector('[data-testid="stApp"]');
            const idle = app && app.getAttribute('data-test-connection-state') === 'CONNECTED'
                && app.getAttribute('data-test-script-state') === 'notRunning'
                && !document.querySelector('[data-stale="true"]');
            const now = performance.now();
            if (!idle) { window.__busyAt = now; return false; }
            return now - window.__busyAt >= quiet;
        }""", arg=[quiet_ms], polling=100, timeout=timeout_ms)


def upload(page: Page, name: str, data: bytes, *, nth: int = 0) -> None:
    """Put a file into the nth file uploader through its real <input type=file>."""
    mime = MIME.get(Path(name).suffix.lower(), "application/octet-stream")
    file_input = page.locator('[data-testid="stFileUploader"] input[type="file"]').nth(nth)
    file_input.set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])


def caption(page: Page, text: str | re.Pattern):
    return page.locator('[data-testid="stImageCaption"]').filter(has_text=text)


def error_alert(page: Page, text: str | re.Pattern | None = None):
    alerts = page.locator('[data-testid="stAlertContentError"]')
    return alerts.filter(has_text=text) if text is not None else alerts


def expect_no_exception(page: Page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)


def expect_images_decoded(page: Page, count: int, scope: str = '[data-testid="stMain"]') -> None:
    """Wait until ``count`` images in ``scope`` are decoded by the browser (complete, with a width)."""
    page.wait_for_function(
        """([scope, count]) => Array.from(document.querySelectorAll(scope + ' [data-testid="stImage"] img'))
                 .filter(img => img.complete && img.naturalWidth > 0).length === count""",
        arg=[scope, count], polling=200)


def download(page: Page, label: str | re.Pattern) -> bytes:
    """Click the download button called ``label`` and return the file it delivers."""
    button = page.locator('[data-testid="stDownloadButton"]').get_by_role("button", name=label)
    with page.expect_download() as pending:
        button.click()
    return Path(pending.value.path()).read_bytes()


def as_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image


def as_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def as_json(data: bytes):
    return json.loads(data.decode("utf-8"))


def shot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def brush(page, name: str) -> None:
    """Choose the seed canvas's brush: "foreground", "background" or "erase (no seed)"."""
    page.locator('[data-testid="stRadio"]').filter(has_text="Brush").get_by_text(name, exact=True).click()
    settle(page)


def stroke(page, canvas_box, start, end) -> None:
    """Drag the mouse from ``start`` to ``end`` (fractions of the canvas) with the button down; return once the
    canvas's background (the mask) has changed and the page has settled."""
    x0, y0 = canvas_box["x"] + start[0] * canvas_box["width"], canvas_box["y"] + start[1] * canvas_box["height"]
    x1, y1 = canvas_box["x"] + end[0] * canvas_box["width"], canvas_box["y"] + end[1] * canvas_box["height"]

    def drag():
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x1, y1, steps=20)
        page.mouse.up()
    # the canvas sends the drawing at mouse-up (ui.canvas_frontend.canvas_component); the server redraws the mask on it
    after_background_changes(page, drag)


# The canvas's background (the photo, the mask, the seeds) is drawn by the component on a canvas element of its own,
# in the component's shadow root; a fingerprint of its pixels (FNV-1a over every third byte) tells when it changed.
_FIND_BACKGROUND = """() => {
    const find = (root) => {
        const hit = root.querySelector('canvas.dc-background-canvas');
        if (hit) return hit;
        for (const el of root.querySelectorAll('*')) if (el.shadowRoot) { const found = find(el.shadowRoot); if (found) return found; }
        return null;
    };
    const canvas = find(document);
    return canvas && canvas.width ? canvas : null;
}"""
BACKGROUND_FINGERPRINT = f"""() => {{
    const c = ({_FIND_BACKGROUND})();
    if (!c) return '';
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    for (let i = 0; i < data.length; i += 3) h = Math.imul(h ^ data[i], 16777619);
    return c.width + 'x' + c.height + ':' + (h >>> 0);
}}"""


def canvas_background(page) -> np.ndarray | None:
    """The seed canvas's background as the browser drew it (RGB, at the canvas's own pixels), or None."""
    import base64

    url = page.evaluate(f"() => {{ const c = ({_FIND_BACKGROUND})(); return c ? c.toDataURL('image/png') : null; }}")
    return None if url is None else np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def background_fingerprint(page) -> str:
    return page.evaluate(BACKGROUND_FINGERPRINT)


def after_background_changes(page, action, timeout_ms: int = 60_000) -> None:
    """Do ``action``, wait until the canvas's background has changed, then until the page has settled."""
    before = background_fingerprint(page)
    action()
    page.wait_for_function(f"(before) => {{ const now = ({BACKGROUND_FINGERPRINT})(); return now !== '' && now !== before; }}",
                           arg=before, polling=100, timeout=timeout_ms)
    settle(page)


def click_photo(page, canvas, yx, shape_hw) -> None:
    """Click the seed canvas where the photo's pixel ``yx`` (row, column of a ``shape_hw`` photo) is shown, and
    wait until the canvas shows the mask after it."""
    box = canvas.bounding_box()
    x = box["x"] + (yx[1] + 0.5) / shape_hw[1] * box["width"]
    y = box["y"] + (yx[0] + 0.5) / shape_hw[0] * box["height"]
    after_background_changes(page, lambda: page.mouse.click(x, y))


def image_sources(page) -> str:
    return page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid="stImage"] img'))
                            .map(i => i.src).join(' ')""")


def choose(page, label: str, option: str, tries: int = 3) -> None:
    """Pick ``option`` in the selectbox called ``label``. A rerun that lands just after the click closes
    the menu again (the canvas sends its first value a moment after a page loads), so open it again."""
    box = page.get_by_role("combobox", name=label)
    for _ in range(tries):
        settle(page)
        box.click()
        item = page.get_by_role("option", name=option, exact=True)
        try:
            item.wait_for(state="visible", timeout=5_000)
        except PlaywrightTimeout:  # the menu did not stay open
            page.keyboard.press("Escape")
            continue
        item.click()
        settle(page)
        return
    raise AssertionError(f"the {label!r} menu never showed {option!r}")
