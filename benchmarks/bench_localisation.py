"""`localise --top 5` speed: the code path before presets against the default preset, in one process.

The old path, as `localise` ran it until 2026-11-28: the paper's recipe on the centre view, five
saliency passes per photo that each redo the resize and crop, and five cuts one after another. The
new path: the default preset's five maps from one batched pass, the cuts in ``--jobs`` processes.
Photos: the first N of ../shared/data/ilsvrc2012-val-dev (ImageNet's terms: read there, never copied).

    .venv/bin/python benchmarks/bench_localisation.py [N] [--ray] [--ray-only]

With --ray it adds a local Ray instance against the single-process run on one thread (--jobs 1), and
Ray's own cost: the same run with stages that replay recorded results and cut nothing.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Only light imports at the top: --jobs spawns worker processes that import this script again, and
# importing torch there (1-2 s each, on both cores) had been counted as the runner's time.
from engine import batch  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ilsvrc2012-val-dev"
ROUNDS = 3


def old_path(model, paths) -> float:
    """Seconds for the pre-preset loop over ``paths`` (top 5, centre view, one class at a time)."""
    from engine.images import load_image
    from engine.saliency import compute_saliency, predict
    from engine.segmentation import automatic_seeds, segment

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


def new_path(model, paths, jobs: int) -> float:
    from engine.localisation import SaliencyLocaliser, evaluate
    from engine.presets import DEFAULT_PRESET, get_preset

    started = time.perf_counter()
    evaluate(SaliencyLocaliser(model, get_preset(DEFAULT_PRESET)), paths, DATA / "annotations", top=5, jobs=jobs)
    return time.perf_counter() - started


def no_cut(image_hwc, maps) -> list:
    return [None] * len(maps)


class Replay:
    """Stages that hand back recorded model-stage results at once and cut nothing: a Ray run of them
    moves the same photos, maps and lines through the same actors and tasks, so its time is Ray's own."""

    def __init__(self, proposals: dict):
        self.proposals = proposals
        self.finish = no_cut  # a plain function: a bound method would ship every recorded map with each task

    def __call__(self, with_model: bool = True):  # the make_stages interface
        return self

    def propose(self, photo):
        return self.proposals[photo.name]

    def assemble(self, proposal, finished):
        return {"image": proposal.image, "guesses": len(finished)}


def ray_seconds(make_stages, paths, rounds: int = ROUNDS, nodes: int = 0) -> tuple[list[float], dict]:
    """Seconds for each of ``rounds`` Ray runs over ``paths`` (actors started and warm before the
    clock), and the cuts each node ran: on a local instance with all cores, or with ``nodes`` > 0 on
    that many Ray nodes on this machine (``ray.cluster_utils.Cluster``) sharing its cores."""
    import ray

    from engine import ray_runner
    from engine.localisation import read_photos

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
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        ray_runner.run_ray(make_stages, read_photos(paths[:2], DATA / "annotations"), on_line=lambda line: None)
        times, per_node = [], {}
        for _ in range(rounds):
            started = time.perf_counter()
            ray_runner.run_ray(make_stages, read_photos(paths, DATA / "annotations"), on_line=lambda line: None,
                               on_nodes=per_node.update)
            times.append(time.perf_counter() - started)
        return times, per_node
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


def ray_rows(model, paths) -> None:
    """--ray against the single-process run on one thread (--jobs 1), and Ray's own cost per photo."""
    from engine.localisation import LocaliseJob, LocaliseStages, SaliencyLocaliser, read_photos
    from engine.presets import DEFAULT_PRESET, get_preset

    count = len(paths)
    single = statistics.median(new_path(model, paths, 1) for _ in range(ROUNDS))
    job = LocaliseJob(get_preset(DEFAULT_PRESET), top=5)
    on_ray, _ = ray_seconds(job.stages, paths)
    print(f"{'--jobs 1 (one process, one thread)':<52} {count / single:6.2f} photos/s")
    print(f"{'--ray, local instance, all cores':<52} {count / statistics.median(on_ray):6.2f} photos/s   "
          f"{single / statistics.median(on_ray):5.2f}× --jobs 1 (runs: " + ", ".join(f"{t:.1f}" for t in on_ray) + " s)")
    for nodes in (1, 2):
        times, per_node = ray_seconds(job.stages, paths, nodes=nodes)
        print(f"{f'--ray ADDRESS, {nodes} node(s) on this machine':<52} {count / statistics.median(times):6.2f} photos/s   "
              f"cuts per node in the last run: {sorted(per_node.values())}")
    stages = LocaliseStages(SaliencyLocaliser(model, get_preset(DEFAULT_PRESET)), top=5)
    with batch.one_thread():
        recorded = {photo.name: stages.propose(photo) for photo in read_photos(paths, DATA / "annotations")}
    replay = statistics.median(ray_seconds(Replay(recorded), paths)[0])
    print(f"{'Ray alone (the same photos and maps, no work)':<52} {replay / count * 1000:6.1f} ms/photo  "
          f"{replay / single * 100:5.1f}% of the --jobs 1 run's time")

def stage_seconds(model, paths) -> tuple[float, float]:
    """Median seconds per photo of the default preset's model stage and of its five cuts (one thread)."""
    from engine.localisation import LocaliseStages, SaliencyLocaliser, read_photos
    from engine.presets import DEFAULT_PRESET, get_preset

    stages = LocaliseStages(SaliencyLocaliser(model, get_preset(DEFAULT_PRESET)), top=5)
    model_times, cut_times = [], []
    with batch.one_thread():
        for photo in read_photos(paths, DATA / "annotations"):
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
    from engine.localisation import list_images
    from engine.models import load_model
    from engine.presets import DEFAULT_PRESET

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
