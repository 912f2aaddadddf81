"""`noc DATASET_DIR`: clicks to IoU 0.85 / 0.90 with the benchmarks' simulated user (hand refinement of §3.2 masks)."""
from __future__ import annotations

from engine.cli.common import add_model_args, print_json
from engine.cli.folder import add_folder_args, run_folder
from engine.runs.noc import REFINEMENTS, STARTS, NocJob, dataset_photos, read_photos, summarise
from engine.segmentation.presets import DEFAULT_PRESET, PRESETS, get_preset


def register(subparsers) -> None:
    parser = subparsers.add_parser("noc", help="clicks to a good mask (NoC@85/90) on an interactive-segmentation set")
    parser.add_argument("dataset_dir", help="a folder with images/ and masks/ of the same stems "
                                            "(mask: 0 background, 128 left out of IoU, any other value the object)")
    add_model_args(parser)
    parser.add_argument("--clicks", type=int, default=20, help="clicks per object (default: %(default)s)")
    parser.add_argument("--radius", type=float, default=5.0, help="a click's disc radius in photo pixels (default: %(default)s)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=tuple(PRESETS),
                        help="the automatic mask's recipe, with --start auto (default: %(default)s)")
    parser.add_argument("--start", default="auto", choices=STARTS,
                        help="auto: from the page's automatic mask; empty: the first click is the first input (default: %(default)s)")
    parser.add_argument("--refine", dest="refinement", default="interactive", choices=REFINEMENTS,
                        help="interactive: clicks spread by the network's features and re-fitted colour models; recut: the "
                             "hand seeds as hard constraints in one re-cut of the automatic mask (default: %(default)s)")
    add_folder_args(parser)
    parser.set_defaults(run=run)


def run(args) -> None:
    job = NocJob(get_preset(args.preset), args.start, args.refinement, args.clicks, args.radius, model=args.model,
                 weights=args.weights, device=args.device, cuda_math=args.cuda_math)
    images, masks = dataset_photos(args.dataset_dir)
    by_name = {p.name: p for p in images}
    result = run_folder(args, job.stages, list(by_name), lambda names: read_photos([by_name[n] for n in names], masks), unit="object")
    payload = summarise(result.lines, job)
    payload.update(model=args.model, weights=args.weights, seconds=result.seconds, startup_seconds=result.startup_seconds)
    print_json(payload)
