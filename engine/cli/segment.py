"""`segment IMAGE --out MASK.png`: the saliency-seeded segmentation of §3.2 and its bounding box."""
from __future__ import annotations

from pathlib import Path

from engine.cli.common import add_model_args, model_from_args, print_json, read_image
from engine.images import encode_png
from engine.masks import decode_seed_map, encode_seed_map
from engine.models import find_class
from engine.saliency import compute_saliency
from engine.segmentation import BG_QUANTILE, FG_QUANTILE, GAMMA, HARD_QUANTILES, ITERATIONS, automatic_seeds, merge_seeds, segment


def register(subparsers) -> None:
    parser = subparsers.add_parser("segment", help="segment the object of a class from its saliency map (§3.2)")
    parser.add_argument("image")
    add_model_args(parser)
    parser.add_argument("--class", dest="target", default=None, help="class index or exact label (default: top-1)")
    parser.add_argument("--crops", type=int, default=1, choices=(1, 10),
                        help="saliency on the centre view or the paper's 10 views (default: %(default)s)")
    parser.add_argument("--fg-quantile", type=float, default=FG_QUANTILE, help="foreground seeds at or above this saliency quantile (default: %(default)s)")
    parser.add_argument("--bg-quantile", type=float, default=BG_QUANTILE, help="background seeds at or below this saliency quantile (default: %(default)s)")
    parser.add_argument("--hard-seeds", action="store_true", help=f"also clamp the {HARD_QUANTILES[0]}/{HARD_QUANTILES[1]} quantiles as hard seeds")
    parser.add_argument("--iterations", type=int, default=ITERATIONS, help="GrabCut rounds (default: %(default)s)")
    parser.add_argument("--gamma", type=float, default=GAMMA, help="Potts weight at a 256-pixel short side (default: %(default)s)")
    parser.add_argument("--seeds", default=None, help="hand seed map PNG (codes 1 = background, 2 = foreground; hard constraints)")
    parser.add_argument("--out", required=True, help="where to write the mask PNG (255 = object)")
    parser.add_argument("--seeds-out", default=None, help="also write the seed map used (palette PNG of seed codes)")
    parser.set_defaults(run=run)


def run(args) -> None:
    image = read_image(args.image)
    hand = None
    if args.seeds is not None:
        try:
            hand = decode_seed_map(Path(args.seeds).read_bytes())
        except FileNotFoundError:
            raise ValueError(f"No such file: {args.seeds}") from None
    model = model_from_args(args)
    target = None if args.target is None else find_class(model.categories, args.target)
    saliency = compute_saliency(model, image, target=target, views=args.crops)
    automatic = automatic_seeds(saliency.saliency_hw, fg_quantile=args.fg_quantile, bg_quantile=args.bg_quantile,
                                hard_quantiles=HARD_QUANTILES if args.hard_seeds else None)
    result = segment(image, merge_seeds(automatic, hand), iterations=args.iterations, gamma=args.gamma)
    Path(args.out).write_bytes(encode_png(result.is_foreground_hw.astype("uint8") * 255))
    if args.seeds_out:
        Path(args.seeds_out).write_bytes(encode_seed_map(result.seeds_hw))
    print_json({
        "bbox": None if result.bbox is None else list(result.bbox),
        "class_index": saliency.class_index, "label": saliency.label,
        "area": result.area, "image_size": [image.shape[1], image.shape[0]],
        "fg_quantile": args.fg_quantile, "bg_quantile": args.bg_quantile, "gamma": args.gamma,
        "iterations": result.iterations, "model": model.name, "weights": model.weights, "out": args.out,
    })
