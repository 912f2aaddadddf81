"""One prepared run on a lent CUDA machine: the GPU paths checked, then the §2 GPU goals timed.

Checks, in the default exact math (each prints OK or FAIL with the number it compared):
- the same seed gives the same image, and the CUDA-graph step equals eager autograd, bitwise;
- paper-preset images of a batch and of the classes one by one are top-1 as PNGs;
- paper-preset images, saved as PNG and read back, are top-1 for their class;
- saliency, DeconvNet, guided backprop, SmoothGrad, IG and Grad-CAM on CUDA agree with the CPU;
- class visualisation runs on the torchvision models (random weights) through the graph path.
Timings (medians; CUDA synchronised around each): bare forward+backward, a graph replay, 200 steps
of one class per preset, 64 classes × 200 steps, in exact and fast math, and the step at batch 64 in
other layouts. ``numerics``: the gradient against float64 and reproducibility, TF32 and
deterministic cuDNN each on and off.

Run: python benchmarks/gpu_check.py [timings|layouts|checks|numerics ...]   (prints a table last)
"""
from __future__ import annotations

import copy
import dataclasses
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".gpu" / "site"))  # the embedded weights' package, carried to the device

from benchmarks.common import machine, median_seconds, seconds  # noqa: E402
from engine.attribution.saliency import compute_saliency  # noqa: E402
from engine.classviz import visualise as classviz  # noqa: E402
from engine.classviz.step import eager_score_gradient  # noqa: E402
from engine.classviz.visualise import PRESETS, visualise_class  # noqa: E402
from engine.images import encode_png, load_image  # noqa: E402
from engine.models import load_model, set_cuda_math  # noqa: E402

TABLE: list[str] = []
FAILED: list[str] = []


def row(name: str, value: str) -> None:
    line = f"{name:<62} {value}"
    print(line, flush=True)
    TABLE.append(line)


def check(name: str, ok: bool, detail: str) -> None:
    row(name, f"{'OK  ' if ok else 'FAIL'} {detail}")
    if not ok:
        FAILED.append(name)


def config(preset: str, steps: int) -> classviz.ClassVizConfig:
    return dataclasses.replace(PRESETS[preset], steps=steps)


def eager_only(module, target, shape, device):
    return eager_score_gradient(module, target)


def run(model, preset, classes, steps, *, graph=True, **kw):
    original = classviz.make_score_gradient
    if not graph:
        classviz.make_score_gradient = eager_only
    try:
        return visualise_class(model, list(classes), config=config(preset, steps), **kw)
    finally:
        classviz.make_score_gradient = original


def timed_run(model, preset, classes, steps, repeats=3, **kw) -> float:
    return statistics.median(seconds(lambda: run(model, preset, classes, steps, **kw)) for _ in range(repeats))


def pixel_gap(a, b) -> int:
    return max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(a.images_hwc, b.images_hwc))


def png_top1(model, result) -> list[int]:
    top = []
    for image in result.images_hwc:
        decoded = load_image(encode_png(image))  # PNG round trip
        x = torch.from_numpy(decoded).permute(2, 0, 1)[None].float().div(255).to(model.device)
        with torch.inference_mode():
            top.append(int(model.module((x - 0.5) / 0.5).argmax()))
    return top


def sampler(gpu) -> None:
    """The exact-math scale/rotate sampler against grid_sample at the Olah batch-64 size."""
    from engine.classviz.transforms import _grid_sample, bilinear_sample

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 248, 248, generator=gen).to(gpu.device).requires_grad_(True)
    angles, scales = torch.rand(64, generator=gen) * 0.35 - 0.17, torch.rand(64, generator=gen) * 0.2 + 0.9
    theta = torch.stack([torch.stack([angles.cos() / scales, -angles.sin() / scales, torch.zeros(64)], 1),
                         torch.stack([angles.sin() / scales, angles.cos() / scales, torch.zeros(64)], 1)], 1).to(gpu.device)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    weights = torch.randn(x.shape, generator=gen).to(gpu.device)

    def fwd_bwd(sample):
        return torch.autograd.grad((sample(x, grid) * weights).sum(), x)[0]

    ours, again, theirs = fwd_bwd(bilinear_sample), fwd_bwd(bilinear_sample), fwd_bwd(_grid_sample)
    rel = float((ours - theirs).norm() / theirs.norm())
    check("bilinear_sample = grid_sample (grad, CUDA, 64×248²); repeat bitwise", rel < 1e-5 and torch.equal(ours, again),
          f"rel {rel:.1e}; {'same' if torch.equal(ours, again) else 'DIFFERS'}")
    t_ours = median_seconds(lambda: fwd_bwd(bilinear_sample), repeats=10)
    t_theirs = median_seconds(lambda: fwd_bwd(_grid_sample), repeats=10)
    row("scale/rotate fwd+bwd 64×248²: bilinear_sample | grid_sample", f"{t_ours * 1000:6.2f} ms | {t_theirs * 1000:6.2f} ms")


def checks(gpu, cpu) -> None:
    """In the default exact math (float32, deterministic cuDNN)."""
    for preset, steps in (("paper", 30), ("olah", 20), ("mahendran-vedaldi", 20), ("yosinski", 20)):
        a, b, e = (run(gpu, preset, [1, 130], steps, graph=g) for g in (True, True, False))
        check(f"{preset}, {steps} steps: same seed, same image | graph = eager", pixel_gap(a, b) == 0 and pixel_gap(a, e) == 0,
              f"max |Δpixel| {pixel_gap(a, b)} | {pixel_gap(a, e)}")
    classes = [1, 130, 285, 954]
    result = run(gpu, "paper", classes, 100)
    top = png_top1(gpu, result)
    check("paper preset PNGs top-1 (goldfish, flamingo, cat, banana)", top == classes,
          f"{top} scores {np.round(result.final_scores, 1).tolist()}")
    # rounding differs with the batch size and the ascent amplifies it: compare outcomes, not pixels
    single = [run(gpu, "paper", [c], 100) for c in classes]
    top = [png_top1(gpu, r)[0] for r in single]
    check("the same classes one by one: PNGs top-1", top == classes, f"{top} scores {[round(r.final_scores[0], 1) for r in single]}")
    sampler(gpu)
    image = load_image(ROOT / "assets" / "cat.jpg")
    for method in ("gradient", "deconvnet", "guided", "smoothgrad", "integrated-gradients", "gradcam"):
        options = {"samples": 8} if method == "smoothgrad" else {"steps": 16} if method == "integrated-gradients" else {}
        if method == "smoothgrad":
            options["seed"] = 0
        g = compute_saliency(gpu, image, target=285, method=method, options=options).saliency_hw
        c = compute_saliency(cpu, image, target=285, method=method, options=options).saliency_hw
        if method == "smoothgrad":  # the noise comes from the device's own generator: compare the maps' shape
            corr = float(np.corrcoef(g.ravel(), c.ravel())[0, 1])
            row("smoothgrad on CUDA vs CPU (own noise each)", f"info: correlation {corr:.3f}")
            continue
        rel = float(np.linalg.norm(g - c) / max(np.linalg.norm(c), 1e-12))
        check(f"{method} on CUDA = on CPU", rel < 1e-2, f"rel error {rel:.1e}")
    for name in ("torchvision:vgg16", "torchvision:alexnet", "torchvision:resnet50"):
        other = load_model(name, "random", device="cuda")
        a, b = run(other, "paper", [3, 7], 10, graph=True), run(other, "paper", [3, 7], 10, graph=False)
        check(f"{name} classviz graph = eager (10 steps)", pixel_gap(a, b) == 0, f"max |Δpixel| {pixel_gap(a, b)}")


def layouts(gpu) -> None:
    """fwd+bwd to the input at batch 64 in fp32 NCHW, channels-last, and bf16 autocast."""
    target = torch.arange(64, device=gpu.device).view(-1, 1) * 15 % 1000
    x0 = torch.randn(64, 3, 224, 224, device=gpu.device)
    base = gpu.module
    last = copy.deepcopy(base).to(memory_format=torch.channels_last)

    def step(module, memory_format=torch.contiguous_format, dtype=None):
        def fn():
            x = x0.contiguous(memory_format=memory_format).requires_grad_(True)
            with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                s = module(x).float().gather(1, target).sum()
            torch.autograd.grad(s, x)
        return fn

    ref = median_seconds(step(base), repeats=10)
    row("bare fwd+bwd 64×224², fp32 NCHW", f"{ref * 1000:8.2f} ms")
    for name, fn in (("fp32 channels-last", step(last, torch.channels_last)), ("bf16 autocast NCHW", step(base, dtype=torch.bfloat16)),
                     ("bf16 autocast channels-last", step(last, torch.channels_last, torch.bfloat16))):
        t = median_seconds(fn, repeats=10)
        row(f"bare fwd+bwd 64×224², {name}", f"{t * 1000:8.2f} ms  {t / ref:5.2f}× fp32 NCHW")


def timings(gpu) -> None:
    target = torch.tensor([[1]], device=gpu.device)
    x1 = torch.zeros(1, 3, 224, 224, device=gpu.device)
    eager = eager_score_gradient(gpu.module, target)
    bare = median_seconds(lambda: eager(x1), repeats=50, warmup=5)
    row("bare fwd+bwd 1×224², eager", f"{bare * 1000:8.2f} ms")
    from engine.classviz.step import capture_score_gradient
    replay = capture_score_gradient(eager, (1, 3, 224, 224), gpu.device)
    if replay is None:
        check("CUDA graph capture", False, "capture failed: eager fallback")
    else:
        t = median_seconds(lambda: replay(x1), repeats=200, warmup=5)
        row("same, one CUDA graph replay", f"{t * 1000:8.2f} ms  {t / bare:5.2f}× eager")
    classes64 = [c * 15 % 1000 for c in range(64)]
    for mode in ("exact", "fast"):
        set_cuda_math(mode)
        for preset in PRESETS if mode == "exact" else ("paper", "olah"):
            t = timed_run(gpu, preset, [1], 200)
            row(f"{mode}: 200 steps, 1 class, {preset} (goal < 1 s)", f"{t * 1000:8.1f} ms  {t / 200 * 1000:6.2f} ms/step")
        for preset in PRESETS if mode == "exact" else ("paper", "olah"):
            t = timed_run(gpu, preset, classes64, 200, repeats=2 if preset == "paper" else 1)
            row(f"{mode}: 64 classes × 200 steps, {preset} (goal < 5 s)", f"{t * 1000:8.1f} ms  {t / 200 * 1000:6.2f} ms/step")
    set_cuda_math("exact")
    t = timed_run(gpu, "paper", [1], 200, repeats=1, graph=False)
    row("exact: 200 steps, 1 class, paper, eager (no graph)", f"{t * 1000:8.1f} ms  {t / 200 * 1000:6.2f} ms/step")
    t = timed_run(gpu, "paper", [1], 200, on_step=lambda progress: progress.images())
    row("exact: 200 steps, 1 class, paper, preview fetched every step", f"{t * 1000:8.1f} ms")


def numerics(gpu, cpu) -> None:
    """Where GPU results come from: TF32 convolutions and non-deterministic kernels, each on and off."""
    import warnings

    from engine.views import make_batch

    image = load_image(ROOT / "assets" / "cat.jpg")
    batch, _, _ = make_batch(cpu, image, 1)
    ref64 = copy.deepcopy(cpu.module).double()

    def grad(module, x):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(module(x)[:, 285].sum(), x)
        return g.double().cpu()

    ref = grad(ref64, batch.double())
    def rel(g):
        return float((g - ref).norm() / ref.norm())

    row("gradient, CPU fp32 vs float64", f"info: rel {rel(grad(cpu.module, batch)):.1e}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.use_deterministic_algorithms(True, warn_only=True)
        grad(gpu.module, batch.to(gpu.device))
        torch.use_deterministic_algorithms(False)
    for w in {str(w.message).split(".")[0] for w in caught}:
        row("non-deterministic op", w[:90])
    for tf32, deterministic in ((True, False), (False, False), (False, True), (True, True)):
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.deterministic = deterministic
        tag = f"tf32={'on ' if tf32 else 'off'} deterministic={'on ' if deterministic else 'off'}"
        g = [grad(gpu.module, batch.to(gpu.device)) for _ in range(3)]
        same = all(torch.equal(g[0], x) for x in g[1:])
        row(f"{tag}: gradient vs float64; repeat bitwise", f"rel {rel(g[0]):.1e}; {'same' if same else 'DIFFERS'}")
        a, b, e = run(gpu, "paper", [1, 130], 30), run(gpu, "paper", [1, 130], 30), run(gpu, "paper", [1, 130], 30, graph=False)
        same_seed = max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(a.images_hwc, b.images_hwc))
        graph_eager = max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(a.images_hwc, e.images_hwc))
        row(f"{tag}: 30 paper steps, same seed | graph vs eager", f"max |Δpixel| {same_seed} | {graph_eager}")
        x64 = torch.randn(64, 3, 224, 224, device=gpu.device)
        t64 = median_seconds(lambda: grad(gpu.module, x64), repeats=10)
        t1 = timed_run(gpu, "paper", [1], 200, repeats=2)
        row(f"{tag}: bare fwd+bwd 64 | 200 paper steps 1 class", f"{t64 * 1000:6.2f} ms | {t1 * 1000:6.1f} ms")
    set_cuda_math("exact")


def main() -> None:
    print(machine(), flush=True)
    start = time.perf_counter()
    gpu = load_model(device="cuda")
    cpu = load_model(device="cpu")
    row("load embedded model (CUDA + CPU)", f"{time.perf_counter() - start:8.2f} s")
    parts = {"timings": timings, "layouts": layouts, "checks": lambda g: checks(g, cpu), "numerics": lambda g: numerics(g, cpu)}
    for name in sys.argv[1:] or list(parts):
        try:
            parts[name](gpu)
        except Exception:  # noqa: BLE001  (a report: one part's failure is printed, the other parts still run)
            traceback.print_exc()
            FAILED.append(name)
    print("\n" + machine())
    print("\n".join(TABLE))
    print("FAILED: " + ", ".join(FAILED) if FAILED else "all checks OK")


if __name__ == "__main__":
    main()
