"""One prepared run for a lent GPU machine (the folder-scale issue), checked on a CPU before any
device minute is spent on it: without CUDA it measures the CPU side and says what it skipped.

1. The stage split on this machine's device (CUDA where present): medians per photo of the model
   stage (decode, top 5, five Grad-CAM maps) and of the five cuts on one core.
2. `localise --top 5` photos per second, the model loaded before the clock: the model on the GPU in
   this process and the cuts in every core but one (`--jobs`), against CPU only (the model on one
   thread, the cuts in every core); with Ray where it is installed, GPU model actors against CPU ones.
3. The 50,000-photo ILSVRC-2012 validation run projected from each rate.
4. Batch-1 gradient saliency, ∂S_c/∂I of the page's centre view: eager autograd, replayed from a
   CUDA graph (``engine.classviz.step``, the class-visualisation step's graph: the same gradient),
   and captum's ``Saliency``, with the largest difference between them.

    python benchmarks/gpu_localise.py [N] [--images DIR --annotations DIR]

Photos: the first N (default 164) of ../shared/data/ilsvrc2012-val-dev, or of --images/--annotations
(for a lent machine, which does not get ../shared: a folder ignored by git and carried for the run,
deleted after it; ImageNet's terms forbid committing the photos).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".gpu" / "site"))  # the embedded weights' package, carried to the device

# Only light imports at the top, as in bench_localisation.py: --jobs spawns workers that import this
# script again, and a torch import there (1-2 s a worker) would be counted as the runner's time.
from benchmarks.bench_localisation import DATA, new_path, ray_seconds, stage_seconds  # noqa: E402
from engine.runs.localisation import LocaliseJob, list_images  # noqa: E402
from engine.segmentation.presets import DEFAULT_PRESET, get_preset  # noqa: E402

VAL_PHOTOS = 50_000


def option(name: str, default: Path) -> Path:
    return Path(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def ray_rate(paths, annotations, *, gpus: bool) -> float | None:
    """Photos per second of a Ray run on a local instance (GPU model actors, or CPU ones), from the
    moment its actors hold their models; None without Ray."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return None
    job = LocaliseJob(get_preset(DEFAULT_PRESET), top=5, device=None if gpus else "cpu")
    ((_, run),), _ = ray_seconds(job.stages, paths, rounds=1, annotations=annotations, num_gpus=None if gpus else 0)
    return len(paths) / run


def saliency_rows(model) -> None:
    """Batch-1 ∂S_c/∂I of the centre view: eager, CUDA graph (CUDA only), captum."""
    import torch

    from benchmarks.common import median_seconds
    from engine.classviz.step import capture_score_gradient, eager_score_gradient
    from engine.images import load_image
    from engine.views import make_batch

    image = load_image(ROOT / "assets" / "cat.jpg")
    inputs, _, _ = make_batch(model, image, 1)
    with torch.no_grad():
        target = int(model.module(inputs).argmax())
    eager = eager_score_gradient(model.module, torch.tensor([[target]], device=inputs.device))
    times = {"eager autograd": median_seconds(lambda: eager(inputs), repeats=30, warmup=3)}
    reference = eager(inputs)[1]
    graph = capture_score_gradient(eager, tuple(inputs.shape), inputs.device) if inputs.is_cuda else None
    if graph is not None:
        times["CUDA graph replay"] = median_seconds(lambda: graph(inputs), repeats=30, warmup=3)
        print(f"  graph against eager: largest |difference| {float((graph(inputs)[1] - reference).abs().max()):.3g}")
    elif inputs.is_cuda:
        print("  CUDA graph capture failed: eager only")
    else:
        print("  no CUDA: the graph is not timed")
    try:
        from captum.attr import Saliency
    except ImportError:
        print("  captum not installed: not compared")
    else:
        captum = Saliency(model.module)
        times["captum Saliency"] = median_seconds(lambda: captum.attribute(inputs, target=target, abs=True), repeats=30, warmup=3)
        gap = float((captum.attribute(inputs, target=target, abs=True) - reference.abs()).abs().max())
        print(f"  captum against eager: largest |difference| {gap:.3g}")
    for name, value in times.items():
        print(f"  {name:<22} {value * 1000:8.2f} ms   captum / this: "
              + (f"{times['captum Saliency'] / value:5.2f}×" if "captum Saliency" in times else "–"))


def main() -> None:
    import torch

    from benchmarks.common import machine
    from engine.models import load_model

    count = int(next((a for a in sys.argv[1:] if a.isdigit()), 164))
    images, annotations = option("--images", DATA / "images"), option("--annotations", DATA / "annotations")
    paths = list_images(images)[:count]
    cuda = torch.cuda.is_available()
    cores = os.cpu_count() or 1
    print(machine())
    print(f"{len(paths)} photos, top 5, preset {DEFAULT_PRESET}, {cores} cores, CUDA: {cuda}")
    model = load_model(device="cuda" if cuda else "cpu")
    model_s, cut_s = stage_seconds(model, paths[:21], annotations)
    where = "GPU" if cuda else "CPU, one thread"
    print(f"per photo: model stage on the {where} {model_s * 1000:.1f} ms, five cuts on one core {cut_s * 1000:.1f} ms")
    rates = {}
    cpu_model = load_model(device="cpu") if cuda else model
    rates[f"CPU only: model on one thread, cuts in {cores} processes"] = len(paths) / new_path(cpu_model, paths, cores, annotations)
    if cuda:
        jobs = max(1, cores - 1)
        rates[f"GPU model here, cuts in {jobs} processes"] = len(paths) / new_path(model, paths, jobs, annotations)
    for gpus in (False, True) if cuda else (False,):
        rate = ray_rate(paths, annotations, gpus=gpus)
        if rate is not None:
            rates[f"--ray, {'GPU' if gpus else 'CPU'} model actors"] = rate
    if not cuda:
        print("no CUDA: the GPU rows are not measured")
    for name, rate in rates.items():
        print(f"  {name:<52} {rate:6.2f} photos/s   50,000 photos in {VAL_PHOTOS / rate / 60:6.1f} min")
    print("batch-1 gradient saliency, centre view:")
    saliency_rows(model)


if __name__ == "__main__":
    main()
