"""The shared model: loaded once per server process, read-only, chosen in the sidebar.

Owns: ``get_model`` (cache_resource: every session uses the same instance, never mutates it), the
sidebar's model and weights choice, ``current_model`` and how a model is named in captions and cache
keys. May import: engine, ``ui.state``, ``ui.links``.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from engine.models import (
    DEFAULT_MODEL,
    MODEL_NAMES,
    LoadedModel,
    ModelLoadError,
    cuda_math,
    load_model,
)
from ui.links import MODEL_PARAMS, keep_in_url, restore_from_url
from ui.state import LEGACY_RERUN_KEY, MODEL_KEY, ROUTED_KEY, UI_WEIGHTS, WEIGHTS_KEY


# ---------------------------------------------------------------- model
@st.cache_resource(max_entries=4, show_spinner="Loading the model (once per server process)…")
def get_model(name: str, weights: str) -> LoadedModel:
    return load_model(name, weights)


def model_key(model: LoadedModel) -> str:
    return f"{model.name}|{model.weights}|{model.device}"


def sidebar(container: Any = None) -> LoadedModel:
    """Model and weights choice; a model that cannot load is reported and the embedded one used. ``container``:
    a place in the sidebar kept for them (app.py draws the page first)."""
    st.session_state[ROUTED_KEY] = True
    with container if container is not None else st.sidebar:
        restore_from_url(*MODEL_PARAMS)
        st.selectbox("Model", MODEL_NAMES, key=MODEL_KEY, help=(
            "efficientnet_lite0 ships its ImageNet weights and works offline. torchvision:vgg16 is the "
            "closest to the paper's network; its pretrained weights must be in the local torch cache."))
        st.radio("Weights", UI_WEIGHTS, key=WEIGHTS_KEY, horizontal=True,
                 help="'random' is a seeded, untrained network: useful for sanity checks.")
        keep_in_url(*MODEL_PARAMS)
        model = current_model()
        st.caption(f"Running **{model.name}** ({model.weights}) on **{device_label(model)}**")
    return model


def current_model() -> LoadedModel:
    if ROUTED_KEY not in st.session_state and not st.session_state.get(LEGACY_RERUN_KEY):
        st.session_state[LEGACY_RERUN_KEY] = True  # the first run went the legacy way: once more, routed
        st.rerun()
    restore_from_url(*MODEL_PARAMS, show_notes=False)  # a page asks before the sidebar is drawn; the sidebar shows the notes
    name = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
    weights = st.session_state.get(WEIGHTS_KEY, "pretrained")
    try:
        return get_model(name, weights)
    except ModelLoadError as exc:
        st.sidebar.error(f"{exc}\n\nUsing the embedded {DEFAULT_MODEL} instead.")
        return get_model(DEFAULT_MODEL, "pretrained")


def device_label(model: LoadedModel) -> str:
    import torch

    if model.device.type != "cuda":
        return "CPU"
    return f"{torch.cuda.get_device_name(model.device)}, {cuda_math()} math"


def model_caption(model: LoadedModel) -> str:
    """The model as a figure's caption names it."""
    return f"{model.name} ({model.weights} weights)"
