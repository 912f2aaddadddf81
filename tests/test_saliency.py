"""Paper §3.1: saliency oracles on models whose gradient is known by hand."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from engine.attribution.saliency import REDUCTIONS, compute_saliency, predict, reduce_channels
from engine.views import make_batch, view_layout
from tests.conftest import random_image


def weight_map(model, target: int, how: str = "max-abs") -> np.ndarray:
    w = model.module[1].weight[target].reshape(1, 3, 12, 12)
    return reduce_channels(w, how)[0].numpy()


@pytest.mark.parametrize("how", REDUCTIONS)
def test_linear_model_saliency_is_the_class_weights_reduced_over_channels(linear_model, how):
    image = random_image(16, 16)
    result = compute_saliency(linear_model, image, target=3, reduce=how)
    expected = np.zeros((16, 16), np.float32)
    expected[2:14, 2:14] = weight_map(linear_model, 3, how)  # centre crop of 12 in 16; margins unseen
    np.testing.assert_allclose(result.saliency_hw, expected, rtol=1e-6, atol=1e-7)
    assert result.class_index == 3 and result.views == 1 and result.method == "gradient"


def test_paper_reduction_is_max_of_absolute_channel_values():
    w = torch.tensor([[[[1.0]], [[-3.0]], [[2.0]]]])  # (1, 3, 1, 1)
    assert reduce_channels(w, "max-abs").item() == 3.0
    assert reduce_channels(w, "sum-abs").item() == 6.0
    assert reduce_channels(w, "l2").item() == pytest.approx(np.sqrt(14))
    assert reduce_channels(w, "signed-max").item() == -3.0


def test_score_is_the_unnormalised_logit(linear_model):
    image = random_image(16, 16, seed=3)
    batch, _, _ = make_batch(linear_model, image)
    expected = linear_model.module(batch)[0, 2].item()
    assert compute_saliency(linear_model, image, target=2).score == pytest.approx(expected, rel=1e-6)


def test_ten_views_are_the_four_corners_and_centre_each_mirrored():
    layout = view_layout((16, 20), 12, 10)
    plain = {(v.top, v.left) for v in layout if not v.flipped}
    assert plain == {(0, 0), (0, 8), (4, 0), (4, 8), (2, 4)}
    assert {(v.top, v.left) for v in layout if v.flipped} == plain


def test_ten_view_map_equals_the_single_views_placed_back_by_hand(tiny_convnet):
    image = random_image(16, 20, seed=4)  # short side 16 = resize: the frame is the photo itself
    result = compute_saliency(tiny_convnet, image, target=1, views=10)
    total, count = np.zeros((16, 20)), np.zeros((16, 20))
    x01 = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    for top, left in [(0, 0), (0, 8), (4, 0), (4, 8), (2, 4)]:
        for flipped in (False, True):
            crop = x01[:, top : top + 12, left : left + 12]
            crop = crop.flip(-1) if flipped else crop
            x = ((crop - 0.5) / 0.25)[None].requires_grad_(True)
            tiny_convnet.module(x)[0, 1].backward()
            view_map = x.grad[0].abs().amax(0).numpy()
            total[top : top + 12, left : left + 12] += view_map[:, ::-1] if flipped else view_map
            count[top : top + 12, left : left + 12] += 1
    np.testing.assert_allclose(result.saliency_hw, total / count, rtol=1e-5, atol=1e-7)


def test_map_has_the_photos_resolution_for_any_size(tiny_convnet):
    for shape in [(5, 7), (16, 16), (33, 90), (200, 31)]:
        assert compute_saliency(tiny_convnet, random_image(*shape), views=10).saliency_hw.shape == shape


def test_default_target_is_the_top1_prediction(tiny_convnet):
    image = random_image(16, 16, seed=5)
    top1 = predict(tiny_convnet, image, top=1)[0].index
    assert compute_saliency(tiny_convnet, image).class_index == top1


def test_predictions_are_sorted_probabilities_with_logits(tiny_convnet):
    predictions = predict(tiny_convnet, random_image(16, 16), top=5)
    probabilities = [p.probability for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    logits = [p.logit for p in predictions]
    assert logits == sorted(logits, reverse=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"views": 3}, "Views must be 1"),
    ({"reduce": "mean"}, "Unknown channel reduction"),
    ({"target": 5}, "out of range"),
    ({"target": -1}, "out of range"),
    ({"method": "magic"}, "Unknown method"),
])
def test_nonsense_parameters_are_clear_value_errors(tiny_convnet, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_saliency(tiny_convnet, random_image(16, 16), **kwargs)


def test_the_shared_model_is_left_untouched(tiny_convnet):
    before = {k: v.clone() for k, v in tiny_convnet.module.state_dict().items()}
    compute_saliency(tiny_convnet, random_image(16, 16), views=10)
    assert all(p.grad is None and not p.requires_grad for p in tiny_convnet.module.parameters())
    assert not tiny_convnet.module.training
    assert all(torch.equal(before[k], v) for k, v in tiny_convnet.module.state_dict().items())


@pytest.mark.slow
def test_eight_threads_on_the_shared_embedded_model_give_the_serial_results(embedded_model):
    jobs = [(random_image(180 + 20 * i, 240, seed=i), (i * 97) % 1000, 1 + 9 * (i % 2)) for i in range(8)]
    run = lambda job: compute_saliency(embedded_model, job[0], target=job[1], views=job[2]).saliency_hw  # noqa: E731
    serial = [run(job) for job in jobs]
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(run, jobs))
    for alone, together in zip(serial, concurrent):
        np.testing.assert_array_equal(alone, together)


# ---------------------------------------------------------------- several classes at once, the whole photo
def gap_convnet():
    """conv-ReLU-conv-global average pool-linear: takes any input size, as the EfficientNets do."""
    from torch import nn

    from tests.conftest import wrap

    generator = torch.Generator().manual_seed(5)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    return wrap(net, resize=16, crop=12, classes=5)


@pytest.mark.parametrize("method, views", [("gradient", 1), ("gradient", 10), ("guided", 1), ("deconvnet", 10),
                                           ("gradcam", 1), ("gradcam", "full"), ("gradient", "full"),
                                           ("smoothgrad", 1)])
def test_five_classes_in_one_pass_equal_five_single_passes(method, views):
    from engine.attribution.saliency import compute_saliencies

    model = gap_convnet()
    image = random_image(18, 26, seed=6)
    together = compute_saliencies(model, image, [4, 0, 2, 1, 3], views=views, method=method)
    for result, target in zip(together, [4, 0, 2, 1, 3]):
        alone = compute_saliency(model, image, target=target, views=views, method=method)
        assert result.class_index == target and result.views == views
        np.testing.assert_allclose(result.saliency_hw, alone.saliency_hw, rtol=1e-5, atol=1e-7)
        assert result.score == pytest.approx(alone.score, rel=1e-5, abs=1e-6)  # a logit near 0: float32 sums


def test_the_full_view_is_the_whole_photo_at_its_short_side():
    from engine.views import full_side, make_batch, place_full_view

    model = gap_convnet()
    image = random_image(30, 45, seed=7)
    batch, layout, _ = make_batch(model, image, "full")
    side = full_side(model.preprocessing)  # 12 × 10/7 = 17
    assert side == 17 and batch.shape == (1, 3, 17, 26)  # 45·17/30 = 25.5, rounded half to even
    result = compute_saliency(model, image, target=2, views="full")
    assert result.saliency_hw.shape == (30, 45) and result.saliency_hw[:, :3].any()  # the margins are seen
    # A 9:1 strip: only its centre 4:1 goes to the network; the rest of the map stays 0.
    strip = place_full_view(np.ones((4, 16), np.float32), (10, 90))
    assert strip[:, 25:65].all() and not strip[:, :25].any() and not strip[:, 65:].any()
    with pytest.raises(ValueError, match="Views must be"):
        make_batch(model, image, "whole")
