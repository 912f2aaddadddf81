"""`localise IMAGES_DIR ANNOTATIONS_DIR`: ILSVRC localisation of saliency-seeded boxes (§3.2), beside the centred-box baseline."""
from __future__ import annotations

from pathlib import Path

from engine.cli.common import add_model_args, print_json
from engine.cli.folder import add_folder_args, run_folder
from engine.runs.localisation import LocaliseJob, annotated_photos, list_images, read_photos, report_from_lines
from engine.segmentation.presets import DEFAULT_PRESET, PRESETS, get_preset


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
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=tuple(PRESETS),
                        help="localisation recipe (default: %(default)s; 'paper' is §3.2 as written)")
    parser.add_argument("--top", type=int, default=5, choices=(1, 5), help="guesses per image (default: %(default)s)")
    parser.add_argument("--gt-known", action="store_true",
                        help="one guess per image, the annotated class: prints gt_known_accuracy")
    parser.add_argument("--shard", default="0/1", help="I/N: take every N-th image from the I-th (0-based), sorted by name")
    add_folder_args(parser)
    parser.add_argument("--details", action="store_true", help="also print each image's guesses")
    parser.set_defaults(run=run)


def run(args) -> None:
    preset = get_preset(args.preset)
    annotated, missing = annotated_photos(list_images(args.images_dir, shard=parse_shard(args.shard)), args.annotations_dir)
    by_name = {p.name: p for p in annotated}
    job = LocaliseJob(preset, args.model, args.weights, args.device, args.cuda_math, args.top, args.gt_known)
    result = run_folder(args, job.stages, list(by_name), lambda names: read_photos([by_name[n] for n in names], args.annotations_dir))
    report = report_from_lines(result.lines, top=args.top, gt_known=args.gt_known, missing=missing, seconds=result.seconds)
    payload = {
        "images": report.images, "preset": preset.name,
        "top1_error": report.top1_error, "top5_error": report.top5_error,
        "top1_correct": None if args.gt_known else report.top1_correct, "top5_correct": report.top5_correct,
        "gt_known_accuracy": report.gt_known_accuracy, "gt_known_correct": report.gt_known_correct,
        "centre_box_accuracy": report.centre_box_accuracy, "centre_box_correct": report.centre_box_correct,
        "guesses": report.guesses, "empty_boxes": report.empty_boxes,
        "split": report.split,  # GT-known (or top-1, and top-5) by instances of the class and by its largest box's size
        "images_per_second": result.new / result.seconds if result.seconds > 0 and result.new else None,
        "processed": result.new, "seconds": result.seconds, "startup_seconds": result.startup_seconds,
               "runner": "ray" if args.ray else f"local, {args.jobs} jobs",
        "missing_annotations": list(report.missing_annotations),
        "failed": [{"image": name, "reason": reason} for name, reason in report.failed],
        "shard": args.shard, "model": args.model, "weights": args.weights, "settings": preset.settings(),
    }
    if result.nodes:
        payload["cuts_per_node"] = result.nodes
    if args.out:
        payload["out"] = str(Path(args.out))
    if args.details:
        payload["per_image"] = list(report.per_image)
    print_json(payload)
