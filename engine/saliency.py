"""Image-specific class saliency, Simonyan, Vedaldi & Zisserman (2013), §3.1.

The class score is linearised around the image, ``S_c(I) ≈ wᵀI + b`` with ``w = ∂S_c/∂I`` from a
single backward pass, and the map is ``M[i, j] = max_c |w[i, j, c]|``. ``S_c`` is the unnormalised
score (the logit). Maps are computed on the classifier's test views (centre crop, or the 10
sub-images) and mapped back onto the photo at its own resolution.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch

from engine import attribution
from engine.models import LoadedModel, as_numpy
from engine.views import make_batch, place_views

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
    views: int = 1,
    reduce: str = "max-abs",
    method: str = "gradient",
    options: Mapping[str, Any] | None = None,
) -> SaliencyMap:
    """The class saliency map of ``image_hwc`` (H, W, 3) for class ``target`` (default: top-1)."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"Unknown channel reduction {reduce!r}; choose one of {', '.join(REDUCTIONS)}.")
    run = attribution.get_method(method)
    options = dict(options or {})
    if target is None:
        target = predict(model, image_hwc, top=1, views=views)[0].index
    elif not 0 <= int(target) < len(model.categories):
        raise ValueError(f"Class index {target} is out of range 0..{len(model.categories) - 1}.")
    batch, layout, resized_hw = make_batch(model, image_hwc, views)
    attr_bchw, scores_b = run(model, batch, int(target), **options)
    maps_bhw = as_numpy(reduce_channels(attr_bchw.float(), reduce))
    saliency_hw = place_views(maps_bhw, layout, resized_hw, image_hwc.shape[:2])
    return SaliencyMap(
        saliency_hw, int(target), model.categories[int(target)], float(scores_b.float().mean()),
        method, views, reduce, options,
    )
