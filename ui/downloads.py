"""Downloads of every result and figures laid out like the paper's, for slides.

Owns: download buttons made lazily (PNG, NPY, JSON), the PNG/SVG/PDF figure buttons, and the §3.2
figure and caption of a cut. May import: engine, ``ui.images``, ``ui.model``, ``ui.pictures``.
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from engine.figures import Figure, figure_pdf, figure_png, figure_svg
from engine.images import encode_png
from engine.models import (
    LoadedModel,
)
from engine.render import fit, fit_box
from engine.segmentation import masks, presets
from ui.images import ImageInput
from ui.model import model_caption
from ui.pictures import shown_photo, shown_shape


# ---------------------------------------------------------------- downloads
def download(label: str, make: Callable[[], bytes | str], file_name: str, mime: str, key: str) -> None:
    """A download button whose file is made when it is clicked, not on every rerun (a 12 MP PNG takes
    about 2 s to encode), and whose click does not rerun the page."""
    st.download_button(label, make, file_name=file_name, mime=mime, key=key, on_click="ignore", icon=":material/download:")


def png_download(label: str, image: np.ndarray, file_name: str, key: str) -> None:
    download(label, lambda: encode_png(image), file_name, "image/png", key)


def npy_download(label: str, array: np.ndarray, file_name: str, key: str) -> None:
    def npy() -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    download(label, npy, file_name, "application/octet-stream", key)


def json_download(label: str, payload: Any, file_name: str, key: str) -> None:
    download(label, lambda: json.dumps(payload, indent=2), file_name, "application/json", key)


def stem(image: ImageInput) -> str:
    return Path(image.name).stem.replace(" ", "_") or "image"


# ---------------------------------------------------------------- figures for slides
def figure_downloads(make: Callable[[], Figure], name: str, key: str) -> None:
    """What the page shows as one figure laid out like the paper's (``engine.figures``), made when a button
    is clicked: PNG, SVG (text as text, editable on a slide) and PDF."""
    st.caption("Figure for slides: the view above laid out as one picture, with a caption of the model, class, method and settings.")
    columns = st.columns(3)
    with columns[0]:
        download("Figure (PNG)", lambda: figure_png(make()), f"{name}_figure.png", "image/png", key=f"{key}_png")
    with columns[1]:
        download("Figure (SVG)", lambda: figure_svg(make()), f"{name}_figure.svg", "image/svg+xml", key=f"{key}_svg")
    with columns[2]:
        download("Figure (PDF)", lambda: figure_pdf(make()), f"{name}_figure.pdf", "application/pdf", key=f"{key}_pdf")


# ---------------------------------------------------------------- figures of a cut (segmentation, review)
def cut_figure(image: ImageInput, saliency, mask_hw: np.ndarray, bbox, *, seeds_hw: np.ndarray | None = None,
               caption: str) -> Figure:
    """The paper's layout for §3.2 (Simonyan et al. 2013, Fig. 4): the photo, its class saliency map and the
    mask (background dimmed, box drawn; the hand seeds of ``seeds_hw`` painted over it when there are any),
    in one row at display size."""
    from engine.figures import make_figure
    from engine.render import colourise
    from engine.segmentation.cut import HAND_CODES, has_code

    shown_hw = shown_shape(image)
    photo = shown_photo(image, shown_hw)
    cut = masks.draw_result(photo, fit(mask_hw, shown_hw), fit_box(bbox, image.image_hwc.shape, shown_hw))
    label = "mask and box"
    if seeds_hw is not None and has_code(seeds_hw, HAND_CODES).any():
        hand_hw = np.where(has_code(seeds_hw, HAND_CODES), seeds_hw, 0).astype(np.uint8)
        cut, label = masks.draw_seeds(cut, fit(hand_hw, shown_hw)), "mask and box, with the hand seeds"
    heat = colourise(fit(saliency.saliency_hw, shown_hw))
    return make_figure([[(photo, image.name), (heat, f"{saliency.method} saliency for {saliency.label}"), (cut, label)]],
                       caption=caption)


def cut_caption(model: LoadedModel, saliency, preset: presets.Preset, bbox, area: int, *, photo: str, note: str = "") -> str:
    """A §3.2 figure's caption: what made the mask (model, class, map, preset and its knobs) and what it is."""
    views = {1: "the centre crop", 10: "the 10 views", "full": "the whole photo"}[preset.views]
    return (f"Weakly supervised segmentation (Simonyan et al. 2013, §3.2): the class saliency map seeds colour models "
            f"and a graph cut separates the object; the box bounds it. Model {model_caption(model)}; class "
            f"{saliency.class_index} “{saliency.label}”; {saliency.method} saliency on {views}; preset {preset.name} "
            f"({preset.seeds} seeds: foreground ≥ {preset.fg:g}, background ≤ {preset.bg:g}; {preset.iterations} rounds, "
            f"γ = {preset.gamma:g}); box {tuple(bbox) if bbox is not None else 'none'}, {area} px; photo {photo}.{note}")
