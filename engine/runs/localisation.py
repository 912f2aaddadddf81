"""Weakly supervised object localisation, the ILSVRC protocol, Simonyan, Vedaldi & Zisserman (2013), §3.2.

For each of the top-k predicted classes, the class saliency map seeds a segmentation whose largest
component's bounding box is the guess; a guess is right when its class is among the image's
ground-truth objects and its box has IoU ≥ 0.5 with a ground-truth box of that class. The paper
reports 46.4% top-5 localisation error on ILSVRC-2013 test.

Annotations are ImageNet's bounding-box XML files (PASCAL VOC layout: ``<object><name>`` holds a
WordNet id, ``<bndbox>`` the box), one per image with the same file stem. Box corners are read as
pixel indices with xmax/ymax inclusive, as the ILSVRC devkit counts widths (xmax - xmin + 1). WordNet
ids map to class indices through timm's ImageNet-1k synset list (the order of torchvision's classes).
"""
from __future__ import annotations

import functools
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.catalog import DEFAULT_MODEL
from engine.images import load_image
from engine.runs import batch
from engine.runs.batch import Proposal
from engine.segmentation.masks import box_iou
from engine.segmentation.presets import Preset, cut_boxes

if TYPE_CHECKING:
    from engine.models import LoadedModel

IOU_THRESHOLD = 0.5  # the ILSVRC criterion
SMALL_FRACTION, LARGE_FRACTION = 0.10, 0.50  # the split by size: the class's largest box under 10% / over 50% of the photo
SIZES = ("small", "mid", "large")
INSTANCES = ("one", "several")
CENTRE_BOX_FRACTION = 0.75  # the no-model baseline: a centred box of 75% of each side
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG", ".PNG")

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), x1/y1 exclusive


@dataclass(frozen=True)
class Annotation:
    size_wh: tuple[int, int] | None  # as the XML states it; boxes are rescaled if the image differs
    objects: tuple[tuple[str, Box], ...]  # (WordNet id, box)


@dataclass(frozen=True)
class LocalisationReport:
    """What ``evaluate`` measured; every count is over ``images`` (annotated images that were read)."""

    images: int
    top1_correct: int
    top5_correct: int | None  # None when only the top-1 guess was made
    missing_annotations: tuple[str, ...] = ()
    per_image: tuple[dict, ...] = field(default=(), repr=False)
    gt_known_correct: int | None = None  # with gt_known: the annotated class's box is right
    guesses: int = 0
    empty_boxes: int = 0  # guesses that came back without a box
    centre_box_correct: int = 0  # the baseline: a centred box of 75% of each side, annotated class
    seconds: float = 0.0
    failed: tuple[tuple[str, str], ...] = ()  # (image, reason): unreadable photos or annotations
    split: dict = field(default_factory=dict, repr=False)  # ``split_report``: where the first guess fails, by instances and size

    @property
    def top1_error(self) -> float | None:
        return None if self.images == 0 or self.gt_known_correct is not None else 1.0 - self.top1_correct / self.images

    @property
    def top5_error(self) -> float | None:
        return None if self.images == 0 or self.top5_correct is None else 1.0 - self.top5_correct / self.images

    @property
    def gt_known_accuracy(self) -> float | None:
        return None if self.images == 0 or self.gt_known_correct is None else self.gt_known_correct / self.images

    @property
    def centre_box_accuracy(self) -> float | None:
        return None if self.images == 0 else self.centre_box_correct / self.images

    @property
    def images_per_second(self) -> float | None:
        return None if self.seconds <= 0 else (self.images + len(self.failed)) / self.seconds


@functools.lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids in class-index order, as timm ships them (its
    ``ImageNetInfo("imagenet-1k")`` file, read without importing timm: that imports torch, and a Ray
    driver, which scores the boxes, has no other use for it)."""
    import importlib.util

    spec = importlib.util.find_spec("timm")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("timm is not installed: it ships ImageNet's WordNet ids (pip install -r requirements.txt).")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return tuple((folder / "data" / "_info" / "imagenet_synsets.txt").read_text().split())


def read_annotation(path: str | Path) -> Annotation:
    """Parse one ImageNet/VOC bounding-box XML file."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise ValueError(f"{path} is not valid XML ({exc}).") from exc
    size = root.find("size")
    size_wh = None
    if size is not None and size.findtext("width") and size.findtext("height"):
        size_wh = (int(float(size.findtext("width"))), int(float(size.findtext("height"))))
    objects = []
    for obj in root.iter("object"):
        name, box = obj.findtext("name"), obj.find("bndbox")
        if not name or box is None:
            raise ValueError(f"{path}: every <object> needs a <name> (WordNet id) and a <bndbox>.")
        try:
            x0, y0, x1, y1 = (float(box.findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: a <bndbox> needs numeric xmin, ymin, xmax, ymax.") from exc
        objects.append((name.strip(), (x0, y0, x1 + 1.0, y1 + 1.0)))  # inclusive corners -> exclusive
    return Annotation(size_wh, tuple(objects))


def is_correct(class_index: int, box: Box | None, annotation: Annotation, image_wh: tuple[int, int]) -> bool:
    """ILSVRC: the guessed class is annotated and the box overlaps one of its boxes with IoU ≥ 0.5."""
    if box is None:
        return False
    wnid = imagenet_wnids()[class_index]
    sx, sy = (1.0, 1.0) if annotation.size_wh is None else (image_wh[0] / annotation.size_wh[0], image_wh[1] / annotation.size_wh[1])
    return any(
        name == wnid and box_iou(box, (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)) >= IOU_THRESHOLD
        for name, b in annotation.objects
    )


def centre_box(image_wh: tuple[int, int], fraction: float = CENTRE_BOX_FRACTION) -> Box:
    """The baseline that ignores the photo: a centred box covering ``fraction`` of each side."""
    w, h = image_wh
    margin_x, margin_y = w * (1 - fraction) / 2, h * (1 - fraction) / 2
    return (margin_x, margin_y, w - margin_x, h - margin_y)


def photo_kind(annotation: Annotation, image_wh: tuple[int, int]) -> dict:
    """Where a photo falls in the split by the annotated class's boxes: ``instances`` ("one" or
    "several" boxes of the class) and ``size``, its largest box's share of the photo: "small" under
    SMALL_FRACTION, "large" over LARGE_FRACTION, else "mid". The XML's size is the photo's when
    stated (box and photo scale together); the image's otherwise."""
    if not annotation.objects:
        return {"instances": None, "size": None, "box_fraction": None}
    wnid = annotation.objects[0][0]
    boxes = [b for name, b in annotation.objects if name == wnid]
    w, h = annotation.size_wh or image_wh
    fraction = max((b[2] - b[0]) * (b[3] - b[1]) for b in boxes) / float(w * h)
    size = "small" if fraction < SMALL_FRACTION else "large" if fraction > LARGE_FRACTION else "mid"
    return {"instances": "one" if len(boxes) == 1 else "several", "size": size, "box_fraction": round(fraction, 4)}


def split_report(rows: Sequence[dict], *, top5: bool = False) -> dict:
    """GT-known (or top-1) accuracy, and with ``top5`` top-5, by instances and by size, over result
    lines that carry ``photo_kind``'s fields: ``{"instances": {"one": {"photos", "correct",
    "accuracy"[, "top5_correct", "top5_accuracy"]}, "several": ...}, "size": {"small": ..., "mid": ...,
    "large": ...}}``; a group with no photo has accuracy None. Lines without the fields (written
    before the split existed, kept by --resume) are left out."""
    split = {}
    for key, groups in (("instances", INSTANCES), ("size", SIZES)):
        split[key] = {}
        for group in groups:
            members = [row for row in rows if row.get(key) == group]
            right = sum(bool(row["guesses"] and row["guesses"][0]["correct"]) for row in members)
            entry = {"photos": len(members), "correct": right, "accuracy": right / len(members) if members else None}
            if top5:
                any_right = sum(any(g["correct"] for g in row["guesses"]) for row in members)
                entry.update(top5_correct=any_right, top5_accuracy=any_right / len(members) if members else None)
            split[key][group] = entry
    return split


def annotated_class(annotation: Annotation) -> int:
    """The class index of the first annotated object (ILSVRC photos hold one class)."""
    wnid = annotation.objects[0][0] if annotation.objects else None
    try:
        return imagenet_wnids().index(wnid)
    except ValueError:
        raise ValueError(f"The annotation names {wnid!r}, which is not an ImageNet-1k WordNet id.") from None


class SaliencyLocaliser:
    """Boxes from a preset (``engine.segmentation.presets``): the model stage makes the classes' maps in one batched
    pass (``propose``), the cut stage turns each map into a box (``finish``, no model: it can run in
    another process). Classes are the top-k of the classifier's centre view, as in its testing."""

    def __init__(self, model: LoadedModel | None, preset: Preset):
        self.model, self.preset = model, preset
        self.finish = functools.partial(cut_boxes, preset=preset)  # picklable: it may run in a worker process

    def propose(self, image_hwc: np.ndarray, *, top: int = 5, classes: Sequence[int] | None = None) -> list[tuple[int, np.ndarray]]:
        from engine.attribution.saliency import compute_saliencies, predict  # torch: only where the model runs

        if classes is None:
            classes = [p.index for p in predict(self.model, image_hwc, top=top, views=1)]
        maps = compute_saliencies(self.model, image_hwc, list(classes), views=self.preset.views, method=self.preset.method)
        return [(m.class_index, m.saliency_hw) for m in maps]


def list_images(images_dir: str | Path, *, shard: tuple[int, int] = (0, 1)) -> list[Path]:
    """Image files of ``images_dir`` sorted by name; shard (i, n) keeps every n-th from the i-th."""
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"A shard is I/N with 0 ≤ I < N; got {index}/{count}.")
    folder = Path(images_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of images.")
    files = sorted(p for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES)
    return files[index::count]


@dataclass(frozen=True)
class LocaliseJob:
    """Everything a worker needs to build the localisation stages by itself (for Ray actors)."""

    preset: Preset
    model: str = DEFAULT_MODEL
    weights: str = "pretrained"
    device: str | None = None
    cuda_math: str = "exact"
    top: int = 5
    gt_known: bool = False

    def stages(self, *, with_model: bool = True) -> LocaliseStages:
        """The stages; without the model, only ``finish`` and ``assemble`` work (the driver's side)."""
        model = None
        if with_model:  # the driver's side has no model and imports no torch
            from engine.models import load_model

            model = load_model(self.model, self.weights, device=self.device, math=self.cuda_math)
        return LocaliseStages(SaliencyLocaliser(model, self.preset), top=self.top, gt_known=self.gt_known)


class LocaliseStages:
    """The two stages of ``engine.runs.batch`` for the ILSVRC protocol: the photo's guesses and their maps,
    then a box per guess; the line is ``{"image", "guesses": [{"class", "bbox", "correct"}],
    "centre_box_correct", "instances", "size", "box_fraction"}`` (``photo_kind``). A photo's ``extra`` is its Annotation."""

    def __init__(self, localiser, *, top: int = 5, gt_known: bool = False):
        if top not in (1, 5):
            raise ValueError(f"--top is 1 or 5; got {top}.")
        self.localiser, self.top, self.gt_known = localiser, top, gt_known
        self.finish = localiser.finish

    def propose(self, photo) -> Proposal:
        annotation: Annotation = photo.extra
        image_hwc = load_image(photo.data)
        classes = [annotated_class(annotation)] if self.gt_known else None
        pairs = self.localiser.propose(image_hwc, top=self.top, classes=classes)
        return Proposal(photo.name, image_hwc, (tuple(p for _, p in pairs),), (annotation, [c for c, _ in pairs]))

    def assemble(self, proposal: Proposal, finished: list) -> dict:
        (boxes,) = finished  # one cut task per photo: its guesses share the photo's preparation
        annotation, classes = proposal.context
        image_wh = (proposal.image_hwc.shape[1], proposal.image_hwc.shape[0])
        guesses = [{"class": int(c), "bbox": None if b is None else [float(v) for v in b],
                    "correct": is_correct(c, b, annotation, image_wh)} for c, b in zip(classes, boxes)]
        truth = annotated_class(annotation) if annotation.objects else None
        centre = truth is not None and is_correct(truth, centre_box(image_wh), annotation, image_wh)
        return {"image": proposal.image, "guesses": guesses, "centre_box_correct": centre, **photo_kind(annotation, image_wh)}


def annotated_photos(images: Sequence[Path], annotations_dir: str | Path) -> tuple[list[Path], list[str]]:
    """(photos with an XML file of the same stem, names of those without)."""
    folder = Path(annotations_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of annotation XML files.")
    have = [p for p in images if (folder / f"{p.stem}.xml").is_file()]
    return have, [p.name for p in images if p not in have]


def read_photos(paths: Sequence[Path], annotations_dir: str | Path):
    """The photos for ``engine.runs.batch``, each with its annotation."""
    return batch.photos_from(paths, lambda path: read_annotation(Path(annotations_dir) / f"{path.stem}.xml"))


def evaluate(
    localiser,
    images: Sequence[Path],
    annotations_dir: str | Path,
    *,
    top: int = 5,
    gt_known: bool = False,
    jobs: int = 1,
    on_step: Callable[[int, int], None] | None = None,
) -> LocalisationReport:
    """Top-1 (and, with ``top=5``, top-5) localisation over ``images``, or with ``gt_known`` one guess
    per image, the annotated class. ``localiser.propose(image, top=, classes=)`` gives (class, payload)
    pairs and ``localiser.finish(image, payloads)`` their boxes; with ``jobs`` > 1 the finishing (the
    graph cuts) runs in that many processes while the model works on the next photo. Images without an XML
    file of the same stem are listed as missing; unreadable ones as failed, with the reason."""
    stages = LocaliseStages(localiser, top=top, gt_known=gt_known)
    annotated, missing = annotated_photos(images, annotations_dir)
    lines: list[dict] = []
    started = time.perf_counter()

    def take(line: dict) -> None:
        lines.append(line)
        if on_step is not None:
            on_step(len(lines), len(annotated))

    batch.run_local(stages, read_photos(annotated, annotations_dir), jobs=jobs, on_line=take)
    return report_from_lines(lines, top=top, gt_known=gt_known, missing=missing, seconds=time.perf_counter() - started)


def report_from_lines(lines: Sequence[dict], *, top: int, gt_known: bool, missing: Sequence[str] = (),
                      seconds: float = 0.0) -> LocalisationReport:
    """The counts of a run from its JSON lines (error lines are the failures)."""
    rows = [line for line in lines if "error" not in line]
    right = [[g["correct"] for g in row["guesses"]] for row in rows]
    first = sum(bool(r[:1] and r[0]) for r in right)
    return LocalisationReport(
        images=len(rows), top1_correct=first,
        top5_correct=sum(any(r) for r in right) if top == 5 and not gt_known else None,
        missing_annotations=tuple(missing), per_image=tuple(rows),
        gt_known_correct=first if gt_known else None, guesses=sum(len(r) for r in right),
        empty_boxes=sum(g["bbox"] is None for row in rows for g in row["guesses"]),
        centre_box_correct=sum(bool(row["centre_box_correct"]) for row in rows),
        seconds=seconds, failed=tuple((line["image"], line["error"]) for line in lines if "error" in line),
        split=split_report(rows, top5=top == 5 and not gt_known))
