"""Model randomisation (Adebayo et al. 2018) and deletion/insertion (Petsiuk et al. 2018)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine.attribution import sanity
from engine.stopping import Cancelled
from engine.views import make_batch
from tests.conftest import ASSETS, random_image


def test_cascade_counts_start_with_the_top_layer_alone_and_end_with_all():
    assert sanity.cascade_counts(16, 8) == (1, 3, 5, 7, 10, 12, 14, 16)
    assert sanity.cascade_counts(3, 8) == (1, 2, 3)
    assert sanity.cascade_counts(50, 1) == (1,)
    with pytest.raises(ValueError, match="at least 1 stage"):
        sanity.cascade_counts(5, 0)


def test_randomised_copies_share_untouched_weights_and_leave_the_model_alone(tiny_convnet):
    module = tiny_convnet.module
    before = [p.clone() for p in module.parameters()]
    twin = sanity._randomised(module, ["4"], torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))
    assert twin[0].weight is module[0].weight  # below the cut: shared, no copy
    assert not torch.equal(twin[4].weight, module[4].weight)
    assert abs(float(twin[4].weight.std() / module[4].weight.std()) - 1) < 0.3  # same scale


def test_randomisation_check_on_a_small_network(tiny_convnet):
    steps = []
    check = sanity.check_randomisation(tiny_convnet, random_image(16, 16), target=1, stages=5,
                                       methods=("gradient", "guided"), on_step=lambda d, t: steps.append((d, t)))
    assert check.stages == ("trained", "4", "0") and steps[-1] == (3, 3)
    for method in check.methods:
        assert check.maps[method].shape == (3, 12, 12)
        assert check.correlations[method][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Unknown method"):
        sanity.check_randomisation(tiny_convnet, random_image(16, 16), methods=("magic",))


@pytest.mark.slow
def test_gradient_decorrelates_and_guided_backprop_barely_does(embedded_model):
    """Adebayo et al.'s finding, on the embedded model and a demo photo."""
    from engine.images import load_image

    check = sanity.check_randomisation(embedded_model, load_image(ASSETS / "cat.jpg"), stages=2, methods=("gradient", "guided"))
    gradient, guided = check.correlations["gradient"], check.correlations["guided"]
    assert gradient[1] < 0.6 and gradient[-1] < 0.3  # the logits alone already change the map
    assert guided[1] > 0.9 and guided[1] > gradient[1] + 0.3


def test_pixel_order_ranks_the_most_salient_first():
    assert sanity.pixel_order(np.array([[3.0, 1.0], [2.0, 4.0]])).tolist() == [[1, 3], [2, 0]]
    assert sanity.pixel_order(np.zeros((1, 3))).tolist() == [[0, 1, 2]]  # ties: raster order


def test_deletion_and_insertion_curves_run_from_clean_to_black_and_blurred_to_clean(tiny_convnet):
    batch = make_batch(tiny_convnet, random_image(16, 16, 3), 1)[0]
    saliency = np.random.default_rng(0).random((12, 12))
    result = sanity.delete_and_insert(tiny_convnet, batch, 2, saliency, method="x", pixels_per_step=12)
    assert len(result.fractions) == 13 and result.fractions[0] == 0 and result.fractions[-1] == 1
    probabilities = lambda images: torch.softmax(tiny_convnet.module(images), -1)[:, 2]  # noqa: E731
    black = sanity.normalise(torch.zeros_like(batch), tiny_convnet.preprocessing)
    blurred = sanity.make_baseline(tiny_convnet, batch, "blurred")
    with torch.no_grad():
        clean, dark, blur = (float(probabilities(x)) for x in (batch, black, blurred))
    assert result.deletion[0] == pytest.approx(clean, rel=1e-5) and result.deletion[-1] == pytest.approx(dark, rel=1e-5)
    assert result.insertion[0] == pytest.approx(blur, rel=1e-5) and result.insertion[-1] == pytest.approx(clean, rel=1e-5)
    assert result.deletion_auc == pytest.approx(np.trapezoid(result.deletion, result.fractions))
    with pytest.raises(ValueError, match="the view is"):
        sanity.delete_and_insert(tiny_convnet, batch, 2, saliency[:5], pixels_per_step=12)


def test_one_step_deletion_matches_deleting_the_top_pixels_by_hand(tiny_convnet):
    batch = make_batch(tiny_convnet, random_image(16, 16, 4), 1)[0]
    saliency = np.arange(144, dtype=np.float64).reshape(12, 12)  # the last row is the most salient
    result = sanity.delete_and_insert(tiny_convnet, batch, 0, saliency, pixels_per_step=12)
    deleted = batch.clone()
    deleted[..., -1, :] = sanity.normalise(torch.zeros(1, 3, 1, 1), tiny_convnet.preprocessing)[..., 0]
    with torch.no_grad():
        expected = float(torch.softmax(tiny_convnet.module(deleted), -1)[0, 0])
    assert result.deletion[1] == pytest.approx(expected, rel=1e-5)


def test_full_protocol_on_a_224_view_takes_224_steps(tiny_convnet):
    view = torch.zeros(1, 3, 224, 224)
    model = dataclasses.replace(tiny_convnet, module=torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(12), tiny_convnet.module))
    result = sanity.delete_and_insert(model, view, 0, np.zeros((224, 224)))
    assert len(result.fractions) == 225


@pytest.mark.slow
def test_measure_faithfulness_on_the_embedded_model(embedded_model):
    results = sanity.measure_faithfulness(embedded_model, random_image(230, 260), methods=("gradient", "gradcam"),
                                          pixels_per_step=224 * 16)
    assert [r.method for r in results] == ["gradient", "gradcam"]
    for result in results:
        assert 0 <= result.deletion_auc <= 1 and 0 <= result.insertion_auc <= 1 and len(result.fractions) == 15


def _stop_after(asks: int):
    """A ``should_stop`` that answers True from its ``asks``-th question on, counting them."""
    count = [0]

    def should_stop():
        count[0] += 1
        return count[0] >= asks
    return should_stop, count


def test_a_stopped_randomisation_check_raises_and_an_unstopped_one_is_unchanged(tiny_convnet):
    image = random_image(16, 16)
    plain = sanity.check_randomisation(tiny_convnet, image, target=1, stages=5, methods=("gradient", "guided"))
    never = sanity.check_randomisation(tiny_convnet, image, target=1, stages=5, methods=("gradient", "guided"),
                                       should_stop=lambda: False)
    for method in plain.methods:
        np.testing.assert_array_equal(plain.maps[method], never.maps[method])
    should_stop, asked = _stop_after(3)
    steps = []
    with pytest.raises(Cancelled):
        sanity.check_randomisation(tiny_convnet, image, target=1, stages=5, methods=("gradient", "guided"),
                                   should_stop=should_stop, on_step=lambda d, t: steps.append(d))
    assert asked[0] == 3 and steps == [1]  # asked before each map: stopped at the second stage's first map


def test_deletion_and_insertion_stop_between_batches(tiny_convnet):
    batch = make_batch(tiny_convnet, random_image(16, 16, 3), 1)[0]
    saliency = np.random.default_rng(0).random((12, 12))
    should_stop, asked = _stop_after(2)
    with pytest.raises(Cancelled):  # 145 steps in batches of 32: stopped at the second batch
        sanity.delete_and_insert(tiny_convnet, batch, 2, saliency, pixels_per_step=1, should_stop=should_stop)
    assert asked[0] == 2
    should_stop, asked = _stop_after(1)
    with pytest.raises(Cancelled):
        sanity.measure_faithfulness(tiny_convnet, random_image(16, 16), target=1, methods=("gradient",), should_stop=should_stop)
    assert asked[0] == 1
