"""The review page's two interactive costs on 512-pixel photos (goals: next photo < 300 ms, re-cut < 150 ms).

1. Next: the page's rerun after the Next button (AppTest, app.py routed as the server routes it):
   the queue, the saved version read back, the photo, the canvas and the mask drawn. Median of every
   move around a queue of the five demo photos resized to a 512-pixel long side, segmented by
   ``segment-folder`` into a temporary workspace.
2. Re-cut: what the page runs after a stroke, ``presets.segment_with_preset`` with the hand seeds and
   the previous cut's colour models (one round), at the default preset, with a 12-pixel background
   stroke across the middle of each photo.

    .venv/bin/python benchmarks/bench_review.py [ROUNDS]
"""
from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, page_app_test  # noqa: E402
from engine.__main__ import main as cli  # noqa: E402
from engine.attribution.saliency import compute_saliency, predict  # noqa: E402
from engine.images import load_image  # noqa: E402
from engine.models import load_model  # noqa: E402
from engine.segmentation import cut as seg  # noqa: E402
from engine.segmentation import presets  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SIDE = 512


def small_photos() -> dict[str, bytes]:
    """The demo photos with a 512-pixel long side, as JPEG files."""
    photos = {}
    for path in sorted(ASSETS.glob("*.jpg")):
        image = Image.open(path).convert("RGB")
        image.thumbnail((SIDE, SIDE), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=92)
        photos[path.name] = buffer.getvalue()
    return photos


def make_workspace(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    for name, data in small_photos().items():
        (root / "images" / name).write_bytes(data)
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            assert cli(["segment-folder", str(root / "images"), "--out", str(root / "segmentations"), "--jobs", "1"]) == 0
        finally:
            sys.stdout = stdout


def next_photo_ms(root: Path, rounds: int) -> list[float]:
    os.environ["DEEP_INSIDE_WORKSPACE"] = str(root)
    at = page_app_test("pages/review.py")
    assert not at.exception, at.exception
    count = len(list((root / "images").iterdir()))
    for _ in range(count):  # one lap first: every photo decoded and cached once, as after a first visit
        at.button(key="rev_next").click().run()
    times = []
    for _ in range(rounds * count):
        started = time.perf_counter()
        at.button(key="rev_next").click().run()
        times.append((time.perf_counter() - started) * 1000)
        assert not at.exception, at.exception
    return times


def recut_ms(rounds: int) -> list[float]:
    model, preset = load_model(), presets.get_preset(presets.DEFAULT_PRESET)
    times = []
    for data in small_photos().values():
        photo = load_image(data)
        saliency = compute_saliency(model, photo, target=predict(model, photo, top=1)[0].index,
                                    views=preset.views, method=preset.method)
        base = presets.segment_with_preset(photo, saliency.saliency_hw, preset)
        hand = np.zeros(photo.shape[:2], np.uint8)
        h, w = hand.shape
        hand[h // 2 - 6: h // 2 + 6, w // 4: 3 * w // 4] = seg.HAND_BACKGROUND
        for _ in range(rounds):
            started = time.perf_counter()
            presets.segment_with_preset(photo, saliency.saliency_hw, preset, hand_hw=hand, previous=base, iterations=1)
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        make_workspace(Path(folder))
        moves = next_photo_ms(Path(folder), rounds)
    print(f"review page, Next (AppTest rerun), 512-px photos: median {statistics.median(moves):6.1f} ms "
          f"(goal < 300; {len(moves)} moves, {min(moves):.0f}-{max(moves):.0f} ms)")
    cuts = recut_ms(rounds * 3)
    print(f"re-cut after one stroke, default preset, 512-px photos: median {statistics.median(cuts):6.1f} ms "
          f"(goal < 150; {len(cuts)} cuts, {min(cuts):.0f}-{max(cuts):.0f} ms)")


if __name__ == "__main__":
    main()
