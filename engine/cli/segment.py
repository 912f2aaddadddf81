"""`segment IMAGE --out MASK.png`: the saliency-seeded segmentation of §3.2 and its bounding box."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.attribution.saliency import compute_saliency, predict
from engine.cli.common import add_model_args, model_from_args, print_json, read_image
from engine.images import encode_png
from engine.models import find_class
from engine.segmentation.cut import HARD_QUANTILES
from engine.segmentation.masks import decode_seed_map, encode_seed_map
from engine.segmentation.presets import CHANGED, DEFAULT_PRESET, PRESETS, get_preset, segment_with_preset


def register(subparsers) -> None:
    parser = subparsers.add_parser("segment", help="segment the object of a class from its saliency map (§3.2)")
    parser.add_argument("image")
    add_model_args(parser)
    add_preset_args(parser)
    parser.add_argument("--class", dest="target", default=None, help="class index or exact label (default: top-1)")
    parser.add_argument("--seeds", default=None, help="hand seed map PNG (codes 1 = background, 2 = foreground; hard constraints)")
    parser.add_argument("--out", required=True, help="where to write the mask PNG (255 = object)")
    parser.add_argument("--seeds-out", default=None, help="also write the seed map used (palette PNG of seed codes)")
    parser.set_defaults(run=run)


def add_preset_args(parser) -> None:
    """--preset and the knobs that override it (each defaults to the preset's own value)."""
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=tuple(PRESETS),
                        help="localisation recipe (default: %(default)s; 'paper' is §3.2 as written)")
    parser.add_argument("--crops", dest="views", default=None, choices=("1", "10", "full"),
                        help="saliency on the centre view, the paper's 10 views or the whole photo (default: the preset's)")
    parser.add_argument("--fg", "--fg-quantile", dest="fg", type=float, default=None,
                        help="foreground seeds at or above this quantile or level, as the preset seeds (default: the preset's)")
    parser.add_argument("--bg", "--bg-quantile", dest="bg", type=float, default=None,
                        help="background seeds at or below this quantile or level (default: the preset's)")
    parser.add_argument("--hard-seeds", action="store_true",
                        help=f"also clamp the {HARD_QUANTILES[0]}/{HARD_QUANTILES[1]} quantiles as hard seeds")
    parser.add_argument("--iterations", type=int, default=None, help="GrabCut rounds (default: the preset's)")
    parser.add_argument("--gamma", type=float, default=None, help="Potts weight at a 256-pixel short side (default: the preset's)")


def preset_from_args(args):
    """The chosen preset with the command line's overrides; its name says when it was changed."""
    preset = get_preset(args.preset)
    changes = {key: getattr(args, key) for key in ("fg", "bg", "iterations", "gamma") if getattr(args, key) is not None}
    if args.views is not None:
        changes["views"] = args.views if args.views == "full" else int(args.views)
    if args.hard_seeds:
        changes["hard_quantiles"] = HARD_QUANTILES
    if not changes:
        return preset
    return dataclasses.replace(preset, name=preset.name + CHANGED, **changes)


def run(args) -> None:
    image = read_image(args.image)
    hand = None
    if args.seeds is not None:
        try:
            hand = decode_seed_map(Path(args.seeds).read_bytes())
        except FileNotFoundError:
            raise ValueError(f"No such file: {args.seeds}") from None
    preset = preset_from_args(args)
    model = model_from_args(args)
    target = find_class(model.categories, args.target) if args.target is not None else predict(model, image, top=1)[0].index
    saliency = compute_saliency(model, image, target=target, views=preset.views, method=preset.method)
    result = segment_with_preset(image, saliency.saliency_hw, preset, hand_hw=hand)
    Path(args.out).write_bytes(encode_png(result.is_foreground_hw.astype("uint8") * 255))
    if args.seeds_out:
        Path(args.seeds_out).write_bytes(encode_seed_map(result.seeds_hw))
    print_json({
        "bbox": None if result.bbox is None else list(result.bbox),
        "class_index": saliency.class_index, "label": saliency.label,
        "area": result.area, "image_size": [image.shape[1], image.shape[0]], "preset": preset.name,
        "seeds_promoted": result.seeds_promoted, "iterations": result.iterations, "settings": preset.settings(),
        "model": model.name, "weights": model.weights, "out": args.out,
    })
