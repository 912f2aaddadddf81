"""`segment-folder IMAGES_DIR --out OUT_DIR`: pre-segment a folder (§3.2): each photo's mask, seed map and JSON;
with `--objects several`, into a review workspace, an object per instance of the class."""
from __future__ import annotations

from pathlib import Path

from engine.cli.common import add_model_args, print_json
from engine.cli.folder import add_folder_args, run_folder
from engine.runs.batch import photos_from
from engine.runs.localisation import list_images
from engine.runs.segment_folder import OBJECTS, SegmentJob, check_workspace_layout
from engine.segmentation.presets import DEFAULT_PRESET, PRESETS, get_preset

RESULTS = "results.jsonl"  # in OUT_DIR: one line per photo, what --resume reads


def register(subparsers) -> None:
    parser = subparsers.add_parser("segment-folder", help="segment every photo of a folder (§3.2): mask, seeds and JSON for each")
    parser.add_argument("images_dir")
    add_model_args(parser)
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=tuple(PRESETS),
                        help="segmentation recipe (default: %(default)s; 'paper' is §3.2 as written)")
    parser.add_argument("--class", dest="target", default=None,
                        help="one class index or exact label for every photo (default: each photo's top-1)")
    parser.add_argument("--objects", default="one", choices=OBJECTS,
                        help="one: each photo's cut by the preset, as three files (default); several: an object per "
                             "instance of the class in the cut, the strongest as the three files and the others as objects "
                             "of the review workspace (needs IMAGES_DIR = WORKSPACE/images and OUT_DIR = WORKSPACE/segmentations); "
                             "a rerun adds none twice")
    parser.add_argument("--max-objects", type=int, default=None, metavar="N",
                        help="with --objects several: at most N objects a photo, the strongest (default: 5)")
    add_folder_args(parser, out=("OUT_DIR", f"the folder for each photo's <stem>_mask.png, <stem>_seeds.png and <stem>.json, "
                                           f"and {RESULTS} (one line per photo, as each finishes; what --resume reads)"))
    parser.set_defaults(run=run)


def run(args) -> None:
    if args.out is None:
        raise ValueError("segment-folder needs --out OUT_DIR: the folder for the masks, seed maps and JSON files.")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; --out is the folder for the results.")
    target = None
    if args.target is not None:
        from engine.models import find_class, imagenet_categories

        target = find_class(imagenet_categories(), args.target)
    if args.max_objects is not None and args.objects != "several":
        raise ValueError("--max-objects counts the objects of --objects several.")
    if args.objects == "several":
        check_workspace_layout(args.images_dir, out_dir)
    paths = {p.name: p for p in list_images(args.images_dir)}
    job = SegmentJob(get_preset(args.preset), str(out_dir), target, args.model, args.weights, args.device, args.cuda_math,
                     objects=args.objects, max_objects=5 if args.max_objects is None else args.max_objects)
    args.out = str(out_dir / RESULTS)  # the folder runner streams its lines there
    result = run_folder(args, job.stages, list(paths), lambda names: photos_from([paths[n] for n in names]))
    failed = [{"image": line["image"], "reason": line["error"]} for line in result.lines if "error" in line]
    print_json({
        "images": len(paths), "written": len(result.lines) - len(failed), "failed": failed,
        "processed": result.new, "seconds": result.seconds, "startup_seconds": result.startup_seconds,
        "images_per_second": result.new / result.seconds if result.seconds > 0 and result.new else None,
        "preset": job.preset.name, "model": args.model, "weights": args.weights, "out": str(out_dir), "results": args.out,
        **({"objects": sum(line.get("objects", 0) for line in result.lines)} if args.objects == "several" else {}),
        **({"cuts_per_node": result.nodes} if result.nodes else {}),
    })
