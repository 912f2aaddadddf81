"""Candidate localisation recipes on the development photos, GT-known (one guess: the annotated class),
through the same code path as `localise` (engine.runs.localisation.evaluate, 2 jobs): each is the default
preset with one thing changed. The figures are in benchmarks/README.md.

    .venv/bin/python benchmarks/localisation_candidates.py [NAME-PART ...]   # all, or those whose name contains a part
"""
import dataclasses
import functools
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
from scipy import ndimage

from engine.attribution.saliency import compute_saliencies, predict
from engine.models import load_model
from engine.runs.localisation import SaliencyLocaliser, evaluate, list_images
from engine.segmentation import presets as pre

D = Path(__file__).resolve().parents[2] / "shared" / "data" / "ilsvrc2012-val-dev"  # ImageNet terms: read there only

G = pre.get_preset("gradcam-cut")
P = pre.get_preset("paper")


def threshold_boxes(image_hwc, maps, *, preset, level):
    boxes = []
    for m in maps:
        region = pre.normalised_map(m, preset) >= level
        labels, n = ndimage.label(region)
        if n == 0:
            boxes.append(None)
            continue
        sizes = ndimage.sum(region, labels, range(1, n + 1))
        ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return boxes


class Threshold(SaliencyLocaliser):
    def __init__(self, model, preset, level):
        super().__init__(model, preset)
        self.finish = functools.partial(threshold_boxes, preset=preset, level=level)


class Product(SaliencyLocaliser):
    """Grad-CAM × gradient, each scaled to its maximum first."""
    def propose(self, image_hwc, *, top=5, classes=None):
        if classes is None:
            classes = [p.index for p in predict(self.model, image_hwc, top=top, views=1)]
        cams = compute_saliencies(self.model, image_hwc, list(classes), views="full", method="gradcam")
        grads = compute_saliencies(self.model, image_hwc, list(classes), views="full", method="gradient")
        out = []
        for c, g in zip(cams, grads):
            a = np.maximum(c.saliency_hw, 0)
            a = a / max(a.max(), 1e-12)
            b = pre.normalised_map(g.saliency_hw, dataclasses.replace(G, smoothing=0.02))
            out.append((c.class_index, a * b))
        return out


def candidates(model):
    r = dataclasses.replace
    yield "saliency: gradient (full view)", SaliencyLocaliser(model, r(G, name="c", method="gradient")), 1
    yield "saliency: guided backprop (full view)", SaliencyLocaliser(model, r(G, name="c", method="guided")), 1
    yield "saliency: Grad-CAM x gradient (full view)", Product(model, r(G, name="c", smoothing=0.0)), 1
    yield "views: Grad-CAM, centre crop", SaliencyLocaliser(model, r(G, name="c", views=1)), 2
    yield "views: Grad-CAM, the paper's 10 views", SaliencyLocaliser(model, r(G, name="c", views=10)), 2
    yield "smoothing: none", SaliencyLocaliser(model, r(G, name="c", smoothing=0.0)), 2
    yield "seeds: the paper's quantiles 95%/30% (soft)", SaliencyLocaliser(model, r(G, name="c", seeds="quantile", fg=0.95, bg=0.30)), 2
    yield "seeds: + hard 99.5%/0.5% clamps", SaliencyLocaliser(model, r(G, name="c", hard_quantiles=(0.995, 0.005))), 2
    yield "unary: no saliency prior (colour models only)", SaliencyLocaliser(model, r(G, name="c", prior_weight=0.0)), 2
    yield "gamma: 150 (the paper's)", SaliencyLocaliser(model, r(G, name="c", gamma=150.0)), 2
    yield "rounds: 5 (the paper's)", SaliencyLocaliser(model, r(G, name="c", iterations=5)), 2
    yield "box: all components", SaliencyLocaliser(model, r(G, name="c", keep="all")), 2
    yield "box: the component holding the peak", SaliencyLocaliser(model, r(G, name="c", keep="peak")), 2
    yield "no cut: Grad-CAM >= 20% of max, largest component", Threshold(model, G, 0.2), 2
    yield "default itself (reference on the same shard)", SaliencyLocaliser(model, G), 2
    yield "paper + map smoothed (2%) before the quantiles", SaliencyLocaliser(model, r(P, name="c", smoothing=0.02)), 4


def extra(model):
    yield "saliency: SmoothGrad (full view)", SaliencyLocaliser(model, dataclasses.replace(G, name="c", method="smoothgrad")), 16


def main():
    model = load_model()
    only = sys.argv[1:]
    for name, localiser, shard in itertools.chain(candidates(model), extra(model)):
        if only and not any(o in name for o in only):
            continue
        paths = list_images(D / "images", shard=(0, shard))
        started = time.perf_counter()
        report = evaluate(localiser, paths, D / "annotations", gt_known=True, jobs=2)
        seconds = time.perf_counter() - started
        row = {"candidate": name, "images": report.images, "shard": f"0/{shard}", "gt_known": report.gt_known_accuracy,
               "centre_box": report.centre_box_accuracy, "empty": report.empty_boxes, "s_per_image": seconds / report.images}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
