"""Importing anyone's segmentations into a review workspace (``engine.runs.workspace``), to be refined by hand
with the §3.2 tools (Simonyan, Vedaldi & Zisserman 2013).

``ANNOTATIONS`` is either
- a COCO instances JSON (Lin et al. 2014, §3): ``images``, ``annotations``, ``categories``; polygons,
  uncompressed or compressed RLE (``engine.segmentation.coco_rle``), ``iscrowd`` kept as a flag, a
  ``score`` (a model's results file) kept as the queue's quality; or
- a folder of mask PNGs: ``<stem>.png`` for the photo ``<stem>.<ext>``, either one binary mask or an
  instance-id map (8-bit or palette, each value 1..254 an object, as DAVIS and Pascal VOC
  ``SegmentationObject`` store them; VOC's 255 is its "void" border, an object only in a mask that holds
  nothing else), or ``<stem>_<k>.png``, one binary mask per object.

Each object becomes its photo's next object, version 0, status "imported", with where it came from. A bad
annotation is reported (file, object, reason) and skipped, never fatal. An object whose photo already holds
the same mask with the same category is not added again, so that a re-run adds nothing twice. Every object
is published atomically (``Workspace.add_object``) without an fsync of its own, the disk flushed every
``SYNC_SECONDS`` and at the end (``os.sync``): a crashed process leaves the objects imported so far and a
re-run adds the rest; a power cut can leave the objects of the last seconds unreadable, listed by
``Workspace.problems()``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from engine.images import MAX_PIXELS
from engine.runs.segment_folder import write_atomic
from engine.runs.workspace import CATEGORIES_FILE, Category, Workspace, WorkspaceError, open_workspace
from engine.segmentation.coco_rle import decode_segmentation

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")  # compared lower-case
SYNC_SECONDS = 2.0  # a power cut loses at most the objects of the last seconds (a re-run adds them again)
MODES = ("copy", "link")  # how a photo gets into WORKSPACE/images: a copy, or a hard link (same file system)


class Report:
    """The problems met on the way, by file and object, for the summary."""

    def __init__(self):
        self.problems: list[dict] = []

    def __call__(self, file: str, obj, reason: str) -> None:
        self.problems.append({"file": file, "object": obj, "reason": reason})


def import_segmentations(images_dir: str | Path, annotations: str | Path, out: str | Path, *, mode: str = "copy",
                         on_step: Callable[[int, int], None] | None = None) -> dict:
    """Import ``annotations`` about the photos of ``images_dir`` into the workspace ``out`` (made when
    missing); ``on_step(done, total)`` after each photo. Returns the summary (counts and problems)."""
    if mode not in MODES:
        raise ValueError(f"mode is {' or '.join(MODES)}; got {mode!r}.")
    images_dir, annotations = Path(images_dir), Path(annotations)
    if not images_dir.is_dir():
        raise ValueError(f"{images_dir} is not a folder of photos.")
    if not annotations.exists():
        raise ValueError(f"No such file or folder: {annotations}")
    space = _workspace(Path(out))
    report = Report()
    if annotations.is_dir():
        photos = _png_folder(images_dir, annotations, report)
        kind = "png"
    else:
        photos = _coco_file(images_dir, annotations, space, report)
        kind = "coco"
    added = already = 0
    seen: set[str] = set()
    synced = time.monotonic()
    for done, (name, source, objects) in enumerate(photos, start=1):
        stem = Path(name).stem
        if stem in seen:
            report(name, None, f"another photo already has the name {stem!r} (without its extension); skipped")
        elif _place_photo(source, space.root / "images" / name, mode, report):
            seen.add(stem)
            a, b = _add_objects(space, stem, name, objects, report)
            added, already = added + a, already + b
        if time.monotonic() - synced > SYNC_SECONDS or done == len(photos):
            os.sync()  # one flush for many objects: five fsyncs an object made an import of 5,000 take minutes
            synced = time.monotonic()
        if on_step is not None:
            on_step(done, len(photos))
    return {"format": kind, "photos": len(seen), "objects": added, "already_imported": already,
            "categories": len(space.categories()), "problems": report.problems, "out": str(space.root)}


def _workspace(root: Path) -> Workspace:
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} is a file; --out is the workspace folder.")
    for folder in ("images", "segmentations", "refinements"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return open_workspace(root)


# ------------------------------------------------------------------------------------------- COCO
def _coco_file(images_dir: Path, path: Path, space: Workspace, report: Report) -> list:
    """[(photo name, photo path, [(object label, mask thunk, category, extra)])] from a COCO instances JSON."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable COCO JSON ({exc}).") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations")):
        raise ValueError(f"{path} is not a COCO instances file: it needs 'images' and 'annotations' lists.")
    categories = _merge_categories(space, data.get("categories") or [], path.name, report)
    images, by_image = {}, defaultdict(list)
    for n, image in enumerate(data["images"]):
        try:
            if _plain(image["id"]) is None:
                raise TypeError("an image id is a number")
            images[image["id"]] = (str(image["file_name"]), int(image["width"]), int(image["height"]))
        except (KeyError, TypeError, ValueError):
            report(path.name, f"images[{n}]", "an image entry needs id, file_name, width and height; skipped")
    for n, ann in enumerate(data["annotations"]):
        ann_id = _plain(ann.get("id")) if isinstance(ann, dict) else None
        ann_id = f"annotations[{n}]" if ann_id is None else ann_id
        if not isinstance(ann, dict) or _plain(ann.get("image_id")) not in images:
            report(path.name, ann_id, "its image_id names no image of the file; skipped")
        elif _plain(ann.get("category_id")) not in categories:
            report(path.name, ann_id, f"unknown category id {ann.get('category_id')!r}; skipped")
        else:
            by_image[ann["image_id"]].append((ann_id, ann))
    photos = []
    for image_id, anns in by_image.items():
        file_name, width, height = images[image_id]
        source = _find_photo(images_dir, file_name)
        if source is None:
            for ann_id, _ in anns:
                report(file_name, ann_id, f"the photo {file_name} is not in {images_dir}; skipped")
            continue
        objects = [(ann_id, _coco_mask(ann, width, height), categories[ann["category_id"]],
                    {"quality": _score(ann), "iscrowd": bool(ann.get("iscrowd", 0)),
                     "source": {"kind": "coco", "file": path.name, "annotation_id": ann_id, "image_id": image_id}})
                   for ann_id, ann in anns]
        photos.append((Path(file_name).name, source, objects, (width, height)))
    return [(name, source, _sized(objects, size)) for name, source, objects, size in sorted(photos, key=lambda p: p[0])]


def _plain(value):
    """An id as JSON gives it (a number or text), else None: a list or an object names nothing."""
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def _coco_mask(ann: dict, width: int, height: int):
    return lambda: decode_segmentation(ann.get("segmentation"), height, width)


def _score(ann: dict) -> float | None:
    score = ann.get("score")
    return float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) and 0 <= score <= 1 else None


def _sized(objects: list, size: tuple[int, int]) -> list:
    """The COCO file's (W, H) of the photo travels with each object: the photo on disk must agree."""
    return [(label, thunk, category, {**extra, "size": size}) for label, thunk, category, extra in objects]


def _merge_categories(space: Workspace, table: list, file: str, report: Report) -> dict[int, Category]:
    """The file's categories by id, added to the workspace's table (an id it already holds keeps its name)."""
    known = {c.id: c for c in space.categories()}
    found: dict[int, Category] = {}
    for n, entry in enumerate(table):
        try:
            category = Category.from_json({k: entry.get(k) for k in ("name", "id", "supercategory")}, f"categories[{n}]")
        except (WorkspaceError, AttributeError) as exc:
            report(file, f"categories[{n}]", f"{exc}; skipped")
            continue
        if category.id is None:
            report(file, f"categories[{n}]", "a category needs an id; skipped")
            continue
        if category.id in known and known[category.id].name != category.name:
            report(file, f"categories[{n}]", f"id {category.id} is {known[category.id].name!r} in the workspace, "
                                             f"not {category.name!r}; the workspace's name is kept")
            category = known[category.id]
        found[category.id] = known.setdefault(category.id, category)
    payload = json.dumps([c.to_json() for c in sorted(known.values(), key=lambda c: c.id)], indent=1).encode()
    write_atomic(space.root / CATEGORIES_FILE, payload)
    return found


# ------------------------------------------------------------------------------------------- PNG folder
def _png_folder(images_dir: Path, folder: Path, report: Report) -> list:
    photos = {p.stem: p for p in sorted(images_dir.iterdir()) if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file()}
    by_photo: dict[str, list] = defaultdict(list)
    for png in sorted(folder.iterdir()):
        if png.suffix.lower() != ".png" or png.name.startswith("."):
            continue
        stem, _, k = png.stem.rpartition("_")
        if png.stem in photos:
            by_photo[png.stem].append((png, None))
        elif stem in photos and k.isdigit():
            by_photo[stem].append((png, int(k)))
        else:
            report(png.name, None, f"no photo in {images_dir} is named {png.stem} (or {stem}) with {', '.join(PHOTO_SUFFIXES)}; skipped")
    out = []
    for stem, pngs in sorted(by_photo.items()):
        objects = []
        for png, k in pngs:
            values = _png_values(png, report)
            for value, thunk in values:
                label = k if k is not None else (None if len(values) == 1 else value)
                objects.append((label, thunk, None, {"source": {"kind": "png", "file": png.name, "value": value},
                                                     "file": png.name}))
        out.append((photos[stem].name, photos[stem], objects))
    return out


def _png_values(png: Path, report: Report) -> list:
    """[(value, mask thunk)] of one mask PNG: every object it holds, or [] (reported) when unreadable."""
    try:
        with Image.open(png, formats=["PNG"]) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError(f"{image.width}×{image.height} is over {MAX_PIXELS / 1e6:.0f} MP")
            if image.mode not in ("1", "L", "P"):
                raise ValueError(f"a mask PNG is 1-bit, 8-bit grey or palette; this one is {image.mode}")
            ids = np.asarray(image).astype(np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        report(png.name, None, f"unreadable mask ({exc}); skipped")
        return []
    values = [int(v) for v in np.unique(ids) if v]
    if len(values) > 1 and 255 in values:
        values.remove(255)  # VOC's void border between objects
    return [(v, (lambda v=v: ids == v)) for v in values]


# ------------------------------------------------------------------------------------------- photos and objects
def _find_photo(images_dir: Path, file_name: str) -> Path | None:
    for candidate in (images_dir / file_name, images_dir / Path(file_name).name):
        if candidate.is_file():
            return candidate
    return None


def _place_photo(source: Path, target: Path, mode: str, report: Report) -> bool:
    """The photo at ``target`` (copied or hard-linked there atomically); False, reported, when another file has its name."""
    if target.exists():
        if os.path.samefile(source, target) or _same_bytes(source, target):
            return True
        report(source.name, None, f"the workspace already holds a different photo named {target.name}; skipped")
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        if mode == "link":
            os.unlink(tmp)
            try:
                os.link(source, tmp)
            except OSError as exc:
                raise ValueError(f"--link makes hard links, which need the photos and the workspace on one file "
                                 f"system ({exc}); use --copy.") from None
        else:
            shutil.copyfile(source, tmp)  # flushed with the objects (os.sync)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _same_bytes(a: Path, b: Path) -> bool:
    import filecmp

    return filecmp.cmp(a, b, shallow=False)


def _photo_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as photo:
            return photo.size
    except (OSError, SyntaxError, Image.DecompressionBombError):
        return None


def _add_objects(space: Workspace, stem: str, name: str, objects: list, report: Report) -> tuple[int, int]:
    """Add each readable object not already there; (added, already there)."""
    size = _photo_size(space.root / "images" / name)
    if size is None:
        for label, *_ in objects:
            report(name, label, "the photo is not a readable image; skipped")
        return 0, 0
    if size[0] * size[1] > MAX_PIXELS:
        report(name, None, f"the photo is {size[0]}×{size[1]}; the limit is {MAX_PIXELS / 1e6:.0f} MP; skipped")
        return 0, 0
    try:
        existing = space.objects(stem)
    except (WorkspaceError, OSError) as exc:
        report(name, None, f"the workspace's objects of this photo cannot be read ({exc}); skipped")
        return 0, 0
    if existing and existing[0].image != name:
        report(name, None, f"the workspace's photo {existing[0].image} has the same name without its extension; skipped")
        return 0, 0
    present = {_fingerprint(space.first_record(stem, o.obj)) for o in existing if o.obj > 0}
    added = already = 0
    for label, thunk, category, extra in objects:
        file = extra.get("file", extra.get("source", {}).get("file", name))
        if extra.get("size", size) != size:
            report(file, label, f"the annotation's photo is {extra['size'][0]}×{extra['size'][1]} but {name} is "
                                f"{size[0]}×{size[1]}; skipped")
            continue
        try:
            mask = thunk()
        except ValueError as exc:
            report(file, label, f"{exc} Skipped.")
            continue
        if mask.shape != size[::-1]:
            report(file, label, f"the mask is {mask.shape[1]}×{mask.shape[0]} but the photo {name} is {size[0]}×{size[1]}; skipped")
            continue
        if not mask.any():
            report(file, label, "the mask is empty; skipped")
            continue
        digest = hashlib.sha1(np.packbits(mask).tobytes()).hexdigest()
        key = (digest, None if category is None else category.name)
        if key in present:
            already += 1
            continue
        source = {**extra.get("source", {}), "mask_sha1": digest}
        space.add_object(stem, mask_hw=mask, category=category, image=name, status="imported",
                         quality=extra.get("quality"), source=source, iscrowd=extra.get("iscrowd", False), durable=False)
        present.add(key)
        added += 1
    return added, already


def _fingerprint(record: dict) -> tuple:
    category = record.get("category")
    return record.get("source", {}).get("mask_sha1"), None if category is None else category.get("name")
