import json
import types

import numpy as np
import streamlit as st

import ui.canvas
import ui.downloads
import ui.images
import ui.links
import ui.model
import ui.pictures
import ui.results
import ui.state
import ui.workspace
from engine.runs import coco
from engine.runs.workspace import Category, SaveConflict, WorkspaceError
from engine.segmentation import cut as seg
from engine.segmentation import presets as pre

st.title("Review segmentations")
st.caption("Go through a folder's objects worst first: paint seeds or click where a mask is wrong (the object is re-cut "
           "on each input), save or accept, move on. Every save is a new version; nothing is overwritten.")
link_box = st.container()
workspace = ui.workspace.current_workspace()
items = ui.workspace.queue(workspace)
if not items:
    st.info("This workspace has no objects yet: run `python -m engine segment-folder WORKSPACE/images --out "
            "WORKSPACE/segmentations`, or `python -m engine import-segmentations IMAGES_DIR ANNOTATIONS --out WORKSPACE`.")
    st.stop()
accepted = sum(i.status == "accepted" for i in items)
refined = sum(i.status == "refined" for i in items)
keys = [i.key for i in items]
stems = list(dict.fromkeys(i.stem for i in items))  # photos in the order of their worst object
st.progress(accepted / len(items), text=f"{accepted} of {len(items)} accepted · {refined} refined, not yet accepted "
                                        f"(objects, on {len(stems)} photos)")
photo_link = ui.links.UrlParam("photo", ui.state.REVIEW_STEM_KEY, ui.links.one_of(stems))  # always in the link: the queue's head changes
ui.links.restore_from_url(photo_link)
if st.session_state.get(ui.state.REVIEW_STEM_KEY) not in stems:
    st.session_state[ui.state.REVIEW_STEM_KEY] = stems[0]
with st.expander("Queue: the likely-bad masks first (boxes that run to the photo's borders and cover most of it), accepted last"):
    st.dataframe([{"photo": i.stem, "object": i.obj, "category": i.label, "status": i.status, "version": i.version,
                   "quality": i.quality} for i in items], hide_index=True, width="stretch")
    st.selectbox("Go to", stems, key=ui.state.REVIEW_STEM_KEY)
stem = st.session_state[ui.state.REVIEW_STEM_KEY]
ui.links.keep_in_url(photo_link)
ui.links.copy_link(link_box)

objects = ui.workspace.photo_objects(workspace, stem)
live = {o.obj: o for o in objects if o.status != "deleted"}
object_key = f"rev_object_{stem}"
if st.session_state.get("rev_added", (None,))[0] == stem:  # an object added on the last run: open it
    st.session_state[object_key] = st.session_state.pop("rev_added")[1]
if st.session_state.pop("rev_relabel", False) and object_key in st.session_state:
    # the chosen object's name changed (category, status): set the value again, or the browser keeps showing the old
    # name (streamlit/streamlit#13788: a selectbox's shown text is not refreshed when only format_func's output changes)
    st.session_state[object_key] = st.session_state[object_key]
if st.session_state.get(object_key) not in live:  # the photo's worst object first
    st.session_state[object_key] = next((o for s, o in keys if s == stem and o in live), next(iter(live)))
st.dataframe([{"object": o.obj, "category": o.label, "area": o.area, "status": o.status, "version": o.version,
               "quality": o.quality} for o in objects], hide_index=True, width="stretch")
obj = st.selectbox("Object to refine (the others are outlined in yellow)", list(live), key=object_key,
                   format_func=lambda o: ui.workspace.object_name(live[o]))
entry = workspace.load(stem, obj=obj)
image = ui.workspace.workspace_photo(entry.image_path)
model = ui.workspace.record_model(entry.record)
if obj == 0:  # segment-folder's cut: re-cut from the automatic mask of its preset and class
    preset, class_index = pre.preset_from_record(entry.record)
else:  # an imported or added object: refined from its first mask
    preset, class_index = pre.get_preset(pre.DEFAULT_PRESET), live[obj].class_index  # None: the top-1, when a figure needs it
others = [ui.workspace.object_mask(workspace, o) for o in live.values() if o.obj != obj]
st.caption(f"**{stem}** · object {obj}: {live[obj].label or '(no category)'} · version {entry.version} ({entry.status}) · "
           f"preset {preset.name} · quality {live[obj].quality if live[obj].quality is not None else '–'}")


@st.fragment
def review(stem: str, obj: int, entry, image: ui.images.ImageInput, preset: pre.Preset, class_index: int | None, saved_hand, saved_bbox,
           generation: int) -> None:
    """The canvas, the mask and the moves: a stroke reruns this, not the page; a move or a save reruns the page."""
    if st.session_state.get("rev_generation", 0) != generation:
        st.rerun()  # a button here moved or saved: the queue, the progress and the photo above change too
    nav = st.container()  # filled below, once the strokes are known: accept / next / previous above the photo
    canvas_key = f"rev_{stem}_{obj}_{entry.version}_{st.session_state.get('rev_reload', 0)}"
    # segment-folder's object 0 is re-cut from its preset's cut, unless it is one instance of several
    # (--objects several: its record counts them): the preset's cut may span them all, so it is refined from its first mask
    by_preset = obj == 0 and "objects" not in entry.record

    def automatic_cut():
        saliency = ui.results.cached_saliency(model, image, target=class_index, views=preset.views, method=preset.method)
        return saliency, ui.results.cached_cut(image.image_hwc, image.digest, saliency, preset, model=model)

    def ready_for_input():  # what a first input needs: the map, the automatic cut, the photo's features
        ui.results.cached_pixel_features(model, image)
        return automatic_cut() if by_preset else None

    made = {}  # hand seeds' key -> what edited() said, this run (the canvas asks first, then the page)

    def edited(hand: ui.canvas.HandSeeds):
        """(changed, mask, seeds, bbox) after ``hand``: the saved version's while the seeds are the saved ones."""
        if hand.key not in made:
            if hand.seeds_hw is saved_hand or np.array_equal(hand.seeds_hw, saved_hand):
                made[hand.key] = False, entry.mask_hw, entry.seeds_hw, saved_bbox
            elif by_preset:  # segment-folder's object: re-cut from the automatic cut of its preset and class
                saliency, base = automatic_cut()
                after = ui.results.refined_cut(image, saliency, preset, model=model, hand=hand, automatic=base)
                made[hand.key] = True, after.is_foreground_hw, after.seeds_hw, after.bbox  # seeds: the model's, the strokes over them
            else:  # an imported, added or further automatic object: refined from its first mask
                start = workspace.load(stem, 0, obj=obj).mask_hw
                after = ui.results.refined_from(image, start, f"{workspace.root} {stem} {obj}", model=model, hand=hand)
                made[hand.key] = True, after.is_foreground_hw, after.seeds_hw, after.bbox
        return made[hand.key]

    left, right = st.columns([3, 2])
    with left:  # the canvas shows the mask its own input makes (edited, asked before the canvas is drawn)
        hand = ui.canvas.seed_canvas(image, entry.seeds_hw, under_hw=saved_hand, under_key=f"{stem}/{obj}/{entry.version}",
                                     key=canvas_key, mask_of=lambda h: edited(h)[1], view_key="rev", outlines_hw=others)
    changed, mask, seeds, bbox = edited(hand)  # the same result again (this session's refinement history)
    with right:
        area = int(mask.sum())
        st.caption(("Re-cut with your strokes" if changed else f"Version {entry.version}, as saved")
                   + f": box {bbox}, {area} px ({area / mask.size:.0%} of the photo), green on the canvas"
                   + ("; the photo's other objects outlined in yellow" if others else ""))
    if not changed:  # the map and the automatic cut a first stroke re-cuts from, made while the person looks
        ui.results.ahead(f"review cut {image.digest} {ui.model.model_key(model)} {preset} {by_preset}", ready_for_input)

    def save(status: str) -> bool:
        try:
            workspace.save(stem, mask_hw=mask, seeds_hw=seeds, record=entry.record, base_version=entry.version, status=status,
                           obj=obj)
        except SaveConflict as exc:
            st.session_state["rev_reload"] = st.session_state.get("rev_reload", 0) + 1  # drop the strokes, show theirs
            st.session_state["rev_message"] = ("error", f"{exc} Their version is shown now.")
            return False
        ui.workspace.clear_queue()
        return True

    def go(step: int, status: str | None = None) -> None:
        """Save (when asked, or when there are unsaved strokes), then move ``step`` places in the queue as it was."""
        st.session_state["rev_generation"] = st.session_state.get("rev_generation", 0) + 1
        here = keys.index((stem, obj)) if (stem, obj) in keys else -1
        target = keys[(here + step) % len(keys)]
        st.session_state.pop("rev_message", None)
        if status is not None or changed:
            if not save(status or "refined"):
                return
            st.session_state["rev_message"] = ("success", f"Saved {stem}{f' object {obj}' if obj else ''} as {status or 'refined'}.")
        st.session_state[ui.state.REVIEW_STEM_KEY] = target[0]
        st.session_state[f"rev_object_{target[0]}"] = target[1]

    with nav:
        row = st.columns(4)
        row[0].button("Previous", key="rev_previous", shortcut="P", on_click=go, args=(-1,), icon=":material/arrow_back:",
                      width="stretch")
        row[1].button("Save", key="rev_save", shortcut="S", on_click=go, args=(0, "refined"), disabled=not changed,
                      icon=":material/save:", width="stretch")
        row[2].button("Accept", key="rev_accept", shortcut="A", on_click=go, args=(1, "accepted"), type="primary",
                      icon=":material/check:", width="stretch")
        row[3].button("Next", key="rev_next", shortcut="N", on_click=go, args=(1,), icon=":material/arrow_forward:",
                      width="stretch")
        # the last action's outcome stays until the next one (the canvas's first value reruns the fragment)
        kind, text = st.session_state.get("rev_message", (None, None))
        if kind:
            getattr(st, kind)(text)

    def figure():
        target = class_index if class_index is not None else ui.results.cached_predict(model, image, top=1)[0].index
        saliency = ui.results.cached_saliency(model, image, target=target, views=preset.views, method=preset.method)
        return ui.downloads.cut_figure(image, saliency, mask, bbox, seeds_hw=seeds, caption=ui.downloads.cut_caption(
            model, saliency, preset, bbox, int(mask.sum()), photo=entry.record.get("image", image.name),
            note=f" Review: {'your strokes, not saved yet' if changed else f'version {entry.version} ({entry.status})'}."))

    with right:
        st.caption("Keys: **A** accept and go on, **N** next, **P** previous, **S** save. Moving on saves your strokes first.")
        versions = workspace.history(stem, obj=obj)
        first = " (automatic)" if obj == 0 else " (first)"
        older = st.selectbox("History", versions[::-1], format_func=lambda v: f"version {v}" + (first if v == 0 else ""),
                             key=f"rev_history_{stem}_{obj}_{entry.version}")  # each new version opens on itself
        if st.button("Restore this version", key="rev_restore", disabled=older == entry.version):
            try:
                workspace.revert(stem, older, base_version=entry.version, obj=obj)
                ui.workspace.clear_queue()
                st.rerun()
            except (SaveConflict, WorkspaceError) as exc:
                st.error(str(exc))
        ui.downloads.figure_downloads(figure, f"{stem}{f'_{obj}' if obj else ''}_v{entry.version}_segmentation", key="rev_figure")


def changed_object(action, done: str) -> None:
    """Run a change to the workspace (a new version or object); a conflict is shown, not raised."""
    try:
        action()
    except (SaveConflict, WorkspaceError) as exc:
        st.error(str(exc))
        return
    ui.workspace.clear_queue()
    st.session_state["rev_message"] = ("success", done)
    st.session_state["rev_relabel"] = True
    st.rerun()


saved_hand = np.where(seg.has_code(entry.seeds_hw, seg.HAND_CODES), entry.seeds_hw, 0).astype(np.uint8)
review(stem, obj, entry, image, preset, class_index, saved_hand, seg.bounding_box(entry.mask_hw), st.session_state.get("rev_generation", 0))

with st.expander("This object: category, delete"):
    if st.toggle("Change the category (the classifier's top-5 for the object's box first, then the imported ones)",
                 key=f"rev_category_open_{stem}_{obj}"):
        choices = ui.workspace.category_choices(workspace, model, image, live[obj].bbox)
        at = st.selectbox("Category", [None, *range(len(choices))], key=f"rev_category_{stem}_{obj}",
                          format_func=lambda n: "a new name…" if n is None else choices[n].name + (
                              f" (ImageNet {choices[n].wnid})" if choices[n].wnid else f" (imported, id {choices[n].id})"))
        typed = st.text_input("New category name", key=f"rev_category_name_{stem}_{obj}", disabled=at is not None)
        category = choices[at] if at is not None else (Category(typed.strip()) if typed.strip() else None)
        if st.button("Set the category", key="rev_set_category", disabled=category is None):
            changed_object(lambda: workspace.set_category(stem, obj, category, base_version=entry.version),
                           f"Object {obj} of {stem} is now {category.name}.")
    if st.button("Delete this object (a new version marked deleted; its history is kept)", key="rev_delete",
                 icon=":material/delete:"):
        changed_object(lambda: workspace.delete_object(stem, obj, base_version=entry.version), f"Deleted object {obj} of {stem}.")

with st.expander("Add an object to this photo"):
    start = st.radio("Start from", ("empty", "cut"), key="rev_add_start", horizontal=True, format_func=lambda v: {
        "empty": "nothing: then click or draw a box on it", "cut": "the classifier's cut (§3.2) for a class"}[v])
    wanted = None
    if start == "cut":
        classes = {c.class_index: c for c in ui.workspace.category_choices(workspace, model, image, None) if c.class_index is not None}
        wanted = classes[st.selectbox("Class (the photo's top-5 first)", list(classes), key="rev_add_class",
                                      format_func=lambda i: classes[i].name)]
    if st.button("Add the object", key="rev_add", icon=":material/add:"):
        if start == "cut":
            cut_preset = pre.get_preset(pre.DEFAULT_PRESET)
            saliency = ui.results.cached_saliency(model, image, target=wanted.class_index, views=cut_preset.views, method=cut_preset.method)
            made = ui.results.cached_cut(image.image_hwc, image.digest, saliency, cut_preset, model=model)
        else:
            made = types.SimpleNamespace(is_foreground_hw=np.zeros(image.image_hwc.shape[:2], bool), seeds_hw=None)
        new = workspace.add_object(stem, mask_hw=made.is_foreground_hw, seeds_hw=made.seeds_hw, category=wanted if start == "cut" else None)
        st.session_state["rev_added"] = (stem, new)
        changed_object(lambda: None, f"Added object {new} to {stem}.")

include = st.radio("Export", coco.INCLUDE, horizontal=True, key="rev_export_include",
                   format_func=lambda v: "accepted objects" if v == "accepted" else "all objects (newest versions)")
ui.downloads.download("COCO instances (JSON)", lambda: json.dumps(coco.export_coco(workspace, include=include)),
                      f"{workspace.root.name}_{include}_coco.json", "application/json", key="rev_export")
