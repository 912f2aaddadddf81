"""Pre-segmenting a folder (§3.2, Simonyan et al. 2013): for every photo, the three files the
segmentation page downloads, so that any of them can be opened on the page, or in a review
workspace, and refined by hand.

For ``<stem>.<ext>`` the output folder gets ``<stem>_mask.png`` (255 = object), ``<stem>_seeds.png``
(the seed map, palette PNG of seed codes) and ``<stem>.json`` (``engine.segmentation.presets.segmentation_record``
plus ``image``, the photo's file name, and ``quality``, the review queue's sort key). Each file is
written aside and renamed into place, so a killed run never leaves half a file.
"""
from __future__ import annotations

import functools
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
from engine.segmentation.masks import encode_seed_map
from engine.segmentation.presets import Preset, segment_with_preset, segmentation_record


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

    def stages(self, *, with_model: bool = True) -> SegmentStages:
        if not with_model:  # the driver's side: no torch imported
            return SegmentStages(None, self)
        from engine.models import load_model

        return SegmentStages(load_model(self.model, self.weights, device=self.device, math=self.cuda_math), self)


class SegmentStages:
    """Model stage: the class and its map; cut stage: the preset's segmentation; assemble: the files."""

    def __init__(self, model, job: SegmentJob):
        self.model, self.job = model, job
        self.finish = functools.partial(cut_photo, preset=job.preset)

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
        mask = np.unpackbits(cut["mask_bits"], count=cut["size"]).reshape(cut["shape"]).astype(bool)
        write_atomic(out / f"{stem}_mask.png", encode_png(mask.astype(np.uint8) * 255))
        write_atomic(out / f"{stem}_seeds.png", encode_seed_map(cut["seeds_hw"]))
        write_atomic(out / f"{stem}.json", json.dumps(record, indent=2).encode())
        return {"image": proposal.image, "bbox": record["bbox"], "class_index": class_index, "label": label,
                "area": record["area"], "seeds_promoted": record["seeds_promoted"], "quality": record["quality"],
                "files": [f"{stem}_mask.png", f"{stem}_seeds.png", f"{stem}.json"]}


def segment_photos(model, paths: Sequence[Path], out_dir: str | Path, *, preset: Preset, class_index: int | None = None,
                   on_step: Callable[[int, int], None] | None = None) -> list[dict]:
    """``segment-folder`` in this process on a loaded ``model``, one photo after another (no cut processes):
    each photo's three files into ``out_dir`` and its line, as the command's; ``on_step(done, total)`` after each."""
    stages = SegmentStages(model, SegmentJob(preset, str(out_dir), class_index, model.name, model.weights))
    lines: list[dict] = []

    def take(line: dict) -> None:
        lines.append(line)
        if on_step is not None:
            on_step(len(lines), len(paths))

    run_local(stages, photos_from(paths), jobs=1, on_line=take)
    return lines


def cut_photo(image_hwc: np.ndarray, saliency_hw: np.ndarray, *, preset: Preset) -> dict:
    """The cut stage: the segmentation, packed for the trip back (a bit per pixel), and its record."""
    result = segment_with_preset(image_hwc, saliency_hw, preset)
    record = segmentation_record(result, class_index=0, label="", model="", weights="", preset=preset)
    height, width = result.is_foreground_hw.shape
    record["quality"] = mask_quality(result.bbox, (width, height))
    mask = result.is_foreground_hw
    return {"mask_bits": np.packbits(mask.ravel()), "size": mask.size, "shape": mask.shape,
            "seeds_hw": result.seeds_hw, "record": record}


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
