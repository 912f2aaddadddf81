"""`localise --top 5` speed: the code path before presets against the default preset, in one process.

The old path, as `localise` ran it until 2026-11-28: the paper's recipe on the centre view, five
saliency passes per photo that each redo the resize and crop, and five cuts one after another. The
new path: the default preset's five maps from one batched pass, the cuts in ``--jobs`` processes.
Photos: the first N of ../shared/data/ilsvrc2012-val-dev (ImageNet's terms: read there, never copied).

    .venv/bin/python benchmarks/bench_localisation.py [N] [--ray] [--ray-only]
    .venv/bin/python benchmarks/bench_localisation.py --cli SHARD      # e.g. 0/4: 164 photos

With --ray it adds a local Ray instance against the single-process run on one thread (--jobs 1),
Ray's start and shutdown, and Ray's own cost per photo: the same run with stages that hand back arrays
of the real shapes and cut nothing. --cli times the command line itself, launch to exit.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Only light imports at the top: --jobs spawns worker processes that import this script again, and
# importing torch there (1-2 s each, on both cores) had been counted as the runner's time.
from engine.runs import batch  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ilsvrc2012-val-dev"
ROUNDS = 3


def old_path(model, paths) -> float:
    """Seconds for the pre-preset loop over ``paths`` (top 5, centre view, one class at a time)."""
    from engine.attribution.saliency import compute_saliency, predict
    from engine.images import load_image
    from engine.segmentation.cut import automatic_seeds, segment

    started = time.perf_counter()
    for path in paths:
        image = load_image(path)
        for prediction in predict(model, image, top=5, views=1):
            saliency = compute_saliency(model, image, target=prediction.index, views=1).saliency_hw
            try:
                segment(image, automatic_seeds(saliency), iterations=5, gamma=150.0)
            except ValueError:
                pass
    return time.perf_counter() - started


def new_path(model, paths, jobs: int, annotations: Path = DATA / "annotations") -> float:
    """Seconds for the default preset over ``paths``: the model here, the cuts in ``jobs`` processes."""
    from engine.runs.localisation import SaliencyLocaliser, evaluate
    from engine.segmentation.presets import DEFAULT_PRESET, get_preset

    started = time.perf_counter()
    evaluate(SaliencyLocaliser(model, get_preset(DEFAULT_PRESET)), paths, annotations, top=5, jobs=jobs)
    return time.perf_counter() - started


def no_cut(image_hwc, maps) -> list:
    return [None] * len(maps)


class Replay:
    """Stages whose model stage hands back, at once, arrays of each photo's real shapes (its pixels and its
    five full-size maps), and whose cut does nothing: a Ray run of them moves the same bytes through the
    same actors, tasks and object store as a real run, so its time is Ray's own."""

    def __init__(self, shapes: dict):
        self.shapes = shapes  # photo name -> (image shape, [map shapes]): a few bytes to ship to the actor
        self.finish = no_cut  # a plain function: nothing of this object travels with each cut

    def __call__(self, with_model: bool = True):  # the make_stages interface
        return self

    def propose(self, photo):
        image_shape, map_shapes = self.shapes[photo.name]
        maps = tuple(np.full(shape, 0.5, np.float32) for shape in map_shapes)
        return batch.Proposal(photo.name, np.full(image_shape, 128, np.uint8), (maps,), None)

    def assemble(self, proposal, finished):
        return {"image": proposal.image, "guesses": len(finished)}


def ray_seconds(make_stages, paths, rounds: int = ROUNDS, nodes: int = 0, *, annotations: Path = DATA / "annotations",
                num_gpus: int | None = None) -> tuple[list[tuple[float, float]], dict]:
    """(startup, run) seconds for each of ``rounds`` Ray runs over ``paths`` (startup: until every model
    actor holds its model; run: the photos, as the command line's clock counts them), and the cuts each
    node ran: on a local instance with all cores (and ``num_gpus``: None, all of them), or with ``nodes``
    > 0 on that many Ray nodes on this machine (``ray.cluster_utils.Cluster``) sharing its cores. Ray
    itself is started before the clock."""
    import ray

    from engine.runs import ray_runner
    from engine.runs.localisation import read_photos

    cluster = None
    if nodes:
        from ray.cluster_utils import Cluster

        share = max(1, (os.cpu_count() or 1) // nodes)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": share})
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=share)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), num_gpus=num_gpus, include_dashboard=False, log_to_driver=False)
    try:
        times, per_node = [], {}
        for _ in range(rounds):
            clock = [time.perf_counter()]
            ray_runner.run_ray(make_stages, read_photos(paths, annotations), on_line=lambda line: None,
                               on_nodes=per_node.update, on_ready=lambda: clock.append(time.perf_counter()))
            times.append((clock[1] - clock[0], time.perf_counter() - clock[1]))
        return times, per_node
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


def ray_start_seconds() -> tuple[float, float]:
    """Median seconds to start a local Ray instance on all cores, and to shut it down (3 of each)."""
    import ray

    starts, stops = [], []
    for _ in range(3):
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        starts.append(time.perf_counter() - started)
        started = time.perf_counter()
        ray.shutdown()
        stops.append(time.perf_counter() - started)
    return statistics.median(starts), statistics.median(stops)


def ray_rows(model, paths) -> None:
    """--ray against the single-process run on one thread (--jobs 1) and --jobs 2, in this process with
    the model loaded (the command line's clock), Ray's fixed costs, and Ray's own cost per photo."""
    from engine.runs.localisation import LocaliseJob, LocaliseStages, SaliencyLocaliser, read_photos
    from engine.segmentation.presets import DEFAULT_PRESET, get_preset

    count = len(paths)
    job = LocaliseJob(get_preset(DEFAULT_PRESET), top=5)
    runs = {1: [], 2: [], "ray": [], "startup": []}
    for _ in range(ROUNDS):  # interleaved: this machine drifts by 10-30% within minutes
        for jobs in (1, 2):
            runs[jobs].append(new_path(model, paths, jobs))
        ((startup, run),), _ = ray_seconds(job.stages, paths, rounds=1)
        runs["ray"].append(run)
        runs["startup"].append(startup)
    single, on_ray = statistics.median(runs[1]), statistics.median(runs["ray"])
    print(f"{'--jobs 1 (one process, one thread)':<52} {count / single:6.2f} photos/s   (runs: "
          + ", ".join(f"{t:.1f}" for t in runs[1]) + " s)")
    print(f"{'--jobs 2':<52} {count / statistics.median(runs[2]):6.2f} photos/s   "
          f"{single / statistics.median(runs[2]):5.2f}× --jobs 1 (runs: " + ", ".join(f"{t:.1f}" for t in runs[2]) + " s)")
    print(f"{'--ray, local instance, all cores':<52} {count / on_ray:6.2f} photos/s   {single / on_ray:5.2f}× --jobs 1 "
          "(runs: " + ", ".join(f"{t:.1f}" for t in runs["ray"]) + " s; model actors ready after "
          + ", ".join(f"{t:.1f}" for t in runs["startup"]) + " s)")
    init, shutdown = ray_start_seconds()
    print(f"{'Ray start / shutdown (local instance)':<52} {init:6.2f} s / {shutdown:.2f} s")
    for nodes in (1, 2):
        times, per_node = ray_seconds(job.stages, paths, nodes=nodes)
        print(f"{f'--ray ADDRESS, {nodes} node(s) on this machine':<52} {count / statistics.median(t for _, t in times):6.2f} photos/s   "
              f"cuts per node in the last run: {sorted(per_node.values())}")
    stages = LocaliseStages(SaliencyLocaliser(model, get_preset(DEFAULT_PRESET)), top=5)
    with batch.one_thread():
        shapes = {}
        for photo in read_photos(paths, DATA / "annotations"):
            proposal = stages.propose(photo)
            shapes[photo.name] = (proposal.image_hwc.shape, [m.shape for m in proposal.payloads[0]])
    replay = statistics.median(t for _, t in ray_seconds(Replay(shapes), paths)[0])
    print(f"{'Ray alone (the same photos and maps, no work)':<52} {replay / count * 1000:6.1f} ms/photo  "
          f"{replay / single * 100:5.1f}% of the --jobs 1 run's time")


def cli_rows(shard: str) -> None:
    """End to end, as a user waits for it: `localise --top 5` through the command line on a shard of the
    development photos, --jobs 1, --ray and --jobs 2 interleaved; wall time from launch to exit, and the
    command's own clock (photos, after the model loads) and startup."""
    import json
    import subprocess

    root = Path(__file__).resolve().parents[1]
    runners = {"--jobs 1": ["--jobs", "1"], "--ray": ["--ray"], "--jobs 2": ["--jobs", "2"]}
    walls: dict = {name: [] for name in runners}
    reports: dict = {name: [] for name in runners}
    for _ in range(ROUNDS):
        for name, flags in runners.items():
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "engine", "localise", str(DATA / "images"), str(DATA / "annotations"),
                                   "--top", "5", "--shard", shard, *flags], cwd=root, capture_output=True, text=True, check=True)
            walls[name].append(time.perf_counter() - started)
            reports[name].append(json.loads(done.stdout))
    count = reports["--jobs 1"][0]["images"]
    wall_1 = statistics.median(walls["--jobs 1"])
    run_1 = statistics.median(r["seconds"] for r in reports["--jobs 1"])
    print(f"through the command line, shard {shard} ({count} photos), medians of {ROUNDS} interleaved runs:")
    for name in runners:
        wall, run = statistics.median(walls[name]), statistics.median(r["seconds"] for r in reports[name])
        startup = statistics.median(r["startup_seconds"] for r in reports[name])
        print(f"  {name:<10} launch to exit {wall:6.1f} s = {count / wall:5.2f} photos/s ({wall_1 / wall:4.2f}×);  "
              f"photos {run:6.1f} s = {count / run:5.2f} photos/s ({run_1 / run:4.2f}×);  startup {startup:4.1f} s")


def stage_seconds(model, paths, annotations: Path = DATA / "annotations") -> tuple[float, float]:
    """Median seconds per photo of the default preset's model stage (on the model's device; its maps come
    back as numpy, so a GPU is synchronised) and of its five cuts (one thread)."""
    from engine.runs.localisation import LocaliseStages, SaliencyLocaliser, read_photos
    from engine.segmentation.presets import DEFAULT_PRESET, get_preset

    stages = LocaliseStages(SaliencyLocaliser(model, get_preset(DEFAULT_PRESET)), top=5)
    model_times, cut_times = [], []
    with batch.one_thread():
        for photo in read_photos(paths, annotations):
            started = time.perf_counter()
            proposal = stages.propose(photo)
            model_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            for payload in proposal.payloads:
                stages.finish(proposal.image_hwc, payload)
            cut_times.append(time.perf_counter() - started)
    return sorted(model_times)[len(paths) // 2], sorted(cut_times)[len(paths) // 2]


def main() -> None:
    from benchmarks.common import machine
    from engine.models import load_model
    from engine.runs.localisation import list_images
    from engine.segmentation.presets import DEFAULT_PRESET

    if "--cli" in sys.argv:
        print(machine())
        cli_rows(sys.argv[sys.argv.index("--cli") + 1])
        return
    count = int(next((a for a in sys.argv[1:] if a.isdigit()), 30))
    paths = list_images(DATA / "images")[:count]
    model = load_model()
    print(machine())
    print(f"{count} photos of the development set, top 5")
    model_s, cut_s = stage_seconds(model, paths[:10])
    print(f"default preset, per photo on one thread: model stage {model_s * 1000:.0f} ms, five cuts {cut_s * 1000:.0f} ms")
    if "--ray-only" in sys.argv:
        ray_rows(model, paths)
        return
    # Interleaved, medians of ROUNDS: this machine drifts by 10-30% within minutes.
    runs = {"old": [], 1: [], os.cpu_count() or 1: []}
    for _ in range(ROUNDS):
        runs["old"].append(old_path(model, paths))
        for jobs in list(runs)[1:]:
            runs[jobs].append(new_path(model, paths, jobs))
    old = statistics.median(runs["old"])
    print(f"{'old path (paper recipe, 5 passes, serial cuts)':<52} {count / old:6.2f} photos/s   (runs: "
          + ", ".join(f"{t:.1f}" for t in runs["old"]) + " s)")
    for jobs in list(runs)[1:]:
        new = statistics.median(runs[jobs])
        print(f"{f'{DEFAULT_PRESET}, --jobs {jobs}':<52} {count / new:6.2f} photos/s   {old / new:5.2f}× the old path (runs: "
              + ", ".join(f"{t:.1f}" for t in runs[jobs]) + " s)")
    if "--ray" in sys.argv:
        ray_rows(model, paths)


if __name__ == "__main__":
    main()
