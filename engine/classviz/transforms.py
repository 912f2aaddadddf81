"""Robustness transforms and image priors for class model visualisation (Simonyan et al. 2013, §2).

The paper optimises bare pixels with an L2 penalty; later work showed that the network's gradient
then draws high-frequency patterns. The pieces here make the image robust or natural:
- transforms, applied to the image before the network every step (Mahendran & Vedaldi 2016's
  jitter; Olah et al. 2017's pad, jitter, scale, rotate). A transform is
  ``fn(images (B, 3, H, W), generators) -> images``: each image draws its randomness from its own
  generator, so a batch of classes equals the classes run one by one;
- the total-variation prior ``Σ((x[i,j+1]-x[i,j])² + (x[i+1,j]-x[i,j])²)^(β/2)`` (Mahendran & Vedaldi);
- Yosinski et al. 2015's projections after each step: Gaussian blur, and zeroing pixels of small
  norm or small contribution.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from engine.models import cuda_math

Transform = Callable[[torch.Tensor, Sequence[torch.Generator]], torch.Tensor]


def _uniform(generators: Sequence[torch.Generator], low: float, high: float) -> list[float]:
    return [low + (high - low) * float(torch.rand((), generator=g)) for g in generators]


def pad(width: int, fill: torch.Tensor) -> Transform:
    """Pad every side by ``width`` with the colour ``fill`` (1, 3, 1, 1), e.g. grey 0.5 in model space."""

    def apply(images: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return F.pad(images - fill, (width, width, width, width)) + fill

    return apply


def to_device(values, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Host values on ``device`` without a blocking copy: a pinned staging buffer on CUDA, so the
    CPU goes on queueing the step while the GPU is still busy (a pageable copy would wait for it)."""
    host = torch.tensor(values, dtype=dtype)
    if device.type != "cuda":
        return host
    return host.pin_memory().to(device, non_blocking=True)


def jitter(pixels: int) -> Transform:
    """A random crop ``pixels`` smaller on each axis (Lucid's jitter): a random translation.

    One image is a slice (a view); a batch is two gathers (rows, then columns) with each image's own
    offsets, not a loop of slices: a loop costs two small kernels per image forward and backward.
    """

    def apply(images: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        height, width = images.shape[-2] - pixels, images.shape[-1] - pixels
        offsets = [[int(v) for v in torch.randint(0, pixels + 1, (2,), generator=g)] for g in generators]
        if len(offsets) == 1:
            (top, left), = offsets
            return images[..., top : top + height, left : left + width]
        batch, channels = images.shape[:2]
        start = to_device(offsets, images.device, torch.int64)  # (B, 2): top, left
        rows = (start[:, 0, None] + torch.arange(height, device=images.device)).view(batch, 1, height, 1)
        cols = (start[:, 1, None] + torch.arange(width, device=images.device)).view(batch, 1, 1, width)
        kept_rows = images.gather(2, rows.expand(batch, channels, height, images.shape[-1]))
        return kept_rows.gather(3, cols.expand(batch, channels, height, width))

    return apply


def random_scale_rotate(scales: tuple[float, float], degrees: float, fill: torch.Tensor) -> Transform:
    """Scale by a factor in ``scales`` and rotate by up to ±``degrees`` about the centre, same size.

    Lucid resizes the image (its size changes); here the content is scaled inside a fixed frame so
    that the images of a batch keep one shape. The uncovered corners get ``fill``.
    """

    def apply(images: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        factors = _uniform(generators, *scales)
        angles = [math.radians(a) for a in _uniform(generators, -degrees, degrees)]
        theta = to_device(
            [[[math.cos(a) / s, -math.sin(a) / s, 0.0], [math.sin(a) / s, math.cos(a) / s, 0.0]] for s, a in zip(factors, angles)],
            images.device, images.dtype,
        )  # (B, 2, 3): output coordinates -> input coordinates
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        sample = bilinear_sample if images.is_cuda and cuda_math() == "exact" else _grid_sample
        return sample(images - fill, grid) + fill

    return apply


def random_crops(count: int, scales: tuple[float, float], size: int) -> Transform:
    """``count`` random square crops of each image, each a side fraction in ``scales`` of the image's,
    lying inside it, resized (bilinear) to ``size``: (B·count, 3, size, size), image-major (MACO's crops,
    Fel et al. 2023; a smaller ``size`` is a lower working resolution for the network)."""

    def apply(images: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        theta = []
        for g in generators:
            for _ in range(count):
                side = scales[0] + (scales[1] - scales[0]) * float(torch.rand((), generator=g))
                shift_x, shift_y = ((torch.rand(2, generator=g) * 2 - 1) * (1 - side)).tolist()
                theta.append([[side, 0.0, shift_x], [0.0, side, shift_y]])
        theta_t = to_device(theta, images.device, images.dtype)  # (B·count, 2, 3): output -> input coordinates
        grid = F.affine_grid(theta_t, [len(theta), images.shape[1], size, size], align_corners=False)
        sample = bilinear_sample if images.is_cuda and cuda_math() == "exact" else _grid_sample
        return sample(images.repeat_interleave(count, 0), grid)

    return apply


def _grid_sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def bilinear_sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``F.grid_sample(images, grid)`` (bilinear, zero padding, align_corners=False) with a backward
    that adds in a fixed order. grid_sample's CUDA backward adds with atomics, in whatever order the
    threads come: the sums differ in their last bits from run to run, and the ascent amplifies that
    into different images. Used on CUDA in exact math (``engine.models.set_cuda_math``)."""
    batch, channels, height, width = images.shape
    x = ((grid[..., 0] + 1) * width - 1) / 2  # (B, H', W') in input pixels
    y = ((grid[..., 1] + 1) * height - 1) / 2
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    corners, weights = [], []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            cx, cy = x0 + dx, y0 + dy
            inside = (cx >= 0) & (cx < width) & (cy >= 0) & (cy < height)
            corners.append((cy.clamp(0, height - 1) * width + cx.clamp(0, width - 1)).long().flatten(1))
            weights.append((wy * wx * inside).flatten(1))
    index, weight = torch.stack(corners, 1), torch.stack(weights, 1)  # (B, 4, Q)
    flat = _Gather.apply(images.flatten(2), index, weight)  # (B, C, Q)
    return flat.view(batch, channels, *grid.shape[1:3])


class _Gather(torch.autograd.Function):
    """out[b, c, q] = Σ_k weight[b, k, q] · flat[b, c, index[b, k, q]]; the backward sums with
    ``index_put_(accumulate=True)``, which sorts the indices on CUDA: a fixed order every run."""

    @staticmethod
    def forward(ctx, flat: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        batch, channels, pixels = flat.shape
        ctx.save_for_backward(index, weight)
        ctx.pixels = pixels
        taken = flat.gather(2, index.flatten(1)[:, None].expand(batch, channels, -1))  # (B, C, 4Q)
        return (taken.view(batch, channels, *index.shape[1:]) * weight[:, None]).sum(2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        index, weight = ctx.saved_tensors
        batch, channels, _ = grad.shape
        rows = (index + torch.arange(batch, device=index.device).view(-1, 1, 1) * ctx.pixels).flatten()  # (B·4·Q,)
        values = (grad[:, :, None] * weight[:, None]).permute(0, 2, 3, 1).reshape(-1, channels)  # (B·4·Q, C)
        summed = grad.new_zeros(batch * ctx.pixels, channels).index_put_((rows,), values, accumulate=True)
        return summed.view(batch, ctx.pixels, channels).permute(0, 2, 1), None, None


def compose(transforms: Sequence[Transform]) -> Transform:
    def apply(images: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        for transform in transforms:
            images = transform(images, generators)
        return images

    return apply


def total_variation(images: torch.Tensor, beta: float = 2.0, eps: float = 1e-8) -> torch.Tensor:
    """Mahendran & Vedaldi's TV^β of each image, (B,); ``eps`` keeps β < 2 differentiable at 0."""
    dx = images[..., :-1, 1:] - images[..., :-1, :-1]
    dy = images[..., 1:, :-1] - images[..., :-1, :-1]
    squared = (dx.square() + dy.square()).sum(1)  # (B, H-1, W-1), colour channels summed
    if beta == 2.0:
        return squared.flatten(1).sum(1)
    return (squared + eps).pow(beta / 2).flatten(1).sum(1)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Per-channel Gaussian blur of width ``sigma`` pixels (3σ radius, reflected borders)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def below_percentile(values_bhw: torch.Tensor, percentile: float) -> torch.Tensor:
    """Where each image's values fall below its own ``percentile`` (0-100): bool (B, H, W)."""
    return values_bhw < percentile_of(values_bhw.flatten(1), percentile).view(-1, 1, 1)


def percentile_of(values_bn: torch.Tensor, percentile: float) -> torch.Tensor:
    """``torch.quantile(values_bn, percentile / 100, dim=1)`` (linear interpolation) from two
    selections instead of a sort: 1.2 ms against 11.8 ms for a 224² image on the CPU."""
    position = percentile / 100.0 * (values_bn.shape[1] - 1)
    low, fraction = int(math.floor(position)), position - math.floor(position)
    below = values_bn.kthvalue(low + 1, dim=1).values
    if fraction == 0:
        return below
    above = values_bn.kthvalue(low + 2, dim=1).values
    return below + (above - below) * fraction


def clip_small_pixels(
    images: torch.Tensor, gradient: torch.Tensor, *, norm_percentile: float, contribution_percentile: float
) -> torch.Tensor:
    """Yosinski et al.'s clipping: zero (the mean colour) pixels of small norm or small contribution.

    A pixel's contribution is |Σ_c x·∂/∂x|, the first-order change of the objective if it were
    set to zero.
    """
    is_small = torch.zeros_like(images[:, 0], dtype=torch.bool)  # (B, H, W)
    if norm_percentile > 0:
        is_small |= below_percentile(colour_norm(images), norm_percentile)
    if contribution_percentile > 0:
        is_small |= below_percentile((images * gradient).sum(1).abs(), contribution_percentile)
    return images.masked_fill(is_small[:, None], 0.0)


def colour_norm(images: torch.Tensor) -> torch.Tensor:
    """Each pixel's colour-vector length, (B, H, W). ``images.norm(dim=1)`` is the same number but
    took 13.7 ms for a 224² image on the CPU (a slow strided reduction); this takes 0.1 ms."""
    return images.square().sum(1).sqrt()


def bound_pixel_norm(images: torch.Tensor, bound: float) -> torch.Tensor:
    """Project each pixel's colour vector onto the ball of radius ``bound`` (Mahendran & Vedaldi)."""
    norms = colour_norm(images)[:, None].clamp_min(1e-12)
    return images * (bound / norms).clamp(max=1.0)
