"""How the optimised image is represented, for class model visualisation (Simonyan et al. 2013, §2).

A parameterisation is ``(params, image_fn)``: ``params`` are the leaf tensors the optimiser owns
and ``image_fn(params)`` gives the image in the model's normalised input space, (B, 3, H, W).
- ``pixel_image``: the paper's free pixels, starting from the zero image (or seeded noise, as in
  Yosinski et al. 2015).
- ``fourier_image``: Olah et al. 2017 (the Lucid defaults): the 2-D real FFT of the image with each
  frequency scaled by 1/max(f, 1/max(H, W)), colours decorrelated with the square root of the
  ImageNet colour covariance, and a sigmoid onto [0, 1]. Gradient steps then favour low
  frequencies and natural colours instead of high-frequency adversarial patterns.
- ``maco_image``: Fel et al. 2023 (MACO): only the Fourier phase is optimised; the magnitude is fixed
  to natural photos' mean amplitude spectrum (``spectrum``), then the same colour mapping as Olah's
  (decorrelated colours, sigmoid). The image keeps natural images' energy at every frequency, so the
  ascent can only move structure around, never add high-frequency energy or saturate colours.

Every random draw comes from the image's own ``torch.Generator`` (one per class), on the CPU, so
that a batch of classes gives exactly the images of the classes run one by one.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from engine.models import Preprocessing
from engine.views import normalise

ImageFn = Callable[[Sequence[torch.Tensor]], torch.Tensor]
Parameterisation = tuple[list[torch.Tensor], ImageFn]

# Square root of ImageNet's colour covariance (Lucid), normalised by its largest column norm.
COLOUR_CORRELATION_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOUR_CORRELATION = COLOUR_CORRELATION_SQRT / np.linalg.norm(COLOUR_CORRELATION_SQRT, axis=0).max()
FOURIER_INIT_STD = 0.01  # Lucid's spectrum initialisation: a near-grey image
FOURIER_MAGIC = 4.0  # Lucid divides the inverse FFT by 4 so the sigmoid starts in its linear part


def _normal(shape: tuple[int, ...], std: float, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """One seeded N(0, std²) draw per image, stacked: (B, *shape)."""
    return torch.stack([torch.randn(shape, generator=g) * std for g in generators])


def pixel_image(
    height: int, width: int, *, init_std: float, generators: Sequence[torch.Generator], device: torch.device
) -> Parameterisation:
    """Free pixels in the model's input space; zero (the mean image) when ``init_std`` is 0."""
    shape = (3, height, width)
    start = _normal(shape, init_std, generators) if init_std > 0 else torch.zeros((len(generators),) + shape)
    pixels = start.to(device).requires_grad_(True)  # (B, 3, H, W)
    return [pixels], lambda params: params[0]


def frequency_scale(height: int, width: int, decay_power: float = 1.0) -> torch.Tensor:
    """Lucid's 1/f weights of the rfft2 coefficients, (H, W//2 + 1)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    frequencies = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(frequencies, 1.0 / max(height, width)) ** decay_power
    return torch.from_numpy(scale.astype(np.float32))


def fourier_image(
    height: int,
    width: int,
    *,
    prep: Preprocessing,
    generators: Sequence[torch.Generator],
    device: torch.device,
    decay_power: float = 1.0,
    decorrelate: bool = True,
    init_std: float = FOURIER_INIT_STD,
) -> Parameterisation:
    """Olah et al.'s spectrum parameterisation; ``image_fn`` returns the model-space image."""
    spectrum_shape = (3, height, width // 2 + 1, 2)  # real and imaginary parts
    spectrum = _normal(spectrum_shape, init_std, generators).to(device).requires_grad_(True)
    scale = frequency_scale(height, width, decay_power).to(device)[None, None, :, :, None]
    colour = torch.from_numpy(COLOUR_CORRELATION).to(device)

    def image_fn(params: Sequence[torch.Tensor]) -> torch.Tensor:
        scaled = torch.view_as_complex((params[0] * scale).contiguous())
        image = torch.fft.irfft2(scaled, s=(height, width), norm="ortho") / FOURIER_MAGIC  # (B, 3, H, W)
        if decorrelate:
            image = torch.einsum("ij,bjhw->bihw", colour, image)
        return normalise(torch.sigmoid(image), prep)

    return [spectrum], image_fn


def hermitian_phase(phase: torch.Tensor, width: int) -> torch.Tensor:
    """The phase (..., H, W//2 + 1) made odd, φ(−k) = −φ(k), on the rfft2 columns that hold both k and
    −k (the zero column, and the Nyquist one when ``width`` is even), so that the half spectrum
    ``M·e^{iφ}`` is exactly the rfft2 of a real image: rfft2(irfft2(M·e^{iφ})) = M·e^{iφ}, nothing is
    lost. φ is 0 at the self-conjugate frequencies (zero, and the Nyquist ones)."""
    height, columns = phase.shape[-2:]
    mirrored = (-torch.arange(height, device=phase.device)) % height  # the row of −k_y
    odd = (phase - phase[..., mirrored, :]) / 2
    is_edge = torch.zeros(columns, dtype=torch.bool, device=phase.device)
    is_edge[0] = True
    if width % 2 == 0:
        is_edge[-1] = True
    return torch.where(is_edge, odd, phase)


def maco_image(
    height: int,
    width: int,
    *,
    prep: Preprocessing,
    magnitude: np.ndarray,
    generators: Sequence[torch.Generator],
    device: torch.device,
) -> Parameterisation:
    """Fel et al.'s MACO: ``sigmoid(C · irfft2(M·e^{iφ}))`` with ``M`` fixed (3, H, W//2 + 1), φ the only
    parameter, starting uniform in [−π, π) from each image's generator."""
    spectrum_shape = (3, height, width // 2 + 1)
    if tuple(magnitude.shape) != spectrum_shape:
        raise ValueError(f"The MACO magnitude is {tuple(magnitude.shape)}; a {height}×{width} image needs {spectrum_shape}.")
    phase = torch.stack([(torch.rand(spectrum_shape, generator=g) * 2 - 1) * math.pi for g in generators])
    phase = phase.to(device).requires_grad_(True)  # (B, 3, H, W//2 + 1)
    fixed = torch.from_numpy(np.asarray(magnitude, np.float32)).to(device)
    colour = torch.from_numpy(COLOUR_CORRELATION).to(device)

    def image_fn(params: Sequence[torch.Tensor]) -> torch.Tensor:
        return normalise(colour_map(maco_spectral_image(params[0], fixed, width), colour), prep)

    return [phase], image_fn


def maco_spectral_image(phase: torch.Tensor, magnitude: torch.Tensor, width: int) -> torch.Tensor:
    """``irfft2(M·e^{iφ})``, φ made Hermitian: the image before the colour mapping, (B, 3, H, width)."""
    spectrum = torch.polar(magnitude.expand_as(phase), hermitian_phase(phase, width))
    return torch.fft.irfft2(spectrum, s=(phase.shape[-2], width), norm="ortho")


def colour_map(image: torch.Tensor, colour: torch.Tensor | None = None) -> torch.Tensor:
    """Decorrelated colours to RGB in [0, 1]: ``sigmoid(C·z)``, (B, 3, H, W)."""
    colour = torch.from_numpy(COLOUR_CORRELATION).to(image.device) if colour is None else colour
    return torch.sigmoid(torch.einsum("ij,bjhw->bihw", colour, image))
