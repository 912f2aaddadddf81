"""A demo review workspace (§3.2, Simonyan et al. 2013): the app's bundled photos pre-segmented by the
same step as ``python -m engine segment-folder``, so that the review queue can be tried out of the box.

It lives in the user's cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``, then
``deep-inside/demo-workspace``), never in the repository and never at a path typed into a page. It is
built aside (``.tmp-demo-workspace.*`` beside it) and renamed into place once every photo is cut: a
workspace there is complete (its ``demo.json`` says how it was made), and is reused, never rebuilt.
A build stopped by its ``should_stop`` (``engine.stopping``) removes its staging folder: nothing half-made stays.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.runs.segment_folder import segment_photos
from engine.runs.workspace import Workspace, WorkspaceError, open_workspace
from engine.segmentation.presets import DEFAULT_PRESET, get_preset
from engine.stopping import ShouldStop, check

MARKER = "demo.json"  # written last, inside the staging folder: its presence means complete
STALE_SECONDS = 3600.0  # a staging folder this old is a build that was killed


def user_cache_dir(environ=os.environ) -> Path:
    """``$XDG_CACHE_HOME/deep-inside``, or ``~/.cache/deep-inside`` when that is unset (the XDG rule)."""
    cache = environ.get("XDG_CACHE_HOME") or ""
    base = Path(cache) if os.path.isabs(cache) else Path(environ.get("HOME") or Path.home()) / ".cache"
    return base / "deep-inside"


def demo_workspace_dir(environ=os.environ) -> Path:
    """``user_cache_dir() / "demo-workspace"``."""
    return user_cache_dir(environ) / "demo-workspace"


def open_demo_workspace(root: str | Path) -> Workspace | None:
    """The demo workspace at ``root`` when it is complete, else None."""
    root = Path(root)
    if not (root / MARKER).is_file():
        return None
    try:
        return open_workspace(root)
    except WorkspaceError:
        return None


def build_demo_workspace(model, photos: Sequence[Path], root: str | Path, *, preset: str = DEFAULT_PRESET,
                         on_step: Callable[[int, int], None] | None = None, should_stop: ShouldStop | None = None) -> Workspace:
    """``photos`` copied into ``root/images`` and cut into ``root/segmentations`` with ``model`` (the
    ``segment-folder`` step, in this process); ``on_step(done, total)`` after each photo. A complete
    workspace already at ``root`` is returned as it is. ``should_stop``, asked before each photo, True:
    ``Cancelled`` is raised and the staging folder removed."""
    root = Path(root)
    if (ready := open_demo_workspace(root)) is not None:
        return ready
    if not photos:
        raise ValueError("There are no photos to make a demo workspace from.")
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(root)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".tmp-{root.name}."))
    try:
        (staging / "images").mkdir()
        for photo in photos:
            shutil.copyfile(photo, staging / "images" / Path(photo).name)
        images = sorted((staging / "images").iterdir())
        check(should_stop)

        def after_photo(done: int, total: int) -> None:
            if on_step is not None:
                on_step(done, total)
            if done < total:
                check(should_stop)

        lines = segment_photos(model, images, staging / "segmentations", preset=get_preset(preset), on_step=after_photo)
        failed = [f"{line['image']}: {line['error']}" for line in lines if "error" in line]
        if failed:
            raise ValueError(f"The demo photos could not all be cut: {'; '.join(failed)}")
        (staging / MARKER).write_text(json.dumps({
            "demo": True, "photos": [p.name for p in images], "model": model.name, "weights": model.weights,
            "preset": preset, "made_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2))
        if root.is_dir() and open_demo_workspace(root) is None and not any(root.iterdir()):
            root.rmdir()  # an empty folder left in the way
        os.rename(staging, root)  # fails if another build has finished first: theirs is kept
    except OSError:
        if (ready := open_demo_workspace(root)) is None:
            raise
        return ready
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return open_workspace(root)


def _remove_stale(root: Path) -> None:
    for folder in root.parent.glob(f".tmp-{root.name}.*"):
        try:
            if time.time() - folder.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass
