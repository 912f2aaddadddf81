"""`export-coco WORKSPACE --out DATASET.json [--all] [--format png]`: the reviewed objects (§3.2) as a COCO
instances file, or as instance-id PNGs in the layout `import-segmentations` reads."""
from __future__ import annotations

from engine.cli.common import print_json
from engine.runs.coco import FORMATS, write_coco, write_instance_pngs
from engine.runs.workspace import open_workspace


def register(subparsers) -> None:
    parser = subparsers.add_parser("export-coco", help="write a workspace's reviewed objects as a COCO instances JSON (or PNGs)")
    parser.add_argument("workspace", help="the review workspace (images/, segmentations/, refinements/)")
    parser.add_argument("--out", required=True, help="the JSON file to write (replaced atomically); with --format png, a folder")
    parser.add_argument("--all", action="store_true",
                        help="every object's newest mask, not only the accepted ones (deleted objects never)")
    parser.add_argument("--format", choices=FORMATS, default="json",
                        help="json: COCO instances; png: <stem>.png per photo, each object's pixels its number 1, 2, ... "
                             "(default: %(default)s)")
    parser.set_defaults(run=run)


def run(args) -> None:
    workspace = open_workspace(args.workspace)
    include = "all" if args.all else "accepted"
    skipped = [{"stem": stem, "reason": reason} for stem, reason in workspace.problems()]
    if args.format == "png":
        written = write_instance_pngs(workspace, args.out, include=include)
        print_json({**written, "include": include, "format": "png", "out": args.out, "skipped": skipped + written["skipped"]})
        return
    dataset = write_coco(workspace, args.out, include=include)
    print_json({
        "images": len(dataset["images"]), "annotations": len(dataset["annotations"]),
        "categories": len(dataset["categories"]), "include": include, "out": args.out, "skipped": skipped,
    })
