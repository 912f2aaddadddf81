"""Every awkward image of issue 2, through the decoder and through the saliency page's uploader.

The decoder either returns the right RGB pixels (checked per file: EXIF rotation, 16-bit scaling,
transparency on white, CMYK, first frame) or raises ``ImageError`` with a message for the user;
the page shows that message with ``st.error`` and never a traceback.
"""
from __future__ import annotations

import pytest

from engine.images import ImageError, load_image
from tests.bad_image_files import accepted, all_samples, refused
from tests.conftest import open_page

ACCEPTED = {s.name: s for s in accepted()}
REFUSED = {s.name: s for s in refused()}


@pytest.mark.parametrize("name", ACCEPTED)
def test_an_odd_but_valid_file_decodes_to_the_right_pixels(name):
    sample = ACCEPTED[name]
    sample.check(load_image(sample.data))


@pytest.mark.parametrize("name", REFUSED)
def test_a_bad_file_is_refused_with_a_readable_message(name):
    with pytest.raises(ImageError) as caught:
        load_image(REFUSED[name].data)
    message = str(caught.value)
    assert message[:1].isupper() and len(message) < 300 and "Traceback" not in message


def test_the_decompression_bomb_is_refused_before_any_pixel_is_decoded():
    with pytest.raises(ImageError, match="too large|limit"):
        load_image(REFUSED["bomb_50000x50000.png"].data)


def test_a_path_decodes_like_bytes(tmp_path):
    sample = ACCEPTED["rotated_exif6.jpg"]
    path = tmp_path / sample.name
    path.write_bytes(sample.data)
    sample.check(load_image(path))
    sample.check(load_image(str(path)))


@pytest.mark.slow
def test_every_file_through_the_saliency_page_uploader():
    at = open_page("pages/saliency.py")
    for sample in all_samples():
        at.file_uploader[0].set_value((sample.name, sample.data, "application/octet-stream")).run()
        assert not at.exception, (sample.name, at.exception)
        errors = [e.value for e in at.error]
        if sample.check is None:
            assert len(errors) == 1 and sample.name in errors[0], (sample.name, errors)
            assert "Traceback" not in errors[0]
        else:
            assert not errors, (sample.name, errors)
            assert len(at.get("image")) >= 1 and at.get("plotly_chart"), sample.name
