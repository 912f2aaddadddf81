"""What `localise` and `segment-folder` share: the runner (one process, --jobs, or --ray), JSON lines
to --out as photos finish, --resume, and a progress bar on stderr."""
from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from engine.runs import batch


def add_folder_args(parser, *, out: tuple[str, str] = ("RESULTS.jsonl", "one JSON line per photo, written as each finishes")) -> None:
    """--jobs, --ray, --out (``out``: its metavar and help) and --resume."""
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="without --ray: processes for the graph cuts (default: all %(default)s cores)")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run on Ray: alone, a local instance on this machine's cores; with an ADDRESS "
                             "(auto, HOST:PORT, ray://...) the cluster there")
    parser.add_argument("--out", default=None, metavar=out[0], help=out[1])
    parser.add_argument("--resume", action="store_true", help="keep --out's lines and skip the photos they cover")


@dataclass
class FolderRun:
    """The lines of a run (kept from --out, then new), how long the new part took once the model was
    loaded (``seconds``) and the loading itself (``startup_seconds``: the model here; with Ray, starting
    or joining it and its model actors), and where cuts ran."""

    lines: list = field(default_factory=list)
    seconds: float = 0.0
    startup_seconds: float = 0.0
    new: int = 0
    nodes: dict = field(default_factory=dict)


def run_folder(args, make_stages: Callable[..., object], names: Sequence[str],
               photos: Callable[[Sequence[str]], Iterable[batch.Photo]], *, unit: str = "photo") -> FolderRun:
    """Run the photos called ``names`` (minus those --resume finds in --out) through the stages;
    ``photos(names)`` reads them. Ctrl-C stops cleanly: the lines so far are kept for --resume."""
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out: the results file to resume.")
    if args.ray not in (None, "local"):
        from engine.runs.ray_cluster import check_cluster

        check_cluster(args.ray)  # a wrong address or token: one line in about a second, before any bar
    writer = batch.LineWriter(args.out, resume=args.resume)
    run = FolderRun(lines=list(writer.kept))
    todo = [n for n in names if n not in writer.done]
    if writer.done:
        print(f"resuming: {len(names) - len(todo)} of {len(names)} photos already in {args.out}", file=sys.stderr)
    bar = _progress_bar(len(todo), unit)

    def take(line: dict) -> None:
        writer.write(line)
        run.lines.append(line)
        bar.update(1)

    loading = time.perf_counter()
    stages = make_stages() if args.ray is None else None  # the model loads before the clock starts
    started = [loading]

    def ready() -> None:
        """The model is loaded (here, or in every Ray model actor): the photos' clock starts, and the
        bar's rate and time left count from here too."""
        started[0] = time.perf_counter()
        bar.reset()

    if stages is not None:
        ready()
    try:
        if stages is not None:
            batch.run_local(stages, photos(todo), jobs=args.jobs, on_line=take)
        else:
            _run_on_ray(args.ray, make_stages, photos(todo), take, run, ready)
    except KeyboardInterrupt:
        bar.close()
        writer.close()
        print(f"\nstopped: {len(run.lines)} photos are in {args.out or '(no --out)'}; "
              "run again with --resume to finish", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        bar.close()  # before main prints an error: a bar left open was drawn again under the error line
        writer.close()
    run.seconds, run.startup_seconds, run.new = time.perf_counter() - started[0], started[0] - loading, len(todo)
    return run


def _run_on_ray(address: str, make_stages, photos, take, run: FolderRun, ready: Callable[[], None]) -> None:
    from engine.runs import ray_runner

    # Ray's driver prints its own notices ("(raylet) Task ... failed ... will be retried") to sys.stdout:
    # they go to stderr with the progress bar, so that stdout holds only the JSON summary.
    with contextlib.redirect_stdout(sys.stderr):
        started_here = ray_runner.start(None if address == "local" else address)
        try:
            ray_runner.run_ray(make_stages, photos, on_line=take, on_nodes=run.nodes.update, on_ready=ready)
        finally:
            if started_here:
                import ray

                ray.shutdown()


def _progress_bar(total: int, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, smoothing=0.1, disable=not total)
