"""Per-pixel features from the network's inner layers (engine.attribution.features)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torchvision.models import resnet18

from engine.attribution import features as feats
from tests.conftest import wrap


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return wrap(resnet18(weights=None).eval(), resize=256, crop=224, classes=1000)


def two_textures(height=96, width=128):
    """Left half: fine vertical stripes; right half: smooth noise."""
    rng = np.random.default_rng(0)
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = np.where((np.arange(width // 2) // 2) % 2, 230, 20)[None, :, None]
    image[:, width // 2:] = (120 + 20 * rng.standard_normal((height, width - width // 2, 1))).clip(0, 255)
    return image


def test_features_cover_the_photo_on_a_grid_with_unit_variance(resnet):
    image = two_textures()
    result = feats.pixel_features(resnet, image)
    assert result.image_hw == (96, 128)
    assert result.features_hwk.shape == (120, 160, feats.DIMENSIONS)  # long side GRID_SIDE, the photo's aspect
    assert result.features_hwk.dtype == np.float32 and np.isfinite(result.features_hwk).all()
    assert result.features_hwk.std() == pytest.approx(1.0, rel=1e-3)
    again = feats.pixel_features(resnet, image)
    assert np.array_equal(again.features_hwk, result.features_hwk)  # deterministic


def test_pixels_of_one_texture_lie_nearer_each_other_than_the_other_texture(resnet):
    grid = feats.pixel_features(resnet, two_textures()).features_hwk
    h, w, _ = grid.shape
    left, right = grid[h // 4: 3 * h // 4, w // 8: 3 * w // 8], grid[h // 4: 3 * h // 4, 5 * w // 8: 7 * w // 8]
    centre_left, centre_right = left.reshape(-1, grid.shape[2]).mean(0), right.reshape(-1, grid.shape[2]).mean(0)
    within = np.linalg.norm(left - centre_left, axis=-1).mean()
    between = np.linalg.norm(centre_left - centre_right)
    assert between > 2 * within


def test_the_shared_model_is_untouched_and_threads_agree(resnet):
    before = {k: v.clone() for k, v in resnet.module.state_dict().items()}
    names = [n for n, _ in resnet.module.named_modules()]
    image = two_textures()
    serial = feats.pixel_features(resnet, image).features_hwk
    results = [None] * 4

    def work(i):
        results[i] = feats.pixel_features(resnet, image).features_hwk

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(np.array_equal(r, serial) for r in results)
    assert [n for n, _ in resnet.module.named_modules()] == names  # no wrapper left in the shared model
    assert all(torch.equal(before[k], v) for k, v in resnet.module.state_dict().items())


def test_a_large_photo_is_shrunk_to_the_network_size_first(resnet):
    large = np.asarray(np.kron(two_textures(), np.ones((12, 12, 1), np.uint8)))  # 1152 x 1536
    result = feats.pixel_features(resnet, large)
    assert result.image_hw == large.shape[:2] and result.features_hwk.shape[:2] == (120, 160)


def test_bad_input_and_unknown_architectures_are_refused_clearly(resnet, tiny_convnet):
    with pytest.raises(ValueError, match="uint8"):
        feats.pixel_features(resnet, np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="upscale"):
        feats.pixel_features(resnet, two_textures(), upscale=0)
    with pytest.raises(ValueError, match="No feature layers are known"):
        feats.pixel_features(tiny_convnet, two_textures())
