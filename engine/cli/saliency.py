"""`saliency IMAGE --out MAP.npy`: the class saliency map (§3.1) at the image's resolution."""
from __future__ import annotations

import numpy as np

from engine.attribution import registry as attribution
from engine.attribution.methods import ADAPTIVE
from engine.attribution.saliency import REDUCTIONS, compute_saliency
from engine.cli.common import add_model_args, model_from_args, print_json, read_image
from engine.models import find_class


def register(subparsers) -> None:
    parser = subparsers.add_parser("saliency", help="write a class saliency map as float32 (H, W) .npy")
    parser.add_argument("image")
    add_model_args(parser)
    parser.add_argument("--class", dest="target", default=None, help="class index or exact label (default: top-1)")
    parser.add_argument("--crops", type=int, default=1, choices=(1, 10), help="centre view or the paper's 10 views")
    parser.add_argument("--reduce", default="max-abs", choices=REDUCTIONS, help="channel reduction (default: the paper's max-abs)")
    parser.add_argument("--method", default="gradient", choices=tuple(attribution.METHODS),
                        help="attribution method (default: %(default)s)")
    parser.add_argument("--ig-steps", default="adaptive", help=(
        "Integrated Gradients' steps: adaptive (32, 64, ... 256 until Σ IG is within 5%% of S(x) − S(x')) or a fixed number "
        "(default: %(default)s)"))
    parser.add_argument("--out", required=True, help="where to write the .npy map")
    parser.set_defaults(run=run)


def run(args) -> None:
    image = read_image(args.image)
    model = model_from_args(args)
    target = None if args.target is None else find_class(model.categories, args.target)
    options = {"steps": _ig_steps(args.ig_steps)} if args.method == "integrated-gradients" else None
    result = compute_saliency(model, image, target=target, views=args.crops, reduce=args.reduce, method=args.method, options=options)
    np.save(args.out, result.saliency_hw.astype(np.float32))
    report = {
        "class_index": result.class_index, "label": result.label, "score": result.score,
        "method": result.method, "views": result.views, "reduce": result.reduce,
        "shape": list(result.saliency_hw.shape), "out": args.out,
    }
    if result.integration is not None:  # how many steps Integrated Gradients took, and how far from complete
        report.update(ig_steps=result.integration["steps"], ig_relative_gap=round(result.integration["relative_gap"], 5))
    print_json(report)


def _ig_steps(text: str) -> int | str:
    if text == ADAPTIVE:
        return ADAPTIVE
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--ig-steps must be {ADAPTIVE} or a whole number; got {text!r}.") from None
