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
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from engine.images import load_image
from engine.masks import box_iou
from engine.models import LoadedModel
from engine.saliency import compute_saliency, predict
from engine.segmentation import BG_QUANTILE, FG_QUANTILE, automatic_seeds, segment

IOU_THRESHOLD = 0.5  # the ILSVRC criterion
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG", ".PNG")

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), x1/y1 exclusive
Localiser = Callable[[np.ndarray, int], list[tuple[int, Box | None]]]  # (image, top) -> [(class, box)]


@dataclass(frozen=True)
class Annotation:
    size_wh: tuple[int, int] | None  # as the XML states it; boxes are rescaled if the image differs
    objects: tuple[tuple[str, Box], ...]  # (WordNet id, box)


@dataclass(frozen=True)
class LocalisationReport:
    images: int
    top1_correct: int
    top5_correct: int | None  # None when only the top-1 guess was made
    missing_annotations: tuple[str, ...] = ()
    per_image: tuple[dict, ...] = field(default=(), repr=False)

    @property
    def top1_error(self) -> float | None:
        return None if self.images == 0 else 1.0 - self.top1_correct / self.images

    @property
    def top5_error(self) -> float | None:
        return None if self.images == 0 or self.top5_correct is None else 1.0 - self.top5_correct / self.images


@functools.lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids in class-index order, as timm ships them."""
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo("imagenet-1k").label_names())


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


def saliency_localiser(model: LoadedModel, *, views: int = 1, fg_quantile: float = FG_QUANTILE,
                       bg_quantile: float = BG_QUANTILE, iterations: int = 5, gamma: float = 150.0) -> Localiser:
    """The paper's localiser: top-k classes, one saliency-seeded segmentation box per class."""
    def localise(image_hwc: np.ndarray, top: int) -> list[tuple[int, Box | None]]:
        guesses = []
        for prediction in predict(model, image_hwc, top=top, views=views):
            saliency = compute_saliency(model, image_hwc, target=prediction.index, views=views).saliency_hw
            seeds = automatic_seeds(saliency, fg_quantile=fg_quantile, bg_quantile=bg_quantile)
            try:
                box = segment(image_hwc, seeds, iterations=iterations, gamma=gamma).bbox
            except ValueError:  # a flat saliency map gives no seeds: no box, a wrong guess
                box = None
            guesses.append((prediction.index, box))
        return guesses
    return localise


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


def evaluate(
    localiser: Localiser,
    images: Sequence[Path],
    annotations_dir: str | Path,
    *,
    top: int = 5,
    on_step: Callable[[int, int], None] | None = None,
) -> LocalisationReport:
    """Top-1 (and, with ``top=5``, top-5) localisation over ``images``; images without an XML file
    of the same stem in ``annotations_dir`` are listed as missing and not counted."""
    if top not in (1, 5):
        raise ValueError(f"--top is 1 or 5; got {top}.")
    top1 = top5 = 0
    missing, rows = [], []
    for step, path in enumerate(images):
        xml = Path(annotations_dir) / f"{path.stem}.xml"
        if not xml.is_file():
            missing.append(path.name)
            continue
        annotation = read_annotation(xml)
        image_hwc = load_image(path)
        guesses = localiser(image_hwc, top)
        right = [is_correct(c, box, annotation, (image_hwc.shape[1], image_hwc.shape[0])) for c, box in guesses]
        top1 += bool(right[:1] and right[0])
        top5 += any(right)
        rows.append({"image": path.name, "guesses": [{"class": c, "bbox": box, "correct": r}
                                                      for (c, box), r in zip(guesses, right)]})
        if on_step is not None:
            on_step(step + 1, len(images))
    return LocalisationReport(len(rows), top1, top5 if top == 5 else None, tuple(missing), tuple(rows))
