"""`import-segmentations IMAGES_DIR ANNOTATIONS --out WORKSPACE [--copy|--link]`: anyone's masks (a COCO
instances JSON or a folder of mask PNGs) as objects of a review workspace, to refine by hand (§3.2)."""
from __future__ import annotations

import sys

from engine.cli.common import print_json
from engine.runs.import_segmentations import import_segmentations


def register(subparsers) -> None:
    parser = subparsers.add_parser("import-segmentations",
                                   help="import a COCO instances JSON or a folder of mask PNGs into a review workspace")
    parser.add_argument("images_dir", help="the folder of the photos the annotations are about")
    parser.add_argument("annotations", help="a COCO instances JSON, or a folder of <stem>.png / <stem>_<k>.png masks")
    parser.add_argument("--out", required=True, metavar="WORKSPACE", help="the workspace to import into (made when missing)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--copy", dest="mode", action="store_const", const="copy", help="copy the photos into WORKSPACE/images (default)")
    how.add_argument("--link", dest="mode", action="store_const", const="link",
                     help="hard-link the photos into WORKSPACE/images (same file system; no second copy)")
    parser.set_defaults(run=run, mode="copy")


def run(args) -> None:
    from tqdm import tqdm

    with tqdm(unit="photo", file=sys.stderr, dynamic_ncols=True, smoothing=0.1) as bar:
        def step(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        summary = import_segmentations(args.images_dir, args.annotations, args.out, mode=args.mode, on_step=step)
    print_json(summary)
