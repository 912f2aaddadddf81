"""Clicks to a good mask: the interactive-segmentation benchmarks' protocol (NoC@85, NoC@90) for the
hand refinement of §3.2 masks (Simonyan, Vedaldi & Zisserman 2013).

A dataset folder holds ``images/`` and ``masks/`` with the same stems (mask: 0 background, 128 an
undecided band left out of every IoU, any other value the object), as the GrabCut (Rother et al.
2004) and Berkeley (McGuinness & O'Connor 2010) sets are published for this protocol. For each
object the simulated user of ``engine.segmentation.clicks`` clicks up to ``clicks`` times; after
each click the refinement answers, exactly as the segmentation page answers a click.

- ``start="auto"``: the user starts from the page's automatic mask (the preset's cut of the top-1
  class's saliency map); it counts 0 clicks when it is already good enough.
- ``start="empty"``: no automatic seeds; the first click is the first input, as published tools start.

The model stage (``propose``) makes the saliency map and the per-pixel features; the clicking
(``finish``) needs no network and runs in ``--jobs`` processes, like the other folder runs.
"""
from __future__ import annotations

import dataclasses
import functools
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.catalog import DEFAULT_MODEL
from engine.images import load_image
from engine.runs import batch
from engine.runs.batch import Proposal
from engine.segmentation import clicks as ck
from engine.segmentation.presets import Preset, prepare_for, segment_with_preset
from engine.segmentation.refine import RefineOptions, prepare_for_refine, refine

STARTS = ("auto", "empty")
REFINEMENTS = ("interactive", "recut")  # recut: the hand seeds as hard constraints in one re-cut of the preset (the old page)
THRESHOLDS = (0.85, 0.90)


@dataclass(frozen=True)
class NocJob:
    """Everything a worker needs to build the stages by itself."""

    preset: Preset
    start: str = "auto"
    refinement: str = "interactive"
    clicks: int = 20
    radius: float = ck.RADIUS
    options: RefineOptions = RefineOptions()
    model: str = DEFAULT_MODEL
    weights: str = "pretrained"
    device: str | None = None
    cuda_math: str = "exact"

    def __post_init__(self):
        if self.start not in STARTS:
            raise ValueError(f"--start is one of {', '.join(STARTS)}; got {self.start!r}.")
        if self.refinement not in REFINEMENTS:
            raise ValueError(f"--refine is one of {', '.join(REFINEMENTS)}; got {self.refinement!r}.")
        if self.refinement == "recut" and self.start == "empty":
            raise ValueError("--refine recut re-cuts the automatic mask's seeds; it needs --start auto.")
        if not 1 <= int(self.clicks) <= 100:
            raise ValueError(f"--clicks is 1..100; got {self.clicks}.")
        if not 0 <= self.radius <= 100:
            raise ValueError(f"--radius is 0..100 pixels; got {self.radius}.")

    def stages(self, *, with_model: bool = True) -> NocStages:
        model = None
        if with_model:
            from engine.models import load_model

            model = load_model(self.model, self.weights, device=self.device, math=self.cuda_math)
        return NocStages(model, self)


def dataset_photos(dataset_dir: str | Path) -> tuple[list[Path], dict[str, Path]]:
    """(the photos of ``images/`` sorted by name, {photo name: its mask in ``masks/``}); a photo
    without a mask of the same stem is left out of the mapping (a failed line)."""
    from engine.runs.localisation import list_images

    root = Path(dataset_dir)
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        raise ValueError(f"{root} must hold images/ and masks/ with the same stems (0 background, 128 ignored, else object).")
    images = list_images(root / "images")
    masks = {p.stem: p for p in list_images(root / "masks")}
    return images, {p.name: masks[p.stem] for p in images if p.stem in masks}


def read_photos(images, masks: dict[str, Path]):
    """The photos for ``engine.runs.batch``, each with its mask's bytes."""
    def mask_of(path: Path) -> bytes:
        if path.name not in masks:
            raise ValueError(f"no mask masks/{path.stem}.png for this photo")
        return masks[path.name].read_bytes()

    return batch.photos_from(images, mask_of)


def read_mask(data: bytes, shape_hw: tuple[int, int]) -> np.ndarray:
    """A benchmark mask as (H, W) uint8 values (no colour conversion: 128 must stay 128)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            values = np.asarray(opened.convert("L") if opened.mode not in ("L", "P", "1") else opened)
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"the mask is not a readable image ({exc})") from None
    values = values.astype(np.uint8) if values.dtype != bool else values.astype(np.uint8) * 255
    if values.shape != tuple(shape_hw):
        raise ValueError(f"the mask is {values.shape[1]}×{values.shape[0]} but the photo is {shape_hw[1]}×{shape_hw[0]}")
    return values


class NocStages:
    """Model stage: the saliency map (``auto``) and the per-pixel features; finish: the clicks."""

    def __init__(self, model, job: NocJob):
        self.model, self.job = model, job
        self.finish = functools.partial(click_through, job=job)

    def propose(self, photo) -> Proposal:
        image_hwc = load_image(photo.data)
        truth = read_mask(photo.extra, image_hwc.shape[:2])
        saliency, features, label = None, None, None
        if self.job.start == "auto":
            from engine.attribution.saliency import compute_saliency, predict

            target = predict(self.model, image_hwc, top=1)[0].index
            made = compute_saliency(self.model, image_hwc, target=target, views=self.job.preset.views, method=self.job.preset.method)
            saliency, label = made.saliency_hw, made.label
        if self.job.refinement == "interactive":
            from engine.attribution.features import pixel_features

            features = pixel_features(self.model, image_hwc).features_hwk
        return Proposal(photo.name, image_hwc, ((truth, saliency, features),), label)

    def assemble(self, proposal: Proposal, finished: list) -> dict:
        (run,) = finished
        line = {"image": proposal.image, "ious": [round(v, 6) for v in run.ious], "clicks": [c.to_list() for c in run.clicks],
                "seconds": [round(s, 6) for s in run.seconds]}
        if proposal.context is not None:
            line["label"] = proposal.context
        return line


def click_through(image_hwc: np.ndarray, payload, *, job: NocJob) -> ck.Simulation:
    """The simulated user on one photo, answered by ``job``'s refinement (no network here)."""
    truth, saliency, features = payload
    is_object, is_ignored = ck.read_truth(truth)
    automatic = None
    if job.start == "auto":
        automatic = segment_with_preset(image_hwc, saliency, job.preset, prepared=prepare_for(image_hwc, job.preset))
    if job.refinement == "recut":
        def respond(hand_hw, shown_hw):
            return segment_with_preset(image_hwc, saliency, job.preset, hand_hw=hand_hw, previous=automatic, iterations=1).is_foreground_hw
    else:
        prepared = prepare_for_refine(image_hwc, job.options)
        automatic_hw = None if automatic is None else automatic.is_foreground_hw
        started = [automatic is not None]

        def respond(hand_hw, shown_hw):
            previous = shown_hw if started[0] else None
            started[0] = True
            return refine(image_hwc, hand_hw, features_hwk=features, previous_hw=previous, automatic_hw=automatic_hw,
                          options=job.options, prepared=prepared).is_foreground_hw
    return ck.simulate_user(is_object, respond, ignored_hw=is_ignored,
                            start_hw=None if automatic is None else automatic.is_foreground_hw,
                            max_clicks=job.clicks, radius=job.radius)


def summarise(lines: list[dict], job: NocJob) -> dict:
    """NoC@85/90 (mean over objects), objects under 0.90 after the last click, the mean IoU after each
    number of clicks (index 0: the start), and the median re-cut time."""
    done = [line for line in lines if "ious" in line]
    ious = np.array([line["ious"] for line in done]) if done else np.zeros((0, job.clicks + 1))
    nocs = {t: [ck.clicks_to_reach(row, t, job.clicks) for row in ious] for t in THRESHOLDS}
    seconds = [s for line in done for s in line["seconds"]]
    return {
        "images": len(done), "start": job.start, "preset": job.preset.name, "refinement": job.refinement,
        "clicks": job.clicks, "radius": job.radius,
        "noc85": statistics.fmean(nocs[0.85]) if done else None, "noc90": statistics.fmean(nocs[0.90]) if done else None,
        "failures90": int((ious[:, -1] < 0.90).sum()) if done else 0,
        "mean_iou_by_click": [round(float(v), 4) for v in ious.mean(0)] if done else [],
        "seconds_per_click": statistics.median(seconds) if seconds else None,
        "failed": [{"image": line["image"], "reason": line["error"]} for line in lines if "error" in line],
        "options": dataclasses.asdict(job.options) if job.refinement == "interactive" else None,
    }
