"""The one non-page module that imports streamlit: cached model and results, shared widgets.

Everything that crosses pages (the model choice, the current image, the chosen class) lives under
the session-state keys named here, once.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import math
import os
import re
import shutil
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlencode

import numpy as np
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from engine.attribution import compute_saliency, predict
from engine.attribution.features import pixel_features
from engine.figures import Figure, figure_pdf, figure_png, figure_svg
from engine.images import ImageError, encode_jpeg, encode_png, load_image
from engine.models import DEFAULT_MODEL, MODEL_NAMES, LoadedModel, ModelLoadError, cuda_math, find_class, load_model
from engine.render import display_shape, fit, fit_box
from engine.segmentation import clicks, masks, presets
from engine.segmentation import refine as refinement
from engine.segmentation.cut import HAND_BACKGROUND, HAND_FOREGROUND, NONE, merge_seeds

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
MODEL_KEY, WEIGHTS_KEY = "model_name", "model_weights"  # sidebar widgets
IMAGE_KEY = "current_image"  # ImageInput shared by every page
ROUTED_KEY = "_routed_by_app"  # set by app.py's frame; absent only in a legacy pages/ run
LEGACY_RERUN_KEY = "_legacy_rerun_done"

# pages/ holds st.Page scripts routed by app.py. Until app.py has once called st.navigation, a
# fresh server treats pages/ as legacy auto-discovered pages and runs a deep-linked page without
# app.py's frame (no sidebar). Switch the legacy mode off for the process as soon as ui loads.
PagesManager.uses_pages_directory = False
UPLOAD_TYPES = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif")
UI_WEIGHTS = ("pretrained", "random")  # the UI never opens a user-supplied path


@dataclass(frozen=True, eq=False)
class ImageInput:
    name: str
    digest: str  # sha256 of the file's bytes: the cache key of everything computed from it
    image_hwc: np.ndarray


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


# ---------------------------------------------------------------- images
# Photos and maps are kept as they are, read-only (cache_resource): cache_data pickled a 12 MP photo (36 MB)
# and its map (48 MB) when made and unpickled them on every rerun.
def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@st.cache_resource(max_entries=32, show_spinner=False)
def decode(data: bytes, name: str) -> ImageInput:
    return ImageInput(name, hashlib.sha256(data).hexdigest(), _frozen(load_image(data)))


DEMO_ORDER = ("cat", "espresso", "astronaut", "grace_hopper", "rocket")  # the paper's kind of photo first


def demo_images() -> dict[str, Path]:
    files = sorted(ASSETS.glob("*.jpg"), key=lambda p: (DEMO_ORDER + (p.stem,)).index(p.stem))
    return {p.stem.replace("_", " "): p for p in files}


def image_picker(key: str = "image", *, url_param: str | None = None) -> ImageInput:
    """A demo image or an upload, kept for the other pages; an unusable file stops the page with
    its message. An upload made on another page is offered first, so the pages share it. With
    ``url_param``, a demo photo is kept in the URL under that name (an upload cannot be, and the page says so)."""
    demos = demo_images()
    link = None if url_param is None else UrlParam(url_param, f"{key}_demo", parse=_demo_name, dump=_demo_stem, default=next(iter(demos)))
    if link is not None:
        restore_from_url(link)
    current: ImageInput | None = st.session_state.get(IMAGE_KEY)
    carried = current if current is not None and current.name not in demos else None
    names = ([carried.name] if carried else []) + list(demos)
    index = names.index(current.name) if current is not None else 0
    left, right = st.columns([1, 2])
    picked = left.selectbox("Demo image", names, index=index, key=f"{key}_demo",
                            format_func=lambda n: f"{n} (your upload)" if carried and n == carried.name else n)
    upload = right.file_uploader("…or upload your own", type=UPLOAD_TYPES, key=f"{key}_upload",
                                 help="PNG, JPEG, WebP, BMP, TIFF or GIF (first frame), up to 40 MP.")
    try:
        if upload is not None:
            chosen = decode(upload.getvalue(), upload.name)
        elif carried is not None and picked == carried.name:
            chosen = carried
        else:
            chosen = decode(demos[picked].read_bytes(), picked)
    except ImageError as exc:
        st.error(f"Cannot use {upload.name if upload else picked}: {exc}")
        st.stop()
    st.session_state[IMAGE_KEY] = chosen
    if link is not None:
        is_demo = upload is None and chosen.name in demos
        keep_in_url(link, values={link.name: chosen.name if is_demo else None})
        if not is_demo:
            st.caption(f":material/link_off: An upload cannot go in a link: this page's link opens the demo photo "
                       f"{link.default} with the other settings.")
    return chosen


def class_picker(model: LoadedModel, *, top1: int, key: str, label: str = "Target class", url_param: str | None = None) -> int:
    """Top-1 by default, or any of the 1000 classes: type to search by name or index. With ``url_param``,
    a chosen class is kept in the URL under that name (an index; a link may also give an exact label)."""
    names = model.categories
    link = None if url_param is None else UrlParam(url_param, key, parse=lambda raw: find_class(names, raw))
    if link is not None:
        restore_from_url(link)
    # The top-1 option's label must not change with the image: a new label makes a new widget.
    choice = st.selectbox(
        label, [None, *range(len(names))], key=key,
        format_func=lambda i: "Top-1 prediction" if i is None else f"{i} · {names[i]}",
        help=f"Now the top-1 is {top1} · {names[top1]}. Type to search the 1000 ImageNet classes by name or index.")
    if link is not None:
        keep_in_url(link)
    return top1 if choice is None else int(choice)


def image_and_class(model: LoadedModel, prefix: str, *, url: bool = False) -> tuple[ImageInput, int]:
    """The image picker, then the class picker defaulting to the image's top-1 (centre view);
    widget keys ``{prefix}_image`` and ``{prefix}_class``; with ``url``, kept in the URL as ``image`` and ``class``."""
    image = image_picker(key=f"{prefix}_image", url_param="image" if url else None)
    return image, class_picker(model, top1=cached_predict(model, image, top=1)[0].index, key=f"{prefix}_class",
                               url_param="class" if url else None)


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
    _frozen(result.saliency_hw)
    return result


def cached_saliency(model: LoadedModel, image: ImageInput, **kwargs: Any):
    """``engine.attribution.saliency.compute_saliency`` cached by model, image digest and JSON-able kwargs."""
    return _saliency(model, model_key(model), image.image_hwc, image.digest, json.dumps(kwargs, sort_keys=True))


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


def model_caption(model: LoadedModel) -> str:
    """The model as a figure's caption names it."""
    return f"{model.name} ({model.weights} weights)"


# ---------------------------------------------------------------- links that reopen a view
# A page's inputs live in its URL's query parameters: ``with ui.linked(*params):`` around its widgets
# sets them from a link (a fresh browser, a link opened, back and forward) and writes them back after.
# A value this session wrote itself is never read back, so it cannot undo the person's last click; a
# link's unusable value leaves the widget at its default, with a note that says so.
URL_WRITTEN_KEY = "_url_written"  # {state key: the text this session last put in the URL for it, or None}
URL_NOTES_KEY = "_url_notes"  # {state key: {"text", "seen", "value"}}: a link's unusable value and what replaced it


@dataclass(frozen=True)
class UrlParam:
    """A value kept in the URL as ``name``: the widget (or session-state) ``key`` it sets, ``parse`` from
    the URL's text (a ValueError says why a link's value cannot be used), ``dump`` back to text, and the
    ``default``, which is left out of the URL (so is None)."""

    name: str
    key: str
    parse: Callable[[str], Any]
    dump: Callable[[Any], str] = str
    default: Any = None


def restore_from_url(*params: UrlParam, show_notes: bool = True) -> None:
    """Before the widgets: a value a link brings sets its widget's state; an unusable one, the default."""
    written = st.session_state.setdefault(URL_WRITTEN_KEY, {})
    notes = st.session_state.setdefault(URL_NOTES_KEY, {})
    for param in params:
        raw = st.query_params.get(param.name)
        if raw is not None and (raw != written.get(param.key) or param.key not in st.session_state):
            written[param.key] = raw
            try:
                st.session_state[param.key] = param.parse(raw)
                notes.pop(param.key, None)
            except ValueError as exc:
                st.session_state.pop(param.key, None)  # the widget's own default
                notes[param.key] = {"text": f"This link's `{param.name}={raw}` cannot be used: {exc} "
                                            "Showing the default instead.", "seen": False, "value": None}
        note = notes.get(param.key)
        if note is not None and note["seen"] and st.session_state.get(param.key, param.default) != note["value"]:
            del notes[param.key]  # the person has chosen something else since
        elif note is not None and show_notes:
            st.warning(note["text"], icon=":material/link_off:")


def keep_in_url(*params: UrlParam, values: Mapping[str, Any] | None = None) -> None:
    """After the widgets: each value in the URL as text, defaults and None left out. ``values`` (by name)
    stand in for session state where what is shown is not one widget's value (an upload: None)."""
    written = st.session_state.setdefault(URL_WRITTEN_KEY, {})
    notes = st.session_state.get(URL_NOTES_KEY, {})
    for param in params:
        value = values[param.name] if values and param.name in values else st.session_state.get(param.key, param.default)
        text = None if value is None or _same(value, param.default) else param.dump(value)
        if text is None and param.name in st.query_params:
            del st.query_params[param.name]
        elif text is not None and st.query_params.get(param.name) != text:
            st.query_params[param.name] = text
        written[param.key] = text
        if param.key in notes and not notes[param.key]["seen"]:
            notes[param.key].update(seen=True, value=st.session_state.get(param.key, param.default))


@contextmanager
def linked(*params: UrlParam):
    """``with ui.linked(*params):`` around the widgets that ``params`` name: restored before, kept after."""
    restore_from_url(*params)
    try:
        yield
    finally:
        keep_in_url(*params)


RUN_REQUESTED = "requested by a link"  # a run parameter's state when a link has just asked for the run


def run_param(key: str) -> UrlParam:
    """``run=1``: the view is a result that takes a run, and a link to it runs it on arrival, as the page's
    button does. ``key`` holds RUN_REQUESTED when a link asks; the page then sets it to whether a result
    is shown (True: ``run=1`` stays in the URL)."""
    def parse(raw: str) -> str:
        if raw != "1":
            raise ValueError("it must be 1 (run on arrival) or absent.")
        return RUN_REQUESTED
    return UrlParam("run", key, parse, dump=lambda value: "1", default=False)


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    return value == default


def one_of(options: Sequence, cast: Callable[[str], Any] = str) -> Callable[[str], Any]:
    """A parser that accepts the text of one of ``options`` (``cast`` turns the text into an option)."""
    def parse(raw: str) -> Any:
        try:
            value = cast(raw)
        except ValueError:
            value = raw
        if value not in options:
            raise ValueError(f"it must be one of {', '.join(map(str, options))}.")
        return options[list(options).index(value)]
    return parse


def number_in(low: float, high: float, cast: Callable[[str], Any] = float) -> Callable[[str], Any]:
    """A parser of a number (``cast``: int or float) within ``low``..``high``."""
    def parse(raw: str) -> Any:
        try:
            value = cast(raw)
        except ValueError:
            raise ValueError(f"it is not {'a whole number' if cast is int else 'a number'}.") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"it must be between {low} and {high}.")
        return value
    return parse


def list_of(parse_one: Callable[[str], Any], *, most: int | None = None) -> Callable[[str], list]:
    """A parser of comma-separated items, each by ``parse_one``, at most ``most`` of them, no repeats."""
    def parse(raw: str) -> list:
        items = list(dict.fromkeys(parse_one(part) for part in raw.split(",") if part.strip()))
        if most is not None and len(items) > most:
            raise ValueError(f"it names {len(items)}; at most {most} fit.")
        return items
    return parse


def number_text(value: Any) -> str:
    """A number as a link writes it: ints plainly, floats shortest (``0.6``, ``1e-05``)."""
    return str(int(value)) if isinstance(value, (int, np.integer)) or float(value).is_integer() else f"{float(value):g}"


def list_text(values: Sequence) -> str:
    return ",".join(str(v) for v in values)


def _demo_name(raw: str) -> str:
    """A demo photo's name from a link (its file stem, ``grace_hopper``, or its shown name)."""
    demos = demo_images()
    name = raw.strip().replace("_", " ")
    if name not in demos:
        raise ValueError(f"there is no demo photo {raw!r}; the demo photos are {', '.join(_demo_stem(n) for n in demos)}.")
    return name


def _demo_stem(name: str) -> str:
    return name.replace(" ", "_")


MODEL_PARAMS = (UrlParam("model", MODEL_KEY, one_of(MODEL_NAMES), default=DEFAULT_MODEL),  # the sidebar's, on every page
                UrlParam("weights", WEIGHTS_KEY, one_of(UI_WEIGHTS), default=UI_WEIGHTS[0]))


def copy_link(container: Any = None) -> None:
    """A "Link to this view" popover: this page's address with its parameters, and the code box's copy button.
    Call it after the page's ``keep_in_url``; ``container`` places it higher up the page."""
    restore_from_url(*MODEL_PARAMS, show_notes=False)  # the sidebar is drawn after the page: its model, now
    keep_in_url(*MODEL_PARAMS)
    query = urlencode(st.query_params.to_dict())
    url = f"{st.context.url or ''}{'?' + query if query else ''}"
    with (container if container is not None else st.container()):
        with st.popover("Link to this view", icon=":material/link:"):
            st.code(url, language=None, wrap_lines=True)
            st.caption("Copy it with the box's copy button. Opened in any browser, it shows this page with these inputs "
                       "and settings; an upload cannot go in a link (the link opens a demo photo instead).")


# ---------------------------------------------------------------- pictures (segmentation, review)
# A picture is encoded once per content (a JPEG at the size it is drawn: st.image would encode an array as a
# quality-100 JPEG on every rerun) and named by what it is drawn from, never by hashing a photo-sized array.
SHOWN_SIDE = 800  # long side of a picture in a page column: sharp on a 2× screen up to 400 CSS pixels
PICTURE_QUALITY = 90


def digest_of(array: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest()


def shown_shape(image: ImageInput, max_side: int = SHOWN_SIDE) -> tuple[int, int]:
    return display_shape(image.image_hwc.shape, max_side)


@st.cache_data(max_entries=16, show_spinner=False)
def _shown_photo(digest: str, _photo: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Smaller sizes are made from the 1280-px one: a 12 MP photo is shrunk once."""
    largest = display_shape(_photo.shape)
    if tuple(shape_hw) == largest or max(shape_hw) > max(largest):
        return fit(_photo, shape_hw)
    return fit(_shown_photo(digest, _photo, largest), shape_hw)


def shown_photo(image: ImageInput, shape_hw: tuple[int, int]) -> np.ndarray:
    """The photo at ``shape_hw`` to draw on, made once per photo and size."""
    return _shown_photo(image.digest, image.image_hwc, tuple(shape_hw))


@st.cache_data(max_entries=64, show_spinner=False)
def _jpeg(key: tuple, _make: Callable[[], np.ndarray]) -> bytes:
    return encode_jpeg(_make(), quality=PICTURE_QUALITY)


def picture(key: tuple, make: Callable[[], np.ndarray], *, caption: str) -> None:
    """``st.image`` of ``make()`` (RGB uint8), encoded once per ``key``: what the picture is drawn from."""
    st.image(_jpeg(key, make), caption=caption, width="stretch")


def cut_picture(image: ImageInput, mask_hw: np.ndarray, bbox, *, caption: str) -> None:
    """The photo with the background of ``mask_hw`` dimmed and its box drawn: the mask saved, drawn small."""
    shown_hw = shown_shape(image)
    mask = fit(mask_hw, shown_hw)
    picture(("cut", image.digest, shown_hw, digest_of(mask), bbox), lambda: masks.draw_result(
        shown_photo(image, shown_hw), mask, fit_box(bbox, image.image_hwc.shape, shown_hw)), caption=caption)


def seeds_picture(image: ImageInput, seeds_hw: np.ndarray, *, caption: str) -> None:
    shown_hw = shown_shape(image)
    seeds = fit(seeds_hw, shown_hw)
    picture(("seeds", image.digest, shown_hw, digest_of(seeds)), lambda: masks.draw_seeds(shown_photo(image, shown_hw), seeds),
            caption=caption)


# ---------------------------------------------------------------- seeds canvas and cuts (segmentation, review)
CANVAS_WIDTH = 512  # display pixels, fits half of a wide page; strokes are rasterised back to the photo's resolution
BRUSHES = {"foreground": HAND_FOREGROUND, "background": HAND_BACKGROUND, "erase (no seed)": NONE}


@dataclass(frozen=True, eq=False)
class HandSeeds:
    """What the canvas says: hand seed codes at the photo's resolution (strokes, then clicks' discs, over
    the seeds under them; outside a box, background), named by what made them (the drawings and the
    seeds under), so caches never hash 12 MB."""

    seeds_hw: np.ndarray | None  # uint8 (H, W); None: nothing drawn and no seeds under
    key: str
    box: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1) in photo pixels, x1/y1 excluded
    box_prior: str = "box"  # what a box starts from: "box" (GrabCut) or "saliency" (the automatic mask inside it)

    def any(self) -> bool:
        return self.box is not None or (self.seeds_hw is not None and bool(self.seeds_hw.any()))


INPUT_MODES = {"brush": "Brush", "clicks": "Clicks", "box": "Box"}
CLICK_KINDS = {"positive": ("object", HAND_FOREGROUND), "negative": ("not the object", HAND_BACKGROUND)}
BOX_PRIORS = {"box": "the box alone (GrabCut)", "saliency": "the saliency mask inside the box"}  # box: better on GrabCut, Berkeley
BOX_COLOUR = "#f98c0a"


def _hex(code: int) -> str:
    return "#%02x%02x%02x" % masks.STROKE_COLOURS[code]


@st.cache_data(max_entries=16, show_spinner=False)
def _canvas_background(digest: str, _photo: np.ndarray, shape_hw: tuple[int, int], seeds_key: str, _seeds: np.ndarray) -> str:
    """The canvas's background as a data URL (the component would PNG-encode an image on every rerun)."""
    import base64

    drawn = masks.draw_seeds(_shown_photo(digest, _photo, shape_hw), _seeds)
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(drawn, quality=PICTURE_QUALITY)).decode("ascii")


@st.cache_resource(max_entries=8, show_spinner=False)
def _hand_seeds(drawing_key: str, _png: bytes, shape: tuple[int, int], under_key: str, _under: np.ndarray | None) -> np.ndarray:
    """The strokes' seeds at the photo's size, shared read-only (cache_data copied 12 MB per rerun at 12 MP,
    and a session's refinement history kept copies of its own)."""
    from PIL import Image

    seeds = masks.seeds_from_strokes(np.asarray(Image.open(io.BytesIO(_png)).convert("RGBA")), shape, _under)
    seeds.flags.writeable = False
    return seeds


@st.cache_resource(max_entries=16, show_spinner=False)
def _with_clicks_and_box(key: str, _under: np.ndarray | None, shape: tuple[int, int], clicks_: tuple, box) -> np.ndarray:
    """The clicks' discs over ``_under``, then background outside ``box``: a new array (the caller has clicks
    or a box), shared read-only like ``_hand_seeds``."""
    seeds = _under
    if clicks_:
        seeds = clicks.paint_clicks(shape, [clicks.Click(*c) for c in clicks_], under_hw=seeds)
    if box is not None:
        seeds = refinement.with_box(np.zeros(shape, np.uint8) if seeds is None else seeds, box)
    seeds.flags.writeable = False
    return seeds


def canvas_clicks(json_data: dict | None, scale: tuple[float, float]) -> tuple[tuple[int, int, bool], ...]:
    """(y, x, positive) in photo pixels of the canvas's point objects (drawing_mode="point": a circle whose
    left edge is ``radius + strokeWidth / 2`` left of the click, vertically centred on it), in order."""
    found = []
    for item in (json_data or {}).get("objects", []):
        if item.get("type", "").lower() != "circle":
            continue
        x = item.get("left", 0) + (item.get("radius", 0) + item.get("strokeWidth", 0) / 2) * item.get("scaleX", 1)
        y = item.get("top", 0)
        found.append((int(y * scale[0]), int(x * scale[1]), str(item.get("stroke", "")).lower() == _hex(HAND_FOREGROUND)))
    return tuple(found)


def canvas_box(json_data: dict | None, scale: tuple[float, float], shape_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The last rectangle drawn, as (x0, y0, x1, y1) in photo pixels (x1/y1 excluded, clipped), or None."""
    boxes = [item for item in (json_data or {}).get("objects", []) if item.get("type", "").lower() == "rect"]
    if not boxes:
        return None
    item = boxes[-1]
    left, top = item.get("left", 0), item.get("top", 0)
    right, bottom = left + item.get("width", 0) * item.get("scaleX", 1), top + item.get("height", 0) * item.get("scaleY", 1)
    h, w = shape_hw
    x0, x1 = sorted((min(max(round(left * scale[1]), 0), w), min(max(round(right * scale[1]), 0), w)))
    y0, y1 = sorted((min(max(round(top * scale[0]), 0), h), min(max(round(bottom * scale[0]), 0), h)))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


CANVAS_REPORT_MS = 0  # streamlit-drawable-canvas 0.13.0 waits 200 ms after mouse-up before it reports a stroke
FAST_CANVAS = "deep-inside-canvas.canvas"
_canvas_lock = threading.Lock()
_canvas_mounts: dict[str, Any] = {}  # "stock" and "fast": the canvas's mount functions; "build": the fast one's files


def _fast_canvas_build() -> Path | None:
    """A copy of streamlit-drawable-canvas's frontend (under the user cache dir) in which the wait between
    mouse-up and reporting the drawing is ``CANVAS_REPORT_MS``; None (the stock component is used) where the
    installed frontend is not the one this was written against."""
    from engine.runs.demo_workspace import user_cache_dir

    spec = importlib.util.find_spec("streamlit_drawable_canvas")  # not imported: it registers its component
    if spec is None or not spec.submodule_search_locations:
        return None
    build = Path(list(spec.submodule_search_locations)[0]) / "frontend" / "build"
    scripts, styles = sorted(build.glob("index-*.js")), sorted(build.glob("index-*.css"))
    if len(scripts) != 1 or len(styles) != 1:
        return None
    text = scripts[0].read_text(encoding="utf-8")
    # the stroke sender is made as `h.sender = Nh((c) => Ic(h, c), Bc)`, its delay a constant `Bc = 200`
    sender = re.findall(r"\.sender = \w+\(\(\w+\) => \w+\(\w+, \w+\), (\w+)\)", text)
    if len(sender) != 1 or len(re.findall(rf"\b{sender[0]} = 200\b", text)) != 1:
        return None
    patched = re.sub(rf"\b{sender[0]} = 200\b", f"{sender[0]} = {CANVAS_REPORT_MS}", text)
    digest = hashlib.md5(patched.encode()).hexdigest()[:12]
    root = user_cache_dir() / f"canvas-{digest}"
    target = root / "build"
    if not (target / scripts[0].name).is_file():
        staging = root.with_name(f"{root.name}.{os.getpid()}.{threading.get_ident()}")
        (staging / "build").mkdir(parents=True, exist_ok=True)
        (staging / "build" / scripts[0].name).write_text(patched, encoding="utf-8")
        (staging / "build" / styles[0].name).write_bytes(styles[0].read_bytes())
        try:
            staging.rename(root)
        except OSError:  # another process made it first
            shutil.rmtree(staging, ignore_errors=True)
    return target if (target / scripts[0].name).is_file() else None


def canvas_component():
    """The drawing canvas's mount function: streamlit-drawable-canvas's own frontend, reporting a stroke
    ``CANVAS_REPORT_MS`` after mouse-up instead of 200 ms (issue 20), registered as a component of its own;
    the stock one where that cannot be done (another version of the package, no running server)."""
    import streamlit_drawable_canvas as sdc
    from streamlit.runtime import Runtime

    with _canvas_lock:
        stock = _canvas_mounts.setdefault("stock", sdc.out)
        if not Runtime.exists():
            return stock
        try:
            from streamlit.components.v2.manifest_scanner import ComponentConfig, ComponentManifest

            if "build" not in _canvas_mounts:
                _canvas_mounts["build"] = _fast_canvas_build()
            build = _canvas_mounts["build"]
            if build is None:
                return stock
            manager = Runtime.instance().bidi_component_registry
            if manager.get_component_asset_root(FAST_CANVAS) is None:  # a new server (or AppTest) in this process
                package, name = FAST_CANVAS.split(".")
                manager.register_from_manifest(ComponentManifest(name=package, version=sdc.__version__,
                                                                 components=[ComponentConfig(name=name, asset_dir=build.name)]),
                                               build.parent)
            if "fast" not in _canvas_mounts:
                _canvas_mounts["fast"] = st.components.v2.component(
                    FAST_CANVAS, js="index-*.js", css="index-*.css", html='<div class="canvas-root"></div>', isolate_styles=True)
            return _canvas_mounts["fast"]
        except Exception as exc:  # noqa: BLE001 - Streamlit's component internals moved: the stock canvas still works
            print(f"deep-inside: the canvas reports strokes after the stock 200 ms ({type(exc).__name__}: {exc})", file=sys.stderr)
            _canvas_mounts["build"] = None
            return stock


def seed_canvas(image: ImageInput, seeds_hw: np.ndarray, *, under_hw: np.ndarray | None, key: str,
                under_key: str | None = None) -> HandSeeds:
    """The input mode (brush strokes, clicks, a box), its controls, reset, and the drawing canvas over the
    photo with ``seeds_hw`` drawn on it; returns the hand seeds at the photo's resolution over ``under_hw``
    (named ``under_key``; its digest when not given). Each mode keeps its drawing when another is used
    (the others' seeds are drawn on the canvas's background). The background is sent once per photo and
    seeds; the canvas reports an input ``CANVAS_REPORT_MS`` after mouse-up (``canvas_component``)."""
    import streamlit_drawable_canvas as sdc
    from streamlit_drawable_canvas import st_canvas

    sdc.out = canvas_component()  # st_canvas mounts the module's `out`

    photo = image.image_hwc
    state = st.session_state
    round_ = state.get(f"{key}_canvas_round", 0)
    drawings = state.setdefault(f"{key}_drawings_{round_}", {})  # mode -> (json, what it says), kept across modes
    mode = st.radio("Input", list(INPUT_MODES), format_func=INPUT_MODES.get, horizontal=True, key=f"{key}_mode",
                    help="**Brush**: paint foreground or background seeds. **Clicks**: one click says \"object\" or "
                         f"\"not the object\" (a disc of {clicks.RADIUS} photo pixels, as in the NoC benchmark); each click "
                         "spreads to the region it belongs to. **Box**: drag a rectangle around the object; outside it is "
                         "background (GrabCut, Rother et al. 2004). Strokes, clicks and the box add up.")
    height = round(photo.shape[0] * CANVAS_WIDTH / photo.shape[1])
    scale = (photo.shape[0] / height, photo.shape[1] / CANVAS_WIDTH)  # photo pixels per canvas pixel
    sub_round = state.get(f"{key}_{mode}_round", 0)
    if mode == "brush":
        columns = st.columns([3, 2])
        brush = columns[0].radio("Brush", list(BRUSHES), horizontal=True, key=f"{key}_brush")
        size = columns[1].slider("Brush size", 2, 40, 12, key=f"{key}_brush_size")
        tool = dict(stroke_width=size, stroke_color=_hex(BRUSHES[brush]), drawing_mode="freedraw")
    elif mode == "clicks":
        columns = st.columns([3, 2])
        kind = columns[0].radio("Click", list(CLICK_KINDS), format_func=lambda k: CLICK_KINDS[k][0], horizontal=True,
                                key=f"{key}_click_kind")
        undo_slot = columns[1].empty()  # filled once the canvas has said how many clicks there are
        colour = _hex(CLICK_KINDS[kind][1])
        tool = dict(stroke_width=2, stroke_color=colour, fill_color=colour, drawing_mode="point", point_display_radius=4)
    else:
        st.radio("The box starts from", list(BOX_PRIORS), format_func=BOX_PRIORS.get, horizontal=True, key=f"{key}_box_prior",
                 help="GrabCut starts with the whole box as the object; with the saliency map it starts from the "
                      "automatic mask inside the box (worse on GrabCut's and Berkeley's photos: benchmarks/README.md). "
                      "Either way, outside the box is background. The last box drawn counts.")
        tool = dict(stroke_width=2, stroke_color=BOX_COLOUR, fill_color="rgba(0, 0, 0, 0)", drawing_mode="rect")
    if st.button("Reset to automatic seeds", key=f"{key}_reset", help="Drop every stroke, click and box."):
        state.pop(f"{key}_drawings_{round_}", None)
        round_ = state[f"{key}_canvas_round"] = round_ + 1
        drawings = state.setdefault(f"{key}_drawings_{round_}", {})
    canvas_hw = display_shape(photo.shape, 2 * max(CANVAS_WIDTH, height))  # sharp on a 2× screen
    others = _combine(photo.shape[:2], under_hw, under_key, {m: d for m, d in drawings.items() if m != mode}, state.get(f"{key}_box_prior"))
    shown_under = seeds_hw if others.seeds_hw is None or others.seeds_hw is under_hw else merge_seeds(seeds_hw, others.seeds_hw)
    shown_seeds = fit(shown_under, canvas_hw)
    # A canvas gets its initial drawing once, when it mounts, and the very same one on every later run: a changed
    # initial_drawing makes the component redraw and send its value again (a rerun, and so on without end).
    live = state.get(f"{key}_live")  # (canvas key, initial drawing) of the canvas the last run drew
    if live is not None and not live[0].startswith(f"{key}_canvas_{mode}_"):  # back from another mode: a fresh canvas
        sub_round = state[f"{key}_{mode}_round"] = sub_round + 1
    canvas_key = f"{key}_canvas_{mode}_{round_}_{sub_round}"
    if live is None or live[0] != canvas_key:
        live = state[f"{key}_live"] = (canvas_key, (drawings.get(mode) or (None,))[0])
    result = st_canvas(background_image=_canvas_background(image.digest, photo, canvas_hw, digest_of(shown_seeds), shown_seeds),
                       width=CANVAS_WIDTH, height=height, return_image_data=mode == "brush", initial_drawing=live[1],
                       key=canvas_key, **tool)
    st.caption("Seeds: orange = model foreground, light blue = model background (fit the colour models only); "
               "red = your foreground, blue = your background (hard constraints). Undo, redo and clear are on the canvas toolbar.")
    json_data = result.json_data if result is not None else None
    if json_data is not None and json_data.get("objects"):
        if mode == "brush":
            png = result.image_bytes
            if png is not None:  # None right after a remount (the drawing is redrawn, its pixels not yet sent)
                drawing_key = hashlib.md5(png).hexdigest()
                drawings["brush"] = (json_data, (drawing_key, png))
        elif mode == "clicks":
            drawings["clicks"] = (json_data, canvas_clicks(json_data, scale))
        else:
            drawings["box"] = (json_data, canvas_box(json_data, scale, photo.shape[:2]))
    elif json_data is not None and mode in drawings:
        drawings.pop(mode)  # cleared on the canvas's toolbar
    if mode == "clicks":
        undo_slot.button("Undo last click", key=f"{key}_undo_click", on_click=_undo_click, args=(key, round_, scale),
                         disabled=not drawings.get("clicks", (None, ()))[1], icon=":material/undo:")
    return _combine(photo.shape[:2], under_hw, under_key, drawings, state.get(f"{key}_box_prior", "box"))


def _undo_click(key: str, round_: int, scale: tuple[float, float]) -> None:
    """Drop the last click from the clicks canvas's drawing; the canvas remounts with it gone."""
    drawings = st.session_state.get(f"{key}_drawings_{round_}", {})
    if "clicks" not in drawings:
        return
    objects = list(drawings["clicks"][0]["objects"])
    last = max((i for i, o in enumerate(objects) if o.get("type", "").lower() == "circle"), default=None)
    if last is None:
        return
    trimmed = {**drawings["clicks"][0], "objects": objects[:last] + objects[last + 1:]}
    drawings["clicks"] = (trimmed, canvas_clicks(trimmed, scale))
    st.session_state[f"{key}_clicks_round"] = st.session_state.get(f"{key}_clicks_round", 0) + 1


def _combine(shape: tuple[int, int], under_hw: np.ndarray | None, under_key: str | None, drawings: dict, box_prior) -> HandSeeds:
    """The hand seeds the modes' drawings say, in order: strokes over ``under_hw``, clicks, the box."""
    if under_hw is not None and under_key is None:
        under_key = digest_of(under_hw)
    seeds, key = under_hw, f"-|{under_key}"
    if "brush" in drawings:
        drawing_key, png = drawings["brush"][1]
        seeds, key = _hand_seeds(drawing_key, png, shape, str(under_key), under_hw), f"{drawing_key}|{under_key}"
    clicks_ = drawings.get("clicks", (None, ()))[1]
    box = drawings.get("box", (None, None))[1]
    if not clicks_ and box is None:
        return HandSeeds(seeds, key)
    key = f"{key}|{hashlib.md5(repr(clicks_).encode()).hexdigest()}|{box}"
    return HandSeeds(_with_clicks_and_box(key, seeds, shape, clicks_, box), key, box, box_prior or "box")


def _saliency_key(image_digest: str, saliency, model: LoadedModel) -> tuple:
    """Names a map by what ``cached_saliency`` made it from: a 12 MP map is 48 MB, too much to hash each rerun."""
    return image_digest, saliency.class_index, saliency.views, saliency.method, model_key(model)


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
    prepared photo) is made once per photo and preset."""
    preset_json = json.dumps({k: v for k, v in dataclasses.asdict(preset).items() if k != "summary"})
    saliency_key = _saliency_key(image_digest, saliency, model)
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
    """``engine.attribution.features.pixel_features`` of the photo, one forward pass, kept per photo and model."""
    return _pixel_features(model, model_key(model), image.image_hwc, image.digest)


@st.cache_resource(max_entries=8, show_spinner=False)
def _prepared_for_refine(_image: np.ndarray, digest: str):
    return refinement.prepare_for_refine(_image)


@st.cache_resource(max_entries=32, show_spinner="Cutting…")
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
    photo = image.image_hwc
    seeds = np.zeros(photo.shape[:2], np.uint8) if hand.seeds_hw is None else hand.seeds_hw
    automatic_key = repr((_saliency_key(image.digest, saliency, model), preset))
    history = st.session_state.setdefault(f"refine_history|{automatic_key}", [])  # (hand key, seeds, box, prior, result)
    for entry in history:
        if entry[0] == hand.key and entry[3] == hand.box_prior:
            return entry[4]  # this very input again (a rerun)
    previous, previous_key, options = automatic.is_foreground_hw, "automatic", refinement.RefineOptions()
    use_automatic = automatic.is_foreground_hw
    for entry in reversed(history):
        if entry[2] == hand.box and entry[3] == hand.box_prior and refinement.continues(entry[1], seeds):
            previous, previous_key = entry[4].is_foreground_hw, entry[0]
            break
    else:
        if hand.box is not None:  # a new box: GrabCut from the box (Rother et al. 2004), or the saliency mask inside it
            use_automatic = automatic.is_foreground_hw if hand.box_prior == "saliency" else None
            previous, previous_key = refinement.box_start(photo.shape[:2], hand.box, use_automatic), f"box {hand.box} {hand.box_prior}"
            options = refinement.box_options(options)
    features = cached_pixel_features(model, image)
    result = _refined(photo, image.digest, features, model_key(model), seeds, hand.key, previous, previous_key, use_automatic,
                      f"{automatic_key} {use_automatic is None}", automatic.seeds_hw, json.dumps(dataclasses.asdict(options)))
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
    threading.Thread(target=_ahead, args=(key, work), name=f"ahead {key}", daemon=False).start()


# ---------------------------------------------------------------- review workspace
WORKSPACE_ENV = "DEEP_INSIDE_WORKSPACE"  # or `streamlit run app.py -- --workspace DIR`
REVIEW_STEM_KEY = "review_stem"  # the photo open on the review page


def workspace_root() -> str | None:
    """The folder the person running the server chose; never a path typed into a page."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg == "--workspace" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--workspace="):
            return arg.split("=", 1)[1]
    return os.environ.get(WORKSPACE_ENV) or None


def current_workspace():
    """The review workspace the operator set (it always wins), else the demo one; or the page stops, saying why."""
    from engine.runs.workspace import WorkspaceError, open_workspace

    root = workspace_root()
    if root is None:
        return demo_workspace()
    try:
        return open_workspace(root)
    except WorkspaceError as exc:
        st.error(str(exc))
        st.stop()


NO_WORKSPACE = (f"No review workspace is set. Whoever runs the server chooses it: `{WORKSPACE_ENV}=/path/to/workspace "
                "streamlit run app.py`, or `streamlit run app.py -- --workspace /path/to/workspace`. A workspace holds "
                "`images/` and the `segmentations/` that `python -m engine segment-folder WORKSPACE/images --out "
                "WORKSPACE/segmentations` writes.")


@st.cache_resource
def _demo_lock() -> threading.Lock:
    """One demo build at a time in this server: a second session waits for it, then opens it."""
    return threading.Lock()


def demo_workspace():
    """Without an operator's workspace: the demo one in the user's cache directory (built from the bundled
    photos when the person asks, with a progress bar), or the page stops with how to set a real one."""
    from engine.runs.demo_workspace import build_demo_workspace, demo_workspace_dir, open_demo_workspace

    root = demo_workspace_dir()
    space = open_demo_workspace(root)
    if space is None:
        st.info(NO_WORKSPACE)
        photos = list(demo_images().values())
        st.caption(f"Or try the queue now on a demo: the {len(photos)} bundled photos cut by the same step as "
                   f"`segment-folder`, on the sidebar's model, into `{root}` (your cache directory; nothing in the app's folder).")
        if not st.button(f"Build a demo workspace from the {len(photos)} bundled photos", key="rev_build_demo",
                         type="primary", icon=":material/construction:"):
            st.stop()
        bar = st.progress(0.0, text="Cutting the demo photos…")
        with _demo_lock():
            try:
                space = build_demo_workspace(current_model(), photos, root, on_step=lambda done, total: bar.progress(
                    done / total, text=f"Cut {done} of {total} demo photos"))
            except (OSError, ValueError) as exc:
                st.error(f"The demo workspace could not be made in {root}: {exc}")
                st.stop()
        clear_queue()
    st.info(f"This is a **demo** workspace: the bundled photos, pre-segmented, in `{root}`. Saves go there too. "
            f"For your own photos, whoever runs the server sets `{WORKSPACE_ENV}` (see the README).", icon=":material/science:")
    return space


@st.cache_data(ttl=3, show_spinner=False)  # a few seconds: other sessions' saves show up soon
def _queue(_workspace, root: str):
    return _workspace.items()


def queue(workspace):
    return _queue(workspace, str(workspace.root))


def clear_queue() -> None:
    _queue.clear()


def workspace_photo(path: Path) -> ImageInput:
    """A workspace photo, decoded once per content."""
    try:
        return decode(path.read_bytes(), path.name)
    except (OSError, ImageError) as exc:
        st.error(f"Cannot open the photo {path.name}: {exc}")
        st.stop()


def record_model(record: dict) -> LoadedModel:
    """The model a segmentation was made with (its saliency must be recomputed by the same network);
    the sidebar's when that one cannot be loaded here."""
    name, weights = record.get("model", DEFAULT_MODEL), record.get("weights", "pretrained")
    if name in MODEL_NAMES and weights in UI_WEIGHTS:
        try:
            return get_model(name, weights)
        except ModelLoadError as exc:
            st.warning(f"{exc} Re-cutting with the sidebar's model instead.")
    return current_model()


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
