"""SmoothGrad, Integrated Gradients, Grad-CAM: oracles, a captum check, threads, the command line."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from torch import nn

from engine import stopping
from engine.__main__ import main
from engine.attribution import methods
from engine.attribution.registry import METHODS, score_gradient
from engine.attribution.saliency import compute_saliency
from engine.stopping import Cancelled
from engine.views import make_batch
from tests.conftest import ASSETS, random_image, wrap


def _batch(model, seed=0, views=1):
    return make_batch(model, random_image(20, 24, seed), views)[0]


def test_methods_are_registered_for_the_cli_and_pages():
    assert {"gradient", "deconvnet", "guided", "smoothgrad", "integrated-gradients", "gradcam"} <= set(METHODS)


# ---------------------------------------------------------------- SmoothGrad
def test_smoothgrad_of_a_linear_model_is_its_gradient(linear_model):
    batch = _batch(linear_model)
    smooth, scores = methods.smoothgrad(linear_model, batch, 3, samples=7, batch_size=3)
    grad, clean = score_gradient(linear_model.module, batch, 3)
    assert torch.allclose(smooth, grad, atol=1e-6) and torch.allclose(scores, clean)


def test_smoothgrad_is_seeded_batched_and_zero_noise_is_the_gradient(tiny_convnet):
    batch = _batch(tiny_convnet, views=10)
    one = methods.smoothgrad(tiny_convnet, batch, 1, samples=5, seed=3, batch_size=7)[0]
    again = methods.smoothgrad(tiny_convnet, batch, 1, samples=5, seed=3, batch_size=50)[0]
    other = methods.smoothgrad(tiny_convnet, batch, 1, samples=5, seed=4)[0]
    assert one.shape == batch.shape and torch.allclose(one, again, atol=1e-6) and not torch.allclose(one, other)
    quiet = methods.smoothgrad(tiny_convnet, batch, 1, samples=2, noise=0.0)[0]
    assert torch.allclose(quiet, score_gradient(tiny_convnet.module, batch, 1)[0], atol=1e-5)


def test_smoothgrad_noise_is_a_share_of_each_channels_input_range(tiny_convnet):
    sigma = methods.noise_sigma(tiny_convnet, 0.15)  # std 0.25: the range of each channel is 1/0.25 = 4
    assert torch.allclose(sigma.flatten(), torch.full((3,), 0.6))
    with pytest.raises(ValueError, match="at least 1 sample"):
        methods.smoothgrad(tiny_convnet, _batch(tiny_convnet), 0, samples=0)


# ---------------------------------------------------------------- Integrated Gradients
def test_integrated_gradients_of_a_linear_model_is_input_times_weight(linear_model):
    batch = _batch(linear_model)
    result = methods.integrate_gradients(linear_model, batch, 2, steps=3)
    baseline = methods.make_baseline(linear_model, batch, "black")
    weight = linear_model.module[1].weight[2].view(1, 3, 12, 12)
    assert torch.allclose(result.attribution, (batch - baseline) * weight, atol=1e-5)
    assert abs(float(result.completeness_gap[0])) < 1e-3


def smooth_net() -> nn.Module:
    generator = torch.Generator().manual_seed(5)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Conv2d(4, 4, 3), nn.Softplus(), nn.Flatten(), nn.LazyLinear(5))
    net(torch.zeros(1, 3, 12, 12))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return net


@pytest.mark.parametrize("baseline", methods.BASELINES)
def test_integrated_gradients_completeness_holds_on_a_smooth_network(baseline):
    model = wrap(smooth_net(), resize=16, crop=12, classes=5)
    result = methods.integrate_gradients(model, _batch(model, views=10), 4, baseline=baseline, batch_size=64)
    difference = result.scores - result.baseline_scores
    assert torch.allclose(result.attribution_sums, difference, rtol=1e-4, atol=1e-5)


def test_integrated_gradients_completeness_gap_shrinks_with_steps_on_a_relu_network(tiny_convnet):
    batch = _batch(tiny_convnet)
    coarse = methods.integrate_gradients(tiny_convnet, batch, 0, steps=2, integration="riemann-middle")
    fine = methods.integrate_gradients(tiny_convnet, batch, 0, steps=512, integration="riemann-middle")
    assert abs(float(fine.completeness_gap[0])) < 0.01 * abs(float(fine.scores[0] - fine.baseline_scores[0]))
    assert abs(float(fine.completeness_gap[0])) < abs(float(coarse.completeness_gap[0]))


def test_integrated_gradients_equals_captum_with_the_same_quadrature(tiny_convnet):
    from captum.attr import IntegratedGradients

    batch = _batch(tiny_convnet, views=10)
    baseline = methods.make_baseline(tiny_convnet, batch, "blurred")
    ours = methods.integrate_gradients(tiny_convnet, batch, 2, baseline="blurred", steps=32).attribution
    theirs = IntegratedGradients(tiny_convnet.module).attribute(batch, baselines=baseline, target=2, n_steps=32, method="gausslegendre")
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-6)


class PathPolynomial(nn.Module):
    """Scores with a known path integral from the black baseline x': u = w·(x − x') / U (U makes u = 1 at
    the test view), S_0 = u^40 (the integrand along the path is 40·α^39, ∫ = 1) and S_1 = relu(u − 0.9)
    (the integrand is 1[α > 0.9], ∫ = 0.1): Σ IG over n nodes is Σ_i w_i·f(α_i), computable by hand."""

    def __init__(self, baseline: torch.Tensor, view: torch.Tensor):
        super().__init__()
        self.register_buffer("baseline", baseline)
        self.register_buffer("scale", (view - baseline).sum())

    def forward(self, x):
        u = (x - self.baseline).flatten(1).sum(1) / self.scale  # (B,)
        return torch.stack([u.pow(40), torch.relu(u - 0.9), u], 1)


def _path_model(base):
    batch = _batch(base)
    baseline = methods.make_baseline(base, batch, "black")
    return wrap(PathPolynomial(baseline, batch), resize=16, crop=12, classes=3), batch


def _first_within(counts, error_of):
    return next(n for n in counts if error_of(n) <= methods.TOLERANCE)


def test_integrated_gradients_steps_grow_until_the_known_integral_is_within_5_percent(linear_model):
    model, batch = _path_model(linear_model)
    midpoint = lambda n: abs(sum(40 * ((i + 0.5) / n) ** 39 for i in range(n)) / n - 1.0)  # noqa: E731
    expected = _first_within((32, 64, 128, 256), midpoint)  # 32 nodes: 6.3% off; 64: 1.6%
    result = methods.integrate_gradients(model, batch, 0, integration="riemann-middle")
    assert expected == 64 and result.steps == expected
    assert float(result.scores[0] - result.baseline_scores[0]) == pytest.approx(1.0, rel=1e-5)
    assert float(result.relative_gap[0]) == pytest.approx(midpoint(expected), rel=1e-3)
    # Gauss-Legendre is exact for a degree-39 polynomial with 32 nodes: no growth needed
    exact = methods.integrate_gradients(model, batch, 0)
    assert exact.steps == 32 and float(exact.relative_gap[0]) < 1e-4


def test_integrated_gradients_steps_grow_past_a_kink_and_a_fixed_count_stays_fixed(linear_model):
    model, batch = _path_model(linear_model)

    def gauss_legendre(n):
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return abs(weights[(nodes + 1) / 2 > 0.9].sum() / 2 - 0.1) / 0.1

    expected = _first_within((32, 64, 128, 256), gauss_legendre)  # 32 nodes: 11.6% off; 64: 0.5%
    grown = methods.integrate_gradients(model, batch, 1)
    assert expected == 64 and grown.steps == 64
    assert float(grown.relative_gap[0]) == pytest.approx(gauss_legendre(64), rel=1e-3)
    fixed = methods.integrate_gradients(model, batch, 1, steps=32)
    assert fixed.steps == 32 and float(fixed.relative_gap[0]) == pytest.approx(gauss_legendre(32), rel=1e-3)
    capped = methods.integrate_gradients(model, batch, 1, max_steps=48)  # 32, then the cap
    assert capped.steps == 48
    check = methods.integrated_gradients_check(model, np.zeros((16, 16, 3), np.uint8) + 200, target=2)
    assert check.steps == 32 and check.relative_gap < 1e-5  # S_2 = u is linear: exact at once


def test_integrated_gradients_stops_between_its_passes_when_asked(tiny_convnet):
    """The faithfulness page's completeness check runs on its session's thread: when the viewer leaves, it stops
    before its next batch of path points, not after adaptive's hundreds of passes."""
    asked = []

    def should_stop():
        asked.append(True)
        return len(asked) > 2  # two passes, then stop

    batch = _batch(tiny_convnet)
    with pytest.raises(Cancelled):
        methods.integrate_gradients(tiny_convnet, batch, 0, steps=64, batch_size=8, should_stop=should_stop)  # 8 passes
    assert len(asked) == 3
    with pytest.raises(Cancelled):
        methods.integrated_gradients_check(tiny_convnet, random_image(20, 24, 0), target=0, should_stop=lambda: True)
    unstopped = methods.integrate_gradients(tiny_convnet, batch, 0, steps=64, batch_size=8, should_stop=lambda: False)
    assert torch.equal(unstopped.attribution, methods.integrate_gradients(tiny_convnet, batch, 0, steps=64, batch_size=8).attribution)


def test_integrated_gradients_step_options_are_checked():
    assert methods.step_schedule(methods.ADAPTIVE) == (32, 64, 128, 256)
    assert methods.step_schedule(methods.ADAPTIVE, max_steps=100) == (32, 64, 100)
    assert methods.step_schedule(12) == (12,)
    for bad in (0, -3, 2.5, "many", True):
        with pytest.raises(ValueError):
            methods.step_schedule(bad)


def test_blurred_baseline_keeps_a_flat_image_and_unknown_baselines_fail(tiny_convnet):
    flat = torch.full((1, 3, 12, 12), 0.7)
    assert torch.allclose(methods.make_baseline(tiny_convnet, flat, "blurred"), flat, atol=1e-6)
    with pytest.raises(ValueError, match="Unknown baseline"):
        methods.integrate_gradients(tiny_convnet, flat, 0, baseline="white")


# ---------------------------------------------------------------- Grad-CAM
def cam_net() -> nn.Module:
    generator = torch.Generator().manual_seed(7)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
    return net


def test_gradcam_oracle_global_average_pool_head():
    """With S = w·mean(A) + b, ∂S/∂A^k = w_k/(h·w), so the map is ReLU(Σ_k w_k A^k)/(h·w)."""
    model = wrap(cam_net(), resize=16, crop=12, classes=5)
    batch = _batch(model, views=10)
    cam, _ = methods.gradcam(model, batch, 3)
    activations = model.module[1](model.module[0](batch))  # (B, 4, 12, 12)
    weight = model.module[4].weight[3].view(1, 4, 1, 1)
    expected = torch.relu((weight * activations).sum(1, keepdim=True)) / 144
    assert methods.grad_cam_layer(model, None) == "1"
    assert cam.shape == (10, 1, 12, 12) and torch.allclose(cam, expected, atol=1e-6)
    by_name, _ = methods.gradcam(model, batch, 3, layer="0")  # the conv before the ReLU
    assert by_name.shape == cam.shape and not torch.allclose(by_name, cam)
    with pytest.raises(ValueError, match="no layer called"):
        methods.gradcam(model, batch, 3, layer="nope")


@pytest.mark.slow
def test_gradcam_on_the_embedded_model_uses_its_last_block(embedded_model):
    result = compute_saliency(embedded_model, random_image(240, 300), method="gradcam")
    assert result.saliency_hw.shape == (240, 300) and result.saliency_hw.max() > 0
    left = [hook for m in embedded_model.module.modules() for hook in m._forward_hooks.values() if hook is not stopping._block_done]
    assert left == []  # Grad-CAM's hooks are gone; only the stop checks the model was loaded with stay


# ---------------------------------------------------------------- threads and the command line
MIXED = [("gradient", {}), ("deconvnet", {}), ("guided", {}), ("smoothgrad", {"samples": 4}),
         ("integrated-gradients", {"steps": 4, "baseline": "blurred"}), ("gradcam", {})] * 2


def test_mixed_methods_on_one_shared_model_in_threads_equal_serial():
    generator = torch.Generator().manual_seed(9)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(6, 6, 3, padding=1),
                        nn.ReLU6(inplace=True), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 16 * 16, 5))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    model = wrap(net, resize=36, crop=32, classes=5)
    image = random_image(40, 50, 1)
    jobs = [(name, options, views) for (name, options), views in zip(MIXED, [1, 10] * 6)]

    def run(job):
        name, options, views = job
        return compute_saliency(model, image, target=2, method=name, views=views, options=options).saliency_hw

    results: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(8)

    def worker(slot: int):
        barrier.wait()
        for index in range(slot, len(jobs), 8):
            results[index] = run(jobs[index])

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    serial = [run(job) for job in jobs]  # after: the threads also raced to build the rule copies
    assert all(np.array_equal(results[i], serial[i]) for i in range(len(jobs)))
    assert not any(m._forward_hooks or m._backward_hooks for m in net.modules())


@pytest.mark.slow
@pytest.mark.parametrize("method", ["deconvnet", "guided", "gradcam"])
def test_cli_saliency_runs_the_new_methods_with_their_defaults(method, capsys, tmp_path):
    out_path = tmp_path / "map.npy"
    code = main(["saliency", str(ASSETS / "cat.jpg"), "--method", method, "--out", str(out_path)])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["method"] == method and np.load(out_path).shape == (300, 451)
