"""Issue 30: the split of localisation by instances and object size (by hand), and one instance among
several and a small object found by the ``instance-cut`` preset on photos and maps built here."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from engine.runs import localisation as loc
from engine.segmentation import instances as inst
from engine.segmentation import presets as pre
from engine.segmentation.masks import box_iou
from tests.test_localisation import ANNOTATIONS, IMAGES, fixed_localiser

GREY, RED, GREEN = (128, 128, 128), (200, 30, 30), (40, 170, 60)
X, Y = "n02123045", "n07920052"  # two WordNet ids: the class, and another class in the same photo


# ---------------------------------------------------------------- the split, worked by hand
def line(annotation: loc.Annotation, correct: bool) -> dict:
    return {"guesses": [{"correct": correct}], **loc.photo_kind(annotation, annotation.size_wh)}


def test_photo_kind_by_hand():
    # 100×100, one 20×20 box: 400 / 10 000 = 4% -> small, one instance.
    small = loc.Annotation((100, 100), ((X, (0.0, 0.0, 20.0, 20.0)),))
    assert loc.photo_kind(small, (100, 100)) == {"instances": "one", "size": "small", "box_fraction": 0.04}
    # 200×100, two boxes of the class (100×100 = 50%, not over half: mid; 50×50) and a larger one of
    # another class, which counts for neither.
    several = loc.Annotation((200, 100), ((X, (0.0, 0.0, 100.0, 100.0)), (X, (100.0, 0.0, 150.0, 50.0)),
                                          (Y, (0.0, 0.0, 200.0, 100.0))))
    assert loc.photo_kind(several, (200, 100)) == {"instances": "several", "size": "mid", "box_fraction": 0.5}
    # 100×100, one 80×80 box (64%: large) beside a box of another class: still one instance.
    large = loc.Annotation((100, 100), ((X, (10.0, 10.0, 90.0, 90.0)), (Y, (0.0, 0.0, 5.0, 5.0))))
    assert loc.photo_kind(large, (100, 100))["instances"] == "one" and loc.photo_kind(large, (100, 100))["size"] == "large"
    # exactly 10% is not small: 10×100 of 100×100
    edge = loc.Annotation((100, 100), ((X, (0.0, 0.0, 10.0, 100.0)),))
    assert loc.photo_kind(edge, (100, 100))["size"] == "mid"
    # without a <size> the image's own size is used: 20×20 of 40×40 = 25%
    assert loc.photo_kind(loc.Annotation(None, small.objects), (40, 40))["box_fraction"] == 0.25


def test_split_report_by_hand():
    a = loc.Annotation((100, 100), ((X, (0.0, 0.0, 20.0, 20.0)),))  # one, small: missed
    b = loc.Annotation((200, 100), ((X, (0.0, 0.0, 100.0, 100.0)), (X, (100.0, 0.0, 150.0, 50.0))))  # several, mid: found
    c = loc.Annotation((100, 100), ((X, (10.0, 10.0, 90.0, 90.0)),))  # one, large: found
    d = loc.Annotation((100, 100), ((X, (0.0, 0.0, 10.0, 100.0)),))  # one, mid: missed
    rows = [line(a, False), line(b, True), line(c, True), line(d, False), {"guesses": [{"correct": True}]}]  # the last: no fields
    split = loc.split_report(rows)
    assert split["instances"] == {"one": {"photos": 3, "correct": 1, "accuracy": 1 / 3},
                                  "several": {"photos": 1, "correct": 1, "accuracy": 1.0}}
    assert split["size"] == {"small": {"photos": 1, "correct": 0, "accuracy": 0.0},
                             "mid": {"photos": 2, "correct": 1, "accuracy": 0.5},
                             "large": {"photos": 1, "correct": 1, "accuracy": 1.0}}
    # top 5: a photo counts when any guess is right
    top5 = loc.split_report([{**line(a, False), "guesses": [{"correct": False}, {"correct": True}]}], top5=True)
    assert top5["size"]["small"] == {"photos": 1, "correct": 0, "accuracy": 0.0, "top5_correct": 1, "top5_accuracy": 1.0}
    assert top5["size"]["large"]["accuracy"] is None and top5["size"]["large"]["photos"] == 0


def test_the_xml_corners_count_inclusively_in_the_split(tmp_path):
    # <xmax> 9 means pixels 0..9: 10 wide; 10×10 of 100×100 = 1%.
    (tmp_path / "p.xml").write_text(f"<annotation><size><width>100</width><height>100</height></size><object><name>{X}</name>"
                                    "<bndbox><xmin>0</xmin><ymin>0</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")
    assert loc.photo_kind(loc.read_annotation(tmp_path / "p.xml"), (100, 100))["box_fraction"] == 0.01


def test_evaluate_reports_the_split_of_the_sample_set():
    # cat 451×300, box 400×300: 88.7%, large; espresso 600×400, box 246×286: 29.3%, mid. GT-known with the
    # fixed guesses: the cat right, the espresso wrong (test_localisation.test_gt_known_and_the_centre_box_by_hand).
    report = loc.evaluate(fixed_localiser, loc.list_images(IMAGES), ANNOTATIONS, gt_known=True)
    assert report.split["instances"]["one"] == {"photos": 2, "correct": 1, "accuracy": 0.5}
    assert report.split["instances"]["several"] == {"photos": 0, "correct": 0, "accuracy": None}
    assert report.split["size"]["large"]["correct"] == 1 and report.split["size"]["mid"] == {"photos": 1, "correct": 0, "accuracy": 0.0}
    assert {(row["instances"], row["size"]) for row in report.per_image} == {("one", "large"), ("one", "mid")}


# ---------------------------------------------------------------- peaks and instances on maps built here
def bump(height, width, cx, cy, sigma, height_at_peak=1.0):
    y, x = np.mgrid[0:height, 0:width]
    return height_at_peak * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2.0 * sigma ** 2))


def test_two_separate_peaks_are_two_basins_and_close_ones_one():
    apart = bump(120, 200, 50, 60, 15) + bump(120, 200, 150, 60, 15, 0.8)  # the pass between them is ~0.01
    basins, peaks = inst.peak_basins(apart / apart.max())
    assert len(peaks) == 2 and peaks[0] == pytest.approx(1.0, abs=0.02) and peaks[1] == pytest.approx(0.8, abs=0.03)
    assert basins[60, 50] == 1 and basins[60, 150] == 2
    close = bump(120, 200, 90, 60, 25) + bump(120, 200, 110, 60, 25, 0.8)  # one hill with a shoulder
    assert len(inst.peak_basins(close / close.max())[1]) == 1
    # a pass above half the lower peak keeps them one (SADDLE = 0.5); a stricter saddle splits them
    mid = bump(120, 200, 70, 60, 20) + bump(120, 200, 130, 60, 20)
    mid /= mid.max()
    assert len(inst.peak_basins(mid)[1]) == 1 and len(inst.peak_basins(mid, saddle=0.95)[1]) == 2


def test_a_cut_spanning_two_objects_splits_into_two_instances():
    # The cut took both squares and a bridge between them; the map has a hill on each square.
    mask = np.zeros((120, 200), bool)
    mask[40:80, 30:70] = mask[40:80, 130:170] = mask[58:62, 70:130] = True
    level = bump(120, 200, 50, 60, 15, 0.7) + bump(120, 200, 150, 60, 15)
    level /= level.max()
    found = inst.instances_of(mask, level)
    # the stronger hill first; each holds its square and the half of the bridge on its side of the pass
    assert len(found) == 2 and 70 < found[0].bbox[0] < 130 and found[0].bbox[1:] == (40, 170, 80)
    assert found[1].bbox[:2] == (30, 40) and 70 < found[1].bbox[2] < 130 and found[0].bbox[0] >= found[1].bbox[2]
    assert found[0].evidence > found[1].evidence
    # one instance kept by the window rule: the strongest component inside the window
    window = inst.instance_window(level, level=0.1, margin=0.25)
    assert window[0] >= 70 and window[0] <= 130 and window[2] >= 170  # the right square's basin, not the left square
    kept = pre.one_instance(mask, window, level[::2, ::2])
    assert pre.seg.bounding_box(kept)[0] >= 100


# ---------------------------------------------------------------- the preset on synthetic photos and maps
def photo(height, width, boxes, colour=RED, noise=6.0, seed=0):
    image = np.empty((height, width, 3), np.float64)
    image[:] = GREY
    for x0, y0, x1, y1 in boxes:
        image[y0:y1, x0:x1] = colour
    image += np.random.default_rng(seed).normal(0, noise, image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def test_two_separated_bright_objects_get_a_box_around_one():
    left, right = (30, 40, 90, 100), (190, 40, 250, 100)
    image = photo(140, 280, [left, right])
    # a Grad-CAM-like map: one hill on each object (σ half the object's side), the right one a little stronger
    saliency = bump(140, 280, 60, 70, 30, 0.85) + bump(140, 280, 220, 70, 30)
    box = pre.segment_with_preset(image, saliency, pre.get_preset("instance-cut")).bbox
    assert box_iou(box, right) >= 0.5 and box_iou(box, left) == 0.0
    # the same cut with every component kept spans both: what the instance rule fixes
    spanning = pre.segment_with_preset(image, saliency, dataclasses.replace(pre.get_preset("gradcam-cut"), keep="all")).bbox
    assert box_iou(spanning, right) < 0.5 and box_iou(spanning, left) < 0.5


SMALL = (180, 100, 204, 124)  # 24×24 on 300×200: about 1% of the photo


def test_a_small_object_on_a_plain_background_gets_its_own_box():
    image = photo(200, 300, [SMALL], colour=GREEN)
    saliency = bump(200, 300, 196, 108, 16)  # a hill off-centre on the object, its half-height width 1.6 times the object's
    box = pre.segment_with_preset(image, saliency, pre.get_preset("instance-cut")).bbox
    assert box_iou(box, SMALL) >= 0.5


@pytest.mark.xfail(strict=True, reason="issue 30 (blocked; benchmarks/README.md): when the map's hill is much wider than the object "
                   "(a stride-32 Grad-CAM on a small object), the map's prior pulls the whole hill into the cut")
def test_a_small_object_under_a_coarse_map_gets_its_own_box():
    image = photo(200, 300, [SMALL], colour=GREEN)
    saliency = bump(200, 300, 196, 108, 30)  # half-height width 3 times the object's
    box = pre.segment_with_preset(image, saliency, pre.get_preset("instance-cut")).bbox
    assert box_iou(box, SMALL) >= 0.5


def test_instance_segmentations_give_one_mask_per_instance():
    left, right = (30, 40, 90, 100), (190, 40, 250, 100)
    image = photo(140, 280, [left, right])
    saliency = bump(140, 280, 60, 70, 25, 0.85) + bump(140, 280, 220, 70, 25)
    found = pre.instance_segmentations(image, saliency, pre.get_preset("instance-cut"))
    assert len(found) == 2
    assert box_iou(found[0].bbox, right) >= 0.8 and box_iou(found[1].bbox, left) >= 0.8
    assert not (found[0].is_foreground_hw & found[1].is_foreground_hw).any()
    single = pre.instance_segmentations(image, bump(140, 280, 220, 70, 25), pre.get_preset("instance-cut"))
    assert len(single) == 1 and box_iou(single[0].bbox, right) >= 0.8


def test_the_instance_preset_checks_its_knobs_and_reports_them():
    preset = pre.get_preset("instance-cut")
    assert preset.keep == "instance" and {"saddle", "window_level", "window_margin"} <= set(preset.settings())
    assert "saddle" not in pre.get_preset("paper").settings()  # the paper's settings are as they were
    for bad in ({"saddle": 0.0}, {"window_level": 1.0}, {"window_margin": -0.1}):
        with pytest.raises(ValueError):
            dataclasses.replace(preset, **bad)


@pytest.mark.slow
def test_cli_localise_reports_the_split(capsys):
    from engine.__main__ import main

    assert main(["localise", str(IMAGES), str(ANNOTATIONS), "--gt-known", "--preset", "instance-cut", "--jobs", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["preset"] == "instance-cut" and report["images"] == 2
    assert report["split"]["instances"]["one"]["photos"] == 2 and report["split"]["instances"]["several"]["photos"] == 0
    assert report["split"]["size"]["large"]["photos"] == 1 and report["split"]["size"]["mid"]["photos"] == 1
    assert sum(e["correct"] for e in report["split"]["size"].values()) == report["gt_known_correct"]

