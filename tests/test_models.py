"""The embedded model, torchvision models offline, and state-dict loading."""
from __future__ import annotations

import pytest
import torch

from engine.attribution.saliency import compute_saliency, predict
from engine.images import load_image
from engine.models import ModelLoadError, cuda_math, find_class, imagenet_categories, load_model, set_cuda_math
from tests.conftest import ASSETS

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.mark.slow
def test_embedded_model_sees_a_cat_in_the_cat_demo(embedded_model):
    for views in (1, 10):
        assert predict(embedded_model, load_image(ASSETS / "cat.jpg"), views=views)[0].label in CAT_CLASSES


@pytest.mark.slow
def test_embedded_model_sees_espresso_in_the_espresso_demo(embedded_model):
    top = predict(embedded_model, load_image(ASSETS / "espresso.jpg"))[0]
    assert top.label == "espresso" and top.probability > 0.8


@pytest.mark.slow
def test_embedded_saliency_concentrates_on_the_cup(embedded_model):
    image = load_image(ASSETS / "espresso.jpg")  # 600×400; the cup fills the middle
    saliency = compute_saliency(embedded_model, image, views=10).saliency_hw
    h, w = saliency.shape
    centre = saliency[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].mean()
    assert centre > 1.5 * saliency.mean()


def test_embedded_model_is_frozen_and_in_eval_mode(embedded_model):
    assert not embedded_model.module.training
    assert not any(p.requires_grad for p in embedded_model.module.parameters())
    assert len(embedded_model.categories) == 1000


def test_random_weights_are_seeded_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    first = load_model("torchvision:alexnet", "random", device="cpu")
    second = load_model("torchvision:alexnet", "random", device="cpu")
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b in zip(first.module.parameters(), second.module.parameters()):
        assert torch.equal(a, b)


def test_pretrained_torchvision_weights_offline_fail_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache, whatever this machine holds
    with pytest.raises(ModelLoadError, match="not in the local torch cache"):
        load_model("torchvision:alexnet", "pretrained", device="cpu")


def test_state_dict_file_round_trip(tmp_path):
    model = load_model("torchvision:alexnet", "random", device="cpu")
    path = tmp_path / "alexnet.pt"
    torch.save({k: v * 2 for k, v in model.module.state_dict().items()}, path)
    loaded = load_model("torchvision:alexnet", str(path), device="cpu")
    first = next(iter(loaded.module.parameters()))
    assert torch.equal(first, 2 * next(iter(model.module.parameters())))
    assert loaded.weights == "file alexnet.pt"


@pytest.mark.parametrize("name, weights, message", [
    ("torchvision:vgg99", "random", "Unknown model"),
    ("efficientnet_lite0", "", "Weights must be"),
    ("efficientnet_lite0", "/no/such/file.pt", "Weights must be"),
])
def test_bad_model_choices_are_clear_errors(name, weights, message):
    with pytest.raises(ModelLoadError, match=message):
        load_model(name, weights, device="cpu")
    with pytest.raises(ModelLoadError, match="CUDA math must be one of exact, fast"):
        load_model("efficientnet_lite0", "random", device="cpu", math="fastest")


def test_cuda_math_modes_set_cudnn_for_the_process():
    """exact: float32 convolutions and deterministic cuDNN (reproducible); fast: TF32, any algorithm."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic
    try:
        set_cuda_math("fast")
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic, cuda_math()) == (True, False, "fast")
        set_cuda_math("exact")
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic, cuda_math()) == (False, True, "exact")
        assert not torch.backends.cuda.matmul.allow_tf32
        with pytest.raises(ValueError, match="one of exact, fast"):
            set_cuda_math("tf32")
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic = saved


def test_a_state_dict_for_another_model_is_refused(tmp_path):
    path = tmp_path / "wrong.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(ModelLoadError, match="does not fit"):
        load_model("torchvision:alexnet", str(path), device="cpu")


def test_classes_are_found_by_index_or_exact_label():
    categories = imagenet_categories()
    assert find_class(categories, "285") == 285
    assert find_class(categories, "egyptian CAT") == 285
    with pytest.raises(ValueError, match="Did you mean"):
        find_class(categories, "cat")
    with pytest.raises(ValueError, match="out of range"):
        find_class(categories, 1000)
