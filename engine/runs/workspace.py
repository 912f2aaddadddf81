"""A review workspace: the objects of a folder of photos, each with its versions (§3.2, Simonyan, Vedaldi &
Zisserman 2013, refined by hand).

An item of the queue is an object, ``(stem, obj)``: a photo's name without its extension and an object id.
Object 0 is ``segment-folder``'s cut of the photo; objects 1, 2, ... are its further instances of the class
(``segment-folder --objects several``), were imported (``python -m engine import-segmentations``) or added by
a person. A workspace is a folder chosen by the server operator::

    WORKSPACE/images/<name>.<ext>                           the photos
    WORKSPACE/segmentations/<stem>{.json,_mask.png,_seeds.png}
        segment-folder's output: object 0's version 0, status "automatic", never modified
    WORKSPACE/refinements/<stem>/vNNNN/{record.json,mask.png,seeds.png}
        object 0's later versions (v0001, ...)
    WORKSPACE/refinements/<stem>/oNNNN/vNNNN/{record.json,mask.png[,seeds.png]}
        object NNNN's versions: v0000 "automatic" (segment-folder --objects several), "imported" or "added",
        then the later ones
    WORKSPACE/categories.json                               the imported COCO categories (ids and names)

A later version is "refined", "accepted" or "deleted" (a delete is a version too: nothing is erased), and is
immutable once written. ``<stem>.json`` is ``engine.segmentation.presets.segmentation_record`` plus
``"image"`` and ``"quality"`` (0..1 or null; lower: the mask is more likely bad). A version's
``record.json`` holds ``"version"``, ``"status"``, ``"saved_at"``, ``"image"``, ``"image_size"``, the
box and area recomputed from the mask (object 0's also its RLE, as segment-folder's records), and
``"category"`` (``Category``; object 0's records without one name an ImageNet class by ``label`` and
``class_index``); an object's versions carry ``"source"`` (where it came from), ``"iscrowd"`` and its
first ``"quality"``. ``mask.png`` is a 1-bit PNG (any non-zero value reads as object). Workspaces
written before objects existed are these files with object 0 alone, and open unchanged.

Every version is written atomically and lock-free: its files are written and fsynced in a ``.tmp-*``
folder, which is then renamed to ``vNNNN`` (or, for a new object, ``oNNNN``). Renaming a folder onto an
existing non-empty one fails, so of two sessions that edited the same version of the same object only the
first saves; the other gets a ``SaveConflict``. Two objects of one photo are two folders: both save. A
crash leaves at most a ``.tmp-*`` folder, which readers ignore and a later save removes once stale.

Every name read from JSON or the UI becomes a path through ``resolve_inside``: nothing outside the
workspace is read or written, symlinks included. Entries that would leave it are skipped and listed by
``Workspace.problems()``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.images import MAX_PIXELS
from engine.runs.workspace_files import (
    TargetExists,
    WorkspaceError,
    publish,
    read_json,
    read_mask,
    read_seeds,
    resolve_inside,
)
from engine.runs.workspace_records import (
    Category,
    check_object_record,
    check_record,
    check_stem,
    checked_mask,
    checked_quality,
    record_category,
    version_files,
)

__all__ = ["Category", "Entry", "Item", "SaveConflict", "Workspace", "WorkspaceError", "open_workspace", "resolve_inside"]

FIRST_STATUSES = ("automatic", "imported", "added")  # version 0: segment-folder's, an import's, a person's
SAVED_STATUSES = ("refined", "accepted")  # what a person saves
STATUSES = FIRST_STATUSES + SAVED_STATUSES + ("deleted",)
CATEGORIES_FILE = "categories.json"
MAKE_ONE = "make one with `python -m engine segment-folder WORKSPACE/images --out WORKSPACE/segmentations`"
_VERSION_DIR = re.compile(r"v(\d{4,})")
_OBJECT_DIR = re.compile(r"o(\d{4,})")


class SaveConflict(WorkspaceError):
    """Another session saved a newer version of the same object first."""

    def __init__(self, stem: str, base_version: int, current_version: int, obj: int = 0):
        what = stem if obj == 0 else f"Object {obj} of {stem}"
        super().__init__(f"{what} was saved elsewhere meanwhile: version {current_version} is newer than the "
                         f"version {base_version} you edited. Reload it and make the change again.")
        self.current_version = current_version


@dataclass(frozen=True)
class Item:
    """One object in the queue, as its newest version says."""

    stem: str
    image: str  # the photo's name inside images/
    label: str  # the category's name
    class_index: int | None  # the ImageNet class of the category, None for another one
    status: str  # one of STATUSES
    version: int  # 0 = segment-folder's output, the import, or the object as added
    quality: float | None  # lower: the first mask is more likely bad; None: unknown (first in the queue)
    bbox: tuple[int, int, int, int] | None  # (x0, y0, x1, y1), x1/y1 exclusive
    image_size: tuple[int, int]  # (W, H) of the photo and of its masks
    obj: int = 0  # the object's id in its photo
    category: Category | None = None
    area: int = 0
    iscrowd: bool = False
    imported_ids: tuple[int | None, int | None] = (None, None)  # (image id, annotation id) in the imported COCO file

    @property
    def key(self) -> tuple[str, int]:
        return self.stem, self.obj


@dataclass(frozen=True, eq=False)
class Entry:
    """One version of one object (the newest unless asked for another), ready to edit."""

    stem: str
    image_path: Path
    mask_hw: np.ndarray  # bool (H, W), the photo's size
    seeds_hw: np.ndarray  # uint8 (H, W) seed codes (all 0 for an imported mask)
    record: dict
    version: int
    status: str
    obj: int = 0
    category: Category | None = None


def open_workspace(path: str | Path) -> Workspace:
    """The workspace at ``path``; WorkspaceError when it is missing or has no ``segmentations/``."""
    root = Path(path)
    if not root.is_dir():
        raise WorkspaceError(f"There is no workspace folder at {path}; {MAKE_ONE}.")
    segmentations = resolve_inside(root, "segmentations")
    if not segmentations.is_dir():
        raise WorkspaceError(f"{path} has no segmentations/ folder, so it is not a workspace yet; {MAKE_ONE}, "
                             "or import masks with `python -m engine import-segmentations IMAGES_DIR ANNOTATIONS --out WORKSPACE`.")
    return Workspace(root.resolve())


@dataclass(frozen=True)
class Workspace:
    root: Path  # resolved

    # ------------------------------------------------------------------------------------------- reading
    def items(self, *, include_deleted: bool = False) -> list[Item]:
        """The queue of objects: not yet accepted first, worst first quality first (None first), then by
        photo and object; accepted last; deleted ones only when asked, at the very end. Entries that
        cannot be read are left out (see ``problems``)."""
        return sorted((i for i in self._scan()[0] if include_deleted or i.status != "deleted"), key=_queue_key)

    def problems(self) -> list[tuple[str, str]]:
        """(stem, reason) for each object the queue leaves out."""
        return self._scan()[1]

    def progress(self) -> tuple[int, int]:
        """(accepted, total) over the objects of the queue (deleted ones not counted)."""
        items = self.items()
        return sum(i.status == "accepted" for i in items), len(items)

    def objects(self, stem: str, *, include_deleted: bool = True) -> list[Item]:
        """The objects of one photo, by id: category, area, status, quality of each. Objects that cannot be
        read are left out, as from the queue (``problems`` says why)."""
        check_stem(stem)
        found = []
        for obj in self._object_ids(stem):
            try:
                item = self._item(stem, obj)
            except (WorkspaceError, OSError, KeyError, TypeError, ValueError):
                continue
            if include_deleted or item.status != "deleted":
                found.append(item)
        return found

    def categories(self) -> list[Category]:
        """The imported COCO categories (``categories.json``), by id; [] when nothing was imported."""
        path = self._inside(CATEGORIES_FILE)
        if not path.is_file():
            return []
        table = read_json(path)
        if not isinstance(table, list):
            raise WorkspaceError(f"{CATEGORIES_FILE} is not a list of categories.")
        return sorted((Category.from_json(c, CATEGORIES_FILE) for c in table), key=lambda c: c.id or 0)

    def history(self, stem: str, *, obj: int = 0) -> list[int]:
        """Every version of the object, 0 (automatic, imported or added) first."""
        check_stem(stem)
        if obj == 0:
            self._version0(stem)
            return [0] + [v for v in self._versions(stem, 0) if v > 0]
        versions = self._versions(stem, obj)
        if not versions or versions[0] != 0:
            raise WorkspaceError(f"{stem} has no object {obj!r}.")
        return versions

    def load(self, stem: str, version: int | None = None, *, obj: int = 0) -> Entry:
        """The newest version of the object (or the given one): photo path, mask, seeds, record."""
        versions = self.history(stem, obj=obj)
        version = versions[-1] if version is None else version
        if version not in versions:
            raise WorkspaceError(f"{stem} has no version {version!r}; it has {', '.join(map(str, versions))}.")
        record, status, image_path = self._record(stem, obj, version)
        shape = tuple(record["image_size"][::-1])
        seeds_path = self._file(stem, version, "seeds", obj)
        seeds = read_seeds(seeds_path, shape) if obj == 0 or seeds_path.is_file() else np.zeros(shape, np.uint8)
        return Entry(stem, image_path, read_mask(self._file(stem, version, "mask", obj), shape), seeds, record,
                     version, status, obj, record_category(record))

    def first_record(self, stem: str, obj: int, version: int = 0) -> dict:
        """A version's record of the object, without its mask or seeds; version 0's (the default) says where it
        came from (``source``) and its first quality."""
        return self._record(stem, obj, version, photo=False)[0]

    def load_mask(self, item: Item) -> np.ndarray:
        """The bool (H, W) mask of the version ``item`` lists, without reading its record or seeds."""
        return read_mask(self._file(item.stem, item.version, "mask", item.obj), item.image_size[::-1])

    # ------------------------------------------------------------------------------------------- writing
    def save(self, stem: str, *, mask_hw: np.ndarray, seeds_hw: np.ndarray, record: dict, base_version: int,
             status: str, obj: int = 0) -> int:
        """Write version ``base_version + 1`` of the object atomically and return its number; SaveConflict
        when ``base_version`` is not its newest version any more."""
        if status not in SAVED_STATUSES:
            raise ValueError(f"A saved version is {' or '.join(SAVED_STATUSES)}; got {status!r}.")
        if obj == 0 and seeds_hw is None:
            raise ValueError("Object 0 (segment-folder's) keeps a seed map with every version; seeds_hw is None.")
        return self._save(stem, obj, mask_hw, seeds_hw, record, base_version, status)

    def revert(self, stem: str, version: int, *, base_version: int, obj: int = 0) -> int:
        """A new version ("refined") equal to the older ``version``; the history is kept."""
        old = self.load(stem, version, obj=obj)
        record = {k: v for k, v in old.record.items() if k not in ("version", "status", "saved_at")}
        return self.save(stem, mask_hw=old.mask_hw, seeds_hw=old.seeds_hw, record={**record, "reverted_from": version},
                         base_version=base_version, status="refined", obj=obj)

    def delete_object(self, stem: str, obj: int, *, base_version: int, by: str | None = None) -> int:
        """A new version of the object marked "deleted" (mask and history kept); SaveConflict as ``save``.
        ``by``: a program that withdrew its own object (its record's ``deleted_by``); None: a person."""
        old = self.load(stem, base_version, obj=obj)
        record = old.record if by is None else {**old.record, "deleted_by": by}
        return self._save(stem, obj, old.mask_hw, old.seeds_hw, record, base_version, "deleted")

    def set_category(self, stem: str, obj: int, category: Category, *, base_version: int) -> int:
        """A new version of the object with ``category`` (an accepted object stays accepted)."""
        if not isinstance(category, Category):
            raise ValueError(f"category is a Category; got {type(category).__name__}.")
        old = self.load(stem, base_version, obj=obj)
        status = old.status if old.status in SAVED_STATUSES else "refined"
        return self._save(stem, obj, old.mask_hw, old.seeds_hw, {**old.record, "category": category.to_json()},
                          base_version, status)

    def add_object(self, stem: str, *, mask_hw: np.ndarray, category: Category | None, image: str | None = None,
                   seeds_hw: np.ndarray | None = None, status: str = "added", quality: float | None = None,
                   source: dict | None = None, iscrowd: bool = False, durable: bool = True) -> int:
        """A new object of the photo ``stem`` (version 0, ``status`` one of FIRST_STATUSES) and its id. ``image``
        (the photo's name in images/) is needed only when the photo has no object yet; ``durable=False``: no
        fsync (``workspace_files.publish``), for an import that syncs once per photo."""
        if status not in FIRST_STATUSES:
            raise ValueError(f"A new object's status is {', '.join(FIRST_STATUSES)}; got {status!r}.")
        check_stem(stem)
        image, size = self._photo(stem, image)
        mask = checked_mask(mask_hw, size, stem)
        record = {"image": image, "image_size": list(size), "category": None if category is None else category.to_json(),
                  "quality": checked_quality(quality, "quality"), "iscrowd": bool(iscrowd), "source": source or {}}
        files = version_files(record, mask, seeds_hw, 0, status, with_rle=False)
        folder = self._inside(f"refinements/{stem}")
        for _ in range(100):  # another session may take the next id first: then the one after it
            obj = max([0] + self._object_ids(stem)) + 1
            try:
                publish(folder, f"o{obj:04d}", {f"v0000/{name}": data for name, data in files.items()}, durable=durable)
                return obj
            except TargetExists:
                continue
        raise WorkspaceError(f"No free object id for {stem} after 100 tries.")

    # ------------------------------------------------------------------------------------------- inside
    def _save(self, stem, obj, mask_hw, seeds_hw, record, base_version, status) -> int:
        if isinstance(base_version, bool) or not isinstance(base_version, int) or base_version < 0:
            raise ValueError(f"base_version is the version the edit started from, 0 or more; got {base_version!r}.")
        if not isinstance(record, dict):
            raise ValueError(f"The record must be a dict; got {type(record).__name__}.")
        first, _, _ = self._record(stem, obj, 0)
        mask = checked_mask(mask_hw, tuple(first["image_size"]), stem)
        if "category" in record and record["category"] is not None:
            Category.from_json(record["category"])
        keep = {k: first[k] for k in ("image", "image_size", "quality", "source", "iscrowd") if k in first}
        files = version_files({**record, **keep}, mask, seeds_hw, base_version + 1, status, with_rle=obj == 0)
        current = self.history(stem, obj=obj)[-1]
        if current != base_version:
            raise SaveConflict(stem, base_version, current, obj)
        folder = self._inside(f"refinements/{stem}" if obj == 0 else f"refinements/{stem}/o{obj:04d}")
        try:
            publish(folder, f"v{base_version + 1:04d}", files)
        except TargetExists:
            raise SaveConflict(stem, base_version, self.history(stem, obj=obj)[-1], obj) from None
        return base_version + 1

    def _inside(self, relative: str) -> Path:
        return resolve_inside(self.root, relative)

    def _scan(self) -> tuple[list[Item], list[tuple[str, str]]]:
        items, problems = [], []
        for stem in self._stems():
            try:
                ids = self._object_ids(stem)
            except (WorkspaceError, OSError) as exc:
                problems.append((stem, str(exc)))
                continue
            for obj in ids:
                try:
                    items.append(self._item(stem, obj))
                except (WorkspaceError, OSError, KeyError, TypeError, ValueError) as exc:
                    problems.append((stem, str(exc) if obj == 0 else f"object {obj}: {exc}"))
        return items, problems

    def _stems(self) -> list[str]:
        stems = {n.removesuffix(".json") for n in os.listdir(self._inside("segmentations"))
                 if n.endswith(".json") and not n.startswith(".")}
        refinements = self._inside("refinements")
        if refinements.is_dir():
            stems.update(n for n in os.listdir(refinements) if not n.startswith("."))
        return sorted(stems)

    def _object_ids(self, stem: str) -> list[int]:
        """0 when segment-folder cut the photo, then every object folder's id."""
        ids = [0] if os.path.lexists(self.root / "segmentations" / f"{stem}.json") else []
        folder = self._inside(f"refinements/{stem}")
        if folder.is_dir():
            ids += sorted(int(m[1]) for n in os.listdir(folder) if (m := _OBJECT_DIR.fullmatch(n)) and int(m[1]) > 0)
        return ids

    def _item(self, stem: str, obj: int) -> Item:
        if obj == 0:  # segment-folder's record holds the quality; read it once
            record0, image_path = self._version0(stem)
            version = ([0] + [v for v in self._versions(stem, 0) if v > 0])[-1]
            record, status, _ = ((record0, "automatic", image_path) if version == 0
                                 else self._record(stem, 0, version, photo=False))  # the photo: checked with record0
            quality = record0["quality"]
        else:
            version = self.history(stem, obj=obj)[-1]
            record, status, _ = self._record(stem, obj, version)
            quality = record.get("quality")
        kinds = ("mask", "seeds") if obj == 0 else ("mask",)
        for kind in kinds:
            if not self._file(stem, version, kind, obj).is_file():
                raise WorkspaceError(f"its {kind} file for version {version} is missing")
        category = record_category(record)
        bbox = None if record.get("bbox") is None else tuple(int(v) for v in record["bbox"])
        source = record.get("source") if isinstance(record.get("source"), dict) else {}
        ids = tuple(v if isinstance(v, int) and not isinstance(v, bool) else None
                    for v in (source.get("image_id"), source.get("annotation_id")))
        return Item(stem, record["image"], category.name if category else "", category.class_index if category else None,
                    status, version, quality, bbox, tuple(record["image_size"]), obj, category,
                    int(record.get("area") or 0), bool(record.get("iscrowd", False)), ids)

    def _record(self, stem: str, obj: int, version: int, *, photo: bool = True) -> tuple[dict, str, Path | None]:
        """A version's record, checked, its status, and the photo's path (checked there; None unless ``photo``)."""
        if obj == 0 and version == 0:
            record, image_path = self._version0(stem)
            return record, "automatic", image_path
        where = (f"refinements/{stem}/v{version:04d}/record.json" if obj == 0
                 else f"refinements/{stem}/o{obj:04d}/v{version:04d}/record.json")
        record = read_json(self._inside(where))
        if obj == 0:
            check_record(record, where)
        else:
            check_object_record(record, where)
        allowed = FIRST_STATUSES if version == 0 else SAVED_STATUSES + ("deleted",)
        if record.get("status") not in allowed:
            raise WorkspaceError(f"{where}: status is {' or '.join(allowed)}; got {record.get('status')!r}.")
        return record, record["status"], self._photo_path(record, where) if photo else None

    def _version0(self, stem: str) -> tuple[dict, Path]:
        """segment-folder's record of ``stem``, checked, and the photo's path."""
        check_stem(stem)
        record = read_json(self._inside(f"segmentations/{stem}.json"))
        check_record(record, f"segmentations/{stem}.json")
        image_path = self._photo_path(record, f"segmentations/{stem}.json")
        checked_quality(record.get("quality"), f"segmentations/{stem}.json: quality", WorkspaceError)
        return record, image_path

    def _photo_path(self, record: dict, where: str) -> Path:
        image = record.get("image")
        if not isinstance(image, str):
            raise WorkspaceError(f"{where} names no photo (its 'image' field).")
        image_path = self._inside(f"images/{image}")
        if not image_path.is_file():
            raise WorkspaceError(f"The photo images/{image} of {where.split('/')[1].removesuffix('.json')} is missing.")
        return image_path

    def _photo(self, stem: str, image: str | None) -> tuple[str, tuple[int, int]]:
        """The photo's name and (W, H): its objects', or ``image``'s read from the file."""
        for obj in self._object_ids(stem):
            record, _, _ = self._record(stem, obj, 0)
            return record["image"], tuple(record["image_size"])
        if image is None:
            raise WorkspaceError(f"{stem} has no object yet: name its photo in images/.")
        path = self._photo_path({"image": image}, f"images/{stem}")
        try:
            with Image.open(path) as photo:
                size = photo.size
        except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
            raise WorkspaceError(f"images/{image} is not a readable photo ({exc}).") from None
        if size[0] * size[1] > MAX_PIXELS:
            raise WorkspaceError(f"images/{image} is {size[0]}×{size[1]}; the limit is {MAX_PIXELS / 1e6:.0f} MP.")
        return image, size

    def _versions(self, stem: str, obj: int) -> list[int]:
        folder = self._inside(f"refinements/{stem}" if obj == 0 else f"refinements/{stem}/o{obj:04d}")
        if not folder.is_dir():
            return []
        return sorted(int(m[1]) for n in os.listdir(folder) if (m := _VERSION_DIR.fullmatch(n)))

    def _file(self, stem: str, version: int, kind: str, obj: int = 0) -> Path:
        if obj == 0:
            if version == 0:
                return self._inside(f"segmentations/{stem}_{kind}.png")
            return self._inside(f"refinements/{stem}/v{version:04d}/{kind}.png")
        return self._inside(f"refinements/{stem}/o{obj:04d}/v{version:04d}/{kind}.png")


def _queue_key(item: Item) -> tuple:
    rank = {"accepted": 1, "deleted": 2}.get(item.status, 0)
    if rank:
        return (rank, False, 0.0, item.stem, item.obj)
    return (0, item.quality is not None, item.quality or 0.0, item.stem, item.obj)  # unknown quality counts as worst
