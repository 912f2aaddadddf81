"""SmoothGrad (25 samples) and Integrated Gradients (32 steps) against captum on the embedded model.

    .venv/bin/python benchmarks/bench_methods.py [--repeats 5] [--device cpu]

Same model, same input (the cat demo's centre view), same class, same process. Both sides run the
noisy copies / integration steps as one batch (ours: ``batch_size=48``; captum: NoiseTunnel with all
samples in one batch, IntegratedGradients with no ``internal_batch_size``) and the same quadrature
(Gauss-Legendre) for IG. Ours also returns the clean scores S(x) (and S(x') for IG), from one
gradient-free forward of those views; captum does not compute them. Runs alternate
ours/captum so that drift on a shared CPU hits both; the ratio is the median of the per-run ratios
(goal: ≤ 1, no slower than captum).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine  # noqa: E402
from benchmarks.common import seconds as _seconds  # noqa: E402
from engine.attribution.methods import integrate_gradients, make_baseline, noise_sigma, smoothgrad  # noqa: E402
from engine.images import load_image  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.views import make_batch  # noqa: E402


def compare(name: str, ours, theirs, repeats: int) -> None:
    ours(), theirs()  # warm-up: allocator, rule copies, captum's first-call work
    ours_times, their_times = [], []
    for run in range(repeats):
        pair = (ours, theirs) if run % 2 == 0 else (theirs, ours)
        first, second = _seconds(pair[0]), _seconds(pair[1])
        ours_times.append(first if run % 2 == 0 else second)
        their_times.append(second if run % 2 == 0 else first)
    ratio = statistics.median(o / t for o, t in zip(ours_times, their_times))
    print(f"{name:<34} ours {statistics.median(ours_times) * 1000:8.0f} ms/map   "
          f"captum {statistics.median(their_times) * 1000:8.0f} ms/map   ours/captum {ratio:4.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    model = load_model(device=args.device)
    print(machine(), "| model:", model.description, "| repeats:", args.repeats)
    batch, _, _ = make_batch(model, load_image(ROOT / "assets" / "cat.jpg"), 1)
    target = 285
    sigma = float(noise_sigma(model, 0.15).flatten()[0])  # one σ for all channels here (std 0.5 each)
    tunnel = NoiseTunnel(Saliency(model.module))
    compare("SmoothGrad, 25 samples",
            lambda: smoothgrad(model, batch, target, samples=25, noise=0.15),
            lambda: tunnel.attribute(batch, nt_type="smoothgrad", nt_samples=25, stdevs=sigma, target=target, abs=False),
            args.repeats)
    baseline = make_baseline(model, batch, "black")
    integrated = IntegratedGradients(model.module)
    compare("Integrated Gradients, 32 steps",
            lambda: integrate_gradients(model, batch, target, steps=32),
            lambda: integrated.attribute(batch, baselines=baseline, target=target, n_steps=32, method="gausslegendre"),
            args.repeats)


if __name__ == "__main__":
    main()
