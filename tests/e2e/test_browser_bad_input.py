"""Whatever people upload through the real browser: a clear message or a correct result, never a
traceback; an over-limit upload is refused by the server's size limit; uploads need the XSRF token."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.bad_image_files import all_samples
from tests.e2e.browser import caption, error_alert, expect_images_decoded, expect_no_exception, open_page, settle, shot, upload

pytestmark = pytest.mark.e2e
LIMIT_MB = 50  # .streamlit/config.toml server.maxUploadSize


def test_every_bad_image_through_the_real_uploader(page, server):
    open_page(page, server.url, "saliency")
    for sample in all_samples():
        upload(page, sample.name, sample.data)
        settle(page)
        if sample.check is None:
            expect(error_alert(page, f"Cannot use {sample.name}")).to_have_count(1)
            assert "Traceback" not in error_alert(page).inner_text()
        else:
            expect(caption(page, re.compile(rf"^{re.escape(sample.name)} \("))).to_be_visible()
            expect(error_alert(page)).to_have_count(0)
            expect_images_decoded(page, 3)
        expect_no_exception(page)
        shot(page, f"bad_input_{sample.name.replace('.', '_')}")


def test_an_over_limit_upload_is_refused_with_a_readable_message(page, server, tmp_path):
    open_page(page, server.url, "saliency")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as sink:
        sink.truncate((LIMIT_MB + 1) * 1024 * 1024)  # sparse: no 51 MB written
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(huge)
    message = page.get_by_text(re.compile(rf"must be {LIMIT_MB}(\.0)? ?MB or smaller", re.I))
    expect(message).to_be_visible()
    expect_no_exception(page)
    shot(page, "over_limit_upload")


def _upload_url(page, server) -> str:
    """The upload URL (session and file id) the page itself uses, seen on a small real upload."""
    with page.expect_request(re.compile(r"/_stcore/upload_file/")) as seen:
        upload(page, "tiny.png", b"\x89PNG\r\n\x1a\n")
    settle(page)
    return seen.value.url


def test_the_server_itself_refuses_over_limit_and_tokenless_uploads(page, server):
    open_page(page, server.url, "saliency")
    url = _upload_url(page, server)
    put = """async ([url, size, withToken]) => {
        const token = document.cookie.split('; ').find(c => c.startsWith('_streamlit_xsrf='));
        const body = new FormData();
        body.append('file', new Blob([new Uint8Array(size)]), 'file.png');
        const headers = withToken && token ? {'X-Xsrftoken': token.split('=').slice(1).join('=')} : {};
        const response = await fetch(url, {method: 'PUT', body, headers, credentials: 'same-origin'});
        return response.status;
    }"""
    assert page.evaluate(put, [url, 1024, True]) in (200, 204)  # the control: a small upload is taken
    assert page.evaluate(put, [url, 1024, False]) == 403  # no XSRF token
    assert page.evaluate(put, [url, (LIMIT_MB + 2) * 1024 * 1024, True]) == 413  # over server.maxUploadSize
    assert page.request.get(f"{server.url}/_stcore/health").ok
