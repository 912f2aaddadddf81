"""The simulated user of the interactive-segmentation benchmarks, checked on cases worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from engine.segmentation import clicks as ck
from engine.segmentation.cut import HAND_BACKGROUND, HAND_FOREGROUND


def test_truth_is_read_with_the_band_apart():
    mask = np.array([[0, 128, 255], [1, 0, 128]], np.uint8)
    is_object, is_ignored = ck.read_truth(mask)
    assert is_object.tolist() == [[False, False, True], [True, False, False]]
    assert is_ignored.tolist() == [[False, True, False], [False, False, True]]


def test_iou_leaves_the_band_out():
    truth = np.zeros((4, 4), bool)
    truth[:2] = True  # 8 object pixels
    ignored = np.zeros((4, 4), bool)
    ignored[2] = True  # row 2 undecided
    predicted = np.zeros((4, 4), bool)
    predicted[:3] = True  # the object and the band: the band does not count against it
    assert ck.masked_iou(predicted, truth, ignored) == 1.0
    predicted[3, 0] = True  # one wrong pixel outside the band: 8 / 9
    assert ck.masked_iou(predicted, truth, ignored) == pytest.approx(8 / 9)
    assert ck.masked_iou(np.zeros_like(truth), np.zeros_like(truth)) == 1.0


def test_the_first_click_is_positive_in_the_middle_of_the_object():
    truth = np.zeros((9, 11), bool)
    truth[2:7, 3:8] = True  # a 5×5 square: its centre (4, 5) is 3 px from "no error"
    click = ck.next_click(np.zeros_like(truth), truth)
    assert (click.y, click.x, click.positive) == (4, 5, True)


def test_a_deeper_wrong_region_gets_a_negative_click():
    truth = np.zeros((12, 12), bool)
    truth[1:4, 1:4] = True  # 3×3 object, missed entirely: depth 2 at its centre
    predicted = np.zeros_like(truth)
    predicted[5:12, 5:12] = True  # a 7×7 wrong region: its centre (8, 8) is 4 deep
    click = ck.next_click(predicted, truth)
    assert (click.y, click.x, click.positive) == (8, 8, False)


def test_equal_depths_go_negative_and_the_photo_border_is_an_edge():
    truth = np.zeros((5, 10), bool)
    truth[0, 0] = True  # missed: one pixel at the corner, depth 1 (the padding is "no error")
    predicted = np.zeros_like(truth)
    predicted[4, 9] = True  # wrongly included: one pixel, depth 1
    click = ck.next_click(predicted, truth)
    assert (click.y, click.x, click.positive) == (4, 9, False)


def test_the_band_hides_errors_and_ties_go_to_the_first_in_row_order():
    truth = np.zeros((6, 9), bool)
    truth[1:4, 1:4] = True  # missed 3×3 at the left
    ignored = np.zeros_like(truth)
    ignored[1:4, 1:4] = True  # ... but it lies in the band: no error there
    truth[2:5, 5:8] = True  # another missed 3×3: its centre (3, 6) is the only deepest point
    click = ck.next_click(np.zeros_like(truth), truth, ignored)
    assert (click.y, click.x, click.positive) == (3, 6, True)
    two = np.zeros((5, 9), bool)
    two[1:4, 1:4] = two[1:4, 5:8] = True  # two equal squares: the first maximum in row order
    assert ck.next_click(np.zeros_like(two), two) == ck.Click(2, 2, True)


def test_a_click_paints_a_disc_of_hand_seeds_over_earlier_ones():
    codes = ck.paint_clicks((9, 9), [ck.Click(4, 4, True), ck.Click(4, 6, False)], radius=2)
    expected_fg = {(y, x) for y in range(9) for x in range(9) if (y - 4) ** 2 + (x - 4) ** 2 <= 4}
    expected_bg = {(y, x) for y in range(9) for x in range(9) if (y - 4) ** 2 + (x - 6) ** 2 <= 4}
    assert {tuple(p) for p in np.argwhere(codes == HAND_BACKGROUND)} == expected_bg
    assert {tuple(p) for p in np.argwhere(codes == HAND_FOREGROUND)} == expected_fg - expected_bg
    corner = ck.paint_clicks((4, 4), [ck.Click(0, 0, True)], radius=1.5)  # clipped at the border
    assert int((corner == HAND_FOREGROUND).sum()) == 4


def test_clicks_to_reach_counts_the_start_as_zero():
    assert ck.clicks_to_reach([0.95, 0.5], 0.9, 20) == 0
    assert ck.clicks_to_reach([0.0, 0.8, 0.91, 0.85], 0.9, 20) == 2
    assert ck.clicks_to_reach([0.0, 0.8, 0.89], 0.9, 20) == 20


def test_the_simulated_user_against_a_perfect_responder():
    truth = np.zeros((20, 30), bool)
    truth[5:15, 10:25] = True
    seen = []

    def respond(hand_hw, shown_hw):
        seen.append(int((hand_hw == HAND_FOREGROUND).sum()))
        return truth

    run = ck.simulate_user(truth, respond, max_clicks=3, radius=2)
    assert run.ious == (0.0, 1.0, 1.0, 1.0)
    assert run.clicks[0].positive and len(run.clicks) == 3 and len(run.seconds) == 3
    assert seen[0] == 13  # a radius-2 disc
    with pytest.raises(ValueError, match="at least one click"):
        ck.simulate_user(truth, respond, max_clicks=0)
