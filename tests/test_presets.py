"""Localisation presets (§3.2 and the departures measured on the development photos): the table, seeds
by hand, the prior, the segmentation JSON's round trip."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.segmentation import cut as seg
from engine.segmentation import presets as pre
from tests.test_segmentation import sparse_seeds, two_colour


def test_the_table_has_the_paper_and_a_default():
    paper = pre.get_preset("paper")
    assert (paper.method, paper.views, paper.seeds, paper.fg, paper.bg, paper.gamma, paper.keep, paper.hard_quantiles) == (
        "gradient", 10, "quantile", 0.95, 0.30, 150.0, "largest", None)
    assert pre.get_preset("paper-hard").hard_quantiles == (0.995, 0.005)
    assert pre.DEFAULT_PRESET in pre.PRESETS and all(p.summary for p in pre.PRESETS.values())
    with pytest.raises(ValueError, match="Unknown preset"):
        pre.get_preset("best")
    for bad in ({"seeds": "percentile"}, {"keep": "biggest"}, {"fg": 0.2, "bg": 0.3}, {"views": 3}, {"prior_weight": -1}):
        with pytest.raises(ValueError):
            dataclasses.replace(paper, **bad)


def test_level_seeds_by_hand():
    saliency = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0]])  # normalised: value / 10
    preset = dataclasses.replace(pre.get_preset("paper"), seeds="level", fg=0.4, bg=0.1)
    codes = pre.preset_seeds(saliency, preset)
    expected = [seg.AUTO_BACKGROUND] * 2 + [0] * 2 + [seg.AUTO_FOREGROUND] * 6  # ≤ 0.1 and ≥ 0.4
    assert codes.ravel().tolist() == expected
    quantile = pre.preset_seeds(saliency, pre.get_preset("paper"))  # 95% / 30% quantiles of the ten values
    assert quantile.ravel().tolist() == [seg.AUTO_BACKGROUND] * 3 + [0] * 6 + [seg.AUTO_FOREGROUND]


def test_the_prior_is_a_sigmoid_of_the_normalised_map():
    preset = pre.get_preset(pre.DEFAULT_PRESET)
    level = np.linspace(0, 1, 11, dtype=np.float32)[None]
    prior = pre.preset_prior(level, preset)
    assert prior[0, 2] == pytest.approx(0.5)  # at prior_level 0.2
    assert prior[0, 0] == pytest.approx(1 / (1 + np.exp(preset.prior_slope * preset.prior_level)))
    assert np.all(np.diff(prior) > 0)
    assert pre.preset_prior(level, pre.get_preset("paper")) is None


def test_smoothing_runs_on_a_small_copy_and_keeps_the_peak():
    saliency = np.zeros((300, 500), np.float32)
    saliency[100:140, 300:360] = 1.0
    preset = pre.get_preset(pre.DEFAULT_PRESET)
    level = pre.normalised_map(saliency, preset)
    assert level.shape == (300, 500) and level.max() == pytest.approx(1.0) and level.min() == 0.0
    peak = np.unravel_index(level.argmax(), level.shape)
    assert 100 <= peak[0] < 140 and 300 <= peak[1] < 360


def test_a_record_round_trips_and_bad_ones_are_refused():
    box = (20, 10, 41, 31)
    image = two_colour(40, 60, box, 8.0)
    saliency = (sparse_seeds(40, 60, box) == seg.AUTO_FOREGROUND).astype(np.float32)
    preset = dataclasses.replace(pre.get_preset(pre.DEFAULT_PRESET), gamma=60.0, name=pre.DEFAULT_PRESET + pre.CHANGED)
    result = pre.segment_with_preset(image, saliency, preset)
    record = pre.segmentation_record(result, class_index=7, label="x", model="m", weights="w", preset=preset)
    assert record["preset"] == pre.DEFAULT_PRESET and record["settings"]["gamma"] == 60.0
    again, class_index = pre.preset_from_record(record)
    assert class_index == 7 and again.gamma == 60.0 and again.name == pre.DEFAULT_PRESET + pre.CHANGED
    unchanged, _ = pre.preset_from_record({**record, "settings": pre.get_preset("paper").settings(), "preset": "paper"})
    assert unchanged == pre.get_preset("paper")
    old = {"fg_quantile": 0.9, "bg_quantile": 0.2, "iterations": 2, "gamma": 50.0, "views": 1, "class_index": 281}
    assert pre.preset_from_record(old)[0].fg == 0.9  # the format before presets: the paper's with its knobs
    for bad in ({**record, "class_index": 1000}, {**record, "preset": "nope"}, {**record, "settings": {"gamma": -1}},
                {**record, "settings": {"views": "all"}}, {"class_index": 3}, {**record, "settings": {"fg": True}}):
        with pytest.raises(ValueError):
            pre.preset_from_record(bad)


def test_cut_boxes_of_one_photo_share_its_preparation_and_equal_single_cuts():
    box = (20, 10, 41, 31)
    image = two_colour(40, 60, box, 8.0)
    maps = [(sparse_seeds(40, 60, box) == seg.AUTO_FOREGROUND).astype(np.float32), np.ones((40, 60), np.float32)]
    preset = pre.get_preset(pre.DEFAULT_PRESET)
    boxes = pre.cut_boxes(image, maps, preset=preset)
    assert boxes[0] == pre.segment_with_preset(image, maps[0], preset).bbox
    assert boxes[1] is None  # a flat map: no background seeds, no box


def test_preset_inputs_made_once_give_the_same_cuts():
    """What the page keeps per photo and preset (seeds, prior at the working size, peak, prepared photo)
    gives the cut and the re-cut after a stroke that ``seg.segment`` gives from the full-size map."""
    box = (200, 120, 461, 331)
    image = two_colour(420, 700, box, 8.0)  # above the 512-px working size: the prior is shrunk
    saliency = (sparse_seeds(420, 700, box) == seg.AUTO_FOREGROUND).astype(np.float32)
    preset = pre.get_preset(pre.DEFAULT_PRESET)
    level = pre.normalised_map(saliency, preset)

    def reference(hand=None, previous=None):
        return seg.segment(image, seg.merge_seeds(pre.preset_seeds(saliency, preset), hand),
                           iterations=1 if previous else preset.iterations,
                           gamma=preset.gamma, coarse_side=preset.coarse_side, previous=previous,
                           prior_hw=pre.preset_prior(level, preset), prior_weight=preset.prior_weight,
                           peak_hw=np.unravel_index(int(level.argmax()), level.shape))

    inputs = pre.preset_inputs(image, saliency, preset)
    assert inputs.prior_hw.shape == inputs.prepared.work_hwc.shape[:2] == (307, 512)
    first, kept = reference(), pre.segment_with_preset(image, saliency, preset, inputs=inputs)
    assert np.array_equal(first.is_foreground_hw, kept.is_foreground_hw) and first.bbox == kept.bbox
    hand = np.zeros(image.shape[:2], np.uint8)
    hand[220:226, 150:520] = seg.HAND_BACKGROUND  # a stroke across the object
    again = reference(hand, first)
    fast = pre.segment_with_preset(image, saliency, preset, hand_hw=hand, previous=kept, iterations=1, inputs=inputs)
    assert np.array_equal(again.is_foreground_hw, fast.is_foreground_hw) and np.array_equal(again.seeds_hw, fast.seeds_hw)
    assert first.is_foreground_hw[220:226].any() and not fast.is_foreground_hw[220:226].any() and 0 < fast.area < first.area


def test_the_review_queue_key_by_hand():
    from engine.runs.segment_folder import mask_quality

    # 100×50 photo. A box in the middle, 20×10: no side touched, 4% of the photo -> 1 - (0 + 0.04)/2
    assert mask_quality((40, 20, 60, 30), (100, 50)) == 0.98
    # the whole photo: four sides, 100% -> 1 - (1 + 1)/2; the left half: 3 sides, 50% -> 1 - (0.75 + 0.5)/2
    assert mask_quality((0, 0, 100, 50), (100, 50)) == 0.0
    assert mask_quality((0, 0, 50, 50), (100, 50)) == 0.375
    assert mask_quality(None, (100, 50)) == 0.0  # no box at all: first in the queue
