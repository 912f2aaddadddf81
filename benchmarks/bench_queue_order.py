"""Does the review queue put the bad masks first? Measured on a folder that ``segment-folder`` wrote.

A mask is bad when its box has IoU < 0.5 with every annotated box of the photo (the ILSVRC rule,
whatever class the model chose). The queue's order is ``quality`` in each JSON, low first
(``engine.runs.segment_folder.mask_quality``: from the share of the photo's sides the box touches and the
share of the photo it covers). It is set against its two parts alone and against a shuffle.

    .venv/bin/python -m engine segment-folder ../shared/data/ilsvrc2012-val-dev/images --out /tmp/segdev
    .venv/bin/python benchmarks/bench_queue_order.py /tmp/segdev ../shared/data/ilsvrc2012-val-dev/annotations
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runs.localisation import annotated_class, is_correct, read_annotation  # noqa: E402


def rows(segmentations: Path, annotations: Path) -> list[dict]:
    found = []
    for path in sorted(segmentations.glob("*.json")):
        record = json.loads(path.read_text())
        annotation = read_annotation(annotations / f"{path.stem}.xml")
        width, height = record["image_size"]
        bad = not is_correct(annotated_class(annotation), record["bbox"], annotation, (width, height))
        x0, y0, x1, y1 = record["bbox"] or (0, 0, 0, 0)
        sides = (x0 <= 1) + (y0 <= 1) + (x1 >= width - 1) + (y1 >= height - 1)
        found.append({"bad": bad, "quality": record["quality"], "box_share": (x1 - x0) * (y1 - y0) / (width * height),
                      "sides": sides})
    return found


def share_bad(ordered: list[dict], fraction: float) -> float:
    head = ordered[: max(1, round(len(ordered) * fraction))]
    return sum(r["bad"] for r in head) / len(head)


def main() -> None:
    segmentations, annotations = Path(sys.argv[1]), Path(sys.argv[2])
    found = rows(segmentations, annotations)
    whole = sum(r["bad"] for r in found) / len(found)
    print(f"{len(found)} masks, {whole:.1%} bad (box IoU < 0.5 with every annotated box)")
    shuffled = found[:]
    random.Random(0).shuffle(shuffled)
    orders = {
        "queue: quality, low first (the page's order)": sorted(found, key=lambda r: r["quality"]),
        "box share of the photo, large first": sorted(found, key=lambda r: -r["box_share"]),
        "sides of the photo the box touches, most first": sorted(found, key=lambda r: -r["sides"]),
        "random order": shuffled,
    }
    print(f"{'order':<48} {'first 10%':>10} {'first 25%':>10} {'first 50%':>10}   bad share")
    for name, ordered in orders.items():
        shares = [share_bad(ordered, f) for f in (0.1, 0.25, 0.5)]
        print(f"{name:<48} " + " ".join(f"{s:>10.1%}" for s in shares) + f"   (whole: {whole:.1%})")


if __name__ == "__main__":
    main()
