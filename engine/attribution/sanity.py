"""Does a saliency map explain the model? Checks for the §3.1 map (Simonyan et al. 2013) and its successors.

- Model randomisation (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): re-initialise the
  layers from the top (logits) down, cascading, and compare each method's map with the map of the
  trained model by Spearman rank correlation. A map that explains the model must change; plain
  gradient and Grad-CAM do, guided backprop barely does (it behaves like an edge detector).
- Deletion / insertion (Petsiuk et al. 2018, RISE): remove pixels in saliency order (set to black,
  zero in [0, 1] space) or insert them into a Gaussian-blurred copy (σ = 5), ``pixels_per_step``
  at a time (224 on a 224×224 view: 224 steps), and record the class probability. The areas under
  the curves summarise them: lower deletion and higher insertion are better.

Both work on the centre view and never touch the shared model: randomised stages are private
copies that share every parameter not yet randomised. Both take ``should_stop`` (``engine.stopping``):
asked between maps and between batches of the curves, True raises ``Cancelled`` and nothing is kept.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import nn

from engine.attribution.methods import make_baseline
from engine.attribution.registry import get_method
from engine.attribution.rules import share_copy
from engine.attribution.saliency import reduce_channels
from engine.models import LoadedModel, as_numpy
from engine.stopping import ShouldStop, check
from engine.views import make_batch, normalise

OnStep = Callable[[int, int], None]
DEFAULT_METHODS = ("gradient", "guided", "gradcam")


def view_saliency(model: LoadedModel, batch: torch.Tensor, target: int, method: str, *,
                  reduce: str = "max-abs", options: Mapping | None = None) -> np.ndarray:
    """The map of the first view of ``batch``, reduced over channels: float32 (H, W)."""
    attribution, _ = get_method(method)(model, batch[:1], int(target), **dict(options or {}))
    return as_numpy(reduce_channels(attribution.float(), reduce)[0])


def _check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    if not methods:
        raise ValueError("Choose at least one method.")
    for name in methods:
        get_method(name)  # raises ValueError for unknown names
    return tuple(methods)


def _top1(model: LoadedModel, batch: torch.Tensor) -> int:
    with torch.inference_mode():
        return int(model.module(batch[:1]).argmax(1))


# ---------------------------------------------------------------- model randomisation
@dataclass(frozen=True, eq=False)
class RandomisationCheck:
    """Maps and their rank correlation with the trained model's map, stage by stage."""

    target: int
    stages: tuple[str, ...]  # "trained", then the lowest layer randomised so far
    methods: tuple[str, ...]
    maps: Mapping[str, np.ndarray]  # method -> float32 (stages, H, W)
    correlations: Mapping[str, np.ndarray]  # method -> (stages,) Spearman ρ with stage 0 (nan: constant map)


def randomisable_layers(module: nn.Module) -> tuple[str, ...]:
    """Convolutions and fully connected layers, bottom to top in module order."""
    return tuple(n for n, m in module.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def cascade_counts(layer_count: int, stages: int) -> tuple[int, ...]:
    """How many top layers are randomised at each stage: the top layer alone first, all of them last."""
    if int(stages) < 1:
        raise ValueError(f"Randomisation needs at least 1 stage; got {stages}.")
    return tuple(np.unique(np.round(np.linspace(1, layer_count, min(int(stages), layer_count))).astype(int)).tolist())


def _randomised(module: nn.Module, names: Sequence[str], generator: torch.Generator) -> nn.Module:
    """A copy with the layers ``names`` re-initialised (truncated normal at each tensor's own scale)."""
    twin = share_copy(module)
    for name in names:
        layer = twin.get_submodule(name)
        for attribute in ("weight", "bias"):
            old = getattr(layer, attribute, None)
            if old is None:
                continue
            scale = float(old.std()) if old.numel() > 1 else 0.0
            fresh = torch.zeros_like(old)
            if scale > 0:
                nn.init.trunc_normal_(fresh, std=scale, a=-2 * scale, b=2 * scale, generator=generator)
            setattr(layer, attribute, nn.Parameter(fresh, requires_grad=False))
    return twin


def _spearman(reference_hw: np.ndarray, other_hw: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(stats.spearmanr(reference_hw.ravel(), other_hw.ravel()).statistic)


def check_randomisation(model: LoadedModel, image_hwc: np.ndarray, *, target: int | None = None,
                        methods: Sequence[str] = DEFAULT_METHODS, stages: int = 8, seed: int = 0,
                        reduce: str = "max-abs", options: Mapping[str, Mapping] | None = None,
                        on_step: OnStep | None = None, should_stop: ShouldStop | None = None) -> RandomisationCheck:
    """Adebayo et al.'s cascading randomisation on the centre view; ``options`` per method."""
    methods = _check_methods(methods)
    batch, _, _ = make_batch(model, image_hwc, 1)
    target = _top1(model, batch) if target is None else int(target)
    layers = randomisable_layers(model.module)[::-1]  # top (logits) first
    counts = cascade_counts(len(layers), stages)
    generator = torch.Generator(device=model.device).manual_seed(int(seed))
    options = options or {}
    staged, done, labels = model, 0, ["trained"]
    maps: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    for stage, count in enumerate((0, *counts)):
        if count:
            module = _randomised(staged.module, layers[done:count], generator)
            staged, done = dataclasses.replace(model, module=module), count
            labels.append(layers[count - 1])
        for method in methods:
            check(should_stop)
            maps[method].append(view_saliency(staged, batch, target, method, reduce=reduce, options=options.get(method)))
        if on_step is not None:
            on_step(stage + 1, len(counts) + 1)
    stacked = {m: np.stack(v) for m, v in maps.items()}
    correlations = {m: np.array([_spearman(v[0], s) for s in v]) for m, v in stacked.items()}
    return RandomisationCheck(target, tuple(labels), methods, stacked, correlations)


# ---------------------------------------------------------------- deletion / insertion
@dataclass(frozen=True, eq=False)
class DeletionInsertion:
    """Class probability as pixels are deleted / inserted in saliency order, and the areas under."""

    method: str
    fractions: np.ndarray  # (steps + 1,) share of the view's pixels changed so far
    deletion: np.ndarray  # (steps + 1,) probability, pixels set to black
    insertion: np.ndarray  # (steps + 1,) probability, pixels put into the blurred copy
    deletion_auc: float
    insertion_auc: float


def pixel_order(saliency_hw: np.ndarray) -> np.ndarray:
    """Each pixel's rank, most salient first (ties: raster order), as (H, W) int64."""
    order = np.argsort(-saliency_hw.ravel(), kind="stable")
    ranks = np.empty_like(order)
    ranks[order] = np.arange(order.size)
    return ranks.reshape(saliency_hw.shape)


def probability_curve(model: LoadedModel, start: torch.Tensor, finish: torch.Tensor, ranks_hw: np.ndarray,
                      target: int, counts: np.ndarray, *, batch_size: int = 32, should_stop: ShouldStop | None = None) -> np.ndarray:
    """P(target) for images that take ``finish``'s pixels of rank < count and ``start``'s elsewhere."""
    ranks = torch.as_tensor(ranks_hw, device=start.device)
    probabilities = []
    with torch.inference_mode():
        for part in torch.as_tensor(counts, device=start.device).split(batch_size):
            check(should_stop)
            changed = (ranks.unsqueeze(0) < part.view(-1, 1, 1)).unsqueeze(1)  # (S, 1, H, W)
            images = torch.where(changed, finish, start)  # (S, 3, H, W)
            probabilities.append(model.module(images).float().softmax(-1)[:, target])
    return as_numpy(torch.cat(probabilities)).astype(np.float64)


def delete_and_insert(model: LoadedModel, batch: torch.Tensor, target: int, saliency_hw: np.ndarray, *,
                      method: str = "", pixels_per_step: int = 224, blur_sigma: float = 5.0,
                      batch_size: int = 32, should_stop: ShouldStop | None = None) -> DeletionInsertion:
    """The RISE deletion and insertion curves of one view (``batch[:1]``) for one map (H, W)."""
    view = batch[:1]
    if saliency_hw.shape != tuple(view.shape[-2:]):
        raise ValueError(f"The map is {saliency_hw.shape}; the view is {tuple(view.shape[-2:])}.")
    if int(pixels_per_step) < 1:
        raise ValueError(f"pixels_per_step must be at least 1; got {pixels_per_step}.")
    total = saliency_hw.size
    counts = np.minimum(np.arange(0, total + pixels_per_step, int(pixels_per_step)), total)
    counts = np.unique(counts)
    ranks = pixel_order(np.nan_to_num(saliency_hw))
    black = normalise(torch.zeros_like(view), model.preprocessing)
    blurred = make_baseline(model, view, "blurred", blur_sigma=blur_sigma)
    deletion = probability_curve(model, view, black, ranks, target, counts, batch_size=batch_size, should_stop=should_stop)
    insertion = probability_curve(model, blurred, view, ranks, target, counts, batch_size=batch_size, should_stop=should_stop)
    fractions = counts / total
    return DeletionInsertion(method, fractions, deletion, insertion,
                             float(np.trapezoid(deletion, fractions)), float(np.trapezoid(insertion, fractions)))


def measure_faithfulness(model: LoadedModel, image_hwc: np.ndarray, *, target: int | None = None,
                         methods: Sequence[str] = DEFAULT_METHODS, pixels_per_step: int = 224,
                         blur_sigma: float = 5.0, reduce: str = "max-abs",
                         options: Mapping[str, Mapping] | None = None,
                         on_step: OnStep | None = None, should_stop: ShouldStop | None = None) -> tuple[DeletionInsertion, ...]:
    """Deletion and insertion curves of each method's map on the centre view."""
    methods = _check_methods(methods)
    batch, _, _ = make_batch(model, image_hwc, 1)
    target = _top1(model, batch) if target is None else int(target)
    results = []
    for done, method in enumerate(methods, 1):
        check(should_stop)
        saliency_hw = view_saliency(model, batch, target, method, reduce=reduce, options=(options or {}).get(method))
        results.append(delete_and_insert(model, batch, target, saliency_hw, method=method,
                                         pixels_per_step=pixels_per_step, blur_sigma=blur_sigma, should_stop=should_stop))
        if on_step is not None:
            on_step(done, len(methods))
    return tuple(results)
