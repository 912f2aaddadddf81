"""The reviewed objects of a workspace as a COCO instances data set (Lin et al. 2014, "Microsoft COCO", §3), or
as instance-id PNGs.

One image entry per photo with an exported object, one annotation per non-empty object (its newest
version; deleted objects left out), its segmentation an uncompressed RLE ``{"size": [H, W], "counts": [...]}``
(``engine.segmentation.masks``), which ``pycocotools.coco.COCO.annToMask`` reads, ``iscrowd`` as imported.
Categories: the imported ones with their ids and names, as they were; then the others used, appended
with new ids: ImageNet classes with their WordNet ids (``id`` = class index + 1 in a workspace with no
imported categories, as before), names a person typed, and "object" for objects without a category.
Imported image and annotation ids are kept where they do not collide. The masks are the segmentation of
Simonyan, Vedaldi & Zisserman (2013, §3.2), or imported ones, refined and accepted in ``engine.runs.workspace``.

``write_instance_pngs`` writes ``<stem>.png`` per photo, each object's pixels its position (1, 2, ...) among
the photo's exported objects (a later object covers an earlier one where they overlap), in the layout
``import-segmentations`` reads.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from engine.runs.segment_folder import write_atomic
from engine.runs.workspace import Category, Item, Workspace
from engine.segmentation.cut import bounding_box
from engine.segmentation.masks import encode_rle

INCLUDE = ("accepted", "all")  # accepted: only the objects a person accepted; all: the newest of every object
FORMATS = ("json", "png")
UNCATEGORISED = "object"  # the category of objects that have none (an imported PNG's)


def exported_items(workspace: Workspace, include: str) -> list[Item]:
    """The objects to export, by photo and object id."""
    if include not in INCLUDE:
        raise ValueError(f"include is {' or '.join(INCLUDE)}; got {include!r}.")
    items = workspace.items()  # deleted objects are not in the queue
    return sorted((i for i in items if include == "all" or i.status == "accepted"), key=lambda i: (i.stem, i.obj))


def export_coco(workspace: Workspace, *, include: str = "accepted") -> dict:
    """The COCO instances dict of the workspace's objects (``include``: "accepted" or "all")."""
    items = exported_items(workspace, include)
    photos = sorted({i.stem: i for i in items}.values(), key=lambda i: i.stem)
    first_image_id = {}
    for item in items:
        if item.imported_ids[0] is not None:
            first_image_id.setdefault(item.stem, item.imported_ids[0])
    image_ids = _ids([first_image_id.get(p.stem) for p in photos])
    images = [{"id": image_id, "file_name": p.image, "width": p.image_size[0], "height": p.image_size[1]}
              for image_id, p in zip(image_ids, photos, strict=True)]
    by_stem = dict(zip((p.stem for p in photos), image_ids, strict=True))
    shown = [(item, a) for item in items if (a := _annotation(workspace.load_mask(item))) is not None]
    category_ids, categories = _categories(workspace, [item for item, _ in shown])
    annotation_ids = _ids([item.imported_ids[1] for item, _ in shown])
    annotations = [{"id": ann_id, "image_id": by_stem[item.stem], "category_id": category_ids[_category_key(item.category)],
                    **annotation, "iscrowd": int(item.iscrowd)} for ann_id, (item, annotation) in zip(annotation_ids, shown, strict=True)]
    now = datetime.now(UTC)
    info = {"description": f"Object masks reviewed in workspace {workspace.root.name} ({include})",
            "version": "1.0", "year": now.year, "date_created": now.isoformat(timespec="seconds"),
            "contributor": "saliency segmentation (Simonyan et al. 2013, §3.2), reviewed by hand", "url": ""}
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": categories}


def _ids(wanted: list) -> list[int]:
    """``wanted`` ids kept where they are whole numbers used once; the others numbered after the largest."""
    counts = defaultdict(int)
    for w in wanted:
        counts[w] += 1
    keep = [isinstance(w, int) and not isinstance(w, bool) and counts[w] == 1 for w in wanted]
    next_id = max([w for w, k in zip(wanted, keep, strict=True) if k], default=0) + 1
    out = []
    for w, k in zip(wanted, keep, strict=True):
        if k:
            out.append(w)
        else:
            out.append(next_id)
            next_id += 1
    return out


def _category_key(category: Category | None) -> tuple:
    if category is None:
        return ("name", UNCATEGORISED)
    if category.id is not None:
        return ("id", category.id)
    if category.class_index is not None:
        return ("imagenet", category.class_index)
    return ("name", category.name)


def _categories(workspace: Workspace, items: list[Item]) -> tuple[dict, list[dict]]:
    """category key -> COCO id, and the categories list: the imported ones first, as they were, then the new."""
    table = {c.id: {"id": c.id, "name": c.name, **({"supercategory": c.supercategory} if c.supercategory is not None else {})}
             for c in workspace.categories()}
    used = {_category_key(i.category): i.category for i in items}
    for key, category in used.items():  # an imported id the table lacks (an object written by hand): kept, with its name
        if key[0] == "id" and key[1] not in table:
            table[key[1]] = {"id": key[1], "name": category.name}
    ids = {("id", cid): cid for cid in table}
    by_name = {entry["name"]: cid for cid, entry in sorted(table.items(), reverse=True)}
    legacy = not table  # nothing imported: an ImageNet class keeps the id it always had, its index + 1
    wnids = names = None
    next_id = max(table, default=0) + 1
    for key in sorted(set(used) - set(ids), key=lambda k: (k[0] != "imagenet", str(k[1]).zfill(4))):
        if key[0] == "imagenet":
            if wnids is None:
                from engine.models import imagenet_categories
                from engine.runs.localisation import imagenet_wnids  # imports torch: only when an ImageNet class is used

                names, wnids = imagenet_categories(), imagenet_wnids()
            cid = key[1] + 1 if legacy else next_id
            table[cid] = {"id": cid, "name": names[key[1]], "supercategory": "imagenet", "wnid": wnids[key[1]]}
        elif key[1] in by_name:  # a typed name that is an imported category's
            ids[key] = by_name[key[1]]
            continue
        else:
            cid = next_id
            table[cid] = {"id": cid, "name": key[1]}
        ids[key] = cid
        next_id = max(next_id, cid) + 1
    return ids, [table[cid] for cid in sorted(table)]


def _annotation(is_foreground_hw) -> dict | None:
    """segmentation, area and bbox of one mask; None when it is empty."""
    bbox = bounding_box(is_foreground_hw)
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    return {"segmentation": encode_rle(is_foreground_hw), "area": int(is_foreground_hw.sum()),
            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]}


def write_coco(workspace: Workspace, out_path: str | Path, *, include: str = "accepted") -> dict:
    """Export and write the data set to ``out_path`` atomically (a temporary file renamed over it)."""
    dataset = export_coco(workspace, include=include)
    out = Path(out_path)
    if out.is_dir():
        raise ValueError(f"{out} is a folder; --out names the JSON file to write.")
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{out.name}-", dir=out.parent if str(out.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(dataset, file, separators=(",", ":"))
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0o600
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dataset


def instance_palette() -> list[int]:
    """Pascal VOC's colour map (index i's bits spread over R, G, B from the high bit down), flattened."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def write_instance_pngs(workspace: Workspace, out_dir: str | Path, *, include: str = "accepted") -> dict:
    """``out_dir/<stem>.png`` per photo: each exported object's pixels its position 1, 2, ... (at most 255)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; with --format png, --out is the folder for the PNGs.")
    by_photo: dict[str, list[Item]] = defaultdict(list)
    for item in exported_items(workspace, include):
        by_photo[item.stem].append(item)
    palette, written, objects, skipped = instance_palette(), 0, 0, []
    for stem, items in sorted(by_photo.items()):
        if len(items) > 255:
            skipped.append({"stem": stem, "reason": f"{len(items)} objects; an 8-bit PNG holds 255"})
            continue
        width, height = items[0].image_size
        ids = np.zeros((height, width), np.uint8)
        for value, item in enumerate(items, start=1):
            ids[workspace.load_mask(item)] = value
        image = Image.fromarray(ids, mode="P")
        image.putpalette(palette)
        from io import BytesIO

        buffer = BytesIO()
        image.save(buffer, format="PNG")
        write_atomic(out / f"{stem}.png", buffer.getvalue())
        written, objects = written + 1, objects + len(items)
    return {"images": written, "objects": objects, "skipped": skipped}
