"""Property-based tests: any input to the decoder or to an engine entry point gives a result or a
clear ``ValueError`` (``ImageError`` is one), never another exception.

Engine entry points run on a tiny seeded ConvNet (conv-ReLU-conv-ReLU6-pool-linear, 1000 classes)
so that hundreds of examples take seconds.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from engine.attribution import registry as attribution
from engine.attribution.rules import feature_layers, reconstruct_from_image
from engine.attribution.saliency import REDUCTIONS, compute_saliency, predict
from engine.classviz.visualise import ClassVizConfig, visualise_class
from engine.images import ImageError, load_image
from engine.models import LoadedModel, Preprocessing, imagenet_categories
from engine.segmentation import cut as segmentation
from engine.segmentation import masks

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "I;16B", "F", "La", "RGBa")
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


def tiny_model() -> LoadedModel:
    generator = torch.Generator().manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU6(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 1000))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    prep = Preprocessing(resize=20, crop=16)
    return LoadedModel("tiny", "fuzz", net.eval().requires_grad_(False), torch.device("cpu"), prep, imagenet_categories())


MODEL = tiny_model()
images = st.tuples(st.integers(1, 48), st.integers(1, 48), st.integers(0, 2**32 - 1)).map(
    lambda t: np.random.default_rng(t[2]).integers(0, 256, (t[0], t[1], 3), dtype=np.uint8))
wild_ints = st.one_of(st.integers(-3, 12), st.integers(-2**40, 2**40))
wild_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
wild_text = st.one_of(st.sampled_from(["", "auto", "none", "gradient ", "MAX-ABS"]), st.text(max_size=12))


def _save(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _decodes_or_refuses(data: bytes) -> np.ndarray | None:
    try:
        rgb = load_image(data)
    except ImageError as exc:
        assert str(exc)
        return None
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and min(rgb.shape[:2]) >= 1
    return rgb


# ---------------------------------------------------------------- the decoder
@FAST
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_are_refused(data):
    _decodes_or_refuses(data)


@FAST
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@given(st.sampled_from(FORMATS), st.data())
def test_damaged_real_files_decode_or_are_refused(fmt, data):
    photo = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    good = bytearray(_save(Image.fromarray(photo), fmt))
    cut = data.draw(st.integers(1, len(good)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(good) - 1), st.integers(0, 255)), max_size=8))
    for where, value in flips:
        good[where] = value
    _decodes_or_refuses(bytes(good[:cut]))


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(MODES), st.sampled_from(FORMATS), st.integers(1, 40), st.integers(1, 40), st.integers(0, 255))
def test_every_pillow_mode_and_size_decodes_to_rgb(mode, fmt, width, height, fill):
    base = Image.fromarray(np.random.default_rng(fill).integers(0, 256, (height, width, 3), dtype=np.uint8))
    try:
        image = base.convert(mode) if mode not in ("I;16", "I;16B", "La", "RGBa", "PA") else Image.new(mode, (width, height), fill)
        encoded = _save(image, fmt)
    except (OSError, ValueError, KeyError):
        assume(False)  # this format cannot hold this mode; nothing to decode
    rgb = _decodes_or_refuses(encoded)
    assert rgb is not None and rgb.shape == (height, width, 3), (mode, fmt)


# ---------------------------------------------------------------- the engine's entry points
def _result_or_value_error(call):
    try:
        return call()
    except ValueError as exc:
        assert str(exc)
        return None


@FAST
@given(images, wild_ints, wild_ints)
def test_predict(image_hwc, top, views):
    result = _result_or_value_error(lambda: predict(MODEL, image_hwc, top=top, views=views))
    if result is not None:
        assert len(result) == top and all(0 <= p.index < 1000 for p in result)


METHOD_OPTIONS = {
    "gradient": {},
    "deconvnet": {},
    "guided": {},
    "smoothgrad": {"samples": st.integers(-2, 4), "noise": wild_floats, "seed": st.integers(0, 9), "batch_size": wild_ints},
    "integrated-gradients": {"steps": st.integers(-2, 5), "baseline": st.one_of(st.sampled_from(["black", "blurred"]), wild_text),
                             "integration": st.one_of(st.sampled_from(["gauss-legendre", "riemann-middle"]), wild_text),
                             "batch_size": wild_ints},
    "gradcam": {"layer": st.one_of(st.none(), st.sampled_from(["auto", "0", "2", "3", "5"]), wild_text)},
}


@st.composite
def method_and_options(draw):
    method = draw(st.one_of(st.sampled_from(sorted(attribution.METHODS)), wild_text))
    knobs = METHOD_OPTIONS.get(method, {})
    chosen = draw(st.lists(st.sampled_from(sorted(knobs)), unique=True)) if knobs else []
    return method, {name: draw(knobs[name]) for name in chosen}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images, st.one_of(st.none(), wild_ints), st.sampled_from([1, 10, 0, 2, -1]),
       st.one_of(st.sampled_from(REDUCTIONS), wild_text), method_and_options())
def test_compute_saliency(image_hwc, target, views, reduce, method_options):
    method, options = method_options
    result = _result_or_value_error(lambda: compute_saliency(
        MODEL, image_hwc, target=target, views=views, reduce=reduce, method=method, options=options))
    if result is not None:
        assert result.saliency_hw.shape == image_hwc.shape[:2] and result.saliency_hw.dtype == np.float32
        assert np.isfinite(result.saliency_hw).all()


@FAST
@given(images, st.one_of(st.sampled_from([layer.name for layer in feature_layers(MODEL)]), wild_text),
       st.one_of(st.none(), wild_ints), st.one_of(st.sampled_from(["deconvnet", "guided", "gradient"]), wild_text))
def test_reconstruct_from_image(image_hwc, layer, channel, rule):
    _result_or_value_error(lambda: reconstruct_from_image(MODEL, image_hwc, layer=layer, channel=channel, rule=rule))


@st.composite
def seed_maps(draw):
    image_hwc = draw(images)
    codes = draw(st.lists(st.integers(0, 9), min_size=1, max_size=4))
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    seeds = rng.choice(codes, image_hwc.shape[:2]).astype(np.uint8)
    if draw(st.booleans()):  # sometimes the wrong size
        seeds = seeds[: max(1, seeds.shape[0] - 1)]
    return image_hwc, seeds


@FAST
@given(seed_maps(), st.integers(-1, 4), st.one_of(st.floats(-10, 500), wild_floats), st.integers(-1, 6),
       st.integers(-1, 600), st.integers(-1, 64), st.integers(0, 5))
def test_segment(image_and_seeds, iterations, gamma, components, max_side, coarse_side, seed):
    image_hwc, seeds_hw = image_and_seeds
    result = _result_or_value_error(lambda: segmentation.segment(
        image_hwc, seeds_hw, iterations=iterations, gamma=gamma, components=components, max_side=max_side,
        coarse_side=coarse_side, seed=seed))
    if result is not None:
        assert result.is_foreground_hw.shape == image_hwc.shape[:2] and result.is_foreground_hw.dtype == bool


@FAST
@given(st.integers(1, 40), st.integers(1, 40), wild_floats, wild_floats,
       st.one_of(st.none(), st.tuples(wild_floats, wild_floats)))
def test_automatic_seeds(height, width, fg_quantile, bg_quantile, hard):
    saliency_hw = np.random.default_rng(height * width).random((height, width)).astype(np.float32)
    _result_or_value_error(lambda: segmentation.automatic_seeds(
        saliency_hw, fg_quantile=fg_quantile, bg_quantile=bg_quantile, hard_quantiles=hard))


CONFIG_KNOBS = {
    "parameterisation": st.one_of(st.sampled_from(["pixel", "fourier"]), wild_text),
    "optimiser": st.one_of(st.sampled_from(["sgd", "adam"]), wild_text),
    "steps": st.integers(-2, 3), "learning_rate": wild_floats, "init_std": wild_floats, "l2": wild_floats,
    "tv_weight": wild_floats, "tv_beta": wild_floats, "pad": st.integers(-2, 70), "jitter": st.integers(-2, 70),
    "scales": st.tuples(st.floats(-1, 2), st.floats(-1, 2)), "rotate_degrees": wild_floats,
    "jitter_after": st.integers(-1, 5), "decay": wild_floats, "blur_sigma": st.floats(0, 3),
    "blur_every": st.integers(0, 3), "clip_norm_percentile": wild_floats, "clip_contribution_percentile": wild_floats,
    "pixel_norm_bound": wild_floats, "bounded_range": st.booleans(), "decorrelate_colour": st.booleans(),
    "fourier_decay": st.floats(0, 2),
}


@pytest.mark.slow  # ~0.2 s a run even on the tiny model
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=CONFIG_KNOBS), st.lists(wild_ints, max_size=3), st.integers(0, 5),
       st.integers(-1, 3))
def test_visualise_class(knobs, classes, seed, frame_every):
    def run():
        config = ClassVizConfig(**knobs)
        return visualise_class(MODEL, classes, config=config, seed=seed, frame_every=frame_every)

    result = _result_or_value_error(run)
    if result is not None:
        assert len(result.images_hwc) == len(classes)
        assert all(image.dtype == np.uint8 and image.shape[2] == 3 for image in result.images_hwc)


# ---------------------------------------------------------------- files users upload to the segmentation page
@FAST
@given(st.one_of(st.binary(max_size=512), st.builds(lambda a: masks.encode_seed_map(a),
                                                   st.integers(1, 20).map(lambda n: np.full((n, n), n % 9, np.uint8)))))
def test_decode_seed_map(data):
    _result_or_value_error(lambda: masks.decode_seed_map(data))


def test_decode_seed_map_refuses_a_decompression_bomb():
    from tests.bad_image_files import _png_header_only

    with pytest.raises(ValueError, match="limit"):
        masks.decode_seed_map(_png_header_only(50_000, 50_000))


def test_decode_rle_refuses_a_size_it_cannot_hold():
    with pytest.raises(ValueError, match="outside"):
        masks.decode_rle({"size": [100_000, 100_000], "counts": [10_000_000_000]})


@pytest.mark.parametrize("counts", [[9.223372036854776e+18], [1.5, 2.5], [2**63, 2**63], [True, 3], [-1, 5]])
def test_decode_rle_refuses_counts_that_are_not_pixel_counts(counts):  # found by test_decode_rle below
    with pytest.raises(ValueError):
        masks.decode_rle({"size": [2, 2], "counts": counts})


@FAST
@given(st.recursive(st.none() | st.booleans() | st.integers(-5, 50) | st.floats() | st.text(max_size=4),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(["size", "counts", "x"]), inner),
                    max_leaves=12))
def test_decode_rle(rle):
    result = _result_or_value_error(lambda: masks.decode_rle(rle))
    if result is not None:
        assert result.dtype == bool and result.ndim == 2
        assert masks.decode_rle(json.loads(json.dumps(masks.encode_rle(result)))).tolist() == result.tolist()
