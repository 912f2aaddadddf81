"""`predict IMAGE`: the top-k classes as JSON."""
from __future__ import annotations

import dataclasses

from engine.attribution.saliency import predict
from engine.cli.common import add_model_args, model_from_args, print_json, read_image


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="print the top-k ImageNet classes of an image as JSON")
    parser.add_argument("image")
    add_model_args(parser)
    parser.add_argument("--top", type=int, default=5, help="how many classes (default: %(default)s)")
    parser.add_argument("--crops", type=int, default=1, choices=(1, 10), help="centre view or the paper's 10 views")
    parser.set_defaults(run=run)


def run(args) -> None:
    image = read_image(args.image)
    model = model_from_args(args)
    print_json([dataclasses.asdict(p) for p in predict(model, image, top=args.top, views=args.crops)])
