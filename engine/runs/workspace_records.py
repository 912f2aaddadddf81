"""The records of a review workspace's versions (``engine.runs.workspace``): what an object is (``Category``),
the checks a record read from disk passes, and the files one version is written as. The masks are the
segmentation of Simonyan, Vedaldi & Zisserman (2013, §3.2), or imported ones, refined by hand."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from engine.images import MAX_PIXELS
from engine.runs.workspace_files import WorkspaceError, encode_mask_png
from engine.segmentation.cut import AUTO_HARD_FOREGROUND, bounding_box
from engine.segmentation.masks import encode_rle, encode_seed_map


@dataclass(frozen=True)
class Category:
    """What an object is: an imported COCO category (``id``), an ImageNet class (``class_index``, ``wnid``),
    or a name a person typed (neither)."""

    name: str
    id: int | None = None  # the imported data set's category id
    class_index: int | None = None  # ImageNet-1k class 0..999
    wnid: str | None = None  # its WordNet id
    supercategory: str | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @staticmethod
    def from_json(value, where: str = "category") -> Category:
        if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"].strip():
            raise WorkspaceError(f"{where}: a category is {{'name': ..., optional 'id', 'class_index', 'wnid'}}; got {value!r}.")
        cid, index = value.get("id"), value.get("class_index")
        if cid is not None and (isinstance(cid, bool) or not isinstance(cid, int)):
            raise WorkspaceError(f"{where}: a category id is a whole number; got {cid!r}.")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 999):
            raise WorkspaceError(f"{where}: class_index is 0..999; got {index!r}.")
        extra = {k: value.get(k) for k in ("wnid", "supercategory")}
        if any(v is not None and not isinstance(v, str) for v in extra.values()):
            raise WorkspaceError(f"{where}: wnid and supercategory are text.")
        return Category(value["name"].strip(), cid, index, **extra)


def version_files(record: dict, mask: np.ndarray, seeds_hw, version: int, status: str, *, with_rle: bool) -> dict[str, bytes]:
    """record.json, mask.png and (when given) seeds.png of one version. ``with_rle``: the mask's RLE in the
    record too, as segment-folder's records hold it (object 0); an object's record stays small without it,
    which the queue reads for every object."""
    shape = mask.shape
    if seeds_hw is not None:
        seeds = np.asarray(seeds_hw)
        if seeds.shape != shape:
            raise ValueError(f"The seed map is {seeds.shape} but the photo is {shape} (H, W).")
        if seeds.dtype != np.uint8 or seeds.max(initial=0) > AUTO_HARD_FOREGROUND:
            raise ValueError(f"The seed map must be uint8 codes 0..{AUTO_HARD_FOREGROUND}.")
    bbox = bounding_box(mask)
    saved = {**{k: v for k, v in record.items() if k != "mask_rle"}, "version": version, "status": status,
             "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
             "bbox": None if bbox is None else list(bbox), "area": int(mask.sum())}
    if with_rle:
        saved["mask_rle"] = encode_rle(mask)
    try:
        text = json.dumps(saved, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"The record cannot be written as JSON ({exc}).") from None
    files = {"record.json": text.encode(), "mask.png": encode_mask_png(mask)}
    if seeds_hw is not None:
        files["seeds.png"] = encode_seed_map(seeds)
    return files


def checked_mask(mask_hw, size_wh: tuple[int, int], stem: str) -> np.ndarray:
    mask, shape = np.asarray(mask_hw), (size_wh[1], size_wh[0])
    if mask.shape != shape:
        raise ValueError(f"The mask is {mask.shape} but the photo of {stem} is {shape} (H, W).")
    if mask.dtype != bool:
        raise ValueError(f"The mask must be a bool array; got {mask.dtype}.")
    return mask


def checked_quality(quality, where: str, error=ValueError):
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, (int, float))
                                or not math.isfinite(quality) or not 0 <= quality <= 1):
        raise error(f"{where} is 0..1 or null; got {quality!r}.")
    return quality


def record_category(record: dict) -> Category | None:
    """The record's category; segment-folder's records name an ImageNet class (label, class_index)."""
    if "category" in record:
        return None if record["category"] is None else Category.from_json(record["category"])
    return Category(record["label"], class_index=record["class_index"])


def check_stem(stem: str) -> None:
    if not isinstance(stem, str) or not stem or stem.startswith(".") or re.search(r"[/\\\0]", stem):
        raise WorkspaceError(f"{stem!r} is not the name of an item (a photo's name without its extension).")


def check_size(record: dict, where: str) -> None:
    size = record.get("image_size")
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int and v > 0 for v in size)
            and size[0] * size[1] <= MAX_PIXELS):
        raise WorkspaceError(f"{where}: image_size is [W, H] of at most {MAX_PIXELS / 1e6:.0f} MP; got {size!r}.")


def check_record(record, where: str) -> None:
    """segment-folder's record (object 0): an ImageNet class, as label and class_index."""
    if not isinstance(record, dict):
        raise WorkspaceError(f"{where} is not a segmentation record (a JSON object).")
    class_index = record.get("class_index")
    if not isinstance(record.get("label"), str):
        raise WorkspaceError(f"{where}: label is a class name; got {record.get('label')!r}.")
    if isinstance(class_index, bool) or not isinstance(class_index, int) or not 0 <= class_index <= 999:
        raise WorkspaceError(f"{where}: class_index is 0..999; got {class_index!r}.")
    check_size(record, where)
    if record.get("category") is not None:
        Category.from_json(record["category"], where)


def check_object_record(record, where: str) -> None:
    if not isinstance(record, dict):
        raise WorkspaceError(f"{where} is not an object record (a JSON object).")
    check_size(record, where)
    if record.get("category") is not None:
        Category.from_json(record["category"], where)
    checked_quality(record.get("quality"), f"{where}: quality", WorkspaceError)
