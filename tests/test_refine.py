"""Hand refinement: an input spreads to the region it belongs to, and the prior yields to the person."""
from __future__ import annotations

import numpy as np
import pytest

from engine.segmentation import clicks as ck
from engine.segmentation import refine as rf
from engine.segmentation.cut import HAND_BACKGROUND, HAND_FOREGROUND

RED, BLUE, GREEN = (200, 40, 40), (40, 60, 200), (40, 180, 60)


def photo(regions, shape=(60, 90), background=BLUE):
    """An (H, W, 3) photo of flat rectangles, with a little noise so colour models have spread."""
    image = np.empty((*shape, 3), np.float32)
    image[:] = background
    for (y0, y1, x0, x1), colour in regions:
        image[y0:y1, x0:x1] = colour
    noise = np.random.default_rng(0).normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def box(shape, y0, y1, x0, x1):
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def one_hot_features(labels_hw, count):
    """Features that tell the regions apart exactly: one unit direction per region label."""
    return np.eye(count, dtype=np.float32)[labels_hw] * 3.0


def test_a_click_inside_a_wrongly_excluded_region_flips_the_whole_region():
    a, b = (10, 40, 8, 38), (15, 45, 52, 82)  # two red squares: both are the object
    image = photo([(a, RED), (b, RED)])
    truth = box(image.shape[:2], *a) | box(image.shape[:2], *b)
    previous = box(image.shape[:2], *a)  # the mask missed square b entirely
    hand = ck.paint_clicks(image.shape[:2], [ck.Click(30, 67, True)], radius=3)
    result = rf.refine(image, hand, previous_hw=previous)
    assert result.is_foreground_hw[box(image.shape[:2], *b)].mean() > 0.97  # the whole region, not the disc
    assert result.is_foreground_hw[box(image.shape[:2], *a)].mean() > 0.97  # what was right stays
    assert ck.masked_iou(result.is_foreground_hw, truth) > 0.95


def test_a_negative_click_removes_a_wrongly_included_region():
    a, b = (10, 40, 8, 38), (15, 45, 52, 82)
    image = photo([(a, RED), (b, GREEN)])
    previous = box(image.shape[:2], *a) | box(image.shape[:2], *b)  # green square b is not the object
    labels = box(image.shape[:2], *a) + 2 * box(image.shape[:2], *b)
    hand = ck.paint_clicks(image.shape[:2], [ck.Click(30, 67, False)], radius=3)
    result = rf.refine(image, hand, features_hwk=one_hot_features(labels, 3), previous_hw=previous, automatic_hw=previous)
    assert result.is_foreground_hw[box(image.shape[:2], *b)].mean() < 0.03
    assert result.is_foreground_hw[box(image.shape[:2], *a)].mean() > 0.97


def test_negative_clicks_alone_remove_what_they_point_at_and_leave_the_rest_of_the_mask():
    """The automatic mask holds the object a and two large regions b1, b2 that are not it, all one colour
    (colour cannot tell them apart). Two negative clicks, one in each region, and no positive one: the
    object is then what the previous mask holds less what looks like the clicks (the automatic mask's own
    prototypes, both inside b1 and b2 here, are taken away by the clicks)."""
    shape = (60, 90)
    a, b1, b2 = (25, 35, 4, 14), (5, 55, 20, 52), (5, 55, 52, 86)
    image = photo([(a, RED), (b1, RED), (b2, RED)], shape=shape)
    labels = box(shape, *a) + 2 * box(shape, *b1) + 3 * box(shape, *b2)
    previous = labels > 0
    hand = ck.paint_clicks(shape, [ck.Click(30, 36, False), ck.Click(30, 69, False)], radius=3)
    result = rf.refine(image, hand, features_hwk=one_hot_features(labels, 4), previous_hw=previous, automatic_hw=previous)
    assert result.is_foreground_hw[box(shape, *b1) | box(shape, *b2)].mean() < 0.03
    assert result.is_foreground_hw[box(shape, *a)].mean() > 0.9


def test_a_positive_click_on_an_object_away_from_the_automatic_mask_is_kept():
    """The automatic mask holds object a (the saliency's peak); the person clicks object b, which the
    classifier never saw: b joins the mask through the features, although its colour is the background's."""
    a, b = (10, 40, 8, 38), (15, 45, 52, 82)
    image = photo([(a, RED), (b, (45, 65, 190))])  # b is nearly the background's blue
    labels = np.zeros(image.shape[:2], int)
    labels[box(image.shape[:2], *a)] = 1
    labels[box(image.shape[:2], *b)] = 2
    features = one_hot_features(labels, 3)
    automatic = box(image.shape[:2], *a)
    hand = ck.paint_clicks(image.shape[:2], [ck.Click(30, 67, True)], radius=3)
    result = rf.refine(image, hand, features_hwk=features, previous_hw=automatic, automatic_hw=automatic)
    assert result.is_foreground_hw[box(image.shape[:2], *b)].mean() > 0.9
    assert result.is_foreground_hw[box(image.shape[:2], *a)].mean() > 0.9


def test_the_first_click_from_nothing_takes_the_region_its_features_share():
    a = (10, 40, 20, 60)
    image = photo([(a, RED)])
    labels = box(image.shape[:2], *a).astype(int)
    hand = ck.paint_clicks(image.shape[:2], [ck.Click(25, 40, True)], radius=3)
    result = rf.refine(image, hand, features_hwk=one_hot_features(labels, 2))
    assert ck.masked_iou(result.is_foreground_hw, labels.astype(bool)) > 0.95


def test_hand_seeds_hold_and_the_result_has_the_photos_size():
    image = photo([((10, 40, 8, 38), RED)], shape=(61, 93))
    hand = np.zeros(image.shape[:2], np.uint8)
    hand[5, 50] = HAND_FOREGROUND  # a foreground seed in the background's colour
    hand[20, 20] = HAND_BACKGROUND  # a background seed inside the red square
    result = rf.refine(image, hand, previous_hw=box(image.shape[:2], 10, 40, 8, 38))
    assert result.is_foreground_hw.shape == image.shape[:2]
    assert result.is_foreground_hw[5, 50] and not result.is_foreground_hw[20, 20]
    assert result.bbox is not None


def test_otsu_splits_two_clusters_and_kmeans_finds_them():
    values = np.concatenate([np.full(100, 1.0), np.full(50, 5.0)])
    assert rf.otsu_threshold(values) == pytest.approx(3.0, abs=0.02)  # the middle of the tie between 1 and 5
    samples = np.concatenate([np.zeros((40, 2)), np.full((40, 2), 10.0)]).astype(np.float32)
    centres = sorted(tuple(c) for c in rf.kmeans(samples, 2, np.random.default_rng(0)))
    assert centres == [(0.0, 0.0), (10.0, 10.0)]
    assert rf.kmeans(np.zeros((0, 2)), 2, np.random.default_rng(0)) == []


def test_nonsense_options_are_refused():
    with pytest.raises(ValueError, match="temperature"):
        rf.RefineOptions(temperature=0)
    with pytest.raises(ValueError, match="round"):
        rf.RefineOptions(rounds=0)


# ---------------------------------------------------------------- a person's inputs in turn, and the box
def test_continues_when_every_earlier_seed_is_still_there():
    earlier = np.zeros((4, 5), np.uint8)
    earlier[1, 1] = HAND_FOREGROUND
    later = earlier.copy()
    later[3, 4] = HAND_BACKGROUND  # one more click
    assert rf.continues(earlier, later)
    assert not rf.continues(later, earlier)  # the click was undone
    flipped = later.copy()
    flipped[1, 1] = HAND_BACKGROUND  # painted over with the other meaning
    assert not rf.continues(earlier, flipped)
    assert not rf.continues(earlier, later[:3])  # another photo


def test_the_box_is_the_one_a_bbox_names_and_outside_it_is_background():
    inside = rf.box_mask((6, 8), (2, 1, 5, 4))  # x0, y0, x1, y1; x1 and y1 excluded as in Segmentation.bbox
    assert inside.sum() == 3 * 3 and inside[1:4, 2:5].all()
    hand = np.zeros((6, 8), np.uint8)
    hand[0, 0] = HAND_FOREGROUND  # a person's seed outside the box stays theirs
    hand[2, 3] = HAND_BACKGROUND
    seeds = rf.with_box(hand, (2, 1, 5, 4))
    assert seeds[0, 0] == HAND_FOREGROUND and seeds[2, 3] == HAND_BACKGROUND
    assert (seeds[~inside & (hand == 0)] == HAND_BACKGROUND).all() and (seeds[inside & (hand == 0)] == 0).all()
    assert (rf.with_box(hand, None) == hand).all()


def test_a_box_starts_from_the_automatic_mask_inside_it_or_the_box():
    automatic = np.zeros((6, 8), bool)
    automatic[2:4, 3:5] = True
    automatic[5, 7] = True  # outside the box: dropped
    start = rf.box_start((6, 8), (2, 1, 6, 5), automatic)
    assert start.sum() == 4 and start[2:4, 3:5].all()
    assert rf.box_start((6, 8), (2, 1, 6, 5), None).sum() == 4 * 4
    assert rf.box_start((6, 8), (0, 0, 2, 2), automatic).sum() == 4  # nothing of the guess inside: the box


def test_grabcut_from_a_box_finds_the_object_inside_it():
    """Rother et al. 2004: a box around a red square on blue; the square is 30 % of the box."""
    a = (20, 40, 30, 60)
    image = photo([(a, RED)], shape=(60, 90))
    truth = box(image.shape[:2], *a)
    drawn = (22, 12, 70, 50)  # x0, y0, x1, y1: loose around the square
    options = rf.box_options()
    result = rf.refine(image, rf.with_box(np.zeros(image.shape[:2], np.uint8), drawn),
                       previous_hw=rf.box_start(image.shape[:2], drawn), options=options)
    assert ck.masked_iou(result.is_foreground_hw, truth) > 0.9
    assert not result.is_foreground_hw[~rf.box_mask(image.shape[:2], drawn)].any()
