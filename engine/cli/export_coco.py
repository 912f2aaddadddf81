"""`export-coco WORKSPACE --out DATASET.json [--all]`: the reviewed masks (§3.2) as a COCO instances file."""
from __future__ import annotations

from engine.cli.common import print_json
from engine.runs.coco import write_coco
from engine.runs.workspace import open_workspace


def register(subparsers) -> None:
    parser = subparsers.add_parser("export-coco", help="write a workspace's reviewed masks as a COCO instances JSON")
    parser.add_argument("workspace", help="the review workspace (images/, segmentations/, refinements/)")
    parser.add_argument("--out", required=True, help="the JSON file to write (replaced atomically)")
    parser.add_argument("--all", action="store_true",
                        help="every photo's newest mask, not only the accepted ones")
    parser.set_defaults(run=run)


def run(args) -> None:
    workspace = open_workspace(args.workspace)
    include = "all" if args.all else "accepted"
    dataset = write_coco(workspace, args.out, include=include)
    print_json({
        "images": len(dataset["images"]), "annotations": len(dataset["annotations"]),
        "categories": len(dataset["categories"]), "include": include, "out": args.out,
        "skipped": [{"stem": stem, "reason": reason} for stem, reason in workspace.problems()],
    })
