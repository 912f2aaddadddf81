"""§3.1 saliency speed on the embedded model: against a bare forward+backward, captum, and the page.

Run: .venv/bin/python benchmarks/bench_saliency.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, median_seconds, page_app_test, phone_photo, report  # noqa: E402
from engine.attribution.saliency import compute_saliency  # noqa: E402
from engine.images import load_image  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.views import make_batch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    print(machine())
    model = load_model()
    image = load_image(ROOT / "assets" / "cat.jpg")
    target = 285
    batch, _, _ = make_batch(model, image, 1)
    batch10, _, _ = make_batch(model, image, 10)

    def bare(x: torch.Tensor) -> None:  # the floor: one forward and one backward to the input
        x = x.detach().requires_grad_(True)
        model.module(x)[:, target].sum().backward()

    floor = median_seconds(lambda: bare(batch))
    report("bare forward+backward, 1×224²", floor)
    report("compute_saliency, centre view, class given", median_seconds(
        lambda: compute_saliency(model, image, target=target)), floor, "bare")
    report("compute_saliency, centre view, top-1 found first", median_seconds(
        lambda: compute_saliency(model, image)), floor, "bare")

    floor10 = median_seconds(lambda: bare(batch10), repeats=7)
    report("bare forward+backward, 10×224² batch", floor10)
    ten = median_seconds(lambda: compute_saliency(model, image, target=target, views=10), repeats=7)
    report("compute_saliency, 10 views as one batch", ten, floor10, "bare")
    one_by_one = median_seconds(lambda: [bare(batch10[i : i + 1]) for i in range(10)], repeats=5)
    report("10 single views one by one (bare)", one_by_one, ten, "our 10-view")

    try:
        from captum.attr import Saliency
    except ImportError:
        print("captum not installed: peer comparison skipped")
    else:
        captum = Saliency(model.module)
        peer = median_seconds(lambda: captum.attribute(batch, target=target, abs=True).abs().amax(1))
        ours = median_seconds(lambda: compute_saliency(model, image, target=target))
        report("captum Saliency, same input (tensor in, no mapping back)", peer)
        report("ours (decode-free, with resize/crop/placement)", ours, peer, "captum")

    page_to_map()


def page_to_map() -> None:
    at = page_app_test("pages/saliency.py")  # warm: model loaded, page imported
    times = []
    for name in ("espresso.jpg", "rocket.jpg", "astronaut.jpg", "grace_hopper.jpg", "cat.jpg"):
        data = (ROOT / "assets" / name).read_bytes()
        at.file_uploader[0].set_value((f"upload_{name}", data, "image/jpeg"))
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        assert not at.exception, at.exception
    times.sort()
    report("page: upload → predictions + map rendered (AppTest, median of 5 new images)", times[len(times) // 2])

    # a 12 MP photo: each rerun (here an opacity change, the map cached) redraws the photo's images
    at.file_uploader[0].set_value(("big.jpg", phone_photo(), "image/jpeg")).run()
    reruns = []
    for opacity in (0.5, 0.55, 0.6, 0.65, 0.7):
        start = time.perf_counter()
        at.slider(key="sal_opacity").set_value(opacity).run()
        reruns.append(time.perf_counter() - start)
        assert not at.exception, at.exception
    report("page: rerun on a 12 MP photo, map cached (median of 5)", statistics.median(reruns))


if __name__ == "__main__":
    main()
