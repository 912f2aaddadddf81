"""Class model visualisation (§2): oracles on tiny models, determinism, batching, and the embedded model."""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engine.__main__ import main
from engine.attribution.saliency import predict
from engine.classviz import transforms
from engine.classviz.parameterisations import COLOUR_CORRELATION, frequency_scale, maco_image
from engine.classviz.spectrum import ASSET as SPECTRUM_ASSET
from engine.classviz.spectrum import load_spectrum, resample_spectrum
from engine.classviz.visualise import PRESETS, ClassVizConfig, animation_gif, class_seed, visualise_class
from engine.images import encode_png, load_image
from engine.models import LoadedModel, Preprocessing
from engine.views import normalise

SIZE = 32
DEV_PHOTOS = Path("/work/shared/data/ilsvrc2012-val-dev/images")  # the development ILSVRC photos (not in the repo)


def tiny_model(linear: bool = False) -> LoadedModel:
    """A seeded 10-class network on 32×32 inputs (the linear one has a hand-computable gradient)."""
    gen = torch.Generator().manual_seed(0)
    if linear:
        module = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, 10))
    else:
        module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    module.eval().requires_grad_(False)
    prep = Preprocessing(resize=SIZE, crop=SIZE, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return LoadedModel("tiny", "random", module, torch.device("cpu"), prep, tuple(f"class {i}" for i in range(10)))


def short(preset: str, steps: int = 4, **knobs) -> ClassVizConfig:
    return dataclasses.replace(PRESETS[preset], steps=steps, **knobs)


def test_paper_step_on_a_linear_model_is_the_hand_computed_one():
    model = tiny_model(linear=True)
    weight = model.module[1].weight[3].view(3, SIZE, SIZE)
    lr, lam = 0.5, 0.1
    config = short("paper", 2, learning_rate=lr, l2=lam, final_lr_fraction=0.5)
    result = visualise_class(model, [3], config=config, frame_every=1)
    first = lr * weight  # from the zero image the L2 term has no gradient
    second = first + 0.5 * lr * (weight - 2 * lam * first)  # the step has shrunk linearly to half
    expected = ((second * 0.5 + 0.5).clamp(0, 1) * 255).round().permute(1, 2, 0).numpy().astype(np.uint8)
    np.testing.assert_array_equal(result.images_hwc[0], expected)
    bias = float(model.module[1].bias[3])
    np.testing.assert_allclose(result.scores[:, 0], [bias, float((weight * first).sum()) + bias], rtol=1e-5, atol=1e-5)
    assert result.frame_steps == (1, 2) and result.frames[0].shape == (1, SIZE, SIZE, 3)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_batch_of_classes_equals_classes_one_by_one(preset):
    model = tiny_model()
    config = short(preset, 5)
    batch = visualise_class(model, [2, 7, 4], config=config, seed=11)
    for i, c in enumerate([2, 7, 4]):
        single = visualise_class(model, [c], config=config, seed=11)
        assert np.abs(batch.images_hwc[i].astype(int) - single.images_hwc[0].astype(int)).max() <= 1
        np.testing.assert_allclose(batch.scores[:, i], single.scores[:, 0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_same_seed_same_image(preset):
    model = tiny_model()
    first = visualise_class(model, [5], config=short(preset), seed=3)
    again = visualise_class(model, [5], config=short(preset), seed=3)
    np.testing.assert_array_equal(first.images_hwc[0], again.images_hwc[0])
    np.testing.assert_array_equal(first.scores, again.scores)


def test_seed_matters_where_there_is_randomness_and_global_rng_is_untouched():
    model = tiny_model()
    state = torch.get_rng_state()
    a = visualise_class(model, [5], config=short("olah"), seed=1)
    b = visualise_class(model, [5], config=short("olah"), seed=2)
    assert not np.array_equal(a.images_hwc[0], b.images_hwc[0])
    assert torch.equal(state, torch.get_rng_state())
    assert class_seed(1, 5) != class_seed(2, 5) and class_seed(1, 5) == class_seed(1, 5)


def test_on_step_returning_false_stops_early_and_keeps_the_result():
    model = tiny_model()
    seen = []

    def on_step(progress):
        seen.append((progress.step, progress.steps, progress.images(), progress.scores(), progress.probabilities()))
        return progress.step < 3

    result = visualise_class(model, [1, 2], config=short("paper", 50), on_step=on_step, frame_every=1)
    assert result.stopped_early and result.steps_run == 3 and result.scores.shape == (3, 2)
    assert [s[:2] for s in seen] == [(1, 50), (2, 50), (3, 50)]
    for (step, _, images, scores, probabilities), frame in zip(seen, result.frames):  # each preview is that step's image
        np.testing.assert_array_equal(images, frame)
        np.testing.assert_array_equal(scores, result.scores[step - 1])
        np.testing.assert_array_equal(probabilities, result.probabilities[step - 1])
    np.testing.assert_array_equal(seen[-1][2], np.stack(result.images_hwc))
    assert result.frame_steps == (1, 2, 3)


def test_the_shared_model_is_not_touched():
    model = tiny_model()
    before = [p.clone() for p in model.module.parameters()]
    visualise_class(model, [0], config=short("olah"))
    visualise_class(model, [0], config=short("yosinski"))
    assert not model.module.training
    assert all(torch.equal(a, b) and b.grad is None and not b.requires_grad for a, b in zip(before, model.module.parameters()))


@pytest.mark.parametrize("bad", [
    dict(steps=-1), dict(learning_rate=0.0), dict(final_lr_fraction=0.0), dict(l2=-1.0), dict(optimiser="lbfgs"),
                                 dict(parameterisation="cppn"),
    dict(jitter=-2), dict(scales=(1.1, 0.9)), dict(clip_norm_percentile=100.0), dict(blur_every=4, blur_sigma=0.0),
    dict(parameterisation="fourier", decay=0.1),
])
def test_bad_knobs_raise_value_error(bad):
    with pytest.raises(ValueError):
        dataclasses.replace(PRESETS["paper"], **bad)


@pytest.mark.parametrize("classes", [[], [10], [-1], ["goldfish"], [1.5]])
def test_bad_classes_raise_value_error(classes):
    with pytest.raises(ValueError):
        visualise_class(tiny_model(), classes, config=short("paper"))


def test_jitter_that_leaves_the_network_under_half_its_input_is_refused():
    # 32-pixel input: jitter 16 leaves 16 (half: runs), 17 leaves 15, and pad widens what is left
    assert visualise_class(tiny_model(), [1], config=short("paper", jitter=16)).images_hwc[0].shape == (SIZE, SIZE, 3)
    with pytest.raises(ValueError, match="leave the network a 15-pixel image; it needs at least half of its 32"):
        visualise_class(tiny_model(), [1], config=short("paper", jitter=17))
    visualise_class(tiny_model(), [1], config=short("paper", jitter=17, pad=1))


def test_unknown_preset_raises_value_error():
    with pytest.raises(ValueError, match="Unknown preset"):
        visualise_class(tiny_model(), [1], config="deepdream")


def test_zero_steps_give_the_zero_image():
    result = visualise_class(tiny_model(), [1], config=short("paper", 0))
    assert result.scores.shape == (0, 1) and np.all(result.images_hwc[0] == 128)


def test_fourier_and_colour_constants_follow_lucid():
    scale = frequency_scale(8, 8)
    assert scale.shape == (8, 5) and scale[0, 0] == 8.0 and scale[0, 1] == 8.0 and scale[0, 4] == 2.0
    assert np.isclose(np.linalg.norm(COLOUR_CORRELATION, axis=0).max(), 1.0)


def test_transforms_by_hand():
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    fill = torch.full((1, 3, 1, 1), -7.0)
    padded = transforms.pad(2, fill)(images, gens)
    assert padded.shape == (2, 3, 10, 10) and torch.all(padded[:, :, 0] == -7) and torch.equal(padded[:, :, 2:8, 2:8], images)
    assert transforms.jitter(2)(images, gens).shape == (2, 3, 4, 4)
    same = transforms.random_scale_rotate((1.0, 1.0), 0.0, fill)(images, gens)
    torch.testing.assert_close(same, images, atol=1e-4, rtol=0)
    ramp = torch.tensor([[[[0.0, 1.0, 3.0], [0.0, 1.0, 3.0], [0.0, 1.0, 3.0]]]])  # (1, 1, 3, 3)
    assert float(transforms.total_variation(ramp)) == 2 * (1 + 4)  # 2 rows × (1² + 2²), no vertical change
    constant = torch.full((1, 3, 9, 9), 0.3)
    torch.testing.assert_close(transforms.gaussian_blur(constant, 1.0), constant)
    pixels = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]).repeat(1, 3, 1, 1)
    clipped = transforms.clip_small_pixels(pixels, torch.ones_like(pixels), norm_percentile=50, contribution_percentile=0)
    assert torch.equal(clipped[0, 0], torch.tensor([[0.0, 0.0], [3.0, 4.0]]))


def test_bilinear_sample_is_grid_sample_with_its_own_backward():
    """The CUDA exact-math sampler: grid_sample's values and gradients, zero padding included."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(3, 2, 11, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    theta = torch.tensor([[[1.6, -0.5, 0.1], [0.5, 1.6, -0.2]], [[0.9, 0.2, 0.0], [-0.2, 0.9, 0.05]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]],
                         dtype=torch.float64)  # the first reaches outside the image
    grid = torch.nn.functional.affine_grid(theta, [3, 2, 7, 8], align_corners=False)
    expected = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    torch.testing.assert_close(transforms.bilinear_sample(images, grid), expected)
    assert torch.autograd.gradcheck(lambda x: transforms.bilinear_sample(x, grid), (images,))
    weights = torch.randn(expected.shape, generator=gen, dtype=torch.float64)
    (ours,) = torch.autograd.grad((transforms.bilinear_sample(images, grid) * weights).sum(), images)
    (theirs,) = torch.autograd.grad((expected * weights).sum(), images)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("percentile", [0.0, 5.0, 33.3, 50.0, 99.9])
def test_percentile_by_selection_equals_torch_quantile(percentile):
    gen = torch.Generator().manual_seed(3)
    values = torch.cat([torch.randn(2, 1001, generator=gen), torch.randint(0, 4, (1, 1001), generator=gen).float()])  # ties too
    torch.testing.assert_close(transforms.percentile_of(values, percentile), torch.quantile(values, percentile / 100, dim=1))


def test_animation_gif_has_one_frame_per_stored_step():
    result = visualise_class(tiny_model(), [1, 2], config=short("paper", 6), frame_every=2)
    gif = Image.open(io.BytesIO(animation_gif(result)))
    assert gif.n_frames == 3 and gif.size == (2 * SIZE, SIZE)


@pytest.mark.slow
def test_paper_preset_png_is_its_class_top1_on_the_embedded_model(embedded_model):
    classes = [1, 130, 285, 954]  # goldfish, flamingo, Egyptian cat, banana
    result = visualise_class(embedded_model, classes, config="paper", seed=0)
    for c, image in zip(classes, result.images_hwc):
        restored = load_image(encode_png(image))  # (224, 224, 3) uint8: the network's own input size
        batch = normalise(torch.from_numpy(restored).permute(2, 0, 1)[None].float() / 255, embedded_model.preprocessing)
        with torch.no_grad():
            native = embedded_model.module(batch)[0]
        assert int(native.argmax()) == c
        # Through predict()'s photo preprocessing (resize to 256, centre crop) the paper's images lose
        # most of their score (adversarial-like detail): measured 51 -> 11, 44 -> 10, 42 -> 2, 45 -> 4
        # here. Which class then comes first depends on the CPU's rounding over the ascent (goldfish
        # stayed first on one machine and not on another), so only the loss is asserted.
        through_photo = {p.index: p.logit for p in predict(embedded_model, restored, top=1000)}
        assert float(native[c]) - through_photo[c] > 20.0
    zero = visualise_class(embedded_model, classes, config=short("paper", 0))
    assert min(np.subtract(result.final_scores, zero.final_scores)) > 5.0  # logits: far above the zero image's


@pytest.mark.slow
def test_olah_image_stays_top1_under_random_jitter_and_rescale(embedded_model):
    classes = [1, 130]
    result = visualise_class(embedded_model, classes, config=short("olah", 64), seed=0)  # 512 in the preset; robust from ~64
    rng = np.random.default_rng(0)
    for c, image in zip(classes, result.images_hwc):
        for _ in range(3):
            scale = rng.uniform(0.85, 1.15)
            size = round(224 * scale)
            resized = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
            shifted = np.roll(resized, tuple(rng.integers(-12, 13, 2)), axis=(0, 1))
            assert predict(embedded_model, shifted, top=1)[0].index == c


@pytest.mark.slow
def test_cli_writes_one_png_per_class(tmp_path, capsys):
    assert main(["classviz", "1", "flamingo", "--steps", "2", "--seed", "4", "--out", str(tmp_path)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [row["class_index"] for row in payload["classes"]] == [1, 130] and payload["steps"] == 2
    for row in payload["classes"]:
        assert load_image(row["png"]).shape == (224, 224, 3)


def test_cli_rejects_an_unknown_class(tmp_path, capsys):
    assert main(["classviz", "not a class", "--weights", "random", "--out", str(tmp_path)]) == 1
    assert "No ImageNet class" in capsys.readouterr().err


# ---------------------------------------------------------------- MACO (Fel et al. 2023)
def _maco_magnitude_of(model_space: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """Undo the colour mapping (model space -> [0, 1] -> logit -> C⁻¹) and take |rfft2|: (B, 3, H, W//2 + 1)."""
    std, mean = (torch.tensor(v, dtype=torch.float64).view(1, 3, 1, 1) for v in (prep.std, prep.mean))
    rgb = model_space.double() * std + mean
    z = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(torch.from_numpy(COLOUR_CORRELATION).double()), torch.logit(rgb))
    return torch.fft.rfft2(z, norm="ortho").abs()


@pytest.mark.parametrize("side", [224, 32, 31])
def test_maco_image_keeps_the_assets_fourier_magnitude_whatever_the_phase(side):
    magnitude = resample_spectrum(load_spectrum(), side, side)
    prep = Preprocessing(resize=side, crop=side, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
    params, image_fn = maco_image(side, side, prep=prep, magnitude=magnitude, generators=generators, device=torch.device("cpu"))
    optimiser = torch.optim.Adam(params, lr=0.5)
    for _ in range(3):  # the phase moves anywhere (a random objective), the magnitude must not
        optimiser.zero_grad()
        (image_fn(params) * torch.randn(2, 3, side, side, generator=generators[0])).sum().backward()
        optimiser.step()
    found = _maco_magnitude_of(image_fn(params).detach(), prep)
    expected = torch.from_numpy(np.abs(magnitude)).double().expand_as(found)
    assert torch.allclose(found, expected, rtol=2e-3, atol=2e-3 * float(expected.max()))
    assert not torch.allclose(image_fn(params)[0], image_fn(params)[1])  # different phases, different images


def test_the_spectrum_command_writes_the_mean_amplitude_of_its_photos(tmp_path, capsys):
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    for i, photo in enumerate(photos):
        Image.fromarray(photo).save(tmp_path / f"p{i}.png")
    (tmp_path / "notes.txt").write_text("not a photo")
    assert main(["spectrum", str(tmp_path), "--side", "16", "--out", str(tmp_path / "s.npy")]) == 0
    assert json.loads(capsys.readouterr().out)["photos"] == 3
    inverse = np.linalg.inv(COLOUR_CORRELATION.astype(np.float64))
    spectra = []
    for photo in photos:  # by hand: z = C⁻¹·logit(p), |rfft2(z)|, the signed mean at zero frequency
        p = np.clip(photo.astype(np.float64) / 255, 0.01, 0.99).transpose(2, 0, 1)
        f = np.fft.rfft2(np.einsum("ij,jhw->ihw", inverse, np.log(p / (1 - p))), norm="ortho")
        amplitude = np.abs(f)
        amplitude[:, 0, 0] = f[:, 0, 0].real
        spectra.append(amplitude)
    written = np.load(tmp_path / "s.npy")
    assert written.dtype == np.float16 and written.shape == (3, 16, 9)
    np.testing.assert_allclose(written.astype(np.float64), np.mean(spectra, 0), rtol=2e-3, atol=1e-3)
    assert main(["spectrum", str(tmp_path / "nowhere"), "--out", str(tmp_path / "t.npy")]) == 1


@pytest.mark.slow
@pytest.mark.skipif(not DEV_PHOTOS.is_dir(), reason="the development ILSVRC photos are not on this machine")
def test_the_shipped_spectrum_regenerates_from_its_command(tmp_path, capsys):
    out = tmp_path / "natural_224.npy"
    assert main(["spectrum", str(DEV_PHOTOS), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["photos"] == 654
    assert out.read_bytes() == SPECTRUM_ASSET.read_bytes()


def test_maco_is_seeded_and_refuses_what_it_cannot_keep():
    model = tiny_model()
    first = visualise_class(model, [5], config=short("maco", 3), seed=3)
    again = visualise_class(model, [5], config=short("maco", 3), seed=3)
    other = visualise_class(model, [5], config=short("maco", 3), seed=4)
    np.testing.assert_array_equal(first.images_hwc[0], again.images_hwc[0])
    assert not np.array_equal(first.images_hwc[0], other.images_hwc[0])
    for bad in (dict(decorrelate_colour=False), dict(crops=0), dict(crop_scales=(0.5, 1.5)), dict(work_size=8)):
        with pytest.raises(ValueError):
            dataclasses.replace(PRESETS["maco"], **bad)
    with pytest.raises(ValueError, match="needs"):
        maco_image(8, 8, prep=model.preprocessing, magnitude=np.ones((3, 8, 4)), generators=[torch.Generator()], device=torch.device("cpu"))


def test_random_crops_cut_inside_the_image_and_resize():
    ramp = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8).expand(1, 3, 8, 8)
    crops = transforms.random_crops(3, (0.5, 0.5), 4)(ramp, [torch.Generator().manual_seed(0)])
    assert crops.shape == (3, 3, 4, 4)
    for crop in crops:  # a half-side crop resized 4 -> 4 is a window of the ramp: rows differ by 8, columns by 1
        assert torch.allclose(crop[0, 1:] - crop[0, :-1], torch.full((3, 4), 8.0))
        assert torch.allclose(crop[0, :, 1:] - crop[0, :, :-1], torch.ones(4, 3))
        assert 0 <= float(crop.min()) and float(crop.max()) <= 63
