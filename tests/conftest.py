"""Shared fixtures: small models with hand-known behaviour, and the embedded model loaded once."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine.models import LoadedModel, Preprocessing, load_model

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"


def wrap(module: nn.Module, *, resize: int, crop: int, classes: int, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)) -> LoadedModel:
    """A LoadedModel around a tiny module, frozen as load_model freezes."""
    module = module.eval().requires_grad_(False)
    prep = Preprocessing(resize=resize, crop=crop, mean=mean, std=std)
    return LoadedModel("tiny", "hand", module, torch.device("cpu"), prep, tuple(f"class{i}" for i in range(classes)))


@pytest.fixture
def linear_model() -> LoadedModel:
    """S(x) = W·x + b on a 3×12×12 crop of a 16-short-side image; 5 classes."""
    generator = torch.Generator().manual_seed(1)
    linear = nn.Linear(3 * 12 * 12, 5)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(5, 3 * 12 * 12, generator=generator))
        linear.bias.copy_(torch.randn(5, generator=generator))
    return wrap(nn.Sequential(nn.Flatten(), linear), resize=16, crop=12, classes=5)


@pytest.fixture
def tiny_convnet() -> LoadedModel:
    """A small non-linear ConvNet (conv-ReLU-pool-linear), seeded."""
    generator = torch.Generator().manual_seed(2)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    return wrap(net, resize=16, crop=12, classes=5)


@pytest.fixture(scope="session")
def embedded_model() -> LoadedModel:
    return load_model("efficientnet_lite0", "pretrained", device="cpu")


def open_page(page: str, *, timeout: float = 300):
    """AppTest of app.py switched to ``page`` (e.g. "pages/saliency.py"), run without an exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(autouse=True)
def route_apptest_through_app_py(monkeypatch):
    """Make AppTest route every run through app.py, as the real server does (see ui/__init__.py).

    AppTest resets Streamlit's class-wide legacy-pages flag before each run, and with a pages/
    folder beside app.py it would then run a page without app.py's frame (no sidebar). It resets
    the flag on the name it imported, so a subclass there takes the reset and leaves ours alone.
    """
    import streamlit.testing.v1.app_test as app_test
    from streamlit.runtime.pages_manager import PagesManager

    monkeypatch.setattr(app_test, "PagesManager", type("RoutedPagesManager", (PagesManager,), {}))
    monkeypatch.setattr(PagesManager, "uses_pages_directory", False)
