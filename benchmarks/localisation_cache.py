"""Cache the raw Grad-CAM maps of the development photos, so that localisation recipes can be swept on
them without running the network again (issue 30: `localisation_sweep.py` reads this cache).

For each photo: the centre view's top 5 classes, and for the annotated class, the raw
Grad-CAM (before any upsampling) of the whole photo at each short side of ``SIDES``, at the last
convolutional layer (stride 32, the default preset's) and at ``blocks.4`` (stride 16). ImageNet's
terms: the photos are read from ../shared, the cache goes to a scratch folder outside the repository.

    .venv/bin/python benchmarks/localisation_cache.py CACHE_DIR [--shard I/N] [--sides 320,448]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine.attribution.saliency import predict  # noqa: E402
from engine.images import load_image  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.runs.localisation import annotated_class, list_images, read_annotation  # noqa: E402
from engine.views import _centre_aspect, normalise, resize_short_side  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ilsvrc2012-val-dev"
SIDES = (320,)  # 448 cost twice the forward pass: over the speed budget (10 photos/s), not swept
LAYERS = ("bn2.act", "blocks.4")


def raw_cams(model, image_hwc, classes, side):
    """{layer: (T, h, w) float32 raw Grad-CAM}, and the resized view's (H', W')."""
    prep = model.preprocessing
    resized = resize_short_side(_centre_aspect(image_hwc), side, prep.interpolation)
    batch = normalise(torch.from_numpy(resized[None].copy()).permute(0, 3, 1, 2).float().div_(255.0), prep)
    module = model.module
    held = {}

    def hook(name):
        def run(_, __, out):
            leaf = out.detach().requires_grad_(True) if name == LAYERS[1] else out
            held[name] = leaf
            return leaf
        return run

    handles = [module.get_submodule(n).register_forward_hook(hook(n)) for n in LAYERS]
    try:
        with torch.enable_grad():
            logits = module(batch)
            out = {n: [] for n in LAYERS}
            for i, c in enumerate(classes):
                grads = torch.autograd.grad(logits[0, c], [held[n] for n in LAYERS], retain_graph=i + 1 < len(classes))
                for n, g in zip(LAYERS, grads, strict=True):
                    w = g.mean((2, 3), keepdim=True)
                    out[n].append(F.relu((w * held[n].detach()).sum(1))[0].numpy().astype(np.float32))
    finally:
        for h in handles:
            h.remove()
    return {n: np.stack(v) for n, v in out.items()}, resized.shape[:2]


def main():
    cache = Path(sys.argv[1])
    cache.mkdir(parents=True, exist_ok=True)
    shard = (0, 1)
    if "--shard" in sys.argv:
        shard = tuple(int(x) for x in sys.argv[sys.argv.index("--shard") + 1].split("/"))
    sides = SIDES
    if "--sides" in sys.argv:
        sides = tuple(int(x) for x in sys.argv[sys.argv.index("--sides") + 1].split(","))
    model = load_model()
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)  # on a shared 2-core machine two threads ran 3-8x slower than one
    paths = list_images(DATA / "images", shard=shard)
    started = time.perf_counter()
    for k, path in enumerate(paths):
        target = cache / f"{path.stem}.npz"
        if target.exists():
            continue
        image = load_image(path)
        truth = annotated_class(read_annotation(DATA / "annotations" / f"{path.stem}.xml"))
        top5 = [p.index for p in predict(model, image, top=5, views=1)]
        classes = [truth]  # the annotated class only: GT-known is what the sweep scores
        arrays = {"classes": np.array(classes), "top5": np.array(top5), "image_hw": np.array(image.shape[:2])}
        for side in sides:
            cams, view_hw = raw_cams(model, image, classes, side)
            arrays[f"view_{side}"] = np.array(view_hw)
            for layer, cam in cams.items():
                arrays[f"cam_{side}_{layer}"] = cam
        np.savez(target, **arrays)
        if k % 50 == 0:
            print(f"{k}/{len(paths)} {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
