"""§3.2 segmentation: hand-checkable cuts, seeds, components and boxes, degenerate inputs, RLE."""
from __future__ import annotations

import numpy as np
import pytest

from engine.segmentation import cut as seg
from engine.segmentation import gmm, masks
from engine.segmentation.graphcut import banded_cut, boundary_band, cut, pairwise_weights

RED, GREY = (200, 30, 30), (60, 60, 60)


def two_colour(height: int, width: int, box: tuple[int, int, int, int], noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A grey image with a red rectangle box = (x0, y0, x1, y1), optional Gaussian noise."""
    image = np.empty((height, width, 3), np.float64)
    image[:] = GREY
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = RED
    image += np.random.default_rng(seed).normal(0, noise, image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def sparse_seeds(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Soft automatic seeds: a small patch in the middle of the box, a frame along the border."""
    seeds = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    seeds[cy - 2:cy + 2, cx - 2:cx + 2] = seg.AUTO_FOREGROUND
    seeds[:2, :] = seeds[-2:, :] = seeds[:, :2] = seeds[:, -2:] = seg.AUTO_BACKGROUND
    return seeds


def box_mask(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[box[1]:box[3], box[0]:box[2]] = True
    return mask


@pytest.mark.parametrize("shape, box, noise", [
    ((40, 60), (20, 10, 41, 31), 0.0),  # one grid, no refinement, one-colour regions
    ((40, 60), (20, 10, 41, 31), 8.0),
    ((210, 300), (70, 40, 221, 151), 8.0),  # coarse rounds at 160 px, then the banded cut
])
def test_two_colour_object_is_recovered_exactly(shape, box, noise):
    image = two_colour(*shape, box, noise)
    result = seg.segment(image, sparse_seeds(*shape, box), gamma=50)
    np.testing.assert_array_equal(result.is_foreground_hw, box_mask(*shape, box))
    assert result.bbox == box
    assert result.area == (box[2] - box[0]) * (box[3] - box[1])
    assert result.working_hw == shape


def test_above_max_side_the_mask_is_upsampled():
    shape, box = (400, 700), (150, 90, 461, 301)  # cut at 512×293, edges fall between working pixels
    result = seg.segment(two_colour(*shape, box, 5.0), sparse_seeds(*shape, box), gamma=50)
    assert result.working_hw == (293, 512)
    assert masks.mask_iou(result.is_foreground_hw, box_mask(*shape, box)) > 0.99
    assert np.abs(np.subtract(result.bbox, box)).max() <= 1


def test_three_pixel_cut_by_hand():
    # Pixels a, b, c in a row. Unaries (fg, bg): a (0, 10), b (4.5, 4), c (10, 0); Potts a-b = 3, b-c = 1.
    # Labellings with a=F, c=B: b=B costs 0 + 4 + 0 + 3 = 7, b=F costs 0 + 4.5 + 0 + 1 = 5.5: b goes with a.
    unary_fg, unary_bg = np.array([[0.0, 4.5, 10.0]]), np.array([[10.0, 4.0, 0.0]])
    right = np.array([[3.0, 1.0, 0.0]])
    pairwise = [right, np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 3))]
    none = np.zeros((1, 3), bool)
    is_fg, energy = cut(unary_fg, unary_bg, pairwise, none, none)
    assert is_fg.tolist() == [[True, True, False]]
    assert energy == pytest.approx(5.5)
    # A hard background seed on b overrides its unary: a=F, b=B, c=B, paying only the a-b edge.
    is_fg, energy = cut(unary_fg, unary_bg, pairwise, none, np.array([[False, True, False]]))
    assert is_fg.tolist() == [[True, False, False]]
    assert energy == pytest.approx(3.0)  # hard pixels' unaries are not counted


def test_pairwise_weights_by_hand():
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 1] = (3, 4, 0)  # ‖Δz‖² = 25 to each of its 3 neighbours, 0 for the 3 other pairs
    right, down, diag, anti = pairwise_weights(image, 10.0)
    beta = 1 / (2 * (25 * 3 / 6))
    assert right[0, 0] == pytest.approx(10 * np.exp(-25 * beta)) and right[1, 0] == pytest.approx(10)
    assert down[0, 1] == pytest.approx(10 * np.exp(-25 * beta)) and down[0, 0] == pytest.approx(10)
    assert diag[0, 0] == pytest.approx(10 / np.sqrt(2))
    assert anti[0, 1] == pytest.approx(10 / np.sqrt(2) * np.exp(-25 * beta))
    assert right[:, 1].sum() == down[1].sum() == diag[1].sum() == anti[:, 0].sum() == 0  # outside the image


def test_banded_cut_matches_the_full_cut_inside_a_wide_band():
    rng = np.random.default_rng(3)
    unary_fg, unary_bg = rng.normal(0, 3, (30, 40)), rng.normal(0, 3, (30, 40))
    pairwise = [np.full((30, 40), 1.5) for _ in range(4)]
    none = np.zeros((30, 40), bool)
    full, _ = cut(unary_fg, unary_bg, pairwise, none, none)
    everywhere = np.ones((30, 40), bool)
    banded = banded_cut(np.zeros((30, 40), bool), everywhere,
                        lambda flat: (unary_fg.ravel()[flat], unary_bg.ravel()[flat]), pairwise, none, none)
    np.testing.assert_array_equal(banded, full)


def test_boundary_band():
    mask = box_mask(9, 9, (3, 3, 6, 6))
    band = boundary_band(mask, 1)
    assert band[3, 3] and band[2, 2] and not band[4, 4] and not band[0, 0]


def test_hand_seeds_override_automatic_ones():
    box = (20, 10, 41, 31)
    image = two_colour(40, 60, box, noise=4.0)
    auto = sparse_seeds(40, 60, box)
    auto[13:28, 23:38] = seg.AUTO_FOREGROUND
    hand = np.zeros_like(auto)
    hand[18:22, 28:34] = seg.HAND_BACKGROUND  # over part of the automatic foreground
    hand[5, 5] = seg.HAND_FOREGROUND  # a grey pixel, on the automatic background frame's side
    hand[2, 10] = seg.HAND_FOREGROUND  # on the automatic background frame itself
    seeds = seg.merge_seeds(auto, hand)
    assert seeds[19, 30] == seg.HAND_BACKGROUND and seeds[2, 10] == seg.HAND_FOREGROUND
    assert seeds[0, 0] == seg.AUTO_BACKGROUND
    result = seg.segment(image, seeds, gamma=50)
    assert not result.is_foreground_hw[18:22, 28:34].any()
    assert result.is_foreground_hw[5, 5] and result.is_foreground_hw[2, 10]  # kept although not the largest
    assert result.is_foreground_hw[12, 22]  # the rest of the object is still found


def test_hand_seeds_survive_downscaling():
    box = (150, 90, 461, 301)
    image = two_colour(400, 700, box, noise=5.0)
    seeds = sparse_seeds(400, 700, box)
    seeds[200, 300] = seg.HAND_BACKGROUND  # one pixel: lost at 512 px unless re-imposed
    seeds[50, 50] = seg.HAND_FOREGROUND
    result = seg.segment(image, seeds, gamma=50)
    assert not result.is_foreground_hw[200, 300] and result.is_foreground_hw[50, 50]


def test_cell_counts_by_hand_and_against_a_box_filter():
    from PIL import Image

    from engine.segmentation import grids

    # 10 pixels into 4 cells of 2.5: each pixel goes to the cell holding its centre (0-2, 3-4, 5-7, 8-9)
    assert grids.cell_starts(10, 4).tolist() == [0, 3, 5, 8]
    mask = np.zeros((2, 10), bool)
    mask[0, [2, 3, 4, 9]] = True
    assert grids.cell_counts(mask, (1, 4)).tolist() == [[1, 2, 0, 1]]
    assert grids.cell_sizes((2, 10), (1, 4)).tolist() == [[6, 4, 6, 4]]
    assert grids.cell_counts(np.zeros((5, 5), bool), (2, 2)).tolist() == [[0, 0], [0, 0]]
    # Pillow's box filter gives the same cell means, except for a pixel it drops (rounding) on a cell's edge
    rng = np.random.default_rng(0)
    for height, width, shape in ((300, 400, (38, 51)), (3000, 4000, (384, 512)), (7, 9, (7, 9)), (97, 13, (1, 1))):
        mask = rng.random((height, width)) < 0.3
        mask[:height // 3] = False  # rows without any: skipped
        means = grids.cell_counts(mask, shape) / grids.cell_sizes((height, width), shape)
        pillow = np.asarray(Image.fromarray(mask.astype(np.float32)).resize(shape[::-1], Image.Resampling.BOX))
        assert (np.abs(means - pillow) < 1e-5).mean() > 0.97, (height, width, shape)


def test_upsampled_masks_are_the_bilinear_map_at_one_half():
    from PIL import Image

    from engine.segmentation import grids

    rng = np.random.default_rng(3)
    for small, large in (((3, 4), (30, 41)), ((37, 50), (300, 401)), ((96, 128), (750, 1000))):
        mask = rng.random(small) < 0.4
        bilinear = np.asarray(Image.fromarray(mask.astype(np.float32)).resize(large[::-1], Image.Resampling.BILINEAR))
        assert np.array_equal(grids.upsample(mask, large), bilinear >= 0.5)
    edge = np.array([[False, True]])  # bilinear to 5 pixels: 0, 0.1, 0.5, 0.9, 1
    assert grids.upsample(edge, (1, 5)).tolist() == [[False, False, True, True, True]]  # exactly 1/2 is kept


def test_shrunk_seed_codes_by_hand():
    from engine.segmentation import grids

    codes = np.zeros((4, 6), np.uint8)
    codes[:, :3] = seg.AUTO_BACKGROUND  # the left half
    codes[0, 5] = seg.HAND_FOREGROUND  # one pixel of the top-right cell: hard, it takes the cell
    codes[2:, 3:] = seg.AUTO_FOREGROUND
    codes[3, 3] = seg.AUTO_HARD_BACKGROUND
    small = grids.resize_codes(codes, (2, 2), seg._PRECEDENCE, seg.HARD_FOREGROUND_CODES + seg.HARD_BACKGROUND_CODES)
    assert small.tolist() == [[seg.AUTO_BACKGROUND, seg.HAND_FOREGROUND], [seg.AUTO_BACKGROUND, seg.AUTO_HARD_BACKGROUND]]
    half = np.zeros((2, 2), np.uint8)
    half[0, :] = seg.AUTO_FOREGROUND  # exactly half a cell is not more than half
    assert grids.resize_codes(half, (1, 1), seg._PRECEDENCE, ()).tolist() == [[seg.NONE]]
    assert seg.has_code(codes, seg.HARD_BACKGROUND_CODES).sum() == 1 and not seg.has_code(codes, ()).any()


def test_automatic_seeds_quantiles():
    saliency = np.arange(100, dtype=np.float32).reshape(10, 10)
    seeds = seg.automatic_seeds(saliency)
    assert (seeds == seg.AUTO_FOREGROUND).sum() == 5  # 95.05 and up: 95..99
    assert (seeds == seg.AUTO_BACKGROUND).sum() == 30  # up to 29.7: 0..29
    hard = seg.automatic_seeds(saliency, hard_quantiles=seg.HARD_QUANTILES)
    assert hard.ravel()[99] == seg.AUTO_HARD_FOREGROUND and hard.ravel()[0] == seg.AUTO_HARD_BACKGROUND
    assert (hard == seg.AUTO_FOREGROUND).sum() == 4
    with pytest.raises(ValueError, match="quantile"):
        seg.automatic_seeds(saliency, fg_quantile=0.2, bg_quantile=0.3)


def test_keep_object_and_bounding_box():
    mask = np.zeros((10, 12), bool)
    mask[1:4, 1:4] = True  # 9 pixels
    mask[4, 4] = True  # touches (3, 3) at a corner: the same 8-connected component
    mask[7:9, 8:11] = True  # 6 pixels, apart
    kept = seg.keep_object(mask)
    assert kept.sum() == 10 and not kept[7:9, 8:11].any()
    assert seg.bounding_box(kept) == (1, 1, 5, 5)  # x1, y1 exclusive
    must = np.zeros_like(mask)
    must[8, 9] = True
    assert seg.keep_object(mask, must_keep_hw=must).sum() == 16
    many = np.zeros((9, 40), bool)
    many[::2, ::2] = True  # 100 one-pixel components; hand seeds on seven of them keep them all
    must = np.zeros_like(many)
    must[0, 0:14:2] = True
    assert seg.keep_object(many, must_keep_hw=must).sum() == 7
    assert seg.keep_object(many, rule="peak", peak_hw=(4, 6)).sum() == 1 and seg.keep_object(many, rule="peak", peak_hw=(4, 6))[4, 6]
    assert seg.bounding_box(np.zeros((3, 3), bool)) is None
    assert not seg.keep_object(np.zeros((3, 3), bool)).any()


def test_no_foreground_or_background_seeds_is_a_clear_error():
    image = two_colour(20, 20, (5, 5, 15, 15))
    only_bg = np.full((20, 20), seg.AUTO_BACKGROUND, np.uint8)
    with pytest.raises(ValueError, match="no foreground seeds"):
        seg.segment(image, only_bg)
    flat = seg.automatic_seeds(np.ones((20, 20)))  # a flat saliency map: every pixel at the quantile
    with pytest.raises(ValueError, match="no background seeds"):
        seg.segment(image, flat)
    with pytest.raises(ValueError, match="Seed codes"):
        seg.segment(image, np.full((20, 20), 9, np.uint8))
    with pytest.raises(ValueError, match="seed map is"):
        seg.segment(image, np.zeros((10, 20), np.uint8))


def test_uniform_image_gives_a_constant_mask():
    image = np.full((30, 30, 3), 128, np.uint8)
    seeds = sparse_seeds(30, 30, (10, 10, 20, 20))
    result = seg.segment(image, seeds)
    assert result.is_foreground_hw.all() or not result.is_foreground_hw.any()
    assert np.isfinite(result.energies).all()


def test_tiny_images():
    image = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)  # 1×2
    seeds = np.array([[seg.AUTO_FOREGROUND, seg.AUTO_BACKGROUND]], np.uint8)
    result = seg.segment(image, seeds)
    assert result.is_foreground_hw.tolist() == [[True, False]] and result.bbox == (0, 0, 1, 1)
    with pytest.raises(ValueError):  # a single pixel cannot have both kinds of seed
        seg.segment(image[:, :1], seg.automatic_seeds(np.zeros((1, 1))))


def test_gmm_recovers_clusters_and_survives_one_colour():
    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.normal(20, 3, (500, 3)), rng.normal(200, 3, (500, 3))])
    model = gmm.fit_gmm(samples, components=2, rng=np.random.default_rng(1))
    np.testing.assert_allclose(np.sort(model.means[:, 0]), [20, 200], atol=1.0)
    again = gmm.fit_gmm(samples, components=2, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(model.means, again.means)  # the rng decides everything
    flat = gmm.fit_gmm(np.full((50, 3), 77.0), rng=np.random.default_rng(0))  # singular covariance
    assert np.isfinite(gmm.log_likelihood(flat, np.array([[77, 77, 77], [0, 255, 0]]))).all()
    assert np.count_nonzero(flat.weights) >= 1 and flat.weights.sum() == pytest.approx(1)
    with pytest.raises(ValueError, match="no pixels"):
        gmm.fit_gmm(np.zeros((0, 3)), rng=np.random.default_rng(0))


def test_on_step_reports_each_round():
    box = (20, 10, 41, 31)
    steps = []
    seg.segment(two_colour(40, 60, box, 8.0), sparse_seeds(40, 60, box), iterations=3, on_step=lambda i, n: steps.append((i, n)))
    assert steps[0] == (1, 3) and steps[-1][0] <= 3


def test_recut_with_previous_colour_models():
    box = (20, 10, 41, 31)
    image, seeds = two_colour(40, 60, box, 8.0), sparse_seeds(40, 60, box)
    first = seg.segment(image, seeds, gamma=50)
    seeds[12:16, 22:26] = seg.HAND_BACKGROUND
    again = seg.segment(image, seeds, gamma=50, colour_models=first.colour_models, iterations=1)
    assert again.iterations == 1 and not again.is_foreground_hw[12:16, 22:26].any()
    reused = seg.segment(image, seeds, gamma=50, previous=first, iterations=1)  # same models, same unaries
    np.testing.assert_array_equal(reused.is_foreground_hw, again.is_foreground_hw)
    np.testing.assert_allclose(reused.unaries_hw, first.unaries_hw)


@pytest.mark.parametrize("mask", [
    np.array([[0, 1], [1, 1]], bool),
    np.ones((3, 4), bool),
    np.zeros((3, 4), bool),
    np.random.default_rng(0).random((17, 23)) > 0.5,
])
def test_coco_rle_round_trip(mask):
    rle = masks.encode_rle(mask)
    assert rle["size"] == list(mask.shape) and sum(rle["counts"]) == mask.size
    np.testing.assert_array_equal(masks.decode_rle(rle), mask)


def test_coco_rle_by_hand():
    # Column-major: [[0, 1], [1, 1]] reads 0, 1, 1, 1 -> one 0 then three 1s.
    assert masks.encode_rle(np.array([[0, 1], [1, 1]], bool))["counts"] == [1, 3]
    assert masks.encode_rle(np.array([[1, 0]], bool))["counts"] == [0, 1, 1]  # starts with zero 0s
    with pytest.raises(ValueError, match="add up"):
        masks.decode_rle({"size": [2, 2], "counts": [1, 2]})


def test_seed_map_png_round_trip():
    codes = np.arange(7, dtype=np.uint8).repeat(3).reshape(3, 7)
    data = masks.encode_seed_map(codes)
    np.testing.assert_array_equal(masks.decode_seed_map(data, hand_only=False), codes)
    hand = masks.decode_seed_map(data)
    assert set(np.unique(hand)) == {0, 1, 2}
    from engine.images import encode_png

    with pytest.raises(ValueError, match="palette or greyscale"):
        masks.decode_seed_map(encode_png(np.zeros((2, 2, 3), np.uint8)))


def test_box_and_mask_iou():
    assert masks.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert masks.box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    a = box_mask(4, 4, (0, 0, 2, 2))
    assert masks.mask_iou(a, a) == 1.0 and masks.mask_iou(a, ~a) == 0.0


def test_agrees_with_opencv_grabcut_on_the_same_trimap():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(5)
    h, w = 120, 160
    yy, xx = np.mgrid[:h, :w]
    is_object = (yy - 60) ** 2 / 40**2 + (xx - 75) ** 2 / 55**2 < 1  # an ellipse
    image = np.where(is_object[:, :, None], (170, 90, 40), (70, 110, 150)).astype(np.float64)
    image += 30 * np.sin(xx / 7.0)[:, :, None] * (0.3, 0.6, 0.2)  # texture, not just noise
    image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    codes = np.full((h, w), seg.AUTO_BACKGROUND, np.uint8)
    codes[45:75, 55:95] = seg.AUTO_FOREGROUND  # a complete trimap, the only kind cv2 takes
    codes[58:62, 70:80] = seg.AUTO_HARD_FOREGROUND
    codes[:3] = seg.AUTO_HARD_BACKGROUND
    ours = seg.segment(image, codes, gamma=50 * 256 / h)  # the same Potts weight as OpenCV's γ = 50
    mask = np.array([2, 0, 1, 2, 3, 0, 1], np.uint8)[codes]  # cv2.GC_* (BGD 0, FGD 1, PR_BGD 2, PR_FGD 3) per code
    cv2.grabCut(np.ascontiguousarray(image[:, :, ::-1]), mask, None, np.zeros((1, 65)), np.zeros((1, 65)), 5,
                cv2.GC_INIT_WITH_MASK)
    theirs = seg.keep_object((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))
    assert masks.mask_iou(ours.is_foreground_hw, theirs) >= 0.9
    assert masks.mask_iou(ours.is_foreground_hw, is_object) >= 0.9


def test_strokes_become_hand_seeds_at_image_resolution():
    # What the segmentation page does with the canvas' RGBA pixels, on a canvas twice the photo's size.
    canvas = np.zeros((40, 60, 4), np.uint8)
    canvas[0:10, 0:20] = masks.STROKE_COLOURS[seg.HAND_FOREGROUND] + (255,)
    canvas[30:40, 40:60] = masks.STROKE_COLOURS[seg.HAND_BACKGROUND] + (255,)
    canvas[0:4, 0:4] = masks.STROKE_COLOURS[seg.NONE] + (255,)  # erase over the foreground stroke
    resumed = np.zeros((20, 30), np.uint8)
    resumed[10, 15] = seg.HAND_FOREGROUND
    seeds = masks.seeds_from_strokes(canvas, (20, 30), resumed)
    assert (seeds[0:5, 0:10] == seg.HAND_FOREGROUND).sum() == 50 - 4
    assert (seeds[15:20, 20:30] == seg.HAND_BACKGROUND).all()
    assert seeds[0, 0] == seg.NONE and seeds[10, 15] == seg.HAND_FOREGROUND


# ---------------------------------------------------------------- empty cuts, priors, box rules
def test_soft_seeds_on_a_speckle_map_no_longer_give_an_empty_cut():
    """The failure of real photos, made small: a speckle map (as the raw gradient is) seeds two colour
    models that cannot tell the object from the rest, and with γ = 150 the exact minimum of the soft
    cut labels every pixel background. The foreground seeds are then made hard and cut again."""
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(128, 40, (120, 160, 3)), 0, 255).astype(np.uint8)
    seeds = seg.automatic_seeds(rng.random((120, 160)))
    result = seg.segment(image, seeds)
    assert result.seeds_promoted and result.area > 0 and result.bbox is not None
    assert len(result.energies) == result.iterations >= 2  # the soft rounds, then the promoted cut


def test_only_strokes_can_empty_the_cut():
    box = (20, 10, 41, 31)
    image, seeds = two_colour(40, 60, box, 8.0), sparse_seeds(40, 60, box)
    seeds[seeds == seg.AUTO_FOREGROUND] = seg.HAND_BACKGROUND  # the person painted over every foreground seed
    result = seg.segment(image, seeds, gamma=50)
    assert result.area == 0 and result.bbox is None and not result.seeds_promoted


def test_the_prior_alone_labels_a_uniform_image():
    """A uniform image: both colour models are the same Gaussian, so with γ = 0 each pixel takes the
    label its prior favours: foreground exactly where p > 1/2."""
    image = np.full((30, 40, 3), 90, np.uint8)
    prior = np.full((30, 40), 0.2, np.float32)
    prior[5:20, 10:30] = 0.9
    seeds = np.zeros((30, 40), np.uint8)
    seeds[10, 20], seeds[0, 0] = seg.AUTO_FOREGROUND, seg.AUTO_BACKGROUND
    result = seg.segment(image, seeds, gamma=0, prior_hw=prior, prior_weight=1.0)
    np.testing.assert_array_equal(result.is_foreground_hw, prior > 0.5)
    with pytest.raises(ValueError, match="probabilities"):
        seg.segment(image, seeds, prior_hw=prior * 2, prior_weight=1.0)
    with pytest.raises(ValueError, match="prior map is"):
        seg.segment(image, seeds, prior_hw=prior[:10], prior_weight=1.0)


def test_box_rules():
    mask = np.zeros((10, 12), bool)
    mask[1:3, 1:3] = True  # 4 px, holds the peak
    mask[5:9, 6:11] = True  # 20 px
    assert seg.bounding_box(seg.keep_object(mask)) == (6, 5, 11, 9)
    assert seg.bounding_box(seg.keep_object(mask, rule="all")) == (1, 1, 11, 9)
    assert seg.bounding_box(seg.keep_object(mask, rule="peak", peak_hw=(2, 2))) == (1, 1, 3, 3)
    assert seg.bounding_box(seg.keep_object(mask, rule="peak", peak_hw=(0, 11))) == (6, 5, 11, 9)  # peak outside: largest
    with pytest.raises(ValueError, match="box rule"):
        seg.keep_object(mask, rule="biggest")


def test_the_canvas_picture_fills_and_outlines_the_mask_and_draws_the_seeds_over_it():
    photo = np.full((4, 5, 3), 100, np.uint8)
    mask = np.zeros((4, 5), bool)
    mask[0:3, 1:4] = True  # a 3×3 block against the top border
    seeds = np.zeros((4, 5), np.uint8)
    seeds[1, 2] = seg.HAND_FOREGROUND  # inside the mask, not on its outline
    seeds[3, 0] = seg.HAND_BACKGROUND  # outside the mask
    seeds[0, 2] = seg.AUTO_FOREGROUND  # the model's: not drawn over a mask
    drawn = masks.draw_mask_with_seeds(photo, mask, seeds, opacity=0.5)
    green, fill = (40, 220, 90), (70, 160, 95)  # fill: (100 + green) / 2
    # the outline is the block's pixels with a neighbour outside it; its top row runs along the photo's edge,
    # so of the block only (0, 2) and (1, 2) are inside; (1, 2) carries a seed
    expected = np.full((4, 5, 3), 100, np.uint8)
    for y, x in [(0, 1), (0, 3), (1, 1), (1, 3), (2, 1), (2, 2), (2, 3)]:
        expected[y, x] = green
    expected[0, 2] = fill
    expected[1, 2] = (209, 70, 54)  # red (255, 40, 40) at 0.75 over the fill: 0.25 * fill + 0.75 * red, rounded
    expected[3, 0] = (48, 108, 216)  # blue (30, 110, 255) at 0.75 over the photo's 100
    assert np.array_equal(drawn, expected), drawn
    alone = masks.draw_mask_with_seeds(photo, None, seeds)  # the toggle's "seeds alone": today's picture
    assert np.array_equal(alone, masks.draw_seeds(photo, seeds))  # every seed, the model's too
    assert tuple(alone[0, 2]) == (216, 152, 70)  # orange (255, 170, 60) at 0.75 over 100 (152.5: to even)
    assert (alone[0:3, 1:4][seeds[0:3, 1:4] == 0] == 100).all()  # no trace of the mask
    with pytest.raises(ValueError, match="opacity"):
        masks.draw_mask(photo, mask, opacity=1.5)
