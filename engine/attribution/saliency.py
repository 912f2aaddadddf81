"""Image-specific class saliency, Simonyan, Vedaldi & Zisserman (2013), §3.1.

The class score is linearised around the image, ``S_c(I) ≈ wᵀI + b`` with ``w = ∂S_c/∂I`` from a
single backward pass, and the map is ``M[i, j] = max_c |w[i, j, c]|``. ``S_c`` is the unnormalised
score (the logit). Maps are computed on the classifier's test views (centre crop, or the 10
sub-images) and mapped back onto the photo at its own resolution.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engine.attribution import methods
from engine.attribution import registry as attribution
from engine.models import LoadedModel, as_numpy
from engine.views import check_views, make_batch, place_full_view, place_views

REDUCTIONS = ("max-abs", "sum-abs", "l2", "signed-max")  # max-abs is the paper's


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float
    logit: float


@dataclass(frozen=True, eq=False)
class SaliencyMap:
    """A class saliency map at the photo's resolution and what it was computed for."""

    saliency_hw: np.ndarray  # float32 (H, W), >= 0 except for "signed-max"
    class_index: int
    label: str
    score: float  # the unnormalised class score S_c, averaged over the views
    method: str
    views: int
    reduce: str
    options: Mapping[str, Any] = field(default_factory=dict)
    integration: Mapping[str, Any] | None = None  # Integrated Gradients: steps used, worst relative completeness gap over the views


def predict(model: LoadedModel, image_hwc: np.ndarray, *, top: int = 5, views: int = 1) -> list[Prediction]:
    """The ``top`` classes by probability; logits are averaged over the views as in the paper's testing."""
    if not 1 <= int(top) <= len(model.categories):
        raise ValueError(f"top must be between 1 and {len(model.categories)}; got {top}.")
    batch, _, _ = make_batch(model, image_hwc, views)
    with torch.inference_mode():
        logits = model.module(batch).float().mean(0)  # (1000,)
    return _top_predictions(model, logits, int(top))


def _top_predictions(model: LoadedModel, logits: torch.Tensor, top: int) -> list[Prediction]:
    probabilities = logits.softmax(-1)
    values, indices = probabilities.topk(top)
    return [
        Prediction(int(i), model.categories[int(i)], float(p), float(logits[i]))
        for p, i in zip(values.tolist(), indices.tolist())
    ]


def reduce_channels(attribution_bchw: torch.Tensor, how: str = "max-abs") -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W). The paper takes the maximum magnitude over colour channels."""
    if how == "max-abs":
        return attribution_bchw.abs().amax(1)
    if how == "sum-abs":
        return attribution_bchw.abs().sum(1)
    if how == "l2":
        return attribution_bchw.square().sum(1).sqrt()
    if how == "signed-max":  # the value of largest magnitude, sign kept
        index = attribution_bchw.abs().argmax(1, keepdim=True)
        return attribution_bchw.gather(1, index).squeeze(1)
    raise ValueError(f"Unknown channel reduction {how!r}; choose one of {', '.join(REDUCTIONS)}.")


def compute_saliency(
    model: LoadedModel,
    image_hwc: np.ndarray,
    *,
    target: int | None = None,
    views: int | str = 1,
    reduce: str = "max-abs",
    method: str = "gradient",
    options: Mapping[str, Any] | None = None,
) -> SaliencyMap:
    """The class saliency map of ``image_hwc`` (H, W, 3) for class ``target`` (default: top-1)."""
    if target is None:
        check_views(views)
        target = predict(model, image_hwc, top=1, views=views)[0].index
    return compute_saliencies(model, image_hwc, [target], views=views, reduce=reduce, method=method, options=options)[0]


def compute_saliencies(
    model: LoadedModel,
    image_hwc: np.ndarray,
    targets: Sequence[int],
    *,
    views: int | str = 1,
    reduce: str = "max-abs",
    method: str = "gradient",
    options: Mapping[str, Any] | None = None,
) -> list[SaliencyMap]:
    """The maps of several classes of one photo, the views made once. Gradient rules run every
    (class, view) row in one batched backward pass, each row backpropagating its own class's score;
    Grad-CAM makes one forward pass and backpropagates each class through the head only; the
    noise- and path-averaged methods run class by class on the shared views."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"Unknown channel reduction {reduce!r}; choose one of {', '.join(REDUCTIONS)}.")
    run = attribution.get_method(method)
    options = dict(options or {})
    targets = [_check_class(model, t) for t in targets]
    batch, layout, resized_hw = make_batch(model, image_hwc, views)
    views_n = batch.shape[0]
    integration = [None] * len(targets)
    if method in attribution.PER_ROW_TARGETS and not options:
        rows = torch.as_tensor(targets, device=batch.device).repeat_interleave(views_n)  # class-major
        attr, scores = run(model, batch.repeat(len(targets), 1, 1, 1), rows)
        attr, scores = attr.view(len(targets), views_n, *attr.shape[1:]), scores.view(len(targets), views_n)
    elif method == "gradcam":
        attr, scores = methods.gradcam_classes(model, batch, targets, **options)
    elif method == "integrated-gradients":  # the same function the registry runs, keeping its steps and gap
        found = [methods.integrate_gradients(model, batch, t, **options) for t in targets]
        attr, scores = torch.stack([r.attribution for r in found]), torch.stack([r.scores for r in found])
        integration = [{"steps": r.steps, "relative_gap": float(r.relative_gap.max())} for r in found]
    else:
        pairs = [run(model, batch, t, **options) for t in targets]
        attr, scores = torch.stack([a for a, _ in pairs]), torch.stack([s for _, s in pairs])
    maps = as_numpy(reduce_channels(attr.flatten(0, 1).float(), reduce)).reshape(len(targets), views_n, *attr.shape[-2:])
    results = []
    for target, maps_bhw, scores_b, integrated in zip(targets, maps, scores, integration):
        if views == "full":
            saliency_hw = place_full_view(maps_bhw[0], image_hwc.shape[:2])
        else:
            saliency_hw = place_views(maps_bhw, layout, resized_hw, image_hwc.shape[:2])
        results.append(SaliencyMap(saliency_hw, target, model.categories[target], float(scores_b.float().mean()),
                                   method, views, reduce, options, integrated))
    return results


def _check_class(model: LoadedModel, target) -> int:
    if isinstance(target, bool) or not 0 <= int(target) < len(model.categories):
        raise ValueError(f"Class index {target} is out of range 0..{len(model.categories) - 1}.")
    return int(target)
