"""The seed canvas: brush strokes, clicks and a box on the photo, read back as hand seeds, with the mask they
make drawn on it.

Owns: ``seed_canvas`` (input modes, their controls, the drawing canvas and its background: the current mask
and the seeds over the photo, the mask's toggle and opacity), the decoding of the canvas's
JSON into clicks and boxes, and ``HandSeeds`` at the photo's resolution. May import: engine,
``ui.images``, ``ui.pictures``, ``ui.canvas_frontend``.
"""
from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from engine.images import encode_jpeg
from engine.render import fit
from engine.segmentation import clicks, masks
from engine.segmentation import refine as refinement
from engine.segmentation.cut import HAND_BACKGROUND, HAND_FOREGROUND, NONE, merge_seeds
from ui.canvas_frontend import canvas_component
from ui.images import ImageInput
from ui.pictures import PICTURE_QUALITY, digest_of, shown_photo

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
    return "#{:02x}{:02x}{:02x}".format(*masks.STROKE_COLOURS[code])


@st.cache_data(max_entries=16, show_spinner=False)
def _canvas_background(digest: str, _image: ImageInput, shape_hw: tuple[int, int], seeds_key: str, _seeds: np.ndarray,
                       mask_key: str | None = None, _mask: np.ndarray | None = None, opacity: float = masks.MASK_OPACITY,
                       outlines_key: str = "", _outlines: tuple = ()) -> str:
    """The canvas's background as a data URL (the component would PNG-encode an image on every rerun): the photo
    at ``shape_hw`` with ``_mask`` over it (None: the seeds alone), ``_seeds`` on top, and the ``_outlines``
    (the photo's other objects) in yellow; named by what it shows."""
    drawn = masks.draw_mask_with_seeds(shown_photo(_image, shape_hw), _mask, _seeds, opacity=opacity)
    if _outlines:
        drawn = masks.draw_outlines(drawn, _outlines)
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(drawn, quality=PICTURE_QUALITY)).decode("ascii")


# A drawing is one session's: its seeds are kept for it alone, and dropped with it (scope="session").
@st.cache_resource(scope="session", max_entries=4, show_spinner=False)
def _hand_seeds(drawing_key: str, _png: bytes, shape: tuple[int, int], under_key: str, _under: np.ndarray | None) -> np.ndarray:
    """The strokes' seeds at the photo's size, kept read-only (cache_data copied 12 MB per rerun at 12 MP,
    and a session's refinement history kept copies of its own)."""
    from PIL import Image

    seeds = masks.seeds_from_strokes(np.asarray(Image.open(io.BytesIO(_png)).convert("RGBA")), shape, _under)
    seeds.flags.writeable = False
    return seeds


@st.cache_resource(scope="session", max_entries=8, show_spinner=False)
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


def seed_canvas(image: ImageInput, seeds_hw: np.ndarray, *, under_hw: np.ndarray | None, key: str,
                under_key: str | None = None, mask_of: Callable[[HandSeeds], np.ndarray] | None = None,
                view_key: str | None = None, outlines_hw=()) -> HandSeeds:
    """The input mode (brush strokes, clicks, a box), its controls, reset, and the drawing canvas over the
    photo; returns the hand seeds at the photo's resolution over ``under_hw`` (named ``under_key``; its digest
    when not given). Each mode keeps its drawing when another is used (the others' seeds are drawn on the
    canvas's background). The canvas reports an input ``CANVAS_REPORT_MS`` after mouse-up (``canvas_component``).

    The background is the photo with the mask ``mask_of(hand seeds)`` over it (filled and outlined, at an
    opacity the person sets) and the hand seeds of ``seeds_hw`` on top; a toggle shows every seed alone
    (``masks.draw_mask_with_seeds``). The canvas is drawn
    last: what it sent (the drawing that started this run) is read from the session state first, the seeds
    it says made, the mask asked for, and the canvas drawn with that mask, so the mask an input causes is on
    the canvas in the run the input started. Only the background changes then: the canvas keeps its key and
    its initial drawing, and a new background sends nothing back. ``view_key`` names the view's controls (mask
    shown, opacity), kept across canvases of other keys (the review page's photos); ``key`` when not given.
    ``outlines_hw``: masks outlined in yellow on the background (the photo's other objects, on the review page)."""
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
    view = st.columns([1, 2], vertical_alignment="center")
    view_key = view_key or key
    show_mask = mask_of is not None and view[0].toggle("Mask", True, key=f"{view_key}_show_mask",
                                                      help="The mask over the photo; off: the seeds alone.")
    opacity = view[1].slider("Mask opacity", 0.0, 1.0, masks.MASK_OPACITY, 0.05, key=f"{view_key}_mask_opacity",
                             disabled=not show_mask, label_visibility="collapsed",
                             help="How much of the mask's colour covers the photo (its outline is always drawn).")
    # A canvas gets its initial drawing once, when it mounts, and the very same one on every later run: a changed
    # initial_drawing makes the component redraw and send its value again (a rerun, and so on without end).
    live = state.get(f"{key}_live")  # (canvas key, initial drawing) of the canvas the last run drew
    if live is not None and not live[0].startswith(f"{key}_canvas_{mode}_"):  # back from another mode: a fresh canvas
        sub_round = state[f"{key}_{mode}_round"] = sub_round + 1
    canvas_key = f"{key}_canvas_{mode}_{round_}_{sub_round}"
    if live is None or live[0] != canvas_key:
        live = state[f"{key}_live"] = (canvas_key, (drawings.get(mode) or (None,))[0])
    _read_drawing(state.get(canvas_key), mode, drawings, scale, photo.shape[:2])  # what the canvas sent: this run's cause
    hand = _combine(photo.shape[:2], under_hw, under_key, drawings, state.get(f"{key}_box_prior", "box"))

    canvas_hw = (height, CANVAS_WIDTH)  # the background canvas has no retina scaling: more pixels are dropped there
    others = _combine(photo.shape[:2], under_hw, under_key, {m: d for m, d in drawings.items() if m != mode}, state.get(f"{key}_box_prior"))
    shown_under = seeds_hw if others.seeds_hw is None or others.seeds_hw is under_hw else merge_seeds(seeds_hw, others.seeds_hw)
    shown_seeds = fit(shown_under, canvas_hw)
    shown_mask = fit(mask_of(hand), canvas_hw) if show_mask else None
    outlines = tuple(fit(m, canvas_hw) for m in outlines_hw)
    background = _canvas_background(image.digest, image, canvas_hw, digest_of(shown_seeds), shown_seeds,
                                    None if shown_mask is None else digest_of(shown_mask), shown_mask, round(opacity, 2),
                                    " ".join(digest_of(m) for m in outlines), outlines)
    st_canvas(background_image=background, width=CANVAS_WIDTH, height=height, return_image_data=mode == "brush",
              initial_drawing=live[1], key=canvas_key, **tool)
    st.caption(("Green: the mask; red = your foreground seeds, blue = your background (hard constraints). Turn **Mask** "
                "off to see the model's seeds too. " if show_mask else
                "Seeds: orange = model foreground, light blue = model background (fit the colour models only); red = your "
                "foreground, blue = your background (hard constraints). ") + "Undo, redo and clear are on the canvas toolbar.")
    if mode == "clicks":
        undo_slot.button("Undo last click", key=f"{key}_undo_click", on_click=_undo_click, args=(key, round_, scale),
                         disabled=not drawings.get("clicks", (None, ()))[1], icon=":material/undo:")
    return hand


def _read_drawing(sent: dict | None, mode: str, drawings: dict, scale: tuple[float, float], shape_hw: tuple[int, int]) -> None:
    """Keep in ``drawings`` what the canvas of ``mode`` last sent (its session-state value: {"drawing": {"raw": json,
    "data": PNG data URL or None}, ...}; None before its first run)."""
    drawing = (sent or {}).get("drawing") or {}
    json_data = drawing.get("raw")
    if json_data is not None and json_data.get("objects"):
        if mode == "brush":
            data_url = drawing.get("data")
            if data_url is not None:  # None right after a remount (the drawing is redrawn, its pixels not yet sent)
                png = base64.b64decode(data_url.split(";base64,", 1)[1])
                drawings["brush"] = (json_data, (hashlib.md5(png).hexdigest(), png))
        elif mode == "clicks":
            drawings["clicks"] = (json_data, canvas_clicks(json_data, scale))
        else:
            drawings["box"] = (json_data, canvas_box(json_data, scale, shape_hw))
    elif json_data is not None and mode in drawings:
        drawings.pop(mode)  # cleared on the canvas's toolbar


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
