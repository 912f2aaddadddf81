"""Cached engine results and hand refinement: what a page computes, made once and shared read-only.

Owns: cached predictions, saliency maps (made by a few shared model workers), §3.2 cuts, the per-photo
network features, the refinement after a person's input (with a short per-session history), and
``ahead`` (warm a cache in the background). Finished results (maps, cuts) stay cached for whoever asks
next; what only serves a viewer's clicks and strokes on a photo (its features, refinement grids and cut
inputs) is held by the sessions that use it and dropped once the last is closed (``ui.holds``); a
refinement's results are the session's own. May import: engine, ``ui.state``, ``ui.holds``, ``ui.images``,
``ui.model``, ``ui.canvas`` (the ``HandSeeds`` a canvas returns).
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from engine.attribution import compute_saliency, predict
from engine.attribution.features import pixel_features
from engine.models import (
    LoadedModel,
)
from engine.segmentation import presets
from engine.segmentation import refine as refinement
from engine.segmentation.cut import merge_seeds
from ui import holds
from ui.canvas import HandSeeds
from ui.images import ImageInput, frozen
from ui.model import model_key


# ---------------------------------------------------------------- cached engine calls
@st.cache_data(max_entries=64, show_spinner=False)
def _predict(_model: LoadedModel, key: str, _image: np.ndarray, digest: str, top: int, views: int):
    return predict(_model, _image, top=top, views=views)


def cached_predict(model: LoadedModel, image: ImageInput, *, top: int = 5, views: int = 1):
    return _predict(model, model_key(model), image.image_hwc, image.digest, top, views)


# Saliency maps of every session are made by a few shared worker threads, the others waiting their turn.
# Twelve viewers arriving together each made theirs on their own script thread: a backward pass holds
# its activations (about 300 MB for 10 views), and the memory a thread frees stays in that thread's malloc
# arena, so the server went from 0.8 to 3-4 GB and stayed there; more passes at once than cores add memory
# and CPU time, not speed. Predictions (forward only, small) stay on the sessions' threads: queued behind
# the maps, they doubled the median wait (benchmarks/README.md, "Many viewers at once").
MODEL_WORKERS = max(1, (os.cpu_count() or 1) // 4)  # torch spreads one pass over the cores itself


@st.cache_resource(show_spinner=False)
def _model_workers():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(MODEL_WORKERS, thread_name_prefix="model")


@st.cache_resource(max_entries=32, show_spinner=False)
def _saliency(_model: LoadedModel, key: str, _image: np.ndarray, digest: str, kwargs_json: str):
    result = _model_workers().submit(compute_saliency, _model, _image, **json.loads(kwargs_json)).result()
    frozen(result.saliency_hw)
    return result


def cached_saliency(model: LoadedModel, image: ImageInput, **kwargs: Any):
    """``engine.attribution.saliency.compute_saliency`` cached by model, image digest and JSON-able kwargs."""
    return _saliency(model, model_key(model), image.image_hwc, image.digest, json.dumps(kwargs, sort_keys=True))


def _saliency_key(image_digest: str, saliency, model: LoadedModel) -> tuple:
    """Names a map by what ``cached_saliency`` made it from: a 12 MP map is 48 MB, too much to hash each rerun."""
    return image_digest, saliency.class_index, saliency.views, saliency.method, model_key(model)


def _preset_json(preset: presets.Preset) -> str:
    return json.dumps({k: v for k, v in dataclasses.asdict(preset).items() if k != "summary"})


def _preset_from_json(preset_json: str) -> presets.Preset:
    return presets.Preset(**{**json.loads(preset_json), "summary": ""})


@st.cache_resource(max_entries=8, show_spinner="Preparing the cut…")
def _preset_inputs(_image, digest, _saliency, saliency_key, preset_json) -> presets.PresetInputs:
    return presets.preset_inputs(_image, _saliency, _preset_from_json(preset_json))


# Cuts are kept as they are (cache_resource: a 12 MP cut is 25 MB, and cache_data copied it on every
# rerun); nothing changes a Segmentation in place.
@st.cache_resource(max_entries=32, show_spinner="Cutting…")
def _cut(_image, digest, _saliency, saliency_key, preset_json, _hand=None, hand_key=None, _previous=None, previous_key=None):
    inputs = _preset_inputs(_image, digest, _saliency, saliency_key, preset_json)
    return presets.segment_with_preset(_image, _saliency, _preset_from_json(preset_json), hand_hw=_hand, previous=_previous,
                                       iterations=1 if _previous is not None else None, inputs=inputs)


def cached_cut(image: np.ndarray, image_digest: str, saliency, preset: presets.Preset, *, model: LoadedModel,
               hand: HandSeeds | None = None, previous=None):
    """``engine.segmentation.presets.segment_with_preset`` cached by photo, map, preset and hand seeds; with ``previous``
    (the cut before the strokes) one re-cut with its colour models, as after a stroke. The map is named by
    what ``cached_saliency`` made it from (photo, class, views, method, ``model``) and the hand seeds by
    ``HandSeeds.key``, not hashed; what does not depend on the strokes (the map's seeds and prior, the
    prepared photo) is made once per photo and preset, and held by this session (``ui.holds``)."""
    preset_json = _preset_json(preset)
    saliency_key = _saliency_key(image_digest, saliency, model)
    holds.hold(("cut inputs", image_digest, saliency_key, preset_json),
               lambda: _preset_inputs.clear(None, image_digest, None, saliency_key, preset_json))
    hand_hw, hand_key = (None, None) if hand is None else (hand.seeds_hw, hand.key)
    return _cut(image, image_digest, saliency.saliency_hw, saliency_key, preset_json, hand_hw, hand_key, previous,
                None if previous is None else preset_json)


# ---------------------------------------------------------------- refinement after a person's input
REFINEMENTS = {
    "interactive": "follow the input: each click or stroke spreads to its region (network features and colour)",
    "recut": "re-cut the preset with the seeds (colour models only; before 2026-12)",
}
HISTORY = 4  # a session's latest inputs per photo whose results later inputs refine


@st.cache_resource(max_entries=8, show_spinner="Reading the photo's features from the network (once per photo)…")
def _pixel_features(_model: LoadedModel, key: str, _image: np.ndarray, digest: str) -> np.ndarray:
    return pixel_features(_model, _image).features_hwk


def cached_pixel_features(model: LoadedModel, image: ImageInput) -> np.ndarray:
    """``engine.attribution.features.pixel_features`` of the photo, one forward pass, kept per photo and model
    while a session that asked for them is open (``ui.holds``)."""
    key, digest = model_key(model), image.digest  # the release names the entry: it must not keep the photo alive
    holds.hold(("features", key, digest), lambda: _pixel_features.clear(None, key, None, digest))
    return _pixel_features(model, key, image.image_hwc, digest)


@st.cache_resource(max_entries=8, show_spinner=False)
def _prepared_for_refine(_image: np.ndarray, digest: str):
    return refinement.prepare_for_refine(_image)


# A refinement follows one person's input: the session's own (scope="session": dropped with it).
@st.cache_resource(scope="session", max_entries=8, show_spinner="Cutting…")
def _refined(_image, digest, _features, features_key, _hand, hand_key, _previous, previous_key, _automatic, automatic_key,
             _automatic_seeds, options_json):
    options = refinement.RefineOptions(**json.loads(options_json))
    result = refinement.refine(_image, _hand, features_hwk=_features, previous_hw=_previous, automatic_hw=_automatic,
                               options=options, prepared=_prepared_for_refine(_image, digest))
    return dataclasses.replace(result, seeds_hw=merge_seeds(_automatic_seeds, _hand))  # the model's seeds, yours over them


def refined_cut(image: ImageInput, saliency, preset: presets.Preset, *, model: LoadedModel, hand: HandSeeds, automatic,
                refine: str = "interactive"):
    """The mask after the person's input ``hand`` (not empty), from the automatic cut ``automatic``.

    ``refine="interactive"`` (``engine.segmentation.refine``): refined from the result of this session's latest
    earlier input that the current one continues (the same box; every earlier seed still there), else from
    the automatic mask, or from the box when a box is new. ``"recut"``: the preset's re-cut (``cached_cut``)."""
    if refine == "recut":
        return cached_cut(image.image_hwc, image.digest, saliency, preset, model=model, hand=hand, previous=automatic)
    return _refined_with_history(image, model, hand, automatic.is_foreground_hw, automatic.seeds_hw,
                                 repr((_saliency_key(image.digest, saliency, model), preset)))


def refined_from(image: ImageInput, start_hw: np.ndarray | None, start_key: str, *, model: LoadedModel, hand: HandSeeds):
    """The mask after the person's input ``hand`` from a given mask ``start_hw`` (an imported or saved object's;
    None: an empty start, the first click the first input), named ``start_key`` (unique per object and version)."""
    if start_hw is None or not start_hw.any():
        start_hw, start_key = None, f"empty {start_key}"
    return _refined_with_history(image, model, hand, start_hw, np.zeros(image.image_hwc.shape[:2], np.uint8), start_key)


def _refined_with_history(image: ImageInput, model: LoadedModel, hand: HandSeeds, automatic_hw, automatic_seeds, automatic_key: str):
    photo = image.image_hwc
    seeds = np.zeros(photo.shape[:2], np.uint8) if hand.seeds_hw is None else hand.seeds_hw
    history = st.session_state.setdefault(f"refine_history|{automatic_key}", [])  # (hand key, seeds, box, prior, result)
    for entry in history:
        if entry[0] == hand.key and entry[3] == hand.box_prior:
            return entry[4]  # this very input again (a rerun)
    previous, previous_key, options = automatic_hw, "automatic", refinement.RefineOptions()
    use_automatic = automatic_hw
    for entry in reversed(history):
        if entry[2] == hand.box and entry[3] == hand.box_prior and refinement.continues(entry[1], seeds):
            previous, previous_key = entry[4].is_foreground_hw, entry[0]
            break
    else:
        if hand.box is not None:  # a new box: GrabCut from the box (Rother et al. 2004), or the saliency mask inside it
            use_automatic = automatic_hw if hand.box_prior == "saliency" else None
            previous, previous_key = refinement.box_start(photo.shape[:2], hand.box, use_automatic), f"box {hand.box} {hand.box_prior}"
            options = refinement.box_options(options)
    features = cached_pixel_features(model, image)
    digest = image.digest
    holds.hold(("refinement grids", digest), lambda: _prepared_for_refine.clear(None, digest))
    result = _refined(photo, image.digest, features, model_key(model), seeds, hand.key, previous, previous_key, use_automatic,
                      f"{automatic_key} {use_automatic is None}", automatic_seeds, json.dumps(dataclasses.asdict(options)))
    history.append((hand.key, seeds, hand.box, hand.box_prior, result))
    del history[:-HISTORY]
    return result


@st.cache_resource(max_entries=64, show_spinner=False)
def _ahead(key: str, _work: Callable[[], object]) -> bool:
    try:
        _work()  # the cached functions it calls are nested in this one: they show no spinner
    except Exception:  # noqa: BLE001 (the page meets the same error, and reports it, when it needs the result)
        return False
    return True


def ahead(key: str, work: Callable[[], object]) -> None:
    """Run ``work`` (calls of the cached functions above) in a background thread, once per ``key``: what
    a person is likely to need next gets cached without holding up the page. A page that needs a value
    while it is being made waits for it (the caches lock each key), never makes it twice."""
    # Not a daemon (a thread started by the script thread would inherit its daemon flag): a process that ends
    # waits for it; a daemon thread inside torch when Python finalises aborts the process.
    threading.Thread(target=_ahead_for, args=(holds.session_id(), key, work), name=f"ahead {key}", daemon=False).start()


def _ahead_for(session: str | None, key: str, work: Callable[[], object]) -> None:
    with holds.working_for(session):  # what it makes for this session, the session holds
        _ahead(key, work)
