"""Saliency methods later than the paper, beside its §3.1 gradient (Simonyan et al. 2013).

- SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies ``x + N(0, σ²)``.
- Integrated Gradients (Sundararajan et al. 2017): ``(x - x')·∫₀¹ ∂S(x' + α(x - x'))/∂x dα``, with
  its completeness check ``Σ IG ≈ S(x) - S(x')``; by default the steps double (32, 64, ... 256) until
  it holds within 5%, as the paper suggests (a fixed count stays an option).
- Grad-CAM (Selvaraju et al. 2017): ``ReLU(Σ_k α_k A^k)`` with ``α_k`` the spatial mean of
  ``∂S/∂A^k`` at the last convolutional block, upsampled to the view.

Noisy copies and integration steps run as batches (``batch_size`` images per pass, 48 by default:
one pass for a centre view), never as a Python loop of single images. Noise comes from an explicit seeded ``torch.Generator``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from engine.attribution import rules
from engine.attribution.registry import register, score_gradient
from engine.models import LoadedModel
from engine.stopping import ShouldStop, check
from engine.views import make_batch, normalise

BASELINES = ("black", "blurred")
INTEGRATIONS = ("gauss-legendre", "riemann-middle")


def _scores(module: torch.nn.Module, batch: torch.Tensor, target: int) -> torch.Tensor:
    with torch.inference_mode():
        return module(batch)[:, target].float()


def _gradients_and_clean_scores(module: torch.nn.Module, rows: torch.Tensor, clean: torch.Tensor, target: int,
                                batch_size: int, should_stop: ShouldStop | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``∂S_target/∂x`` for every row of ``rows`` (N, 3, H, W), ``batch_size`` rows a pass, and ``S_target``
    of ``clean`` (M, 3, H, W) from a separate gradient-free forward. (Riding the clean views along in the
    last gradient pass was measured slower: on CPU a 26-row pass costs about 20% more than a 25-row one.)
    ``should_stop`` is asked before each pass (``Cancelled``)."""
    grads = []
    for part in rows.split(batch_size):
        check(should_stop)
        grads.append(score_gradient(module, part, target)[0])
    grads = torch.cat(grads)
    return grads, _scores(module, clean, target)


def _check_batch_size(batch_size: int) -> int:
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
    return int(batch_size)


# ---------------------------------------------------------------- SmoothGrad
def noise_sigma(model: LoadedModel, noise: float) -> torch.Tensor:
    """σ per colour channel: ``noise`` × the range of the input space, (1 − 0)/std_c; (1, 3, 1, 1)."""
    std = torch.tensor(model.preprocessing.std, device=model.device)
    return (noise / std).view(1, 3, 1, 1)


@register("smoothgrad")
def smoothgrad(model: LoadedModel, batch: torch.Tensor, target: int, *, samples: int = 25, noise: float = 0.15,
               seed: int = 0, batch_size: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient averaged over ``samples`` noisy copies of each view (raw gradients, as Smilkov et al.).

    ``noise`` is σ as a fraction of the input range (0.15 is the middle of the paper's 10-20%).
    """
    if int(samples) < 1:
        raise ValueError(f"SmoothGrad needs at least 1 sample; got {samples}.")
    if not 0.0 <= float(noise) <= 1.0:
        raise ValueError(f"SmoothGrad noise is a fraction of the input range, 0..1; got {noise}.")
    batch_size = _check_batch_size(batch_size)
    generator = torch.Generator(device=batch.device).manual_seed(int(seed))
    views, samples = batch.shape[0], int(samples)
    noisy = batch.repeat_interleave(samples, 0)  # (B·n, 3, H, W), view-major
    noisy += torch.randn(noisy.shape, generator=generator, device=batch.device, dtype=batch.dtype) * noise_sigma(model, noise)
    grads, scores = _gradients_and_clean_scores(model.module, noisy, batch, target, batch_size)
    return grads.view(views, samples, *batch.shape[1:]).mean(1), scores


# ---------------------------------------------------------------- Integrated Gradients
ADAPTIVE = "adaptive"  # steps=ADAPTIVE: double from FIRST_STEPS until completeness holds within TOLERANCE
FIRST_STEPS = 32
MAX_STEPS = 256  # the cap: 32 + 64 + 128 + 256 = 480 gradient passes at most
TOLERANCE = 0.05  # Sundararajan et al.: attributions should add up to S(x) − S(x') within 5%


@dataclass(frozen=True, eq=False)
class IntegratedGradients:
    """Attributions and the completeness check ``Σ IG`` vs ``S(x) - S(x')``, per view."""

    attribution: torch.Tensor  # (B, 3, H, W)
    scores: torch.Tensor  # (B,) S(x)
    baseline_scores: torch.Tensor  # (B,) S(x')
    attribution_sums: torch.Tensor  # (B,) Σ IG
    steps: int = 0  # integration steps of this result (the last, largest, when they grew)

    @property
    def completeness_gap(self) -> torch.Tensor:
        """``Σ IG − (S(x) − S(x'))``: zero for exact integration."""
        return self.attribution_sums - (self.scores - self.baseline_scores)

    @property
    def relative_gap(self) -> torch.Tensor:
        """``|Σ IG − (S(x) − S(x'))| / |S(x) − S(x')|``, (B,) (inf where the scores do not differ but Σ IG is not 0)."""
        difference, gap = (self.scores - self.baseline_scores).float().abs(), self.completeness_gap.float().abs()
        return torch.where(difference > 0, gap / difference, torch.where(gap > 0, math.inf, 0.0))


def make_baseline(model: LoadedModel, batch: torch.Tensor, baseline: str, *, blur_sigma: float = 5.0) -> torch.Tensor:
    """``black``: the zero image of [0, 1] space, normalised; ``blurred``: the view under a Gaussian blur."""
    if baseline == "black":
        return normalise(torch.zeros_like(batch), model.preprocessing)
    if baseline == "blurred":
        if blur_sigma <= 0:
            raise ValueError(f"blur_sigma must be positive; got {blur_sigma}.")
        size = min(2 * math.ceil(3 * blur_sigma) + 1, 2 * (min(batch.shape[-2:]) // 2) - 1)
        return gaussian_blur(batch, [size, size], [float(blur_sigma)] * 2)
    raise ValueError(f"Unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}.")


def integration_nodes(steps: int, integration: str) -> tuple[np.ndarray, np.ndarray]:
    """Points α in (0, 1) and weights summing to 1 for ``∫₀¹ f(α) dα``."""
    if int(steps) < 1:
        raise ValueError(f"Integrated Gradients needs at least 1 step; got {steps}.")
    if integration == "gauss-legendre":
        nodes, weights = np.polynomial.legendre.leggauss(int(steps))
        return (nodes + 1) / 2, weights / 2
    if integration == "riemann-middle":
        return (np.arange(int(steps)) + 0.5) / steps, np.full(int(steps), 1.0 / steps)
    raise ValueError(f"Unknown integration {integration!r}; choose one of {', '.join(INTEGRATIONS)}.")


def step_schedule(steps: int | str, *, max_steps: int = MAX_STEPS) -> tuple[int, ...]:
    """The step counts to try: one fixed count, or (ADAPTIVE) FIRST_STEPS doubling up to ``max_steps``."""
    if steps == ADAPTIVE:
        if int(max_steps) < 1:
            raise ValueError(f"max_steps must be at least 1; got {max_steps}.")
        counts = [min(FIRST_STEPS, int(max_steps))]
        while counts[-1] < int(max_steps):
            counts.append(min(2 * counts[-1], int(max_steps)))
        return tuple(counts)
    if isinstance(steps, str) or isinstance(steps, bool) or int(steps) != steps:
        raise ValueError(f"steps must be a whole number or {ADAPTIVE!r}; got {steps!r}.")
    integration_nodes(int(steps), "riemann-middle")  # raises for fewer than 1
    return (int(steps),)


def integrate_gradients(model: LoadedModel, batch: torch.Tensor, target: int, *, baseline: str = "black",
                        steps: int | str = ADAPTIVE, integration: str = "gauss-legendre", blur_sigma: float = 5.0,
                        batch_size: int = 48, tolerance: float = TOLERANCE, max_steps: int = MAX_STEPS,
                        should_stop: ShouldStop | None = None) -> IntegratedGradients:
    """Integrated Gradients of every view with its completeness check.

    ``steps``: a fixed number of integration steps, or ADAPTIVE (the default): 32, 64, ... up to
    ``max_steps`` until every view's ``|Σ IG − (S(x) − S(x'))| ≤ tolerance·|S(x) − S(x')|`` (as
    Sundararajan et al. suggest); the result says how many steps it used and the gap it reached.
    ``should_stop`` (``engine.stopping``) is asked before each batch of ``batch_size`` path points: adaptive
    steps up to 256 are 480 points, ten passes of 48 on a CPU.
    """
    if not 0 < float(tolerance) < 1:
        raise ValueError(f"tolerance is a fraction of |S(x) − S(x')|, in (0, 1); got {tolerance}.")
    batch_size = _check_batch_size(batch_size)
    reference = make_baseline(model, batch, baseline, blur_sigma=blur_sigma)
    for count in step_schedule(steps, max_steps=max_steps):
        result = _integrate(model, batch, reference, target, count, integration, batch_size, should_stop)
        if bool((result.relative_gap <= tolerance).all()):
            break
    return result


def _integrate(model: LoadedModel, batch: torch.Tensor, reference: torch.Tensor, target: int, steps: int, integration: str,
               batch_size: int, should_stop: ShouldStop | None = None) -> IntegratedGradients:
    alphas, weights = integration_nodes(steps, integration)
    alphas_t = torch.as_tensor(alphas, dtype=batch.dtype, device=batch.device).view(-1, 1, 1, 1, 1)
    weights_t = torch.as_tensor(weights, dtype=batch.dtype, device=batch.device).view(-1, 1, 1, 1, 1)
    delta = batch - reference
    path = (reference.unsqueeze(0) + alphas_t * delta.unsqueeze(0)).flatten(0, 1)  # (steps·B, 3, H, W)
    grads, scores = _gradients_and_clean_scores(model.module, path, torch.cat([batch, reference]), target, batch_size, should_stop)
    attribution = delta * (weights_t * grads.view(len(alphas), *batch.shape)).sum(0)
    views = batch.shape[0]
    return IntegratedGradients(attribution, scores[:views], scores[views:], attribution.flatten(1).sum(1).float(), int(steps))


@dataclass(frozen=True)
class CompletenessCheck:
    """``Σ IG`` against ``S(x) - S(x')`` on the centre view (Sundararajan et al.'s completeness axiom)."""

    attribution_sum: float
    score_difference: float
    score: float
    baseline_score: float
    steps: int = 0  # the integration steps used

    @property
    def gap(self) -> float:
        return self.attribution_sum - self.score_difference

    @property
    def relative_gap(self) -> float:
        """|gap| / |S(x) − S(x')| (inf where the scores do not differ but Σ IG is not 0)."""
        if self.score_difference:
            return abs(self.gap) / abs(self.score_difference)
        return math.inf if self.gap else 0.0


def integrated_gradients_check(model: LoadedModel, image_hwc: np.ndarray, *, target: int, baseline: str = "black",
                               steps: int | str = ADAPTIVE, integration: str = "gauss-legendre",
                               tolerance: float = TOLERANCE, max_steps: int = MAX_STEPS,
                               should_stop: ShouldStop | None = None) -> CompletenessCheck:
    """Integrated Gradients on the centre view of a photo, reduced to its completeness numbers; ``should_stop``
    as ``integrate_gradients``."""
    batch, _, _ = make_batch(model, image_hwc, 1)
    result = integrate_gradients(model, batch, int(target), baseline=baseline, steps=steps, integration=integration,
                                 tolerance=tolerance, max_steps=max_steps, should_stop=should_stop)
    score, reference = float(result.scores[0]), float(result.baseline_scores[0])
    return CompletenessCheck(float(result.attribution_sums[0]), score - reference, score, reference, result.steps)


@register("integrated-gradients")
def integrated_gradients(model: LoadedModel, batch: torch.Tensor, target: int, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrated Gradients (options as ``integrate_gradients``: baseline, steps, integration, ...)."""
    result = integrate_gradients(model, batch, target, **options)
    return result.attribution, result.scores


# ---------------------------------------------------------------- Grad-CAM
def grad_cam_layer(model: LoadedModel, layer: str | None) -> str:
    return rules.last_conv_layer(model) if layer in (None, "", "auto") else layer


@register("gradcam")
def gradcam(model: LoadedModel, batch: torch.Tensor, target: int, *, layer: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM at ``layer`` (default: the last convolutional block), (B, 1, H, W) at the view size."""
    cams, scores = gradcam_classes(model, batch, [int(target)], layer=layer)
    return cams[0], scores[0]


def gradcam_classes(model: LoadedModel, batch: torch.Tensor, targets: list[int], *,
                    layer: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM of several classes from one forward pass: each class only backpropagates through the
    layers after ``layer`` (the head), so five classes cost little more than one.
    Returns (T, B, 1, H, W) maps and (T, B) scores, in the order of ``targets``."""
    layer = grad_cam_layer(model, layer)
    twin = rules.rule_copy(model.module, "gradient", capture=layer)
    with torch.enable_grad():
        logits = twin(batch.detach())  # the graph starts at the captured layer: the body records nothing
        activations = rules.capture_of(twin, layer).take()  # (B, K, h, w)
        if activations.dim() != 4:
            raise ValueError(f"Layer {layer!r} does not output a (B, C, h, w) feature map.")
        cams, scores = [], []
        for i, target in enumerate(targets):
            score = logits[:, target]  # (B,)
            (grads,) = torch.autograd.grad(score.sum(), activations, retain_graph=i + 1 < len(targets))
            weights = grads.mean((2, 3), keepdim=True)  # (B, K, 1, 1): α_k
            cam = F.relu((weights * activations.detach()).sum(1, keepdim=True))  # (B, 1, h, w)
            cams.append(F.interpolate(cam, size=batch.shape[-2:], mode="bilinear", align_corners=False))
            scores.append(score.detach())
    return torch.stack(cams), torch.stack(scores)
