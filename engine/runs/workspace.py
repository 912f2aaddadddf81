"""A review queue over a folder of pre-computed segmentations (§3.2, Simonyan, Vedaldi & Zisserman 2013).

``python -m engine segment-folder`` cuts every photo of a folder unattended; here people go through
the results worst first, refine the masks and accept them, several at once. A workspace is a folder
chosen by the server operator::

    WORKSPACE/images/<name>.<ext>                         the photos
    WORKSPACE/segmentations/<stem>{.json,_mask.png,_seeds.png}
        segment-folder's output: version 0, status "automatic", never modified
    WORKSPACE/refinements/<stem>/v0001/{record.json,mask.png,seeds.png}
        each later version (v0002, ...), status "refined" or "accepted", immutable once written

``<stem>.json`` is ``engine.segmentation.presets.segmentation_record`` plus ``"image"`` (the photo's name inside
``images/``) and ``"quality"`` (0..1 or null; lower: the mask is more likely bad). A saved
``record.json`` adds ``"version"``, ``"status"`` and ``"saved_at"``, its mask RLE, box and area
recomputed from the mask.

Saving is atomic and lock-free: the three files are written and fsynced in ``refinements/<stem>/
.tmp-*``, which is then renamed to ``vNNNN``. Renaming a directory onto an existing non-empty one
fails, so of two sessions that edited the same version only the first saves; the other gets a
``SaveConflict`` and nothing is written. A crash leaves at most a ``.tmp-*`` folder, which readers
ignore and a later save removes once it is stale.

Every name read from JSON or the UI becomes a path through ``resolve_inside``: nothing outside the
workspace is read or written, symlinks included. Entries that would leave it are skipped and listed
by ``Workspace.problems()``.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from engine.images import MAX_PIXELS, encode_png, load_image
from engine.segmentation.cut import AUTO_HARD_FOREGROUND, bounding_box
from engine.segmentation.masks import decode_seed_map, encode_rle, encode_seed_map

STATUSES = ("automatic", "refined", "accepted")  # version 0 is always "automatic"
SAVED_STATUSES = ("refined", "accepted")
STALE_TMP_SECONDS = 600.0  # a save takes milliseconds: a .tmp-* folder this old is a crashed one
MAKE_ONE = "make one with `python -m engine segment-folder WORKSPACE/images --out WORKSPACE/segmentations`"
_VERSION_DIR = re.compile(r"v(\d{4,})")


class WorkspaceError(ValueError):
    """The workspace, or a name in it, cannot be used; the message is meant for the user."""


class SaveConflict(WorkspaceError):
    """Another session saved a newer version of the same item first."""

    def __init__(self, stem: str, base_version: int, current_version: int):
        super().__init__(f"{stem} was saved elsewhere meanwhile: version {current_version} is newer than the "
                         f"version {base_version} you edited. Reload it and make the change again.")
        self.current_version = current_version


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative`` with symlinks followed, or WorkspaceError unless it stays inside ``root``."""
    if not isinstance(relative, str) or not relative or "\0" in relative:
        raise WorkspaceError(f"{relative!r} is not a file name.")
    if PurePosixPath(relative).is_absolute():
        raise WorkspaceError(f"{relative!r} is an absolute path; names in a workspace are relative to it.")
    if ".." in re.split(r"[/\\]", relative):
        raise WorkspaceError(f"{relative!r} climbs out with '..'; names in a workspace stay inside it.")
    base = os.path.realpath(root)
    path = os.path.realpath(os.path.join(base, relative))  # symlinks followed, as open() would
    if path != base and not path.startswith(base.rstrip(os.sep) + os.sep):
        raise WorkspaceError(f"{relative!r} leads outside the workspace through a symbolic link.")
    return Path(path)


@dataclass(frozen=True)
class Item:
    """One photo in the queue, as its newest version says (quality: version 0's)."""

    stem: str
    image: str  # the photo's name inside images/
    label: str
    class_index: int
    status: str  # "automatic" | "refined" | "accepted"
    version: int  # 0 = segment-folder's output
    quality: float | None  # lower: the automatic mask is more likely bad; None: unknown (first in the queue)
    bbox: tuple[int, int, int, int] | None  # (x0, y0, x1, y1), x1/y1 exclusive
    image_size: tuple[int, int]  # (W, H) of the photo and of its masks


@dataclass(frozen=True, eq=False)
class Entry:
    """One version of one item (the newest unless asked for another), ready to edit."""

    stem: str
    image_path: Path
    mask_hw: np.ndarray  # bool (H, W), the photo's size
    seeds_hw: np.ndarray  # uint8 (H, W) seed codes
    record: dict
    version: int
    status: str


def open_workspace(path: str | Path) -> Workspace:
    """The workspace at ``path``; WorkspaceError when it is missing or has no ``segmentations/``."""
    root = Path(path)
    if not root.is_dir():
        raise WorkspaceError(f"There is no workspace folder at {path}; {MAKE_ONE}.")
    segmentations = resolve_inside(root, "segmentations")
    if not segmentations.is_dir():
        raise WorkspaceError(f"{path} has no segmentations/ folder, so it is not a workspace yet; {MAKE_ONE}.")
    return Workspace(root.resolve())


@dataclass(frozen=True)
class Workspace:
    root: Path  # resolved

    def items(self) -> list[Item]:
        """The queue: not yet accepted first, worst automatic quality first (None first), then by stem;
        accepted last, by stem. Entries that cannot be read are left out (see ``problems``)."""
        return sorted(self._scan()[0], key=_queue_key)

    def problems(self) -> list[tuple[str, str]]:
        """(stem, reason) for each segmentation the queue leaves out."""
        return self._scan()[1]

    def progress(self) -> tuple[int, int]:
        """(accepted, total) over the items of the queue."""
        items = self._scan()[0]
        return sum(i.status == "accepted" for i in items), len(items)

    def history(self, stem: str) -> list[int]:
        """Every version of ``stem``, 0 (the automatic one) first."""
        self._version0(stem)
        return [0] + self._saved_versions(stem)

    def load(self, stem: str, version: int | None = None) -> Entry:
        """The newest version of ``stem`` (or the given one): photo path, mask, seeds, record."""
        record0, image_path = self._version0(stem)
        versions = [0] + self._saved_versions(stem)
        version = versions[-1] if version is None else version
        if version not in versions:
            raise WorkspaceError(f"{stem} has no version {version!r}; it has {', '.join(map(str, versions))}.")
        record, status = (record0, "automatic") if version == 0 else self._saved_record(stem, version)
        shape = tuple(record0["image_size"][::-1])
        return Entry(stem, image_path, _read_mask(self._file(stem, version, "mask"), shape),
                     _read_seeds(self._file(stem, version, "seeds"), shape), record, version, status)

    def load_mask(self, item: Item) -> np.ndarray:
        """The bool (H, W) mask of the version ``item`` lists, without reading its record or seeds."""
        return _read_mask(self._file(item.stem, item.version, "mask"), item.image_size[::-1])

    def save(self, stem: str, *, mask_hw: np.ndarray, seeds_hw: np.ndarray, record: dict, base_version: int,
             status: str) -> int:
        """Write version ``base_version + 1`` of ``stem`` atomically and return its number; SaveConflict
        when ``base_version`` is not the newest version any more."""
        if status not in SAVED_STATUSES:
            raise ValueError(f"A saved version is {' or '.join(SAVED_STATUSES)}; got {status!r}.")
        if isinstance(base_version, bool) or not isinstance(base_version, int) or base_version < 0:
            raise ValueError(f"base_version is the version the edit started from, 0 or more; got {base_version!r}.")
        if not isinstance(record, dict):
            raise ValueError(f"The record must be a dict; got {type(record).__name__}.")
        record0, _ = self._version0(stem)
        shape = tuple(record0["image_size"][::-1])
        mask, seeds = np.asarray(mask_hw), np.asarray(seeds_hw)
        for name, array in (("mask", mask), ("seed map", seeds)):
            if array.shape != shape:
                raise ValueError(f"The {name} is {array.shape} but the photo of {stem} is {shape} (H, W).")
        if mask.dtype != bool:
            raise ValueError(f"The mask must be a bool array; got {mask.dtype}.")
        if seeds.dtype != np.uint8 or seeds.max(initial=0) > AUTO_HARD_FOREGROUND:
            raise ValueError(f"The seed map must be uint8 codes 0..{AUTO_HARD_FOREGROUND}.")
        bbox = bounding_box(mask)
        saved = {**record, "version": base_version + 1, "status": status,
                 "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "image": record0["image"], "image_size": record0["image_size"], "mask_rle": encode_rle(mask),
                 "bbox": None if bbox is None else list(bbox), "area": int(mask.sum())}
        try:
            text = json.dumps(saved, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"The record cannot be written as JSON ({exc}).") from None
        files = {"record.json": text.encode(), "mask.png": encode_png(mask.astype(np.uint8) * 255),
                 "seeds.png": encode_seed_map(seeds)}
        return self._publish(stem, files, base_version)

    def revert(self, stem: str, version: int, *, base_version: int) -> int:
        """A new version ("refined") equal to the older ``version``; the history is kept."""
        old = self.load(stem, version)
        record = {k: v for k, v in old.record.items() if k not in ("version", "status", "saved_at")}
        return self.save(stem, mask_hw=old.mask_hw, seeds_hw=old.seeds_hw, record={**record, "reverted_from": version},
                         base_version=base_version, status="refined")

    def _publish(self, stem: str, files: dict[str, bytes], base_version: int) -> int:
        current = self.history(stem)[-1]
        if current != base_version:
            raise SaveConflict(stem, base_version, current)
        stem_dir = self._inside(f"refinements/{stem}")
        stem_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(stem_dir)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=stem_dir))
        target = stem_dir / f"v{base_version + 1:04d}"
        try:
            os.chmod(tmp, 0o755)  # mkdtemp makes it 0o700; a version reads like the rest of the workspace
            for name, data in files.items():
                _write_synced(tmp / name, data)
            _fsync_dir(tmp)
            try:
                os.rename(tmp, target)
            except OSError:
                if target.exists():  # another session won the race to this version
                    raise SaveConflict(stem, base_version, self.history(stem)[-1]) from None
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(stem_dir)  # the rename itself survives a power cut
        return base_version + 1

    def _inside(self, relative: str) -> Path:
        return resolve_inside(self.root, relative)

    def _scan(self) -> tuple[list[Item], list[tuple[str, str]]]:
        items, problems = [], []
        for name in sorted(os.listdir(self._inside("segmentations"))):
            if not name.endswith(".json") or name.startswith("."):
                continue
            stem = name.removesuffix(".json")
            try:
                record0, _ = self._version0(stem)
                version = ([0] + self._saved_versions(stem))[-1]
                record, status = (record0, "automatic") if version == 0 else self._saved_record(stem, version)
                for kind in ("mask", "seeds"):
                    if not self._file(stem, version, kind).is_file():
                        raise WorkspaceError(f"its {kind} file for version {version} is missing")
                bbox = None if record.get("bbox") is None else tuple(int(v) for v in record["bbox"])
                items.append(Item(stem, record0["image"], record["label"], record["class_index"], status,
                                  version, record0["quality"], bbox, tuple(record0["image_size"])))
            except (WorkspaceError, OSError, KeyError, TypeError, ValueError) as exc:
                problems.append((stem, str(exc)))
        return items, problems

    def _version0(self, stem: str) -> tuple[dict, Path]:
        """segment-folder's record of ``stem``, checked, and the photo's path."""
        _check_stem(stem)
        record = _read_json(self._inside(f"segmentations/{stem}.json"))
        _check_record(record, f"segmentations/{stem}.json")
        image = record.get("image")
        if not isinstance(image, str):
            raise WorkspaceError(f"segmentations/{stem}.json names no photo (its 'image' field).")
        image_path = self._inside(f"images/{image}")
        if not image_path.is_file():
            raise WorkspaceError(f"The photo images/{image} of {stem} is missing.")
        quality = record.get("quality")
        if quality is not None and (isinstance(quality, bool) or not isinstance(quality, (int, float))
                                    or not math.isfinite(quality) or not 0 <= quality <= 1):
            raise WorkspaceError(f"segmentations/{stem}.json: quality is 0..1 or null; got {quality!r}.")
        return record, image_path

    def _saved_versions(self, stem: str) -> list[int]:
        stem_dir = self._inside(f"refinements/{stem}")
        if not stem_dir.is_dir():
            return []
        return sorted(int(m[1]) for n in os.listdir(stem_dir) if (m := _VERSION_DIR.fullmatch(n)))

    def _saved_record(self, stem: str, version: int) -> tuple[dict, str]:
        where = f"refinements/{stem}/v{version:04d}/record.json"
        record = _read_json(self._inside(where))
        _check_record(record, where)
        if record.get("status") not in SAVED_STATUSES:
            raise WorkspaceError(f"{where}: status is {' or '.join(SAVED_STATUSES)}; got {record.get('status')!r}.")
        return record, record["status"]

    def _file(self, stem: str, version: int, kind: str) -> Path:
        if version == 0:
            return self._inside(f"segmentations/{stem}_{kind}.png")
        return self._inside(f"refinements/{stem}/v{version:04d}/{kind}.png")


def _queue_key(item: Item) -> tuple:
    if item.status == "accepted":
        return (1, False, 0.0, item.stem)
    return (0, item.quality is not None, item.quality or 0.0, item.stem)  # unknown quality counts as worst


def _check_stem(stem: str) -> None:
    if not isinstance(stem, str) or not stem or stem.startswith(".") or re.search(r"[/\\\0]", stem):
        raise WorkspaceError(f"{stem!r} is not the name of an item (a photo's name without its extension).")


def _check_record(record, where: str) -> None:
    if not isinstance(record, dict):
        raise WorkspaceError(f"{where} is not a segmentation record (a JSON object).")
    class_index, size = record.get("class_index"), record.get("image_size")
    if not isinstance(record.get("label"), str):
        raise WorkspaceError(f"{where}: label is a class name; got {record.get('label')!r}.")
    if isinstance(class_index, bool) or not isinstance(class_index, int) or not 0 <= class_index <= 999:
        raise WorkspaceError(f"{where}: class_index is 0..999; got {class_index!r}.")
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int and v > 0 for v in size)
            and size[0] * size[1] <= MAX_PIXELS):
        raise WorkspaceError(f"{where}: image_size is [W, H] of at most {MAX_PIXELS / 1e6:.0f} MP; got {size!r}.")


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise WorkspaceError(f"{path.name} is missing.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"{path.name} is not valid JSON ({exc}).") from None


def _read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
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


def _read_seeds(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        seeds = decode_seed_map(path.read_bytes(), hand_only=False)
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{path.name}: {exc}") from None
    if seeds.shape != shape:
        raise WorkspaceError(f"{path.name} is {seeds.shape[1]}×{seeds.shape[0]} but the photo is {shape[1]}×{shape[0]}.")
    return seeds


def _write_synced(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) with ``data``, on the disk when this returns."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_tmp(stem_dir: Path) -> None:
    """Remove the .tmp-* folders of crashed saves; young ones may belong to a save in progress."""
    for entry in os.scandir(stem_dir):
        if entry.name.startswith(".tmp-") and entry.is_dir(follow_symlinks=False):
            if time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS:
                shutil.rmtree(entry.path, ignore_errors=True)
