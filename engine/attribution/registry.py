"""Attribution methods: from a batch of views and a class to a per-pixel attribution.

A method is ``fn(model, batch, target, **options) -> (attribution, scores)``: ``batch`` is
(B, 3, H, W) in the network's input space, ``attribution`` is (B, C, H, W) with C = 3 (per colour
channel) or 1, and ``scores`` is the (B,) unnormalised score ``S_target`` of each clean view.
Gradients are taken with ``torch.autograd.grad`` inside ``torch.enable_grad()``, so nothing is
written into the shared model.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from engine.models import LoadedModel

Method = Callable[..., tuple[torch.Tensor, torch.Tensor]]
METHODS: dict[str, Method] = {}
PER_ROW_TARGETS = {"gradient", "deconvnet", "guided"}  # take a LongTensor of one class per row


def register(name: str) -> Callable[[Method], Method]:
    def add(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return add


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"Unknown method {name!r}; choose one of {', '.join(METHODS)}.") from None


def target_scores(logits: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
    """(B,) ``S_target`` of each row: one class for all rows, or a LongTensor (B,) of one class per row."""
    if isinstance(target, torch.Tensor):
        return logits.gather(1, target.to(logits.device).view(-1, 1)).squeeze(1)
    return logits[:, target]


def score_gradient(module: torch.nn.Module, batch: torch.Tensor, target: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``∂S_target/∂x`` for every view in one forward and one backward pass; also ``S_target``.
    ``target`` is a class, or a LongTensor (B,) of one class per row (rows do not mix: each row's
    gradient is that of its own score)."""
    with torch.enable_grad():
        inputs = batch.detach().requires_grad_(True)
        scores = target_scores(module(inputs), target)  # (B,)
        (grad,) = torch.autograd.grad(scores.sum(), inputs)
    return grad, scores.detach()


@register("gradient")
def gradient(model: LoadedModel, batch: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Simonyan et al. (2013) §3.1: the plain gradient of the class score."""
    return score_gradient(model.module, batch, target)

