"""Which box, when the map offers several? (issue 30.) For each development photo, candidate boxes of the
annotated class: the default preset's cut (``base``, read from a ``localise --gt-known --out`` file) and the
component of the Grad-CAM map holding its peak at levels 0.2-0.7 of the maximum (``tL``), each as it is
and grown 15% a side (``mL+``). Each candidate is scored by the network two ways, both on the class's logit
and log-softmax: **preserve** (the box alone, resized to 224², the classic crop score) and **delete** (the
photo at short side 224 with the box painted grey: how much of the class's evidence the box holds). Then
selection rules pick one box a photo; printed: the candidates' ceiling (a photo counts when any candidate
is right), the default, each rule, split by instances and size, as GT-known.

Cached maps from ``localisation_cache.py``; ImageNet's terms: photos are read from ../shared only.

    .venv/bin/python benchmarks/localisation_boxes.py CACHE_DIR BASE_OUT.jsonl [--rows ROWS.json] [--jobs 2]
"""
from __future__ import annotations

import json
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from localisation_sweep import raw_map  # noqa: E402

from engine.images import load_image  # noqa: E402
from engine.runs import localisation as loc  # noqa: E402
from engine.segmentation.masks import box_iou  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ilsvrc2012-val-dev"
LEVELS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
GROW = 0.15
SIDE = 224
GREY = 128
GROUPS = {"all": lambda r: True, "one": lambda r: r["instances"] == "one", "several": lambda r: r["instances"] == "several",
          "small": lambda r: r["size"] == "small", "mid": lambda r: r["size"] == "mid", "large": lambda r: r["size"] == "large"}
MODEL = None


def _init():
    global MODEL
    import torch

    from engine.models import load_model

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    MODEL = load_model()


def grown(box, margin, width, height):
    w, h = box[2] - box[0], box[3] - box[1]
    return (max(0.0, box[0] - margin * w), max(0.0, box[1] - margin * h), min(width, box[2] + margin * w), min(height, box[3] + margin * h))


def candidates(level_hw: np.ndarray, base_box) -> dict:
    height, width = level_hw.shape
    peak = np.unravel_index(int(np.argmax(level_hw)), level_hw.shape)
    boxes = {"base": tuple(float(v) for v in base_box)}
    for level in LEVELS:
        labels, _ = ndimage.label(level_hw >= level)
        ys, xs = np.nonzero(labels == labels[peak])
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        boxes[f"t{level}"] = box
        boxes[f"t{level}+"] = grown(box, GROW, width, height)
    return boxes


def score_photo(task) -> dict:
    import torch
    from PIL import Image

    from engine.views import normalise

    stem, cache, base_box = task
    npz = np.load(Path(cache) / f"{stem}.npz")
    image = load_image(DATA / "images" / f"{stem}.JPEG")
    height, width = image.shape[:2]
    annotation = loc.read_annotation(DATA / "annotations" / f"{stem}.xml")
    truth = loc.annotated_class(annotation)
    truths = [b for name, b in annotation.objects if name == annotation.objects[0][0]]
    level = raw_map(npz, "c320")
    level = level / max(float(level.max()), 1e-12)
    boxes = candidates(level, base_box)
    names = list(boxes)
    scale = SIDE / min(height, width)
    small = np.asarray(Image.fromarray(image).resize((round(width * scale), round(height * scale)), Image.BICUBIC))
    kept, deleted = [], [small]  # the first deleted picture deletes nothing: the photo's own score
    for name in names:
        x0, y0, x1, y1 = (int(round(v)) for v in boxes[name])
        kept.append(np.asarray(Image.fromarray(image[y0:max(y1, y0 + 2), x0:max(x1, x0 + 2)]).resize((SIDE, SIDE), Image.BICUBIC)))
        painted = small.copy()
        painted[int(y0 * scale):int(np.ceil(y1 * scale)), int(x0 * scale):int(np.ceil(x1 * scale))] = GREY
        deleted.append(painted)
    scores = {}
    for kind, pictures in (("keep", kept), ("delete", deleted)):
        batch = normalise(torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).float().div_(255.0), MODEL.preprocessing)
        logits = MODEL.module(batch)
        scores[kind] = (logits[:, truth].numpy(), torch.log_softmax(logits, 1)[:, truth].numpy())
    row = {"image": stem, **loc.photo_kind(annotation, (width, height)), "photo_logit": float(scores["delete"][0][0]),
           "photo_logp": float(scores["delete"][1][0]), "boxes": {}}
    for i, name in enumerate(names):
        box = boxes[name]
        row["boxes"][name] = {
            "iou": round(max(box_iou(box, t) for t in truths), 4),
            "correct": loc.is_correct(truth, box, annotation, (width, height)),
            "area": (box[2] - box[0]) * (box[3] - box[1]) / (width * height),
            "keep_logit": float(scores["keep"][0][i]), "keep_logp": float(scores["keep"][1][i]),
            "delete_logit": float(scores["delete"][0][i + 1]), "delete_logp": float(scores["delete"][1][i + 1]),
        }
    return row


def _drop(row: dict, name: str, key: str) -> float:
    """How much the class's score falls when the candidate is painted out."""
    return row[f"photo_{key}"] - row["boxes"][name][f"delete_{key}"]


def _smallest(row: dict, names, default: str = "base") -> str:
    return min(names, key=lambda n: row["boxes"][n]["area"], default=default)


def rules() -> dict:
    """name: row -> the chosen candidate's name."""
    found = {"base (the default's cut)": lambda r: "base"}
    for key in ("logit", "logp"):
        found[f"preserve: highest {key} of the box alone"] = lambda r, k=key: max(r["boxes"], key=lambda n: r["boxes"][n][f"keep_{k}"])
        for slack in (0.0, 0.5, 1.0):
            found[f"preserve: smallest box whose {key} is within {slack} of the cut's"] = lambda r, k=key, s=slack: _smallest(
                r, [n for n, b in r["boxes"].items() if b[f"keep_{k}"] >= r["boxes"]["base"][f"keep_{k}"] - s])
        for share in (0.8, 0.9, 1.0, 1.1):
            found[f"delete: smallest box whose deletion costs ≥ {share} × the cut's ({key})"] = lambda r, k=key, q=share: _smallest(
                r, [n for n in r["boxes"] if _drop(r, n, k) >= q * _drop(r, "base", k)])
        for weight in (1.0, 2.0, 4.0):
            found[f"delete: largest {key} drop − {weight} × area"] = lambda r, k=key, w=weight: max(
                r["boxes"], key=lambda n: _drop(r, n, k) - w * r["boxes"][n]["area"])
    return found


def table(rows: list[dict]) -> list[dict]:
    def accuracy(right) -> dict:
        return {g: round(100 * float(np.mean([right(r) for r in rows if keep(r)])), 1) if any(keep(r) for r in rows) else None
                for g, keep in GROUPS.items()}

    out = [{"rule": "ceiling: any candidate right", **accuracy(lambda r: any(b["correct"] for b in r["boxes"].values()))}]
    out += [{"rule": name, **accuracy(lambda r, p=pick: r["boxes"][p(r)]["correct"])} for name, pick in rules().items()]
    return out


def main():
    args = sys.argv[1:]
    cache, base_out = Path(args[0]), Path(args[1])
    jobs = int(args[args.index("--jobs") + 1]) if "--jobs" in args else 2
    base = {}
    for line in base_out.read_text().splitlines():
        found = json.loads(line)
        base[Path(found["image"]).stem] = found["guesses"][0]["bbox"]
    stems = sorted(p.stem for p in cache.glob("*.npz") if p.stem in base)
    started = time.perf_counter()
    with get_context("spawn").Pool(jobs, initializer=_init) as pool:
        rows = list(pool.imap(score_photo, [(s, str(cache), base[s]) for s in stems], chunksize=8))
    print(json.dumps({"photos": len(rows), "seconds": round(time.perf_counter() - started, 1),
                      "candidates": list(rows[0]["boxes"]) if rows else []}))
    for line in table(rows):
        print(json.dumps(line, ensure_ascii=False))
    if "--rows" in args:
        Path(args[args.index("--rows") + 1]).write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
