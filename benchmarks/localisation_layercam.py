"""A finer map for small objects (issue 30): LayerCAM (Jiang et al. 2021: each position's positive gradients
times its activations, so shallow layers keep their resolution) at ``blocks.2``-``blocks.5`` (stride 8-32)
beside Grad-CAM at the last layer, all from one backward pass of the annotated class at short side 320.
Each map (and Grad-CAM × a smoothed LayerCAM, their geometric mean) is thresholded at a fraction of its
maximum and boxed (the component holding the peak, or the largest); printed: GT-known by instances and
size for each, best first, then how often the default's cut *or* a tight box is right (what a perfect
switch between the two could reach).

    .venv/bin/python benchmarks/localisation_layercam.py CACHE_DIR BASE_GT.jsonl [--jobs 2]

CACHE_DIR (created, outside the repository: ImageNet's terms) holds each photo's raw maps; BASE_GT is the
default's ``localise --gt-known --out`` file.
"""
from __future__ import annotations

import json
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from localisation_boxes import GROUPS  # noqa: E402  (the split's groups, as the box chooser reports them)

from engine.images import load_image  # noqa: E402
from engine.runs import localisation as loc  # noqa: E402
from engine.segmentation.masks import box_iou  # noqa: E402
from engine.views import place_full_view  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ilsvrc2012-val-dev"
SIDE = 320
LAYERS = ("blocks.2", "blocks.3", "blocks.4", "blocks.5", "bn2.act")
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
SMOOTH = 0.02  # Gaussian σ for the LayerCAMs, a fraction of the view's long side (the default preset's)
MODEL = None


def _init():
    global MODEL
    import torch

    from engine.models import load_model

    torch.set_num_threads(1)
    MODEL = load_model()


def cache_photo(task) -> None:
    """LayerCAM at each of LAYERS and Grad-CAM at the last, raw (the layer's grid), into CACHE/<stem>.npz."""
    import torch
    import torch.nn.functional as F

    from engine.views import _centre_aspect, normalise, resize_short_side

    stem, cache = task
    target = Path(cache) / f"{stem}.npz"
    if target.exists():
        return
    image = load_image(DATA / "images" / f"{stem}.JPEG")
    truth = loc.annotated_class(loc.read_annotation(DATA / "annotations" / f"{stem}.xml"))
    prep = MODEL.preprocessing
    resized = resize_short_side(_centre_aspect(image), SIDE, prep.interpolation)
    batch = normalise(torch.from_numpy(resized[None].copy()).permute(0, 3, 1, 2).float().div_(255.0), prep)
    held = {}

    def hold(name):
        def run(_, __, out):
            out.retain_grad()
            held[name] = out
        return run

    handles = [MODEL.module.get_submodule(n).register_forward_hook(hold(n)) for n in LAYERS]
    try:
        with torch.enable_grad():
            MODEL.module(batch.requires_grad_(True))[0, truth].backward()
    finally:
        for handle in handles:
            handle.remove()
    arrays = {"image_hw": np.array(image.shape[:2]), "view": np.array(resized.shape[:2])}
    for name in LAYERS:
        act, grad = held[name].detach()[0], held[name].grad[0]
        arrays[f"layercam_{name}"] = F.relu((F.relu(grad) * act).sum(0)).numpy()
    last = held[LAYERS[-1]]
    arrays["gradcam"] = F.relu((last.grad[0].mean((1, 2), keepdim=True) * last.detach()[0]).sum(0)).numpy()
    np.savez(target, **arrays)


def _unit(values: np.ndarray) -> np.ndarray:
    return values / max(float(values.max()), 1e-12)


def maps_of(npz) -> dict:
    """Each map at the photo's size, scaled to a maximum of 1."""
    view_hw = tuple(int(v) for v in npz["view"])
    image_hw = tuple(int(v) for v in npz["image_hw"])

    def up(raw):
        return _unit(np.array(Image.fromarray(raw.astype(np.float32)).resize(view_hw[::-1], Image.BILINEAR)))

    gradcam = up(npz["gradcam"])
    out = {"Grad-CAM": gradcam}
    for name in LAYERS[:-1]:
        smooth = _unit(ndimage.gaussian_filter(up(npz[f"layercam_{name}"]), sigma=max(view_hw) * SMOOTH))
        out[f"LayerCAM {name}"] = smooth
        out[f"Grad-CAM × LayerCAM {name}"] = np.sqrt(gradcam * smooth)
    return {k: _unit(place_full_view(v, image_hw)) for k, v in out.items()}


def score_photo(task) -> dict:
    stem, cache = task
    npz = np.load(Path(cache) / f"{stem}.npz")
    annotation = loc.read_annotation(DATA / "annotations" / f"{stem}.xml")
    height, width = (int(v) for v in npz["image_hw"])
    truths = [b for name, b in annotation.objects if name == annotation.objects[0][0]]
    row = {"image": stem, **loc.photo_kind(annotation, (width, height)), "iou": {}}
    for name, level_hw in maps_of(npz).items():
        peak = np.unravel_index(int(np.argmax(level_hw)), level_hw.shape)
        for level in LEVELS:
            labels, _ = ndimage.label(level_hw >= level)
            largest = 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
            for rule, label in (("peak", labels[peak]), ("largest", largest)):
                ys, xs = np.nonzero(labels == label)
                box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
                row["iou"][f"{name} ≥ {level}, {rule}"] = round(max(box_iou(box, t) for t in truths), 4)
    return row


def _accuracy(rows, right) -> dict:
    return {g: round(100 * float(np.mean([right(r) for r in rows if keep(r)])), 1)
            for g, keep in GROUPS.items() if any(keep(r) for r in rows)}


def main():
    args = sys.argv[1:]
    cache, base_out = Path(args[0]), Path(args[1])
    jobs = int(args[args.index("--jobs") + 1]) if "--jobs" in args else 2
    cache.mkdir(parents=True, exist_ok=True)
    base = {Path(json.loads(line)["image"]).stem: json.loads(line)["guesses"][0]["correct"] for line in base_out.read_text().splitlines()}
    stems = sorted(p.stem for p in (DATA / "images").iterdir() if p.stem in base)
    started = time.perf_counter()
    with get_context("spawn").Pool(jobs, initializer=_init) as pool:
        list(pool.imap(cache_photo, [(s, str(cache)) for s in stems], chunksize=8))
        cached = time.perf_counter() - started
        rows = list(pool.imap(score_photo, [(s, str(cache)) for s in stems], chunksize=8))
    print(json.dumps({"photos": len(rows), "cache_s": round(cached, 1), "seconds": round(time.perf_counter() - started, 1)}))
    print(json.dumps({"recipe": "the default's cut", **_accuracy(rows, lambda r: base[r["image"]])}))
    names = list(rows[0]["iou"])
    found = sorted(({"recipe": n, **_accuracy(rows, lambda r, n=n: r["iou"][n] >= 0.5)} for n in names), key=lambda x: -x["all"])
    for line in found:
        print(json.dumps(line, ensure_ascii=False))
    for line in sorted(found, key=lambda x: -x["small"])[:5]:
        n = line["recipe"]
        either = _accuracy(rows, lambda r, n=n: base[r["image"]] or r["iou"][n] >= 0.5)
        print(json.dumps({"recipe": f"the cut or {n}, whichever is right", **either}, ensure_ascii=False))


if __name__ == "__main__":
    main()
