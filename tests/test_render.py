"""Display helpers: photos, maps and masks drawn at a page's size while the data keep the photo's."""
from __future__ import annotations

import numpy as np

from engine.render import DISPLAY_SIDE, display_shape, fit, fit_box


def test_display_shape_caps_the_long_side_and_keeps_small_images():
    assert display_shape((3000, 4000, 3)) == (960, 1280) and display_shape((4000, 3000)) == (1280, 960)
    assert display_shape((300, 451, 3)) == (300, 451)
    assert max(display_shape((20_000, 1_000))) == DISPLAY_SIDE


def test_fit_resizes_each_kind_of_array_by_its_own_rule():
    photo = np.zeros((300, 400, 3), np.uint8)
    photo[:, 200:] = 200
    assert fit(photo, (300, 400)) is photo  # nothing to do: the same array
    small = fit(photo, (150, 200))
    assert small.shape == (150, 200, 3) and small.dtype == np.uint8
    assert (small[:, :99] == 0).all() and (small[:, 101:] == 200).all()  # area averaging: the halves stay apart
    labels = np.zeros((300, 400), np.uint8)
    labels[100:200, 100:300] = 3
    shrunk = fit(labels, (150, 200))
    assert set(np.unique(shrunk)) == {0, 3} and (shrunk[50:100, 50:150] == 3).all() and shrunk.sum() == 3 * 50 * 100
    mask = fit(labels == 3, (150, 200))
    assert mask.dtype == bool and mask.sum() == 50 * 100
    ramp = np.tile(np.linspace(0, 1, 400, dtype=np.float32), (300, 1))
    half = fit(ramp, (150, 200))
    assert half.dtype == np.float32 and np.all(np.diff(half[0]) >= 0) and abs(half.mean() - 0.5) < 1e-3


def test_fit_box_maps_a_box_onto_the_smaller_image():
    assert fit_box((0, 0, 400, 300), (300, 400), (150, 200)) == (0, 0, 200, 150)
    assert fit_box((100, 50, 101, 51), (300, 400), (150, 200)) == (50, 25, 51, 26)  # never empty
    assert fit_box(None, (300, 400), (150, 200)) is None
