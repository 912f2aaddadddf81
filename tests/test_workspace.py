"""The review workspace: queue order, versions, optimistic saves, crash safety, no path leaves the folder."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.runs import workspace as ws
from engine.segmentation.cut import AUTO_BACKGROUND, AUTO_FOREGROUND, HAND_FOREGROUND, segment
from engine.segmentation.masks import decode_rle, encode_seed_map
from engine.segmentation.presets import PRESETS, segmentation_record

ROOT = Path(__file__).resolve().parents[1]
RED, GREY = (200, 30, 30), (60, 60, 60)
H, W, BOX = 40, 60, (20, 10, 41, 31)


def two_colour(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A grey image with a red rectangle box = (x0, y0, x1, y1)."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = GREY
    image[box[1]:box[3], box[0]:box[2]] = RED
    return image


def sparse_seeds(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Soft automatic seeds: a small patch in the middle of the box, a frame along the border."""
    seeds = np.zeros((height, width), np.uint8)
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    seeds[cy - 2:cy + 2, cx - 2:cx + 2] = AUTO_FOREGROUND
    seeds[:2, :] = seeds[-2:, :] = seeds[:, :2] = seeds[:, -2:] = AUTO_BACKGROUND
    return seeds


def add_item(root: Path, stem: str, quality: float | None, *, class_index: int = 285, image: str | None = None) -> None:
    """One photo and segment-folder's three files for it, as version 0."""
    photo = two_colour(H, W, BOX)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "segmentations").mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(root / "images" / f"{stem}.png")
    result = segment(photo, sparse_seeds(H, W, BOX), gamma=50)
    record = segmentation_record(result, class_index=class_index, label=f"class {class_index}", model="test",
                                 weights="random", preset=PRESETS["paper"])
    record.update(image=image or f"{stem}.png", quality=quality)
    (root / "segmentations" / f"{stem}.json").write_text(json.dumps(record))
    Image.fromarray(result.is_foreground_hw.astype(np.uint8) * 255).save(root / "segmentations" / f"{stem}_mask.png")
    (root / "segmentations" / f"{stem}_seeds.png").write_bytes(encode_seed_map(result.seeds_hw))


def make_workspace(root: Path, qualities: dict[str, float | None]) -> ws.Workspace:
    for stem, quality in qualities.items():
        add_item(root, stem, quality)
    return ws.open_workspace(root)


def edited(entry: ws.Entry, shift: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A different mask (shifted right) and a seed map with a hand stroke."""
    mask = np.roll(entry.mask_hw, shift, axis=1)
    seeds = entry.seeds_hw.copy()
    seeds[20, 30] = HAND_FOREGROUND
    return mask, seeds


def tmp_dirs(root: Path) -> list[Path]:
    return sorted((root / "refinements").glob("*/.tmp-*"))


# ------------------------------------------------------------------------------------------------ the queue
def test_queue_puts_unknown_and_low_quality_first_and_accepted_last(tmp_path):
    space = make_workspace(tmp_path, {"a": 0.9, "b": None, "c": 0.2, "d": 0.5, "e": 0.1, "f": 0.2, "g": 0.05})
    for stem in ("e", "a"):
        entry = space.load(stem)
        space.save(stem, mask_hw=entry.mask_hw, seeds_hw=entry.seeds_hw, record=entry.record, base_version=0,
                   status="accepted")
    entry = space.load("g")
    space.save("g", mask_hw=entry.mask_hw, seeds_hw=entry.seeds_hw, record=entry.record, base_version=0, status="refined")
    items = space.items()
    assert [i.stem for i in items] == ["b", "g", "c", "f", "d", "a", "e"]
    assert [i.status for i in items] == ["automatic", "refined", "automatic", "automatic", "automatic", "accepted", "accepted"]
    assert items[1].version == 1 and items[1].quality == 0.05 and items[0].quality is None
    assert items[0].bbox == BOX and items[0].image == "b.png" and items[0].image_size == (W, H)
    assert items[0].class_index == 285 and items[0].label == "class 285"
    assert space.progress() == (2, 7)
    assert space.problems() == []


def test_unreadable_entries_are_left_out_of_the_queue_and_reported(tmp_path):
    space = make_workspace(tmp_path, {"good": 0.5, "bad_quality": 2.0, "no_mask": 0.1, "no_photo": 0.1, "bad_json": 0.1})
    (tmp_path / "segmentations" / "no_mask_mask.png").unlink()
    (tmp_path / "images" / "no_photo.png").unlink()
    (tmp_path / "segmentations" / "bad_json.json").write_text("{not json")
    assert [i.stem for i in space.items()] == ["good"] and space.progress() == (0, 1)
    problems = dict(space.problems())
    assert "quality is 0..1" in problems["bad_quality"] and "mask file" in problems["no_mask"]
    assert "photo images/no_photo.png" in problems["no_photo"] and "not valid JSON" in problems["bad_json"]


def test_a_missing_folder_or_one_without_segmentations_says_how_to_make_one(tmp_path):
    for path in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(ws.WorkspaceError, match="segment-folder WORKSPACE/images --out WORKSPACE/segmentations"):
            ws.open_workspace(path)


# ------------------------------------------------------------------------------------------------ versions
def test_save_load_history_and_revert(tmp_path):
    space = make_workspace(tmp_path, {"cat": 0.3})
    original = space.load("cat")
    assert (original.version, original.status) == (0, "automatic")
    assert original.mask_hw.dtype == bool and original.mask_hw.sum() == 21 * 21
    assert original.image_path == (tmp_path / "images" / "cat.png").resolve()
    mask, seeds = edited(original)
    assert space.save("cat", mask_hw=mask, seeds_hw=seeds, record=original.record, base_version=0, status="refined") == 1
    assert (tmp_path / "refinements" / "cat" / "v0001" / "record.json").is_file()
    saved = space.load("cat")
    assert (saved.version, saved.status) == (1, "refined")
    np.testing.assert_array_equal(saved.mask_hw, mask)
    np.testing.assert_array_equal(saved.seeds_hw, seeds)
    np.testing.assert_array_equal(decode_rle(saved.record["mask_rle"]), mask)
    assert saved.record["bbox"] == [BOX[0] + 1, BOX[1], BOX[2] + 1, BOX[3]] and saved.record["area"] == 21 * 21
    assert saved.record["image"] == "cat.png" and saved.record["version"] == 1 and "saved_at" in saved.record
    assert saved.record["quality"] == 0.3  # the rest of the given record is kept
    assert space.history("cat") == [0, 1]

    assert space.revert("cat", 0, base_version=1) == 2
    reverted = space.load("cat")
    assert (reverted.version, reverted.status, space.history("cat")) == (2, "refined", [0, 1, 2])
    np.testing.assert_array_equal(reverted.mask_hw, original.mask_hw)
    np.testing.assert_array_equal(reverted.seeds_hw, original.seeds_hw)
    assert reverted.record["bbox"] == original.record["bbox"] and reverted.record["mask_rle"] == original.record["mask_rle"]
    np.testing.assert_array_equal(space.load("cat", 1).mask_hw, mask)  # the history is kept
    with pytest.raises(ws.WorkspaceError, match="has no version 7"):
        space.revert("cat", 7, base_version=2)


@pytest.mark.parametrize("change, message", [
    (dict(status="automatic"), "refined or accepted"),
    (dict(mask_hw=np.zeros((W, H), bool)), "the photo of cat is"),
    (dict(seeds_hw=np.zeros((H, W + 1), np.uint8)), "seed map"),
    (dict(mask_hw=np.zeros((H, W), np.uint8)), "bool"),
    (dict(seeds_hw=np.full((H, W), 9, np.uint8)), "codes 0..6"),
    (dict(record={"x": object()}), "JSON"),
    (dict(base_version=-1), "base_version"),
])
def test_bad_saves_are_refused_before_anything_is_written(tmp_path, change, message):
    space = make_workspace(tmp_path, {"cat": 0.3})
    entry = space.load("cat")
    args = dict(mask_hw=entry.mask_hw, seeds_hw=entry.seeds_hw, record=entry.record, base_version=0, status="refined")
    with pytest.raises(ValueError, match=message):
        space.save("cat", **{**args, **change})
    assert space.history("cat") == [0] and not (tmp_path / "refinements").exists()


# ------------------------------------------------------------------------------------------------ conflicts
def test_the_second_of_two_sessions_editing_version_0_gets_a_conflict(tmp_path):
    make_workspace(tmp_path, {"cat": 0.3})
    first, second = ws.open_workspace(tmp_path), ws.open_workspace(tmp_path)
    entry_1, entry_2 = first.load("cat"), second.load("cat")
    mask_1, seeds_1 = edited(entry_1, 1)
    mask_2, seeds_2 = edited(entry_2, -1)
    assert first.save("cat", mask_hw=mask_1, seeds_hw=seeds_1, record=entry_1.record, base_version=0, status="refined") == 1
    with pytest.raises(ws.SaveConflict, match="version 1 is newer") as caught:
        second.save("cat", mask_hw=mask_2, seeds_hw=seeds_2, record=entry_2.record, base_version=0, status="accepted")
    assert caught.value.current_version == 1
    assert second.history("cat") == [0, 1] and tmp_dirs(tmp_path) == []
    np.testing.assert_array_equal(second.load("cat").mask_hw, mask_1)


def test_a_version_that_appears_between_the_check_and_the_rename_is_a_conflict(tmp_path, monkeypatch):
    space = make_workspace(tmp_path, {"cat": 0.3})
    entry = space.load("cat")
    mask_mine, seeds = edited(entry, 1)
    mask_theirs, _ = edited(entry, -1)
    real_rename = os.rename

    def another_session_wins(src, dst):
        monkeypatch.setattr(os, "rename", real_rename)
        space.save("cat", mask_hw=mask_theirs, seeds_hw=seeds, record=entry.record, base_version=0, status="refined")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", another_session_wins)
    with pytest.raises(ws.SaveConflict) as caught:
        space.save("cat", mask_hw=mask_mine, seeds_hw=seeds, record=entry.record, base_version=0, status="accepted")
    assert caught.value.current_version == 1 and tmp_dirs(tmp_path) == []
    np.testing.assert_array_equal(space.load("cat").mask_hw, mask_theirs)


# ------------------------------------------------------------------------------------------------ crashes
KILLED_SAVE = """
import os, signal, sys
sys.path.insert(0, {root!r})
import numpy as np
from engine.runs import workspace
space = workspace.open_workspace({space!r})
entry = space.load("cat")
point = {point!r}
def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "rename":
    os.rename = die
elif point == "fsync":
    os.fsync = die
else:  # half of the first file written, then killed
    real_write = os.write
    os.write = lambda fd, data: (real_write(fd, bytes(data[:len(data) // 2])), die())
space.save("cat", mask_hw=~entry.mask_hw, seeds_hw=entry.seeds_hw, record=entry.record, base_version=0, status="accepted")
print("not killed")
"""


@pytest.mark.parametrize("point", ["write", "fsync", "rename"])
def test_a_save_killed_midway_leaves_the_old_version_and_a_later_save_works(tmp_path, point):
    space = make_workspace(tmp_path, {"cat": 0.3})
    before = space.load("cat")
    script = KILLED_SAVE.format(root=str(ROOT), space=str(tmp_path), point=point)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert len(tmp_dirs(tmp_path)) == 1  # the crashed save's leftovers, ignored by readers
    assert space.history("cat") == [0] and [i.version for i in space.items()] == [0] and space.problems() == []
    after = space.load("cat")
    np.testing.assert_array_equal(after.mask_hw, before.mask_hw)
    np.testing.assert_array_equal(after.seeds_hw, before.seeds_hw)
    assert after.record == before.record
    mask, seeds = edited(after)
    assert space.save("cat", mask_hw=mask, seeds_hw=seeds, record=after.record, base_version=0, status="refined") == 1
    np.testing.assert_array_equal(space.load("cat").mask_hw, mask)
    [stale] = tmp_dirs(tmp_path)  # young: it might be a save in progress, so it is kept
    os.utime(stale, (0, 0))  # long ago: the next save removes it
    space.save("cat", mask_hw=mask, seeds_hw=seeds, record=after.record, base_version=1, status="accepted")
    assert tmp_dirs(tmp_path) == []


STEPS = ("open", "write", "fsync", "close", "rename")


class FailAt:
    """Counts the save's calls to os.open/write/fsync/close/rename and fails the ``at``-th one."""

    def __init__(self, monkeypatch, at: int | None, partial: bool):
        self.calls, self.at, self.partial = 0, at, partial
        for name in STEPS:
            monkeypatch.setattr(os, name, self.wrap(name, getattr(os, name)))

    def wrap(self, name, real):
        def step(*args, **kwargs):
            self.calls += 1
            if self.calls == self.at:
                if name == "write" and self.partial:  # a torn write: half the bytes reach the file
                    real(args[0], bytes(args[1][:len(args[1]) // 2]))
                raise OSError(f"injected failure in os.{name}")
            return real(*args, **kwargs)
        return step


@pytest.mark.parametrize("partial", [False, True])
def test_a_failure_at_any_step_of_a_save_leaves_the_old_or_the_new_version(tmp_path, monkeypatch, partial):
    space = make_workspace(tmp_path, {"cat": 0.3})
    entry = space.load("cat")
    with monkeypatch.context() as patch:
        counter = FailAt(patch, None, partial)
        space.save("cat", mask_hw=entry.mask_hw, seeds_hw=entry.seeds_hw, record=entry.record, base_version=0,
                   status="refined")
    steps, newest, failures = counter.calls, 1, 0
    assert steps >= 13  # 3 files × (open, write, fsync, close), the rename, the folders' fsyncs
    for at in range(1, steps + 1):
        current = space.load("cat")
        mask, seeds = edited(current, at)
        with monkeypatch.context() as patch:
            FailAt(patch, at, partial)
            try:
                space.save("cat", mask_hw=mask, seeds_hw=seeds, record=current.record, base_version=newest,
                           status="refined")
            except OSError as exc:
                assert "injected failure" in str(exc)
                failures += 1
        after = space.load("cat")  # every file of the newest version reads whole
        assert after.version in (newest, newest + 1) and tmp_dirs(tmp_path) == []
        expected = mask if after.version == newest + 1 else current.mask_hw
        np.testing.assert_array_equal(after.mask_hw, expected)
        np.testing.assert_array_equal(decode_rle(after.record["mask_rle"]), expected)
        newest = after.version
    assert failures == steps


# ------------------------------------------------------------------------------------------------ paths
@pytest.mark.parametrize("name", ["", "../outside.png", "images/../../outside.png", "/etc/passwd", "a\0b", "..\\x"])
def test_resolve_inside_refuses_names_that_leave_the_root(tmp_path, name):
    with pytest.raises(ws.WorkspaceError):
        ws.resolve_inside(tmp_path, name)


def test_resolve_inside_follows_symlinks(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    (tmp_path / "root" / "in").symlink_to(tmp_path / "root")
    with pytest.raises(ws.WorkspaceError, match="symbolic link"):
        ws.resolve_inside(tmp_path / "root", "out/secret.png")
    assert ws.resolve_inside(tmp_path / "root", "in/a.png") == (tmp_path / "root" / "a.png").resolve()


def test_entries_that_point_outside_the_workspace_are_skipped_and_reported(tmp_path):
    root, outside = tmp_path / "space", tmp_path / "outside"
    make_workspace(root, {"good": 0.5})
    add_item(outside, "secret", 0.1)
    add_item(root, "dotdot", 0.1, image="../../outside/images/secret.png")
    add_item(root, "absolute", 0.1, image=str(outside / "images" / "secret.png"))
    add_item(root, "photo_link", 0.1)
    (root / "images" / "photo_link.png").unlink()
    (root / "images" / "photo_link.png").symlink_to(outside / "images" / "secret.png")
    (root / "segmentations" / "json_link.json").symlink_to(outside / "segmentations" / "secret.json")
    add_item(root, "mask_link", 0.1)
    (root / "segmentations" / "mask_link_mask.png").unlink()
    (root / "segmentations" / "mask_link_mask.png").symlink_to(outside / "segmentations" / "secret_mask.png")
    add_item(root, "refined_link", 0.1)
    (root / "refinements").mkdir()
    (root / "refinements" / "refined_link").symlink_to(outside)
    space = ws.open_workspace(root)
    assert [i.stem for i in space.items()] == ["good"] and space.progress() == (0, 1)
    problems = dict(space.problems())
    assert set(problems) == {"dotdot", "absolute", "photo_link", "json_link", "mask_link", "refined_link"}
    assert "'..'" in problems["dotdot"] and "absolute" in problems["absolute"]
    assert all("outside" in problems[s] for s in ("photo_link", "json_link", "mask_link", "refined_link"))
    entry = space.load("good")
    for stem in ("../outside/segmentations/secret", "/etc/passwd", "", ".tmp-x", "photo_link", "refined_link"):
        with pytest.raises(ws.WorkspaceError):
            space.load(stem)
        with pytest.raises(ws.WorkspaceError):
            space.save(stem, mask_hw=entry.mask_hw, seeds_hw=entry.seeds_hw, record=entry.record, base_version=0,
                       status="refined")
    assert sorted(p.name for p in outside.rglob("*")) == ["images", "secret.json", "secret.png", "secret_mask.png",
                                                         "secret_seeds.png", "segmentations"]


def test_a_segmentations_folder_that_is_a_link_outside_is_refused(tmp_path):
    add_item(tmp_path / "outside", "secret", 0.1)
    (tmp_path / "space").mkdir()
    (tmp_path / "space" / "segmentations").symlink_to(tmp_path / "outside" / "segmentations")
    with pytest.raises(ws.WorkspaceError, match="outside the workspace"):
        ws.open_workspace(tmp_path / "space")
