"""The app and the saliency page, driven by Streamlit's AppTest."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ASSETS, ROOT, open_page

APP = str(ROOT / "app.py")


def image_captions(at: AppTest) -> list[str]:
    return [e.proto.imgs[0].caption for e in at.get("image")]


def saliency_page() -> AppTest:
    return open_page("pages/saliency.py")


def test_the_app_starts_on_the_home_page_with_the_model_in_the_sidebar():
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception
    assert "Deep Inside Convolutional Networks" in at.title[0].value
    assert at.sidebar.selectbox[0].value == "efficientnet_lite0"
    assert any("on **CPU**" in c.value for c in at.sidebar.caption)


@pytest.mark.slow
def test_upload_shows_predictions_and_the_map():
    at = saliency_page()
    at.file_uploader[0].set_value(("espresso.jpg", (ASSETS / "espresso.jpg").read_bytes(), "image/jpeg")).run()
    assert not at.exception and not at.error
    captions = image_captions(at)
    assert captions[0] == "espresso.jpg (600×400)" and "Saliency for “espresso”" in captions[1]
    assert "espresso (967)" in str(at.get("plotly_chart")[0].proto)


@pytest.mark.slow
def test_changing_the_class_changes_the_map():
    at = saliency_page()
    first = at.get("image")[1].proto.imgs[0].url
    at.selectbox(key="sal_class").set_value(1).run()  # "1 · goldfish"
    assert not at.exception
    assert "goldfish" in image_captions(at)[1]
    assert at.get("image")[1].proto.imgs[0].url != first


@pytest.mark.slow
@pytest.mark.parametrize("name, data, message", [
    ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "damaged"),
    ("cut.jpg", (ASSETS / "cat.jpg").read_bytes()[:3000], "damaged or truncated"),
    ("notes.txt.png", b"hello, world", "not an image"),
    ("empty.png", b"", "empty"),
])
def test_a_bad_upload_gives_a_clear_message_and_no_traceback(name, data, message):
    at = saliency_page()
    at.file_uploader[0].set_value((name, data, "image/png")).run()
    assert not at.exception
    assert at.error and message in at.error[0].value


@pytest.mark.slow
def test_an_unavailable_model_is_reported_and_the_app_carries_on(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.sidebar.selectbox[0].set_value("torchvision:vgg16").run()
    assert not at.exception
    assert "not in the local torch cache" in at.sidebar.error[0].value
    assert "efficientnet_lite0" in at.sidebar.caption[0].value  # carried on with the embedded model
    at.switch_page("pages/saliency.py").run()
    assert not at.exception and len(at.get("image")) == 3
    assert at.sidebar.selectbox[0].value == "torchvision:vgg16"  # the frame is there on every page


@pytest.mark.slow
def test_an_upload_on_one_page_is_the_image_of_the_next():
    at = saliency_page()
    at.file_uploader[0].set_value(("my_espresso.jpg", (ASSETS / "espresso.jpg").read_bytes(), "image/jpeg")).run()
    at.switch_page("pages/backward_rules.py").run()
    assert not at.exception
    assert at.selectbox(key="rules_image_demo").value == "my_espresso.jpg"
    assert "espresso" in " ".join(e.proto.imgs[0].caption for e in at.get("image"))
