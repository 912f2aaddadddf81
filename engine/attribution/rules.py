"""The link to deconvolutional networks, Simonyan, Vedaldi & Zisserman (2013), §4.

Gradient, DeconvNet (Zeiler & Fergus 2014) and guided backprop (Springenberg et al. 2015) differ
only in the backward rule through a rectifier; convolutions (transposed in the backward pass) and
max-pool switches are shared. With ``X`` the rectifier's forward input and ``R`` the signal coming
back from above:

- gradient:  ``R · 1(0 < X < u)``            (masked by the forward input; u = ∞ for ReLU, 6 for ReLU6)
- deconvnet: ``R · 1(R > 0)``                (masked by the backward signal only; X, and with it the
  ReLU6 upper clamp, is ignored: DeconvNet's backward pass rectifies what comes down, nothing else)
- guided:    ``R · 1(0 < X < u) · 1(R > 0)`` (both masks)

The gradient rule is exactly what autograd does for ``relu`` and ``relu6``. Rules are applied on a
private copy of the model whose ``nn.ReLU``/``nn.ReLU6`` modules are replaced by ``RuleReLU``; the
copy shares the shared model's parameter tensors (no extra memory), is made once per (model, rule,
captured layer) and cached, and is itself stateless, so many threads can use it at once. Functional
``F.relu`` calls inside a model's ``forward`` are not modules and keep the gradient rule.
"""
from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.attribution.registry import register, score_gradient
from engine.models import LoadedModel, as_numpy
from engine.views import denormalise, make_batch

RULES = ("gradient", "deconvnet", "guided")
RULE_LATEX = {
    "gradient": r"R_n = R_{n+1}\cdot\mathbb{1}(X_n > 0)",
    "deconvnet": r"R_n = R_{n+1}\cdot\mathbb{1}(R_{n+1} > 0)",
    "guided": r"R_n = R_{n+1}\cdot\mathbb{1}(X_n > 0)\cdot\mathbb{1}(R_{n+1} > 0)",
}


class _RuleClamp(torch.autograd.Function):
    """``clamp(x, 0, upper)`` forward; the backward pass follows ``rule``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, rule: str, upper: float | None) -> torch.Tensor:
        ctx.rule, ctx.upper = rule, upper
        if rule != "deconvnet":
            ctx.save_for_backward(x)
        return x.clamp(0.0, upper)

    @staticmethod
    def backward(ctx, signal: torch.Tensor):
        if ctx.rule == "deconvnet":
            return signal.clamp(min=0.0), None, None
        (x,) = ctx.saved_tensors
        passes = x > 0
        if ctx.upper is not None:
            passes &= x < ctx.upper
        signal = torch.where(passes, signal, torch.zeros_like(signal))
        return (signal.clamp(min=0.0) if ctx.rule == "guided" else signal), None, None


class RuleReLU(nn.Module):
    """A ReLU (``upper=None``) or ReLU6 (``upper=6``) whose backward pass follows ``rule``."""

    def __init__(self, rule: str, upper: float | None = None):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"Unknown backward rule {rule!r}; choose one of {', '.join(RULES)}.")
        self.rule, self.upper = rule, upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _RuleClamp.apply(x, self.rule, self.upper)

    def extra_repr(self) -> str:
        return f"rule={self.rule}, upper={self.upper}"


class Capture(nn.Module):
    """Passes ``inner``'s output through and keeps the last input and output per thread (no hooks)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self._slot = threading.local()

    def forward(self, *args, **kwargs):
        output = self.inner(*args, **kwargs)
        if torch.is_grad_enabled() and not torch.is_inference_mode_enabled() and not output.requires_grad:
            # Nothing before this layer needs a gradient (Grad-CAM): start the graph here, so autograd
            # records only the layers after it.
            output = output.detach().requires_grad_(True)
        self._slot.input, self._slot.output = (args[0] if args else None), output
        return output

    def take(self, which: str = "output") -> torch.Tensor:
        found = getattr(self._slot, which, None)
        self._slot.input = self._slot.output = None
        if found is None:
            raise ValueError("The captured layer did not run in the forward pass.")
        return found


_COPIES: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def share_copy(module: nn.Module) -> nn.Module:
    """A structural deep copy that shares ``module``'s parameter and buffer tensors."""
    memo = {id(t): t for t in (*module.parameters(), *module.buffers())}
    return copy.deepcopy(module, memo)


def rule_copy(module: nn.Module, rule: str, capture: str | None = None) -> nn.Module:
    """The cached copy of ``module`` with ``rule`` rectifiers, optionally capturing layer ``capture``."""
    if rule not in RULES:
        raise ValueError(f"Unknown backward rule {rule!r}; choose one of {', '.join(RULES)}.")
    with _LOCK:
        copies = _COPIES.setdefault(module, {})
        if (rule, capture) not in copies:
            copies[(rule, capture)] = _build_copy(module, rule, capture)
        return copies[(rule, capture)]


def _build_copy(module: nn.Module, rule: str, capture: str | None) -> nn.Module:
    names = dict(module.named_modules())
    if capture is not None and capture not in names:
        raise ValueError(f"The model has no layer called {capture!r}.")
    twin = share_copy(module)
    rectifiers = [(n, m) for n, m in twin.named_modules() if type(m) in (nn.ReLU, nn.ReLU6)]
    if not rectifiers and rule != "gradient":
        raise ValueError("The model has no nn.ReLU or nn.ReLU6 modules, so the backward rules cannot differ.")
    for name, child in rectifiers:
        twin.set_submodule(name, RuleReLU(rule, 6.0 if isinstance(child, nn.ReLU6) else None))
    if capture is not None:
        twin.set_submodule(capture, Capture(twin.get_submodule(capture)))
    return twin


def capture_of(twin: nn.Module, layer: str) -> Capture:
    found = twin.get_submodule(layer)
    assert isinstance(found, Capture), layer
    return found


@register("deconvnet")
def deconvnet(model: LoadedModel, batch: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zeiler & Fergus (2014) reconstruction of the class score (§4: rectify the backward signal)."""
    return score_gradient(rule_copy(model.module, "deconvnet"), batch, target)


@register("guided")
def guided(model: LoadedModel, batch: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Springenberg et al. (2015) guided backprop: the gradient and DeconvNet masks together."""
    return score_gradient(rule_copy(model.module, "guided"), batch, target)


def rule_gradient(model: LoadedModel, batch: torch.Tensor, target: int, *, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``∂S_target/∂x`` with the rectifiers' backward rule replaced by ``rule``; also ``S_target``."""
    return score_gradient(rule_copy(model.module, rule), batch, target)


# ---------------------------------------------------------------- inner layers
@dataclass(frozen=True)
class Layer:
    """A module whose output is a (B, C, h, w) feature map: a convolution or a rectifier."""

    name: str
    kind: str
    channels: int
    size_hw: tuple[int, int]


_LAYERS: weakref.WeakKeyDictionary[nn.Module, tuple[Layer, ...]] = weakref.WeakKeyDictionary()


def feature_layers(model: LoadedModel) -> tuple[Layer, ...]:
    """Convolution and ReLU/ReLU6 outputs in the order they (last) run, found by one probe forward."""
    with _LOCK:
        if model.module not in _LAYERS:
            _LAYERS[model.module] = _probe_layers(model)
        return _LAYERS[model.module]


def _probe_layers(model: LoadedModel) -> tuple[Layer, ...]:
    twin = share_copy(model.module)  # private: hooks here never touch the shared model
    seen: dict[str, Layer] = {}

    def record(name: str):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                seen.pop(name, None)  # re-insert: order by the last call (ResNet reuses its ReLUs)
                seen[name] = Layer(name, type(module).__name__, output.shape[1], tuple(output.shape[2:]))
        return hook

    for name, module in twin.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ReLU, nn.ReLU6)):
            module.register_forward_hook(record(name))
    crop = model.preprocessing.crop
    with torch.inference_mode():
        twin(torch.zeros(1, 3, crop, crop, device=model.device))
    return tuple(seen.values())


def last_conv_layer(model: LoadedModel) -> str:
    """The last convolutional block's output: the last conv or rectifier that yields a spatial map."""
    layers = feature_layers(model)
    if not layers:
        raise ValueError("The model has no convolutional layer.")
    return layers[-1].name


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """A backward projection of one unit's activation onto the input (Zeiler & Fergus 2014, Fig. 2)."""

    attribution_chw: np.ndarray  # float32 (3, H, W), signed
    layer: str
    channel: int
    rule: str
    position_hw: tuple[int, int]  # where the channel's activation peaks, in the layer's map
    activation: float  # the unit's value (its pre-activation at a rectifier)


def reconstruct_channel(model: LoadedModel, batch: torch.Tensor, *, layer: str, channel: int | None = None,
                        rule: str = "deconvnet") -> Reconstruction:
    """Project the strongest activation of ``channel`` at ``layer`` (first view of ``batch``) to pixels.

    ``channel=None`` takes the channel whose activation peaks highest on this view. At a rectifier the
    unit's pre-activation is projected: the same signal as the rectified one where it is positive,
    but ReLU6's flat top would otherwise pick a saturated unit whose gradient is zero.
    """
    layers = {item.name: item for item in feature_layers(model)}
    sizes = {name: item.channels for name, item in layers.items()}
    if layer not in sizes:
        raise ValueError(f"{layer!r} is not a convolution or rectifier output of this model.")
    if channel is not None and not 0 <= int(channel) < sizes[layer]:
        raise ValueError(f"Channel {channel} is out of range 0..{sizes[layer] - 1} for {layer}.")
    twin = rule_copy(model.module, rule, capture=layer)
    with torch.enable_grad():
        inputs = batch[:1].detach().requires_grad_(True)
        twin(inputs)
        rectified = layers[layer].kind in ("ReLU", "ReLU6")
        maps = capture_of(twin, layer).take("input" if rectified else "output")[0]  # (C, h, w)
        channel = int(maps.detach().amax((1, 2)).argmax()) if channel is None else int(channel)
        feature = maps[channel]
        flat = int(feature.argmax())
        (grad,) = torch.autograd.grad(feature.flatten()[flat], inputs)
    position = divmod(flat, feature.shape[1])
    return Reconstruction(as_numpy(grad[0]), layer, channel, rule, position, float(feature.detach().flatten()[flat]))


def reconstruct_from_image(model: LoadedModel, image_hwc: np.ndarray, *, layer: str, channel: int | None = None,
                           rule: str = "deconvnet") -> Reconstruction:
    """``reconstruct_channel`` on the centre view of a photo (H, W, 3) uint8."""
    batch, _, _ = make_batch(model, image_hwc, 1)
    return reconstruct_channel(model, batch, layer=layer, channel=channel, rule=rule)


def centre_view(model: LoadedModel, image_hwc: np.ndarray) -> np.ndarray:
    """The centre crop the network sees, (crop, crop, 3) uint8, for display beside view-sized maps."""
    batch, _, _ = make_batch(model, image_hwc, 1)
    view = denormalise(batch[:1], model.preprocessing).clamp(0, 1)[0]
    return (as_numpy(view).transpose(1, 2, 0) * 255).round().astype(np.uint8)


def attribution_to_rgb(attribution_chw: np.ndarray, *, percentile: float = 99.5) -> np.ndarray:
    """A signed (3, H, W) reconstruction as a picture: grey is zero, scaled by a high percentile."""
    scale = float(np.percentile(np.abs(attribution_chw), percentile)) or float(np.abs(attribution_chw).max()) or 1.0
    rgb = 0.5 + 0.5 * np.clip(attribution_chw / scale, -1.0, 1.0)
    return (rgb.transpose(1, 2, 0) * 255).round().astype(np.uint8)
