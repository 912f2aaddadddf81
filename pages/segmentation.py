import dataclasses
import json

import numpy as np
import streamlit as st

import ui.canvas
import ui.downloads
import ui.images
import ui.inputs
import ui.limits
import ui.links
import ui.model
import ui.pictures
import ui.results
from engine.images import ImageError, encode_png, load_image
from engine.render import blend, colourise, fit
from engine.segmentation import cut as seg
from engine.segmentation import masks
from engine.segmentation import presets as pre
from engine.views import VIEWS

KNOBS = ("views", "fg", "bg", "iterations", "gamma")  # widget keys seg_<knob>, set from the preset
PRESET_LINK = ui.links.UrlParam("preset", "seg_preset", ui.links.one_of(tuple(pre.PRESETS)), default=pre.DEFAULT_PRESET)


def apply_preset(preset: pre.Preset, class_index=None):
    st.session_state["seg_preset"] = preset.name.removesuffix(pre.CHANGED)
    for knob in KNOBS:
        st.session_state[f"seg_{knob}"] = getattr(preset, knob)
    if class_index is not None:
        st.session_state["seg_class"] = class_index


def knob_links(base: pre.Preset):
    """The URL parameters of the knobs; only those moved off ``base``'s value go in a link."""
    def checked(knob, parse):
        def check(raw):
            value = parse(raw)
            levels = {}  # fg and bg are checked together, as the link gives them
            for other in {"fg", "bg"} - {knob}:
                try:
                    levels[other] = float(st.query_params[other]) if other in st.query_params else getattr(base, other)
                except ValueError:
                    levels[other] = getattr(base, other)
            dataclasses.replace(base, **levels, **{knob: value})  # a ValueError says what is wrong with it
            return value
        return check

    return (ui.links.UrlParam("views", "seg_views", checked("views", ui.links.one_of(VIEWS, int)), default=base.views),
            *(ui.links.UrlParam(k, f"seg_{k}", checked(k, ui.links.number_in(0.0, 1.0)), dump=ui.links.number_text,
                                default=getattr(base, k))
              for k in ("fg", "bg")),
            ui.links.UrlParam("iterations", "seg_iterations", checked("iterations", ui.links.number_in(1, 10, int)),
                              dump=ui.links.number_text, default=base.iterations),
            ui.links.UrlParam("gamma", "seg_gamma", checked("gamma", ui.links.number_in(0.0, 1000.0)), dump=ui.links.number_text,
                              default=base.gamma))


st.title("Weakly supervised segmentation")
st.caption("Simonyan et al. 2013, §3.2: a class saliency map seeds a foreground and a background colour model "
           "(5-component GMMs), GrabCut labels every pixel, and the largest component's box is the localisation. "
           "Correct it by hand: paint seeds, click on what is (or is not) the object, or draw a box around it.")
link_box = st.container()
model = ui.model.current_model()
image = ui.inputs.image_picker(key="seg_image", url_param="image")
photo = image.image_hwc
chosen = st.session_state.get("seg_preset")
ui.links.restore_from_url(PRESET_LINK)
if "seg_fg" not in st.session_state or st.session_state.get("seg_preset") != chosen:
    for knob in KNOBS:  # a new preset (first run, or a link's): its knobs, or the link's
        st.session_state.pop(f"seg_{knob}", None)
linked_preset = pre.get_preset(st.session_state.setdefault("seg_preset", pre.DEFAULT_PRESET))
ui.links.restore_from_url(*knob_links(linked_preset))
for knob in KNOBS:
    st.session_state.setdefault(f"seg_{knob}", getattr(linked_preset, knob))
allowed_views = VIEWS if ui.limits.limits().max_views >= 10 else tuple(v for v in VIEWS if v != 10)  # the operator's limit
ui.limits.clamp("seg_views", 1, link="views", what="views", allowed=allowed_views)

with st.expander("Resume from a download (JSON + seed map)"):
    saved = st.file_uploader("Segmentation JSON", type=["json"], key="seg_resume_json")
    saved_seeds = st.file_uploader("Seed map PNG", type=["png"], key="seg_resume_seeds")
    if saved is not None and st.session_state.get("seg_resumed") != saved.file_id:
        try:
            record = json.loads(saved.getvalue())
            apply_preset(*pre.preset_from_record(record))
            st.session_state["seg_saved_record"] = record
        except (ValueError, AttributeError) as exc:  # json.JSONDecodeError is a ValueError; a list has no .get
            st.error(f"This is not a segmentation JSON from this page ({exc}).")
        st.session_state["seg_resumed"] = saved.file_id
    resumed = None
    if saved_seeds is not None:
        try:
            resumed = masks.decode_seed_map(saved_seeds.getvalue())
            if resumed.shape != photo.shape[:2]:
                st.error(f"The seed map is {resumed.shape[1]}×{resumed.shape[0]}; the photo is {photo.shape[1]}×{photo.shape[0]}.")
                resumed = None
        except ValueError as exc:
            st.error(str(exc))

base = pre.get_preset(st.selectbox(
    "Preset", tuple(pre.PRESETS), key="seg_preset", on_change=lambda: apply_preset(pre.get_preset(st.session_state["seg_preset"])),
    help="\n".join(f"- **{p.name}**: {p.summary}" for p in pre.PRESETS.values())))
row = st.columns(5)
views = row[0].radio("Views", allowed_views, horizontal=True, key="seg_views",
                     help="Saliency on the centre crop, the paper's 10 views, or the whole photo.")
predictions = ui.results.cached_predict(model, image, top=5, views=1)
with row[1]:
    target = ui.inputs.class_picker(model, top1=predictions[0].index, key="seg_class", url_param="class")
rule = "quantile" if base.seeds == "quantile" else "level (fraction of the map's maximum)"
fg = row[2].slider("Foreground seeds ≥", 0.0, 1.0, key="seg_fg", step=0.005, help=f"A {rule} of the saliency map.")
bg = row[3].slider("Background seeds ≤", 0.0, 1.0, key="seg_bg", step=0.01, help=f"A {rule} of the saliency map.")
iterations = row[4].number_input("GrabCut iterations", 1, 10, key="seg_iterations")
gamma = st.sidebar.number_input("γ (Potts weight at 256 px)", 0.0, 1000.0, key="seg_gamma", step=10.0,
                                help="The reference code's 150 at a 256-pixel short side; scaled with the image size.")
ui.links.keep_in_url(PRESET_LINK, *knob_links(base))
ui.links.copy_link(link_box)
try:
    preset = dataclasses.replace(base, views=views, fg=fg, bg=bg, iterations=int(iterations), gamma=float(gamma))
except ValueError as exc:
    st.error(str(exc))
    st.stop()
if preset != base:
    preset = dataclasses.replace(preset, name=base.name + pre.CHANGED)
st.caption(f"Running preset **{preset.name}**: {base.summary}")
saliency = ui.results.cached_saliency(model, image, target=target, views=preset.views, method=preset.method)
try:
    before = ui.results.cached_cut(photo, image.digest, saliency, preset, model=model)
except ValueError as exc:
    st.error(str(exc))
    st.stop()
saved_record = st.session_state.get("seg_saved_record") if saved is not None else None
restored = saved_record and pre.restore_saved(before, saved_record, preset=preset, class_index=saliency.class_index)
before = restored or before  # a resumed download shows the mask it holds

if before.seeds_promoted:
    st.info("The soft seeds alone gave an empty cut (the colour models could not tell the object from the rest), "
            "so the foreground seeds were made hard and cut again.")


@st.fragment
def refine(image: ui.images.ImageInput, saliency, preset: pre.Preset, before, resumed, resumed_key, restored: bool) -> None:
    """The canvas and everything drawn from the cut after the strokes: a stroke reruns this, not the page."""
    refine_with = st.selectbox("Refinement", list(ui.results.REFINEMENTS), format_func=ui.results.REFINEMENTS.get, key="seg_refine",
                               help="How the mask follows your input. The automatic mask (before any input) is the paper's §3.2 "
                                    "either way; see benchmarks/README.md for clicks-to-IoU on GrabCut and Berkeley.")

    def cut_after(hand: ui.canvas.HandSeeds):
        if not hand.any():
            return before
        return ui.results.refined_cut(image, saliency, preset, model=model, hand=hand, automatic=before, refine=refine_with)

    left, right = st.columns([2, 3])
    with left:
        shown_hw = ui.pictures.shown_shape(image)
        ui.pictures.picture(
            ("saliency", image.digest, saliency.class_index, saliency.views, saliency.method, ui.model.model_key(model), shown_hw),
            lambda: blend(ui.pictures.shown_photo(image, shown_hw), colourise(fit(saliency.saliency_hw, shown_hw)), 0.6),
            caption=f"{saliency.method} saliency for “{saliency.label}”")
    with right:  # the canvas shows the mask its own input makes (cut_after, asked before the canvas is drawn)
        hand = ui.canvas.seed_canvas(image, before.seeds_hw if resumed is None else seg.merge_seeds(before.seeds_hw, resumed),
                                     under_hw=resumed, under_key=resumed_key, key="seg", mask_of=lambda h: cut_after(h).is_foreground_hw)
    after = cut_after(hand)  # the same result again (this session's refinement history, or the cut's cache)
    if not hand.any() and refine_with == "interactive":  # the features a first click needs, made while the person looks at the mask
        ui.results.ahead(f"features {image.digest} {ui.model.model_key(model)}", lambda: ui.results.cached_pixel_features(model, image))

    shown = st.columns(3)
    titled = ((f"Before edits{' (as saved)' if restored else ''}", before), ("After edits", after))
    for column, (title, cut_) in zip(shown[:2], titled, strict=True):
        with column:
            ui.pictures.cut_picture(image, cut_.is_foreground_hw, cut_.bbox, caption=f"{title}: box {cut_.bbox}")
    area = after.area
    shown[2].caption(f"After edits: box {after.bbox}, {area} px ({area / after.is_foreground_hw.size:.0%} of the photo)")

    truth = st.file_uploader("Ground-truth mask (optional, PNG: non-zero = object)", type=["png"], key="seg_truth")
    if truth is not None:
        try:
            truth_mask = load_image(truth.getvalue()).max(-1) > 0
            st.metric("IoU with the ground truth", f"{masks.mask_iou(after.is_foreground_hw, truth_mask):.3f}")
        except (ImageError, ValueError) as exc:
            st.error(f"Cannot compare with this mask: {exc}")

    # the files are made from `after` when clicked: the mask shown is the mask downloaded, at the photo's size
    name = f"{ui.downloads.stem(image)}_{saliency.class_index}_segmentation"
    downloads = st.columns(3)
    with downloads[0]:
        ui.downloads.download("Mask (PNG)", lambda: encode_png(after.is_foreground_hw.astype(np.uint8) * 255), f"{name}_mask.png",
                              "image/png", key="seg_dl_mask")
    with downloads[1]:
        ui.downloads.download("Seed map (PNG)", lambda: masks.encode_seed_map(after.seeds_hw), f"{name}_seeds.png", "image/png",
                              key="seg_dl_seeds")
    with downloads[2]:
        ui.downloads.download("Box, settings and mask (JSON, COCO RLE)", lambda: json.dumps(pre.segmentation_record(
            after, class_index=saliency.class_index, label=saliency.label, model=model.name, weights=model.weights,
            preset=preset), indent=2), f"{name}.json", "application/json", key="seg_dl_json")
    note = " Red and blue: seeds painted by hand." if hand.any() else ""
    ui.downloads.figure_downloads(lambda: ui.downloads.cut_figure(
        image, saliency, after.is_foreground_hw, after.bbox, seeds_hw=after.seeds_hw,
        caption=ui.downloads.cut_caption(model, saliency, preset, after.bbox, after.area, photo=image.name, note=note)),
        name, key="seg_figure")


refine(image, saliency, preset, before, resumed, saved_seeds.file_id if resumed is not None else None, bool(restored))
