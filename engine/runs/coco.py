"""The reviewed masks of a workspace as a COCO instances data set (Lin et al. 2014, "Microsoft COCO", §3).

One image entry per photo, one annotation per non-empty mask (the newest version's), its
segmentation an uncompressed RLE ``{"size": [H, W], "counts": [...]}`` (``engine.segmentation.masks``), which
``pycocotools.coco.COCO.annToMask`` reads. Categories are the ImageNet classes used, ``id`` = class
index + 1 (COCO ids start at 1), with their WordNet ids. The masks are the segmentation of
Simonyan, Vedaldi & Zisserman (2013, §3.2), refined and accepted in ``engine.runs.workspace``.
"""
from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from engine.runs.workspace import Workspace
from engine.segmentation.cut import bounding_box
from engine.segmentation.masks import encode_rle

INCLUDE = ("accepted", "all")  # accepted: only the masks a person accepted; all: the newest of every photo


def export_coco(workspace: Workspace, *, include: str = "accepted") -> dict:
    """The COCO instances dict of the workspace's photos (``include``: "accepted" or "all")."""
    from engine.models import imagenet_categories
    from engine.runs.localisation import imagenet_wnids  # imports torch: only when exporting

    if include not in INCLUDE:
        raise ValueError(f"include is {' or '.join(INCLUDE)}; got {include!r}.")
    items = sorted((i for i in workspace.items() if include == "all" or i.status == "accepted"), key=lambda i: i.stem)
    images, annotations, used = [], [], set()
    for image_id, item in enumerate(items, start=1):
        width, height = item.image_size
        images.append({"id": image_id, "file_name": item.image, "width": width, "height": height})
        annotation = _annotation(workspace.load_mask(item))
        if annotation is not None:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": item.class_index + 1, **annotation})
            used.add(item.class_index)
    names, wnids = imagenet_categories(), imagenet_wnids()
    categories = [{"id": c + 1, "name": names[c], "supercategory": "imagenet", "wnid": wnids[c]} for c in sorted(used)]
    now = datetime.now(timezone.utc)
    info = {"description": f"Object masks reviewed in workspace {workspace.root.name} ({include})",
            "version": "1.0", "year": now.year, "date_created": now.isoformat(timespec="seconds"),
            "contributor": "saliency segmentation (Simonyan et al. 2013, §3.2), reviewed by hand", "url": ""}
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": categories}


def _annotation(is_foreground_hw) -> dict | None:
    """segmentation, area, bbox and iscrowd of one mask; None when it is empty."""
    bbox = bounding_box(is_foreground_hw)
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    return {"segmentation": encode_rle(is_foreground_hw), "area": int(is_foreground_hw.sum()),
            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "iscrowd": 0}


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
