"""`gallery --out DIR`: the paper at a glance (§2, §3.1, §3.2, §4) as small tiles and a manifest, for the home page."""
from __future__ import annotations

import sys
from pathlib import Path

from engine.cli.common import add_model_args, model_from_args, print_json
from engine.runs.gallery import ASSETS, MANIFEST, build_gallery, gallery_specs


def register(subparsers) -> None:
    parser = subparsers.add_parser("gallery", help="make the home page's gallery: the paper's figures by this engine, with a manifest")
    parser.add_argument("--out", required=True, help="the gallery folder (the app ships assets/gallery)")
    parser.add_argument("--photos", default=str(ASSETS), help="folder of the demo photos, <stem>.jpg (default: the app's assets/)")
    parser.add_argument("--only", nargs="+", metavar="TILE", default=None,
                        help=f"remake only these tiles (ids as in {MANIFEST}); the others stay as they are")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: %(default)s, as the shipped gallery was made: class images "
                             "depend on how the convolutions split their sums)")
    add_model_args(parser)
    parser.set_defaults(run=run)


def run(args) -> None:
    specs = gallery_specs()
    if args.only:
        known = {s.id: s for s in specs}
        unknown = [t for t in args.only if t not in known]
        if unknown:
            raise ValueError(f"Unknown tile {', '.join(unknown)}; the tiles are {', '.join(known)}.")
        specs = tuple(known[t] for t in args.only)
    if not Path(args.photos).is_dir():
        raise ValueError(f"No folder {args.photos} for the photos.")
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1; got {args.threads}.")
    import torch

    torch.set_num_threads(args.threads)
    model = model_from_args(args)
    bar = _Progress(len(specs))
    manifest = build_gallery(model, args.out, photos_dir=args.photos, specs=specs, on_tile=bar.tile, on_step=bar.step)
    bar.close()
    print_json({"out": args.out, "tiles": len(manifest["tiles"]), "made": [s.id for s in specs],
                "model": model.name, "weights": model.weights, "manifest": str(Path(args.out) / MANIFEST)})


class _Progress:
    """A bar on stderr over the tiles, its postfix the tile in hand and its step."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="tile", file=sys.stderr, dynamic_ncols=True)
        self.current = ""

    def tile(self, index: int, total: int, spec) -> None:
        if index:
            self.bar.update(1)
        self.current = spec.id
        self.bar.set_postfix_str(spec.id)

    def step(self, step: int, steps: int) -> None:
        if steps > 1 and (step % 10 == 0 or step == steps):
            self.bar.set_postfix_str(f"{self.current} step {step}/{steps}")

    def close(self) -> None:
        self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()
