import json

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
from engine.runs.workspace import SaveConflict, WorkspaceError
from engine.segmentation import cut as seg
from engine.segmentation import presets as pre

st.title("Review segmentations")
st.caption("Go through a pre-segmented folder worst first: paint seeds where a mask is wrong (the photo is re-cut "
           "on each stroke), save or accept, move on. Every save is a new version; nothing is overwritten.")
link_box = st.container()
workspace = ui.workspace.current_workspace()
items = ui.workspace.queue(workspace)
if not items:
    st.info("This workspace has no segmentations yet: run `python -m engine segment-folder WORKSPACE/images "
            "--out WORKSPACE/segmentations`.")
    st.stop()
accepted = sum(i.status == "accepted" for i in items)
refined = sum(i.status == "refined" for i in items)
st.progress(accepted / len(items), text=f"{accepted} of {len(items)} accepted · {refined} refined, not yet accepted")

stems = [i.stem for i in items]
photo_link = ui.links.UrlParam("photo", ui.state.REVIEW_STEM_KEY, ui.links.one_of(stems))  # always in the link: the queue's head changes
ui.links.restore_from_url(photo_link)
if st.session_state.get(ui.state.REVIEW_STEM_KEY) not in stems:
    st.session_state[ui.state.REVIEW_STEM_KEY] = stems[0]
with st.expander("Queue: the likely-bad masks first (boxes that run to the photo's borders and cover most of it), accepted last"):
    st.dataframe([{"photo": i.stem, "class": i.label, "status": i.status, "version": i.version,
                   "quality": i.quality} for i in items], hide_index=True, width="stretch")
    st.selectbox("Go to", stems, key=ui.state.REVIEW_STEM_KEY)
stem = st.session_state[ui.state.REVIEW_STEM_KEY]
ui.links.keep_in_url(photo_link)
ui.links.copy_link(link_box)
entry = workspace.load(stem)
image = ui.workspace.workspace_photo(entry.image_path)
preset, class_index = pre.preset_from_record(entry.record)
st.caption(f"**{stem}** · {entry.record.get('label', class_index)} · version {entry.version} ({entry.status}) · "
           f"preset {preset.name} · quality {entry.record.get('quality', '–')}")


@st.fragment
def review(stem: str, entry, image: ui.images.ImageInput, preset: pre.Preset, class_index: int, saved_hand, saved_bbox,
           generation: int) -> None:
    """The canvas, the mask and the moves: a stroke reruns this, not the page; a move or a save reruns the page."""
    if st.session_state.get("rev_generation", 0) != generation:
        st.rerun()  # a button here moved or saved: the queue, the progress and the photo above change too
    nav = st.container()  # filled below, once the strokes are known: accept / next / previous above the photo
    canvas_key = f"rev_{stem}_{entry.version}_{st.session_state.get('rev_reload', 0)}"
    model = ui.workspace.record_model(entry.record)

    def automatic_cut():
        saliency = ui.results.cached_saliency(model, image, target=class_index, views=preset.views, method=preset.method)
        return saliency, ui.results.cached_cut(image.image_hwc, image.digest, saliency, preset, model=model)

    def ready_for_input():  # what a first input needs: the map, the automatic cut, the photo's features
        ui.results.cached_pixel_features(model, image)
        return automatic_cut()

    made = {}  # hand seeds' key -> what edited() said, this run (the canvas asks first, then the page)

    def edited(hand: ui.canvas.HandSeeds):
        """(changed, mask, seeds, bbox) after ``hand``: the saved version's while the seeds are the saved ones."""
        if hand.key not in made:
            if hand.seeds_hw is saved_hand or np.array_equal(hand.seeds_hw, saved_hand):
                made[hand.key] = False, entry.mask_hw, entry.seeds_hw, saved_bbox
            else:
                saliency, base = automatic_cut()
                after = ui.results.refined_cut(image, saliency, preset, model=model, hand=hand, automatic=base)
                made[hand.key] = True, after.is_foreground_hw, after.seeds_hw, after.bbox  # seeds: the model's, the strokes over them
        return made[hand.key]

    left, right = st.columns([3, 2])
    with left:  # the canvas shows the mask its own input makes (edited, asked before the canvas is drawn)
        hand = ui.canvas.seed_canvas(image, entry.seeds_hw, under_hw=saved_hand, under_key=f"{stem}/{entry.version}", key=canvas_key,
                                     mask_of=lambda h: edited(h)[1], view_key="rev")
    changed, mask, seeds, bbox = edited(hand)  # the same result again (this session's refinement history)
    with right:
        area = int(mask.sum())
        st.caption(("Re-cut with your strokes" if changed else f"Version {entry.version}, as saved")
                   + f": box {bbox}, {area} px ({area / mask.size:.0%} of the photo), green on the canvas")
    if not changed:  # the map and the automatic cut a first stroke re-cuts from, made while the person looks
        ui.results.ahead(f"review cut {image.digest} {ui.model.model_key(model)} {preset}", ready_for_input)

    def save(status: str) -> bool:
        try:
            workspace.save(stem, mask_hw=mask, seeds_hw=seeds, record=entry.record, base_version=entry.version, status=status)
        except SaveConflict as exc:
            st.session_state["rev_reload"] = st.session_state.get("rev_reload", 0) + 1  # drop the strokes, show theirs
            st.session_state["rev_message"] = ("error", f"{exc} Their version is shown now.")
            return False
        ui.workspace.clear_queue()
        return True

    def go(step: int, status: str | None = None) -> None:
        """Save (when asked, or when there are unsaved strokes), then move ``step`` places in the queue as it was."""
        st.session_state["rev_generation"] = st.session_state.get("rev_generation", 0) + 1
        target = stems[(stems.index(stem) + step) % len(stems)]
        st.session_state.pop("rev_message", None)
        if status is not None or changed:
            if not save(status or "refined"):
                return
            st.session_state["rev_message"] = ("success", f"Saved {stem} as {status or 'refined'}.")
        st.session_state[ui.state.REVIEW_STEM_KEY] = target

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
        saliency = ui.results.cached_saliency(model, image, target=class_index, views=preset.views, method=preset.method)
        return ui.downloads.cut_figure(image, saliency, mask, bbox, seeds_hw=seeds, caption=ui.downloads.cut_caption(
            model, saliency, preset, bbox, int(mask.sum()), photo=entry.record.get("image", image.name),
            note=f" Review: {'your strokes, not saved yet' if changed else f'version {entry.version} ({entry.status})'}."))

    with right:
        st.caption("Keys: **A** accept and go on, **N** next, **P** previous, **S** save. Moving on saves your strokes first.")
        versions = workspace.history(stem)
        older = st.selectbox("History", versions[::-1], format_func=lambda v: f"version {v}" + (" (automatic)" if v == 0 else ""),
                             key=f"rev_history_{stem}")
        if st.button("Restore this version", key="rev_restore", disabled=older == entry.version):
            try:
                workspace.revert(stem, older, base_version=entry.version)
                ui.workspace.clear_queue()
                st.rerun()
            except (SaveConflict, WorkspaceError) as exc:
                st.error(str(exc))
        ui.downloads.figure_downloads(figure, f"{stem}_v{entry.version}_segmentation", key="rev_figure")


saved_hand = np.where(seg.has_code(entry.seeds_hw, seg.HAND_CODES), entry.seeds_hw, 0).astype(np.uint8)
review(stem, entry, image, preset, class_index, saved_hand, seg.bounding_box(entry.mask_hw), st.session_state.get("rev_generation", 0))

include = st.radio("Export", coco.INCLUDE, horizontal=True, key="rev_export_include",
                   format_func=lambda v: "accepted photos" if v == "accepted" else "all photos (newest versions)")
ui.downloads.download("COCO instances (JSON)", lambda: json.dumps(coco.export_coco(workspace, include=include)),
            f"{workspace.root.name}_{include}_coco.json", "application/json", key="rev_export")
