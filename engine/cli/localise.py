"""`localise IMAGES_DIR ANNOTATIONS_DIR`: ILSVRC top-1/top-5 localisation error with saliency boxes (§3.2)."""
from __future__ import annotations

import sys

from engine.cli.common import add_model_args, model_from_args, print_json
from engine.localisation import evaluate, list_images, saliency_localiser


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard is I/N, e.g. 0/4 for the first of four shards; got {text!r}.") from None
    return index, count


def register(subparsers) -> None:
    parser = subparsers.add_parser("localise", help="ILSVRC localisation error of saliency-seeded boxes on a folder (§3.2)")
    parser.add_argument("images_dir")
    parser.add_argument("annotations_dir", help="VOC-style XML files, one per image (same stem), WordNet ids as object names")
    add_model_args(parser)
    parser.add_argument("--top", type=int, default=5, choices=(1, 5), help="guesses per image (default: %(default)s)")
    parser.add_argument("--shard", default="0/1", help="I/N: take every N-th image from the I-th (0-based), sorted by name")
    parser.add_argument("--crops", type=int, default=1, choices=(1, 10), help="saliency views (default: %(default)s)")
    parser.add_argument("--details", action="store_true", help="also print each image's guesses")
    parser.set_defaults(run=run)


def run(args) -> None:
    shard = parse_shard(args.shard)
    images = list_images(args.images_dir, shard=shard)
    model = model_from_args(args)
    report = evaluate(saliency_localiser(model, views=args.crops), images, args.annotations_dir, top=args.top,
                      on_step=lambda i, n: print(f"{i}/{n}", file=sys.stderr, flush=True))
    payload = {
        "images": report.images, "top1_error": report.top1_error, "top5_error": report.top5_error,
        "top1_correct": report.top1_correct, "top5_correct": report.top5_correct,
        "missing_annotations": list(report.missing_annotations), "shard": args.shard,
        "model": model.name, "weights": model.weights,
    }
    if args.details:
        payload["per_image"] = list(report.per_image)
    print_json(payload)
