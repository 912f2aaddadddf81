"""Localisation recipes swept on cached Grad-CAM maps (``localisation_cache.py``), GT-known, with the
split by instances and size (issue 30). The network never runs here: each photo's raw maps are read
from the cache, so a dozen recipes cost a dozen cuts a photo, not a dozen `localise` runs.

    .venv/bin/python benchmarks/localisation_sweep.py CACHE_DIR [--only NAME ...] [--first N] [--jobs 2]

Each recipe is (map, preset, box rule). Maps: ``c320`` the default's (last layer, short side 320),
``f320`` (``blocks.4``, stride 16), and geometric means ``a*b``. Rules: ``largest`` (the preset's cut,
largest component), ``evidence`` (the component with the most map), ``instance`` (the cut split along
the map's basins, ``engine.segmentation.instances``, the strongest part), ``threshold`` (no cut) and
``preset`` (the preset's own rule, e.g. ``instance-cut``'s window). Prints one JSON line per recipe;
with --rows DIR also each photo's box and IoU per recipe. The figures are in benchmarks/README.md.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.images import load_image  # noqa: E402
from engine.runs import localisation as loc  # noqa: E402
from engine.segmentation import cut as seg  # noqa: E402
from engine.segmentation import instances as inst  # noqa: E402
from engine.segmentation import presets as pre  # noqa: E402
from engine.segmentation.masks import box_iou  # noqa: E402
from engine.views import place_full_view  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ilsvrc2012-val-dev"
G = pre.get_preset("gradcam-cut")
R = dataclasses.replace

INST = R(G, name="instance-cut", keep="instance")
RECIPES = {  # name: (map, preset, rule, rule options)
    "base": ("c320", G, "largest", {}),
    "evidence": ("c320", G, "evidence", {}),
    "split": ("c320", G, "instance", {}),
    "threshold 0.3": ("c320", G, "threshold", {"level": 0.3}),
    "f320 base": ("f320", G, "largest", {}),
    "c448 base": ("c448", G, "largest", {}),
    "c448 instance-cut": ("c448", R(INST, window_level=0.1, window_margin=0.25), "preset", {}),
    "c320*f320 split": ("c320*f320", G, "instance", {}),
    **{f"window {level} {margin}": ("c320", R(INST, window_level=level, window_margin=margin), "preset", {})
       for level in (0.1, 0.2, 0.3) for margin in (0.1, 0.25)},
    "window 0.05 0.25": ("c320", R(INST, window_level=0.05, window_margin=0.25), "preset", {}),
    "window 0.1 0.25 saddle 0.6": ("c320", R(INST, window_level=0.1, window_margin=0.25, saddle=0.6), "preset", {}),
    **{f"window 0.1 0.25 prior {level} {weight}": ("c320", R(INST, window_level=0.1, window_margin=0.25, prior_level=level,
                                                              prior_weight=weight), "preset", {})
       for level, weight in ((0.4, 2.0), (0.5, 1.0), (0.3, 1.0), (0.5, 2.0))},
}


def raw_map(npz, name: str) -> np.ndarray:
    """A cached map at the photo's resolution, as ``compute_saliencies`` makes it."""
    import torch
    import torch.nn.functional as F

    if "*" in name:
        maps = [raw_map(npz, part) for part in name.split("*")]
        out = np.ones_like(maps[0])
        for m in maps:
            out *= m / max(float(m.max()), 1e-12)
        return out ** (1.0 / len(maps))
    layer = {"c": "bn2.act", "f": "blocks.4"}[name[0]]
    side = int(name[1:])
    cam = npz[f"cam_{side}_{layer}"][:1]
    view_hw = tuple(int(v) for v in npz[f"view_{side}"])
    up = F.interpolate(torch.from_numpy(cam)[:, None], size=view_hw, mode="bilinear", align_corners=False)[0, 0].numpy()
    return place_full_view(up, tuple(int(v) for v in npz["image_hw"]))


def box_of(image, saliency, preset, rule, options):
    if rule == "preset":
        return pre.segment_with_preset(image, saliency, preset).bbox
    level = pre.normalised_map(saliency, preset)
    if rule == "threshold":
        region = level >= options["level"]
        return seg.bounding_box(seg.keep_object(region))
    keep = "all" if rule in ("evidence", "instance") else preset.keep
    result = pre.segment_with_preset(image, saliency, R(preset, keep=keep))
    if rule == "largest":
        return result.bbox
    if rule == "evidence":
        return seg.bounding_box(inst.strongest_component(result.is_foreground_hw, level))
    found = inst.instances_of(result.is_foreground_hw, level, saddle=options.get("saddle", inst.SADDLE),
                              min_peak=options.get("min_peak", inst.MIN_PEAK))
    return found[0].bbox if found else None


def score_photo(task):
    path, cache, names = task
    npz = np.load(cache / f"{path.stem}.npz")
    image = load_image(path)
    annotation = loc.read_annotation(DATA / "annotations" / f"{path.stem}.xml")
    image_wh = (image.shape[1], image.shape[0])
    truth = loc.annotated_class(annotation)
    row = {"image": path.name, **loc.photo_kind(annotation, image_wh)}
    maps = {}
    for name in names:
        map_name, preset, rule, options = RECIPES[name]
        if map_name not in maps:
            maps[map_name] = raw_map(npz, map_name)
        started = time.perf_counter()
        box = box_of(image, maps[map_name], preset, rule, options)
        wnid = annotation.objects[0][0]
        iou = max((box_iou(box, b) for n, b in annotation.objects if n == wnid), default=0.0) if box else 0.0
        row[name] = {"bbox": box, "iou": round(iou, 4), "correct": loc.is_correct(truth, box, annotation, image_wh),
                     "s": time.perf_counter() - started}
    return row


def main():
    args = sys.argv[1:]
    cache = Path(args[0])
    only = args[args.index("--only") + 1:] if "--only" in args else []
    names = [n for n in RECIPES if not only or n in only]
    first = int(args[args.index("--first") + 1]) if "--first" in args else None
    jobs = int(args[args.index("--jobs") + 1]) if "--jobs" in args else 2
    rows_dir = Path(args[args.index("--rows") + 1]) if "--rows" in args else None
    stems = sorted(p.stem for p in cache.glob("*.npz"))[:first]
    paths = [DATA / "images" / f"{s}.JPEG" for s in stems]
    with get_context("spawn").Pool(jobs) as pool:
        rows = list(pool.imap(score_photo, [(p, cache, names) for p in paths], chunksize=4))
    for name in names:
        lines = [{"guesses": [{"correct": r[name]["correct"]}], "instances": r["instances"], "size": r["size"]} for r in rows]
        split = loc.split_report(lines)
        right = sum(r[name]["correct"] for r in rows)
        print(json.dumps({"recipe": name, "photos": len(rows), "gt_known": round(right / len(rows), 4),
                          **{g: round(e["accuracy"], 4) if e["accuracy"] is not None else None
                             for part in split.values() for g, e in part.items()},
                          "cut_s": round(float(np.median([r[name]["s"] for r in rows])), 3)}), flush=True)
    if rows_dir is not None:
        rows_dir.mkdir(parents=True, exist_ok=True)
        (rows_dir / "rows.json").write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
