"""`localise --top 5` speed: the code path before presets against the default preset, in one process.

The old path, as `localise` ran it until 2026-11-28: the paper's recipe on the centre view, five
saliency passes per photo that each redo the resize and crop, and five cuts one after another. The
new path: the default preset's five maps from one batched pass, the cuts in ``--jobs`` processes.
Photos: the first N of ../shared/data/ilsvrc2012-val-dev (ImageNet's terms: read there, never copied).

    .venv/bin/python benchmarks/bench_localisation.py [N] [--ray]
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: E402
from engine import batch  # noqa: E402
from engine.images import load_image  # noqa: E402
from engine.localisation import LocaliseJob, LocaliseStages, SaliencyLocaliser, evaluate, list_images, read_photos  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.presets import DEFAULT_PRESET, get_preset  # noqa: E402
from engine.saliency import compute_saliency, predict  # noqa: E402
from engine.segmentation import automatic_seeds, segment  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ilsvrc2012-val-dev"
ROUNDS = 3


def old_path(model, paths) -> float:
    """Seconds for the pre-preset loop over ``paths`` (top 5, centre view, one class at a time)."""
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
    started = time.perf_counter()
    evaluate(SaliencyLocaliser(model, get_preset(DEFAULT_PRESET)), paths, DATA / "annotations", top=5, jobs=jobs)
    return time.perf_counter() - started


def ray_path(paths, num_cpus: int | None = None) -> float:
    import ray

    from engine import ray_runner

    ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        job = LocaliseJob(get_preset(DEFAULT_PRESET), top=5)
        ray_runner.run_ray(job.stages, read_photos(paths[:2], DATA / "annotations"), on_line=lambda line: None)  # warm: actors up
        started = time.perf_counter()
        ray_runner.run_ray(job.stages, read_photos(paths, DATA / "annotations"), on_line=lambda line: None)
        return time.perf_counter() - started
    finally:
        ray.shutdown()


def stage_seconds(model, paths) -> tuple[float, float]:
    """Median seconds per photo of the default preset's model stage and of its five cuts (one thread)."""
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
    count = int(next((a for a in sys.argv[1:] if a.isdigit()), 30))
    paths = list_images(DATA / "images")[:count]
    model = load_model()
    print(machine())
    print(f"{count} photos of the development set, top 5")
    model_s, cut_s = stage_seconds(model, paths[:10])
    print(f"default preset, per photo on one thread: model stage {model_s * 1000:.0f} ms, five cuts {cut_s * 1000:.0f} ms")
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
        single = new_path(model, paths, 1)
        on_ray = ray_path(paths)
        print(f"{'--ray, local instance, all cores':<52} {count / on_ray:6.2f} photos/s   {single / on_ray:5.2f}× --jobs 1")
        on_one = ray_path(paths, num_cpus=1)
        print(f"{'--ray, local instance, 1 CPU (Ray overhead)':<52} {count / on_one:6.2f} photos/s   "
              f"overhead {(on_one - single) / count * 1000:+.0f} ms/photo ({(on_one / single - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
