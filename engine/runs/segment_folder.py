"""Pre-segmenting a folder (§3.2, Simonyan et al. 2013): for every photo, the three files the
segmentation page downloads, so that any of them can be opened on the page, or in a review
workspace, and refined by hand.

For ``<stem>.<ext>`` the output folder gets ``<stem>_mask.png`` (255 = object), ``<stem>_seeds.png``
(the seed map, palette PNG of seed codes) and ``<stem>.json`` (``engine.segmentation.presets.segmentation_record``
plus ``image``, the photo's file name, and ``quality``, the review queue's sort key). Each file is
written aside and renamed into place, so a killed run never leaves half a file.

With ``objects="several"`` the output folder is a review workspace's ``segmentations/`` (its photos in
``images/`` beside it) and a photo gets an object per instance of the class in the cut
(``presets.instance_segmentations``, the strongest first): the three files are the strongest instance's,
and every further instance becomes an object of the workspace, status "automatic" (``place_objects``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.catalog import DEFAULT_MODEL
from engine.images import encode_png, load_image
from engine.runs.batch import Proposal, photos_from, run_local
from engine.runs.localisation import imagenet_wnids
from engine.runs.workspace import Category, SaveConflict, Workspace, WorkspaceError
from engine.runs.workspace_files import resolve_inside
from engine.segmentation.masks import encode_seed_map
from engine.segmentation.presets import Preset, instance_segmentations, prepare_for, segment_with_preset, segmentation_record

OBJECTS = ("one", "several")  # per photo: the preset's cut; or one object per instance of the class
MADE_BY = "segment-folder"  # the ``source.made_by`` of the objects this module adds to a workspace


@dataclass(frozen=True)
class SegmentJob:
    """Everything a worker needs to build the stages by itself (for Ray actors)."""

    preset: Preset
    out_dir: str
    class_index: int | None = None  # None: each photo's top-1 class
    model: str = DEFAULT_MODEL
    weights: str = "pretrained"
    device: str | None = None
    cuda_math: str = "exact"
    objects: str = "one"  # OBJECTS; "several" needs out_dir to be a workspace's segmentations/
    max_objects: int = 5  # with "several": at most this many objects a photo

    def __post_init__(self):
        if self.objects not in OBJECTS:
            raise ValueError(f"objects is {' or '.join(OBJECTS)}; got {self.objects!r}.")
        if isinstance(self.max_objects, bool) or not isinstance(self.max_objects, int) or self.max_objects < 1:
            raise ValueError(f"max_objects is a whole number, 1 or more; got {self.max_objects!r}.")

    def stages(self, *, with_model: bool = True) -> SegmentStages:
        if not with_model:  # the driver's side: no torch imported
            return SegmentStages(None, self)
        from engine.models import load_model

        return SegmentStages(load_model(self.model, self.weights, device=self.device, math=self.cuda_math), self)


class SegmentStages:
    """Model stage: the class and its map; cut stage: the preset's segmentation; assemble: the files."""

    def __init__(self, model, job: SegmentJob):
        self.model, self.job = model, job
        several = {"objects": job.objects, "max_objects": job.max_objects} if job.objects == "several" else {}
        self.finish = functools.partial(cut_photo, preset=job.preset, **several)

    def propose(self, photo) -> Proposal:
        from engine.attribution.saliency import compute_saliency, predict

        image_hwc = load_image(photo.data)
        target = self.job.class_index
        if target is None:
            target = predict(self.model, image_hwc, top=1)[0].index
        saliency = compute_saliency(self.model, image_hwc, target=target, views=self.job.preset.views, method=self.job.preset.method)
        return Proposal(photo.name, image_hwc, (saliency.saliency_hw,), (saliency.class_index, saliency.label))

    def assemble(self, proposal: Proposal, cuts: list) -> dict:
        (cut,) = cuts
        class_index, label = proposal.context
        stem = Path(proposal.image).stem
        record = dict(cut["record"], class_index=class_index, label=label, model=self.job.model,
                      weights=self.job.weights, image=proposal.image)
        out = Path(self.job.out_dir)
        mask = unpack(cut)
        write_atomic(out / f"{stem}_mask.png", encode_png(mask.astype(np.uint8) * 255))
        write_atomic(out / f"{stem}_seeds.png", encode_seed_map(cut["seeds_hw"]))
        write_atomic(out / f"{stem}.json", json.dumps(record, indent=2).encode())
        line = {"image": proposal.image, "bbox": record["bbox"], "class_index": class_index, "label": label,
                "area": record["area"], "seeds_promoted": record["seeds_promoted"], "quality": record["quality"],
                "files": [f"{stem}_mask.png", f"{stem}_seeds.png", f"{stem}.json"]}
        if "more" not in cut:  # objects="one": the three files, as always
            return line
        space = Workspace(Path(os.path.abspath(out)).parent.resolve())  # check_workspace_layout made sure it is one
        try:
            ids = place_objects(space, stem, [unpack(m) for m in cut["more"]], category=imagenet_category(class_index, label),
                                qualities=[m["quality"] for m in cut["more"]], preset=self.job.preset.name)
        except (WorkspaceError, OSError) as exc:  # object 0's files are written; the line says what is missing
            return {"image": proposal.image, "error": f"{stem}'s further objects could not be written ({exc})"}
        return {**line, "objects": record["objects"], "object_ids": [0, *ids]}


def segment_photos(model, paths: Sequence[Path], out_dir: str | Path, *, preset: Preset, class_index: int | None = None,
                   objects: str = "one", max_objects: int = 5, on_step: Callable[[int, int], None] | None = None) -> list[dict]:
    """``segment-folder`` in this process on a loaded ``model``, one photo after another (no cut processes):
    each photo's three files into ``out_dir`` (and with ``objects="several"`` its further objects) and its line,
    as the command's; ``on_step(done, total)`` after each."""
    job = SegmentJob(preset, str(out_dir), class_index, model.name, model.weights, objects=objects, max_objects=max_objects)
    if objects == "several":
        for folder in {Path(p).parent for p in paths}:
            check_workspace_layout(folder, out_dir)
    stages = SegmentStages(model, job)
    lines: list[dict] = []

    def take(line: dict) -> None:
        lines.append(line)
        if on_step is not None:
            on_step(len(lines), len(paths))

    run_local(stages, photos_from(paths), jobs=1, on_line=take)
    return lines


def cut_photo(image_hwc: np.ndarray, saliency_hw: np.ndarray, *, preset: Preset, objects: str = "one",
              max_objects: int = 5) -> dict:
    """The cut stage: the segmentation, packed for the trip back (a bit per pixel), and its record. With
    ``objects="several"`` the segmentation is the strongest instance of the class and ``"more"`` holds the
    others (at most ``max_objects`` in all), each packed with its quality; a cut with no foreground at all
    is the preset's, as with "one"."""
    if objects not in OBJECTS:
        raise ValueError(f"objects is {' or '.join(OBJECTS)}; got {objects!r}.")
    if objects == "one":
        return _packed_cut(segment_with_preset(image_hwc, saliency_hw, preset), preset)
    prepared = prepare_for(image_hwc, preset)  # the instances' cut, and the preset's when that finds none
    found = instance_segmentations(image_hwc, saliency_hw, preset, max_instances=max_objects, prepared=prepared)
    if not found:
        found = [segment_with_preset(image_hwc, saliency_hw, preset, prepared=prepared)]
    cut = _packed_cut(found[0], preset)
    cut["record"]["objects"] = len(found)
    cut["more"] = [{**_packed(r.is_foreground_hw), "quality": _quality(r)} for r in found[1:]]
    return cut


def _packed_cut(result, preset: Preset) -> dict:
    record = segmentation_record(result, class_index=0, label="", model="", weights="", preset=preset)
    record["quality"] = _quality(result)
    return {**_packed(result.is_foreground_hw), "seeds_hw": result.seeds_hw, "record": record}


def _packed(mask_hw: np.ndarray) -> dict:
    return {"mask_bits": np.packbits(mask_hw.ravel()), "size": mask_hw.size, "shape": mask_hw.shape}


def unpack(packed: dict) -> np.ndarray:
    """The bool (H, W) mask ``_packed`` packed."""
    return np.unpackbits(packed["mask_bits"], count=packed["size"]).reshape(packed["shape"]).astype(bool)


def _quality(result) -> float:
    height, width = result.is_foreground_hw.shape
    return mask_quality(result.bbox, (width, height))


def check_workspace_layout(images_dir: str | Path, out_dir: str | Path) -> Path:
    """The review workspace that ``objects="several"`` writes into: ``out_dir`` is WORKSPACE/segmentations and
    the photos are in WORKSPACE/images, the layout the review page opens; a ValueError saying so otherwise."""
    out = Path(os.path.abspath(out_dir))
    root = out.parent
    if out.name != "segmentations" or Path(images_dir).resolve() != (root / "images").resolve():
        raise ValueError(f"Several objects a photo go into a review workspace: the photos in WORKSPACE/images and the output "
                         f"in WORKSPACE/segmentations (`python -m engine segment-folder WORKSPACE/images --out "
                         f"WORKSPACE/segmentations --objects several`); got the photos in {images_dir} and {out_dir}.")
    resolve_inside(root, "segmentations")  # a link out of the workspace: a WorkspaceError, a ValueError
    return root.resolve()


def imagenet_category(class_index: int, label: str) -> Category:
    """The workspace's ``Category`` of an ImageNet class, with its WordNet id, as the review page makes it."""
    wnids = imagenet_wnids()
    return Category(label, class_index=class_index, wnid=wnids[class_index] if 0 <= class_index < len(wnids) else None)


def place_objects(space: Workspace, stem: str, masks: Sequence[np.ndarray], *, category: Category, qualities: Sequence[float],
                  preset: str) -> list[int]:
    """Objects 1, 2, ... of the photo ``stem`` in the workspace ``space``: one per mask (the instances after
    the strongest, which is object 0), version 0, status "automatic"; their ids, in the masks' order.

    A rerun adds nothing twice. A mask whose object segment-folder already made (the same mask and category
    in its first version) is that object, whatever a person did with it since (refined, accepted, deleted).
    segment-folder's earlier objects of the photo that no one has saved since (version 0 alone) and that no
    mask matches now are withdrawn: marked deleted by segment-folder, nothing erased. A withdrawn object is
    not matched again (a later run that finds its mask adds it anew); an object a person saved, and every
    imported or added one, is left as it is."""
    mine: dict[int, tuple[tuple, int]] = {}  # segment-folder's objects still in play: id -> (fingerprint, newest version)
    for item in space.objects(stem):
        first = space.first_record(stem, item.obj) if item.obj > 0 else {}
        source = first.get("source") if isinstance(first.get("source"), dict) else {}
        if source.get("made_by") != MADE_BY:
            continue
        if item.status == "deleted" and space.first_record(stem, item.obj, item.version).get("deleted_by") == MADE_BY:
            continue
        mine[item.obj] = ((source.get("mask_sha1"), (first.get("category") or {}).get("name")), item.version)
    ids: list[int] = []
    for k, (mask, quality) in enumerate(zip(masks, qualities, strict=True), start=1):
        digest = hashlib.sha1(np.packbits(mask).tobytes()).hexdigest()
        same = [obj for obj, (key, _) in mine.items() if key == (digest, category.name) and obj not in ids]
        ids.append(same[0] if same else space.add_object(
            stem, mask_hw=mask, category=category, status="automatic", quality=quality,
            source={"made_by": MADE_BY, "instance": k, "preset": preset, "mask_sha1": digest}))
    for obj, (_, version) in mine.items():
        if obj not in ids and version == 0:
            try:
                space.delete_object(stem, obj, base_version=0, by=MADE_BY)
            except SaveConflict:  # a person saved it meanwhile: theirs now
                pass
    return ids


def mask_quality(bbox, image_wh: tuple[int, int]) -> float:
    """The review queue's sort key, 0..1, low for the masks most likely to be wrong: 1 minus the mean of
    the share of the photo's four sides that the box touches and the share of the photo it covers.

    On the 654 development photos the default preset's bad boxes (IoU < 0.5 with every annotated box)
    are 27% of all, and 46% of the lowest tenth by this key: the failures are boxes that run to the
    photo's borders, over several objects or the background. The mask's agreement with its own
    saliency map, tried first, put no more bad masks first than a shuffle (29% of the first tenth).
    benchmarks/bench_queue_order.py measures the queue; benchmarks/README.md has both figures."""
    if bbox is None:
        return 0.0
    width, height = image_wh
    x0, y0, x1, y1 = bbox
    sides = (x0 <= 1) + (y0 <= 1) + (x1 >= width - 1) + (y1 >= height - 1)
    share = (x1 - x0) * (y1 - y0) / (width * height)
    return round(1.0 - (sides / 4 + share) / 2, 4)


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside ``path``, flush to disk, then rename over it: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
