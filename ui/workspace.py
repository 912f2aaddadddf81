"""The review workspace: the operator's folder (or the demo one), its queue and its photos.

Owns: where the workspace comes from (``--workspace`` or ``DEEP_INSIDE_WORKSPACE``, never a page), the
demo workspace's build (a ``ui.jobs`` run: it stops when its viewer leaves), the worst-first queue (refreshed
every few seconds), a record's model. May import: engine, ``ui.state``, ``ui.images``, ``ui.model``, ``ui.results``,
``ui.jobs``.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import streamlit as st

from engine.images import ImageError
from engine.models import (
    DEFAULT_MODEL,
    MODEL_NAMES,
    LoadedModel,
    ModelLoadError,
)
from engine.stopping import check
from ui.images import ImageInput, decode, demo_images, frozen
from ui.jobs import Run, start
from ui.model import current_model, get_model
from ui.results import cached_predict
from ui.state import UI_WEIGHTS

# ---------------------------------------------------------------- review workspace
WORKSPACE_ENV = "DEEP_INSIDE_WORKSPACE"  # or `streamlit run app.py -- --workspace DIR`
DEMO_JOB_KEY = "rev_demo_job"  # the demo build this session started


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
    photos when the person asks, on a worker with a progress bar), or the page stops with how to set a real one."""
    from engine.runs.demo_workspace import demo_workspace_dir, open_demo_workspace

    root = demo_workspace_dir()
    space = open_demo_workspace(root)
    if space is None:
        st.info(NO_WORKSPACE)
        photos = list(demo_images().values())
        st.caption(f"Or try the queue now on a demo: the {len(photos)} bundled photos cut by the same step as "
                   f"`segment-folder`, on the sidebar's model, into `{root}` (your cache directory; nothing in the app's folder).")
        job: Run | None = st.session_state.get(DEMO_JOB_KEY)
        if job is not None and job.state == "failed":
            st.error(f"The demo workspace could not be made in {root}: {job.error}")
        elif job is not None and job.state == "cancelled":
            st.info(f"The demo build was stopped ({job.cancel_reason or 'Stop'}); nothing of it was kept.")
        if job is None or job.done:
            if not st.button(f"Build a demo workspace from the {len(photos)} bundled photos", key="rev_build_demo",
                             type="primary", icon=":material/construction:"):
                st.stop()
            job = st.session_state[DEMO_JOB_KEY] = _start_demo_build(current_model(), photos, root)
        _demo_progress(job)
        st.stop()
    st.info(f"This is a **demo** workspace: the bundled photos, pre-segmented, in `{root}`. Saves go there too. "
            f"For your own photos, whoever runs the server sets `{WORKSPACE_ENV}` (see the README).", icon=":material/science:")
    return space


def _start_demo_build(model: LoadedModel, photos: list[Path], root: Path) -> Run:
    from engine.runs.demo_workspace import build_demo_workspace

    def work(run: Run):
        lock = _demo_lock()
        while not lock.acquire(timeout=0.2):  # another session is building it: wait, or leave when this one's viewer does
            check(run.should_stop)
        try:
            return build_demo_workspace(model, photos, root, on_step=lambda done, total: setattr(run, "progress", (done, total)),
                                        should_stop=run.should_stop)
        finally:
            lock.release()

    return start("review", "demo workspace build", work)


@st.fragment(run_every=0.5)
def _demo_progress(job: Run) -> None:
    if job.done:
        clear_queue()
        st.rerun(scope="app")  # built (or not): the page as it now is
    st.button("Stop the build", key="rev_stop_demo", on_click=job.stop)
    if job.state == "queued":
        st.info(f"Waiting for a free slot: place {job.position} in line.", icon=":material/hourglass_top:")
    done, total = job.progress or (0, 1)
    st.progress(done / total, text=f"Cut {done} of {total} demo photos" if job.progress else "Cutting the demo photos…")


@st.cache_data(ttl=3, show_spinner=False)  # a few seconds: other sessions' saves show up soon
def _queue(_workspace, root: str):
    return _workspace.items(include_deleted=True)


def queue(workspace):
    """The queue of objects, worst first (deleted ones left out)."""
    return [i for i in _queue(workspace, str(workspace.root)) if i.status != "deleted"]


def photo_objects(workspace, stem: str) -> list:
    """The objects of one photo by id, deleted ones too, as the queue last read them."""
    return sorted((i for i in _queue(workspace, str(workspace.root)) if i.stem == stem), key=lambda i: i.obj)


@st.cache_resource(max_entries=256, show_spinner=False)
def _object_mask(_workspace, root: str, stem: str, obj: int, version: int, _item) -> np.ndarray:
    return frozen(_workspace.load_mask(_item))


def object_mask(workspace, item) -> np.ndarray:
    """The mask of the version ``item`` lists, read once (a version never changes), read-only."""
    return _object_mask(workspace, str(workspace.root), item.stem, item.obj, item.version, item)


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
    if "model" not in record:  # an imported or added object: no model made it
        return current_model()
    name, weights = record.get("model", DEFAULT_MODEL), record.get("weights", "pretrained")
    if name in MODEL_NAMES and weights in UI_WEIGHTS:
        try:
            return get_model(name, weights)
        except ModelLoadError as exc:
            st.warning(f"{exc} Re-cutting with the sidebar's model instead.")
    return current_model()


# ---------------------------------------------------------------- objects of a photo
def object_name(item) -> str:
    """How an object is named in the lists: its id, category, status and area."""
    return f"#{item.obj} {item.label or '(no category)'} · {item.status} · {item.area} px"


def box_image(image: ImageInput, bbox) -> ImageInput:
    """The photo cut to an object's box (the whole photo when it has none), for the classifier's top-5."""
    if bbox is None:
        return image
    x0, y0, x1, y1 = bbox
    return ImageInput(f"{image.name} {bbox}", f"{image.digest} {bbox}", frozen(image.image_hwc[y0:y1, x0:x1].copy()))


def category_choices(workspace, model: LoadedModel, image: ImageInput, bbox) -> list:
    """An object's possible categories: the classifier's top-5 for its box first, then the imported
    categories, then every other ImageNet class (each with its WordNet id)."""
    from engine.models import imagenet_categories
    from engine.runs.localisation import imagenet_wnids
    from engine.runs.workspace import Category

    names, wnids = imagenet_categories(), imagenet_wnids()
    top = [p.index for p in cached_predict(model, box_image(image, bbox), top=5)]
    imagenet = [Category(names[i], class_index=i, wnid=wnids[i]) for i in top + [i for i in range(len(names)) if i not in top]]
    return imagenet[:5] + workspace.categories() + imagenet[5:]
