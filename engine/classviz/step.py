"""The network's part of one class model visualisation step (Simonyan et al. 2013, §2).

``make_score_gradient`` returns ``fn(inputs) -> (logits, ∂Σ_b S_{c_b}/∂inputs)``. On the CPU it is
eager autograd (the tested path). On CUDA it is replayed from a CUDA graph: a batch-1 step of a
small network is launch-bound in eager PyTorch (hundreds of small kernels), and replaying the
forward and backward pass from a captured graph removes the launch overhead.
Only the network's part is captured (static shape and classes for a whole run); the
parameterisation, random transforms and optimiser stay eager. Used only when the model is on CUDA;
any capture failure falls back to eager.

Measured on an H200 (torch 2.11, ``benchmarks/gpu_check.py``), embedded EfficientNet-Lite0 at
batch 1, PyTorch's default (fast) CUDA math: a replay takes 1.18 ms against 12.3-15.8 ms eager,
and 200 paper steps take 0.34 s against 2.6-2.9 s eager (exact math: 0.54 s). In exact math
(``engine.models.set_cuda_math``) 30 replayed paper steps equal the eager ones bitwise; in fast
math they drift apart like two eager runs do. VGG-16, AlexNet and ResNet-50 (random weights, 10
steps) replayed bitwise equal to eager even in fast math.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

ScoreGradient = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
WARMUP_STEPS = 3  # cuDNN/cuBLAS choose their kernels before capture


def make_score_gradient(module: torch.nn.Module, target: torch.Tensor, shape: tuple[int, ...], device: torch.device) -> ScoreGradient:
    """For inputs of ``shape`` and classes ``target`` (B, 1): eager, or a CUDA graph on CUDA."""
    eager = eager_score_gradient(module, target)
    if device.type != "cuda":
        return eager
    return capture_score_gradient(eager, shape, device) or eager


def eager_score_gradient(module: torch.nn.Module, target: torch.Tensor) -> ScoreGradient:
    """inputs (B, 3, H, W) -> (logits (B, K), gradient); nothing is written into the shared model."""

    def score_gradient(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            leaf = inputs.detach().requires_grad_(True)
            logits = module(leaf)
            (grad,) = torch.autograd.grad(logits.gather(1, target).sum(), leaf)
        return logits.detach(), grad

    return score_gradient


def capture_score_gradient(eager: ScoreGradient, shape: tuple[int, ...], device: torch.device) -> ScoreGradient | None:
    """``eager`` replayed from a CUDA graph for inputs of ``shape``; None if capture fails."""
    static_inputs = torch.zeros(shape, device=device)
    try:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                eager(static_inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: other sessions may run the shared model on other threads meanwhile
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_logits, static_grad = eager(static_inputs)
    except RuntimeError:
        return None

    def replay(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        static_inputs.copy_(inputs)
        graph.replay()
        return static_logits.clone(), static_grad.clone()

    return replay
