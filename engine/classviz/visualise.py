"""Class model visualisation, Simonyan, Vedaldi & Zisserman (2013), §2, and its regularised successors.

The paper finds an image ``I`` maximising ``S_c(I) - λ‖I‖²`` (``S_c`` the unnormalised class score)
by gradient ascent on the pixels, from the zero image in the network's normalised input space; the
mean is added back only for display. Later work made the images far more natural: Yosinski et al.
2015 (decay, blur, clipping), Mahendran & Vedaldi 2016 (total variation, bounded pixels, jitter)
and Olah et al. 2017 (Fourier + decorrelated colour parameterisation, robustness transforms, Adam);
Fel et al. 2023 (MACO: only the Fourier phase moves, the magnitude stays natural photos') is readable
in seconds on a CPU. All five are presets (data) of one loop: a parameterisation ``(params, image_fn)``, transforms
applied before the network, penalties that add up, and projections after each step.

Several classes optimise together as one batch (the loss is the sum of each image's own class
score, so each image gets exactly its own gradient). Each class draws its randomness from its own
generator, seeded from ``(seed, class)``, so a batch computes what the classes run one by one
compute. Bit for bit it can differ: convolution libraries round differently at another batch size,
and the ascent amplifies rounding (ReLU masks flip; measured on the embedded model, CPU: equal to
1/255 for 3 paper steps, up to 92/255 apart after 10), so on deep networks a batch gives equally
good images, not the same pixels. The same seed and batch give the same image (CUDA: in exact math).
"""
from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from engine import stopping
from engine.classviz import parameterisations, spectrum, transforms
from engine.classviz.step import make_score_gradient
from engine.models import LoadedModel, as_numpy
from engine.views import denormalise, normalise

OnStep = Callable[["Progress"], "bool | None"]
PARAMETERISATIONS = ("pixel", "fourier", "maco")
OPTIMISERS = ("sgd", "adam")
CHOICES = {"parameterisation": PARAMETERISATIONS, "optimiser": OPTIMISERS}  # the knobs that take a name
MAX_CLASSES = 256


@dataclass(frozen=True)
class ClassVizConfig:
    """Every knob of the loop. Pixel-valued knobs are in the model's normalised input space.

    The defaults are the paper's (§2), which gives no λ, step or step count; they are tuned for the
    embedded EfficientNet-Lite0, whose input is [-1, 1] (x = (p - 127.5) / 127.5 for a 0..255 pixel
    p): λ_255 = λ / 127.5² and step_255 = step · 127.5². The common 0..255 reproduction setting
    (λ = 1e-3, step 25) is λ = 16, step 1.5e-3 here: the image never leaves grey on Lite0.
    """

    # parameterisation
    parameterisation: str = "pixel"  # the paper optimises the pixels themselves
    init_std: float = 0.0  # 0: the paper's zero image (the mean image once the mean is added back)
    fourier_decay: float = 1.0  # Olah: spectrum scaled by 1/f^decay (only for "fourier")
    decorrelate_colour: bool = False  # Olah: optimise in the decorrelated ImageNet colour basis (MACO: always)
    # objective: S_c(I) - l2·‖I‖² - tv_weight·TV^β(I)
    l2: float = 0.01  # λ; 6e-7 on a 0..255 scale. Pixels settle at ≈±0.15 (±19/255): survive uint8 PNG
    tv_weight: float = 0.0  # Mahendran & Vedaldi's total variation weight
    tv_beta: float = 2.0  # β of TV^β; 1-2 in Mahendran & Vedaldi
    # optimiser
    optimiser: str = "sgd"  # plain gradient ascent, as in the paper
    learning_rate: float = 5.0  # 8e4 on a 0..255 scale: Lite0's gradient is ~1e-2 at the zero image; 1 stalls
    steps: int = 100  # S_c ≈ 40-50 (zero image ≈ 0); the PNGs of goldfish, flamingo, cat, banana are top-1
    final_lr_fraction: float = 0.1  # the step shrinks linearly to this: a fixed step of 5 oscillates
    # transforms before the network, each step
    pad: int = 0  # Olah: pad with grey before jittering, so borders can move in
    jitter: int = 0  # random translation by up to this many pixels (random crop)
    scales: tuple[float, float] = (1.0, 1.0)  # Olah: random rescale range
    rotate_degrees: float = 0.0  # Olah: random rotation by up to ± this
    jitter_after: int = 0  # Olah: a second, small jitter after scale and rotation
    crops: int = 0  # MACO: this many random square crops of each image per step, gradients averaged (0: the whole image)
    crop_scales: tuple[float, float] = (1.0, 1.0)  # MACO: a crop's side as a fraction of the image's, drawn uniformly
    work_size: int = 0  # the side the crops are resized to for the network (0: the model's input side)
    # projections after each step (pixel parameterisation only)
    decay: float = 0.0  # Yosinski: x *= 1 - decay
    blur_sigma: float = 0.0  # Yosinski: Gaussian blur width in pixels ...
    blur_every: int = 0  # ... applied every this many steps (0: never)
    clip_norm_percentile: float = 0.0  # Yosinski: zero pixels whose colour norm is below this percentile
    clip_contribution_percentile: float = 0.0  # Yosinski: zero pixels contributing least to the score
    pixel_norm_bound: float = 0.0  # Mahendran & Vedaldi: each pixel's colour norm at most this (0: off)
    bounded_range: bool = False  # Mahendran & Vedaldi: keep every pixel a displayable colour

    def __post_init__(self) -> None:
        _require(self.parameterisation in PARAMETERISATIONS,
                 f"parameterisation must be one of {', '.join(PARAMETERISATIONS)}; got {self.parameterisation!r}.")
        _require(self.optimiser in OPTIMISERS, f"optimiser must be one of {', '.join(OPTIMISERS)}; got {self.optimiser!r}.")
        _require(isinstance(self.steps, int) and self.steps >= 0, f"steps must be a whole number ≥ 0; got {self.steps!r}.")
        _require(self.learning_rate > 0, f"learning_rate must be > 0; got {self.learning_rate}.")
        _require(0 < self.final_lr_fraction <= 1, f"final_lr_fraction must be in (0, 1]; got {self.final_lr_fraction}.")
        for name in ("init_std", "l2", "tv_weight", "decay", "blur_sigma", "pixel_norm_bound", "rotate_degrees"):
            _require(getattr(self, name) >= 0, f"{name} must be ≥ 0; got {getattr(self, name)}.")
        for name in ("pad", "jitter", "jitter_after", "blur_every"):
            value = getattr(self, name)
            _require(isinstance(value, int) and 0 <= value <= 64, f"{name} must be a whole number of pixels in 0..64; got {value!r}.")
        _require(0 < self.tv_beta <= 4, f"tv_beta must be in (0, 4]; got {self.tv_beta}.")
        _require(self.decay < 1, f"decay must be < 1; got {self.decay}.")
        _require(len(self.scales) == 2 and 0 < self.scales[0] <= self.scales[1],
                 f"scales must be (low, high) with 0 < low ≤ high; got {self.scales}.")
        for name in ("clip_norm_percentile", "clip_contribution_percentile"):
            _require(0 <= getattr(self, name) < 100, f"{name} must be in [0, 100); got {getattr(self, name)}.")
        _require(not (self.blur_every and self.blur_sigma == 0), "blur_every needs blur_sigma > 0.")
        _require(isinstance(self.crops, int) and 0 <= self.crops <= 64, f"crops must be a whole number in 0..64; got {self.crops!r}.")
        _require(len(self.crop_scales) == 2 and 0 < self.crop_scales[0] <= self.crop_scales[1] <= 1,
                 f"crop_scales must be (low, high) with 0 < low ≤ high ≤ 1; got {self.crop_scales}.")
        _require(isinstance(self.work_size, int) and (self.work_size == 0 or 32 <= self.work_size <= 1024),
                 f"work_size must be 0 (the model's input side) or a whole number of pixels in 32..1024; got {self.work_size!r}.")
        _require(self.crops or (self.crop_scales == (1.0, 1.0) and not self.work_size), "crop_scales and work_size need crops ≥ 1.")
        _require(self.parameterisation != "maco" or self.decorrelate_colour,
                 "maco works in the decorrelated colour basis (its spectrum was measured there): keep decorrelate_colour.")
        projects = (self.decay or self.blur_every or self.clip_norm_percentile or self.clip_contribution_percentile or self.pixel_norm_bound
                    or self.bounded_range)
        _require(self.parameterisation == "pixel" or not projects,
                 "decay, blur, clipping and pixel bounds act on pixels: use the pixel parameterisation.")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


PRESETS: dict[str, ClassVizConfig] = {
    "paper": ClassVizConfig(),
    # Yosinski et al. 2015: decay, blur σ=1 every 4 steps, clipping, N(0, 10/255) noise start
    "yosinski": ClassVizConfig(
        init_std=0.08, l2=0.0, learning_rate=5.0, final_lr_fraction=1.0, steps=200, decay=1e-4, blur_sigma=1.0, blur_every=4,
        clip_norm_percentile=5.0, clip_contribution_percentile=5.0,
    ),
    # Mahendran & Vedaldi 2016: TV^β with β=2, bounded range, jitter
    "mahendran-vedaldi": ClassVizConfig(
        l2=0.0, tv_weight=0.005, learning_rate=5.0, final_lr_fraction=1.0, steps=200, jitter=8, bounded_range=True),
    # Olah et al. 2017 (Lucid's defaults)
    "olah": ClassVizConfig(
        parameterisation="fourier", decorrelate_colour=True, l2=0.0, optimiser="adam", learning_rate=0.05, final_lr_fraction=1.0, steps=512,
        pad=12, jitter=8, scales=(0.9, 1.1), rotate_degrees=10.0, jitter_after=4,
    ),
    # Fel et al. 2023 (MACO), cut to seconds on a CPU: phase only, natural magnitude, one random crop of half to all
    # of the side a step, seen at 192². On 5 classes (0, 200, ..., 800) 128 steps of 1 crop at 192 were top-1 for Lite1
    # and Lite2 on all 5 (7.7 CPU-s a class, 1 thread); 96 steps of 2 crops at 160: Lite1 top-5 5/5, top-1 4/5 (8.9 CPU-s)
    "maco": ClassVizConfig(
        parameterisation="maco", decorrelate_colour=True, l2=0.0, optimiser="adam", learning_rate=0.5, final_lr_fraction=0.1, steps=128,
        crops=1, crop_scales=(0.5, 1.0), work_size=192,
    ),
}


@dataclass(frozen=True, eq=False)
class Progress:
    """What ``on_step`` sees after each step. The images and scores are computed (and, on CUDA,
    copied to the host) only when asked, inside ``on_step`` (later calls see a later step): a
    preview every step cost 27% of a 1-class GPU run."""

    step: int
    steps: int
    _images: Callable[[], np.ndarray]
    _scores: torch.Tensor
    _probabilities: torch.Tensor

    def images(self) -> np.ndarray:
        """The current images as displayed, uint8 (B, H, W, 3)."""
        return self._images()

    def scores(self) -> np.ndarray:
        """S_c of the network's input at this step, (B,)."""
        return as_numpy(self._scores)

    def probabilities(self) -> np.ndarray:
        return as_numpy(self._probabilities)


@dataclass(frozen=True, eq=False)
class ClassVisualisation:
    """The images found for each class and how the optimisation went."""

    class_indices: tuple[int, ...]
    labels: tuple[str, ...]
    images_hwc: tuple[np.ndarray, ...]  # uint8 (H, W, 3) per class, as displayed
    scores: np.ndarray  # float32 (steps_run, B): S_c of the network's input at each step
    probabilities: np.ndarray  # float32 (steps_run, B): its softmax probability
    final_scores: tuple[float, ...]  # S_c of each displayed (uint8) image
    final_probabilities: tuple[float, ...]
    steps_run: int
    stopped_early: bool
    config: ClassVizConfig
    seed: int
    frames: tuple[np.ndarray, ...] = field(default=())  # uint8 (B, H, W, 3) every frame_every steps
    frame_steps: tuple[int, ...] = field(default=())


def get_preset(name: str) -> ClassVizConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.") from None


def class_seed(seed: int, class_index: int) -> int:
    """The seed of one class's generator: a batch draws exactly what single runs draw."""
    return int(np.random.SeedSequence([int(seed), int(class_index)]).generate_state(1)[0])


def visualise_class(
    model: LoadedModel,
    classes: Sequence[int],
    *,
    config: ClassVizConfig | str = "paper",
    seed: int = 0,
    on_step: OnStep | None = None,
    frame_every: int = 0,
) -> ClassVisualisation:
    """Optimise one image per class in ``classes`` (one batch).

    ``on_step(progress)`` is called after every step; returning False stops early, keeping the result.
    """
    config = get_preset(config) if isinstance(config, str) else config
    indices = _check_classes(classes, len(model.categories))
    _require(isinstance(frame_every, int) and frame_every >= 0, f"frame_every must be a whole number ≥ 0; got {frame_every!r}.")
    crop = model.preprocessing.crop
    seen = crop + 2 * config.pad - config.jitter - config.jitter_after  # the side of what the network sees
    _require(2 * seen >= crop, f"pad {config.pad}, jitter {config.jitter} and jitter_after {config.jitter_after} leave "
                               f"the network a {seen}-pixel image; it needs at least half of its {crop}-pixel input.")
    generators = [torch.Generator().manual_seed(class_seed(seed, c)) for c in indices]
    params, image_fn = _parameterise(model, config, generators)
    optimiser = _make_optimiser(config, params)
    target = torch.tensor(indices, device=model.device).view(-1, 1)  # (B, 1)
    samples = max(config.crops, 1)  # network inputs per image each step
    target_rows = target.repeat_interleave(samples, 0)  # (B·samples, 1)
    transform = _transform(model, config)
    score_gradient = None
    scores, probabilities, frames, frame_steps = [], [], [], []
    step, stopped = 0, False
    while step < config.steps and not stopped:
        with torch.enable_grad():
            image = image_fn(params)  # (B, 3, H, W), model space
            inputs = transform(image, generators)
            if score_gradient is None:
                score_gradient = make_score_gradient(model.module, target_rows, tuple(inputs.shape), model.device)
            stopping.checkpoint()  # a run being dropped (its viewer gone) stops here, between the blocks, and ...
            logits, grad_inputs = score_gradient(inputs.detach())
            stopping.checkpoint()
            # its gradient is the objective's (the crops' scores averaged per image)
            surrogate = (inputs * grad_inputs).sum() / samples - _penalty(config, image).sum()
            logits = logits.view(len(indices), samples, -1).mean(1)  # (B, classes)
            grads = torch.autograd.grad(surrogate, params)
        stopping.checkpoint()  # ... after the transforms' backward pass
        _ascend(model, config, optimiser, params, grads, step)
        step += 1
        scores.append(logits.gather(1, target)[:, 0])
        probabilities.append(logits.softmax(1).gather(1, target)[:, 0])
        if frame_every and (step % frame_every == 0 or step == config.steps):
            frames.append(_display(model, image_fn, params))
            frame_steps.append(step)
        if on_step is not None:
            progress = Progress(step, config.steps, lambda: _display(model, image_fn, params), scores[-1], probabilities[-1])
            stopped = on_step(progress) is False
    if frame_every and stopped and (not frame_steps or frame_steps[-1] != step):
        frames.append(_display(model, image_fn, params))
        frame_steps.append(step)
    return _result(model, config, seed, indices, _display(model, image_fn, params), scores, probabilities, step, stopped, frames,
                   frame_steps)


def animation_gif(result: ClassVisualisation, *, frame_ms: int = 80) -> bytes:
    """The run as an animated GIF: the classes side by side, one frame per stored step."""
    if not result.frames:
        raise ValueError("The run kept no frames; pass frame_every > 0.")
    tiles = [Image.fromarray(np.concatenate(list(frame), axis=1)) for frame in result.frames]  # (H, B·W, 3)
    buffer = io.BytesIO()
    tiles[0].save(buffer, format="GIF", save_all=True, append_images=tiles[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()


def _check_classes(classes: Sequence[int], count: int) -> list[int]:
    classes = list(classes) if not isinstance(classes, (int, np.integer)) else [classes]
    _require(0 < len(classes) <= MAX_CLASSES, f"Give between 1 and {MAX_CLASSES} classes; got {len(classes)}.")
    for c in classes:
        _require(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < count,
                 f"Class {c!r} is not an index in 0..{count - 1}.")
    return [int(c) for c in classes]


def _parameterise(model: LoadedModel, config: ClassVizConfig, generators: list[torch.Generator]) -> parameterisations.Parameterisation:
    size = model.preprocessing.crop
    if config.parameterisation == "maco":
        magnitude = spectrum.resample_spectrum(_natural_spectrum(), size, size)
        return parameterisations.maco_image(size, size, prep=model.preprocessing, magnitude=magnitude, generators=generators,
                                            device=model.device)
    if config.parameterisation == "fourier":
        return parameterisations.fourier_image(
            size, size, prep=model.preprocessing, generators=generators, device=model.device,
            decay_power=config.fourier_decay, decorrelate=config.decorrelate_colour,
        )
    return parameterisations.pixel_image(size, size, init_std=config.init_std, generators=generators, device=model.device)


@functools.lru_cache(maxsize=1)
def _natural_spectrum() -> np.ndarray:
    return spectrum.load_spectrum()


def _make_optimiser(config: ClassVizConfig, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    kind = torch.optim.Adam if config.optimiser == "adam" else torch.optim.SGD
    return kind(params, lr=config.learning_rate, maximize=True)


def _model_colour(model: LoadedModel, value: float) -> torch.Tensor:
    """A grey level of the [0, 1] image in the model's input space, (1, 3, 1, 1)."""
    return normalise(torch.full((1, 3, 1, 1), value, device=model.device), model.preprocessing)


def _transform(model: LoadedModel, config: ClassVizConfig) -> transforms.Transform:
    grey = _model_colour(model, 0.5)
    steps = []
    if config.pad:
        steps.append(transforms.pad(config.pad, grey))
    if config.jitter:
        steps.append(transforms.jitter(config.jitter))
    if config.scales != (1.0, 1.0) or config.rotate_degrees:
        steps.append(transforms.random_scale_rotate(config.scales, config.rotate_degrees, grey))
    if config.jitter_after:
        steps.append(transforms.jitter(config.jitter_after))
    if config.crops:
        steps.append(transforms.random_crops(config.crops, config.crop_scales, config.work_size or model.preprocessing.crop))
    return transforms.compose(steps)


def _penalty(config: ClassVizConfig, image: torch.Tensor) -> torch.Tensor:
    """The priors subtracted from the score, (B,)."""
    penalty = config.l2 * image.square().flatten(1).sum(1)
    if config.tv_weight:
        penalty = penalty + config.tv_weight * transforms.total_variation(image, config.tv_beta)
    return penalty


def _ascend(model: LoadedModel, config: ClassVizConfig, optimiser: torch.optim.Optimizer, params: list[torch.Tensor],
            grads: tuple[torch.Tensor, ...], step: int) -> None:
    """One optimiser step up the objective, then the pixel projections (Yosinski, Mahendran & Vedaldi)."""
    for param, grad in zip(params, grads):
        param.grad = grad
    progress = step / max(config.steps - 1, 1)
    for group in optimiser.param_groups:
        group["lr"] = config.learning_rate * (1.0 - (1.0 - config.final_lr_fraction) * progress)
    optimiser.step()
    optimiser.zero_grad(set_to_none=True)
    if config.parameterisation != "pixel":
        return
    with torch.no_grad():
        pixels = params[0]
        if config.decay:
            pixels.mul_(1.0 - config.decay)
        if config.blur_every and (step + 1) % config.blur_every == 0:
            pixels.copy_(transforms.gaussian_blur(pixels, config.blur_sigma))
        if config.clip_norm_percentile or config.clip_contribution_percentile:
            pixels.copy_(transforms.clip_small_pixels(
                pixels, grads[0], norm_percentile=config.clip_norm_percentile,
                contribution_percentile=config.clip_contribution_percentile,
            ))
        if config.pixel_norm_bound:
            pixels.copy_(transforms.bound_pixel_norm(pixels, config.pixel_norm_bound))
        if config.bounded_range:
            pixels.copy_(torch.maximum(torch.minimum(pixels, _model_colour(model, 1.0)), _model_colour(model, 0.0)))


def _display(model: LoadedModel, image_fn: parameterisations.ImageFn, params: list[torch.Tensor]) -> np.ndarray:
    """The current images as uint8 (B, H, W, 3): the mean added back, clipped to [0, 1]."""
    with torch.no_grad():
        rgb = denormalise(image_fn(params), model.preprocessing).clamp(0, 1)
    return (as_numpy(rgb.permute(0, 2, 3, 1)) * 255.0).round().astype(np.uint8)


def _result(model, config, seed, indices, displayed, scores, probabilities, steps_run, stopped, frames, frame_steps) -> ClassVisualisation:
    batch = torch.from_numpy(displayed).to(model.device).permute(0, 3, 1, 2).float().div_(255.0)
    target = torch.tensor(indices, device=model.device).view(-1, 1)
    with torch.inference_mode():
        logits = model.module(normalise(batch, model.preprocessing)).float()

    def stack(values):
        return np.stack([as_numpy(v) for v in values]) if values else np.zeros((0, len(indices)), np.float32)

    return ClassVisualisation(
        class_indices=tuple(indices),
        labels=tuple(model.categories[c] for c in indices),
        images_hwc=tuple(displayed),
        scores=stack(scores),
        probabilities=stack(probabilities),
        final_scores=tuple(as_numpy(logits.gather(1, target)[:, 0]).tolist()),
        final_probabilities=tuple(as_numpy(logits.softmax(1).gather(1, target)[:, 0]).tolist()),
        steps_run=steps_run,
        stopped_early=stopped,
        config=config,
        seed=int(seed),
        frames=tuple(frames),
        frame_steps=tuple(frame_steps),
    )
