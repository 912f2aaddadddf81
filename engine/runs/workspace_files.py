"""Files of a review workspace (``engine.runs.workspace``): paths kept inside it, versions written atomically."""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import time
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from engine.images import load_image
from engine.segmentation.masks import decode_seed_map

STALE_TMP_SECONDS = 600.0  # a save takes milliseconds: a .tmp-* folder this old is a crashed one


class WorkspaceError(ValueError):
    """The workspace, or a name in it, cannot be used; the message is meant for the user."""


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str:
    """The workspace folder's own real path, found once: the queue resolves thousands of names under it."""
    return os.path.realpath(root)


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative`` with symlinks followed, or WorkspaceError unless it stays inside ``root``."""
    if not isinstance(relative, str) or not relative or "\0" in relative:
        raise WorkspaceError(f"{relative!r} is not a file name.")
    if PurePosixPath(relative).is_absolute():
        raise WorkspaceError(f"{relative!r} is an absolute path; names in a workspace are relative to it.")
    if ".." in re.split(r"[/\\]", relative):
        raise WorkspaceError(f"{relative!r} climbs out with '..'; names in a workspace stay inside it.")
    base = _real_root(os.fspath(root))
    path = os.path.realpath(os.path.join(base, relative))  # symlinks followed, as open() would
    if path != base and not path.startswith(base.rstrip(os.sep) + os.sep):
        raise WorkspaceError(f"{relative!r} leads outside the workspace through a symbolic link.")
    return Path(path)


def read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise WorkspaceError(f"{path.name} is missing.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{path.name} is not valid JSON ({exc}).") from None


def encode_mask_png(is_foreground_hw: np.ndarray) -> bytes:
    """A 1-bit PNG of a bool mask (a third the bytes and time of an 8-bit one; viewers show it black and white)."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(is_foreground_hw, dtype=bool)).save(buffer, format="PNG")
    return buffer.getvalue()


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask PNG as bool (H, W): any non-zero grey is object, as ``load_image(...)[:, :, 0] > 0`` reads it."""
    try:
        with Image.open(path, formats=["PNG"]) as image:
            if image.size != shape[::-1]:
                raise WorkspaceError(f"{path.name} is {image.size[0]}×{image.size[1]} but the photo is "
                                     f"{shape[1]}×{shape[0]}.")
            if image.mode in ("L", "1"):
                return np.asarray(image) > 0
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise WorkspaceError(f"{path.name} is not a readable PNG ({exc}).") from None
    try:
        return load_image(path)[:, :, 0] > 0
    except ValueError as exc:
        raise WorkspaceError(f"{path.name}: {exc}") from None


def read_seeds(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        seeds = decode_seed_map(path.read_bytes(), hand_only=False)
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{path.name}: {exc}") from None
    if seeds.shape != shape:
        raise WorkspaceError(f"{path.name} is {seeds.shape[1]}×{seeds.shape[0]} but the photo is {shape[1]}×{shape[0]}.")
    return seeds


def write_synced(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Create ``path`` (it must not exist) with ``data``, on the disk when this returns."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_tmp(stem_dir: Path) -> None:
    """Remove the .tmp-* folders of crashed saves; young ones may belong to a save in progress."""
    for entry in os.scandir(stem_dir):
        if entry.name.startswith(".tmp-") and entry.is_dir(follow_symlinks=False):
            if time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS:
                shutil.rmtree(entry.path, ignore_errors=True)


class TargetExists(OSError):
    """The folder a version was to be renamed to exists: another session published it first."""


def publish(parent: Path, target: str, files: dict[str, bytes], *, durable: bool = True) -> None:
    """Write ``files`` (relative names, sub-folders allowed) into a fresh ``parent/.tmp-*`` folder, flush them,
    and rename it to ``parent/target`` in one step; TargetExists when that is already there. Readers never
    see part of it; a crash leaves only the ``.tmp-*`` folder, removed by a later publish once stale.
    ``durable=False`` leaves out the fsyncs (a crashed process still leaves the old state or the new one;
    a power cut may not): for a caller that syncs many publishes at once (``os.sync``), as an import does."""
    import tempfile

    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(parent)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0o700; a version reads like the rest of the workspace
        folders = sorted({tmp / name for name in files for name in [str(Path(name).parent)] if name != "."})
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            write_synced(tmp / name, data, durable=durable)
        for folder in (folders + [tmp]) if durable else []:
            fsync_dir(folder)
        try:
            os.rename(tmp, parent / target)
        except OSError:
            if (parent / target).exists():  # another session won the race to this name
                raise TargetExists(f"{parent / target} exists") from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if durable:
        fsync_dir(parent)  # the rename itself survives a power cut
