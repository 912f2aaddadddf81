"""Pictures drawn in a page column: the photo at display size and overlays, encoded once per content.

Owns: the display size, the shrunk photo (made once per photo and size), JPEG pictures keyed by what
they are drawn from, and the mask picture. May import: engine, ``ui.images``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import streamlit as st

from engine.images import encode_jpeg
from engine.render import display_shape, fit, fit_box
from engine.runs.gallery import Gallery, classviz_tiles, read_gallery
from engine.segmentation import masks
from ui.images import ImageInput

# ---------------------------------------------------------------- pictures (segmentation, review)
# A picture is encoded once per content (a JPEG at the size it is drawn: st.image would encode an array as a
# quality-100 JPEG on every rerun) and named by what it is drawn from, never by hashing a photo-sized array.
SHOWN_SIDE = 800  # long side of a picture in a page column: sharp on a 2× screen up to 400 CSS pixels
PICTURE_QUALITY = 90


def digest_of(array: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest()


def shown_shape(image: ImageInput, max_side: int = SHOWN_SIDE) -> tuple[int, int]:
    return display_shape(image.image_hwc.shape, max_side)


@st.cache_data(max_entries=16, show_spinner=False)
def _shown_photo(digest: str, _photo: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Smaller sizes are made from the 1280-px one: a 12 MP photo is shrunk once."""
    largest = display_shape(_photo.shape)
    if tuple(shape_hw) == largest or max(shape_hw) > max(largest):
        return fit(_photo, shape_hw)
    return fit(_shown_photo(digest, _photo, largest), shape_hw)


def shown_photo(image: ImageInput, shape_hw: tuple[int, int]) -> np.ndarray:
    """The photo at ``shape_hw`` to draw on, made once per photo and size."""
    return _shown_photo(image.digest, image.image_hwc, tuple(shape_hw))


@st.cache_data(max_entries=64, show_spinner=False)
def _jpeg(key: tuple, _make: Callable[[], np.ndarray]) -> bytes:
    return encode_jpeg(_make(), quality=PICTURE_QUALITY)


def picture(key: tuple, make: Callable[[], np.ndarray], *, caption: str) -> None:
    """``st.image`` of ``make()`` (RGB uint8), encoded once per ``key``: what the picture is drawn from."""
    st.image(_jpeg(key, make), caption=caption, width="stretch")


def cut_picture(image: ImageInput, mask_hw: np.ndarray, bbox, *, caption: str, others_hw=()) -> None:
    """The photo with the background of ``mask_hw`` dimmed and its box drawn: the mask saved, drawn small;
    the outlines of ``others_hw`` (the photo's other objects) over it."""
    shown_hw = shown_shape(image)
    mask = fit(mask_hw, shown_hw)
    others = [fit(m, shown_hw) for m in others_hw]
    picture(("cut", image.digest, shown_hw, digest_of(mask), bbox, tuple(digest_of(m) for m in others)),
            lambda: masks.draw_outlines(masks.draw_result(shown_photo(image, shown_hw), mask,
                                                          fit_box(bbox, image.image_hwc.shape, shown_hw)), others),
            caption=caption)


# ---------------------------------------------------------------- the shipped gallery (class model page)
@st.cache_resource(show_spinner=False)
def shipped_gallery() -> Gallery | None:
    """assets/gallery as shipped (read once per server); None when it is missing or damaged."""
    try:
        return read_gallery()
    except ValueError:
        return None


def ready_made_class_images(classes, preset: str, *, model: str, weights: str) -> list[tuple[bytes, str]]:
    """The shipped class model images (JPEG, caption) of ``classes`` with ``preset`` on ``model``, if any."""
    gallery = shipped_gallery()
    if gallery is None:
        return []
    return [(gallery.picture(t), t["caption"]) for t in classviz_tiles(gallery, classes, preset, model=model, weights=weights)]
