"""Many sessions at once on one shared model: the cached engine paths the pages call, from 8 threads
at once, give exactly what each computes alone; the model is one object, loaded once, untouched.

The same with 8 real browser sessions against one ``streamlit run`` server, and the server's memory
bound, is tests/e2e/test_browser_concurrency.py.
"""
from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import ui.images
import ui.model
import ui.results
from engine.attribution.saliency import compute_saliency, predict
from engine.images import load_image
from tests.conftest import ASSETS

pytestmark = pytest.mark.slow
THREADS = 8
JOBS = [  # (demo image, keyword arguments): different methods on different images
    ("cat", dict(method="gradient", views=1, reduce="max-abs")),
    ("espresso", dict(method="gradient", views=10, reduce="sum-abs")),
    ("astronaut", dict(method="guided", views=1, reduce="max-abs")),
    ("rocket", dict(method="deconvnet", views=1, reduce="l2")),
    ("grace_hopper", dict(method="smoothgrad", views=1, reduce="max-abs", options={"samples": 4, "seed": 1})),
    ("cat", dict(method="integrated-gradients", views=1, reduce="max-abs", options={"steps": 4})),
    ("espresso", dict(method="gradcam", views=1, reduce="max-abs")),
    ("astronaut", dict(method="gradient", views=1, reduce="signed-max", target=285)),
]


def _image(name: str) -> ui.images.ImageInput:
    data = (ASSETS / f"{name}.jpg").read_bytes()
    return ui.images.ImageInput(name, hashlib.sha256(data).hexdigest(), load_image(data))


def _fingerprint(module) -> tuple:
    state = hashlib.sha256()
    for value in module.state_dict().values():
        state.update(value.detach().cpu().numpy().tobytes())
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in module.modules())
    return state.hexdigest(), hooks, module.training, any(p.requires_grad for p in module.parameters())


@pytest.fixture(scope="module")
def model():
    return ui.model.get_model("efficientnet_lite0", "pretrained")


def _at_once(fn, items):
    """Run ``fn`` on every item on its own thread, all released together by a barrier."""
    barrier = threading.Barrier(len(items))

    def run(item):
        barrier.wait()
        return fn(item)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(run, items))


def test_one_model_object_for_every_thread(model):
    models = _at_once(lambda _: ui.model.get_model("efficientnet_lite0", "pretrained"), range(THREADS))
    assert all(m is model for m in models)  # st.cache_resource: no per-session copies


def test_cached_saliency_from_8_threads_equals_each_alone(model):
    images = {name: _image(name) for name in {name for name, _ in JOBS}}
    before = _fingerprint(model.module)
    alone = [compute_saliency(model, images[name].image_hwc, **kwargs) for name, kwargs in JOBS]
    ui.results._saliency.clear()  # the threads compute, not read the cache
    together = _at_once(lambda job: ui.results.cached_saliency(model, images[job[0]], **job[1]), JOBS)
    for (name, kwargs), one, many in zip(JOBS, alone, together):
        assert many.class_index == one.class_index and many.score == one.score, (name, kwargs)
        np.testing.assert_array_equal(many.saliency_hw, one.saliency_hw, err_msg=f"{name} {kwargs}")
    assert _fingerprint(model.module) == before  # weights, hooks, eval mode, frozen: all as loaded


def test_cached_predictions_from_8_threads_equal_each_alone(model):
    names = [name for name, _ in JOBS]
    alone = [predict(model, _image(name).image_hwc, top=5, views=1 + 9 * (i % 2)) for i, name in enumerate(names)]
    ui.results._predict.clear()
    together = _at_once(lambda item: ui.results.cached_predict(model, _image(item[1]), top=5, views=1 + 9 * (item[0] % 2)),
                        list(enumerate(names)))
    assert together == alone
