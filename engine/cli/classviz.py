"""`classviz CLASS [CLASS ...] --out DIR`: class model visualisation (§2), one PNG per class."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from engine.classviz.visualise import PRESETS, get_preset, visualise_class
from engine.cli.common import add_model_args, model_from_args, print_json
from engine.images import encode_png
from engine.models import find_class, imagenet_categories


def register(subparsers) -> None:
    parser = subparsers.add_parser("classviz", help="dream the image each class likes best; one PNG per class")
    parser.add_argument("classes", nargs="+", metavar="CLASS", help="class index or exact label")
    add_model_args(parser)
    parser.add_argument("--preset", default="paper", choices=tuple(PRESETS), help="knob set (default: the paper's)")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--out", required=True, help="folder for the PNGs (created if missing)")
    parser.set_defaults(run=run)


def run(args) -> None:
    config = get_preset(args.preset)
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps)
    indices = [find_class(imagenet_categories(), c) for c in args.classes]  # before the (slow) model load
    model = model_from_args(args)
    result = visualise_class(model, indices, config=config, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, label, image, score, probability in zip(
        result.class_indices, result.labels, result.images_hwc, result.final_scores, result.final_probabilities
    ):
        path = out / f"{index:03d}_{_slug(label)}.png"
        path.write_bytes(encode_png(image))
        rows.append({"class_index": index, "label": label, "score": score, "probability": probability, "png": str(path)})
    print_json({"preset": args.preset, "steps": result.steps_run, "seed": result.seed, "classes": rows})


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "class"
