"""Folder runs on Ray (engine.runs.ray_runner) and their faults: the same answers as one process, two nodes
joined by address, a killed worker, Ctrl-C and --resume. Every test starts its own Ray and stops it."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.__main__ import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one Ray at a time: no_ray_left_behind counts every raylet
ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "localisation"
COPIES = 6  # photos per run: the two sample photos, copied under other names with their annotations


def make_folder(root: Path, copies: int = COPIES) -> tuple[Path, Path]:
    """A folder of 2·copies photos and their XML files (copies of the two sample photos)."""
    images, annotations = root / "images", root / "annotations"
    images.mkdir(), annotations.mkdir()
    for n in range(copies):
        for stem in ("cat", "espresso"):
            shutil.copy(DATA / "images" / f"{stem}.jpg", images / f"{stem}{n}.jpg")
            shutil.copy(DATA / "annotations" / f"{stem}.xml", annotations / f"{stem}{n}.xml")
    return images, annotations


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path)


@pytest.fixture(autouse=True)
def no_ray_left_behind():
    yield
    if ray.is_initialized():
        ray.shutdown()
    assert not _ray_processes(), "a Ray process outlived its test"


def _ray_processes(pattern: str = "raylet") -> list[int]:
    """PIDs of this machine's processes whose command line contains ``pattern``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if pattern in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _localise(capsys, images, annotations, *extra) -> dict:
    assert main(["localise", str(images), str(annotations), "--top", "5", "--details", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _boxes(report: dict) -> dict:
    return {row["image"]: row["guesses"] for row in report["per_image"]}


def test_ray_jobs_and_one_process_give_the_same_counts_and_boxes(tmp_path, capsys):
    images, annotations = make_folder(tmp_path, 3)  # 6 photos: more would be the same two photos again
    alone = _localise(capsys, images, annotations, "--jobs", "1")
    two_jobs = _localise(capsys, images, annotations, "--jobs", "2")
    on_ray = _localise(capsys, images, annotations, "--ray")
    for other in (two_jobs, on_ray):
        assert (other["top1_correct"], other["top5_correct"], other["empty_boxes"]) == (
            alone["top1_correct"], alone["top5_correct"], alone["empty_boxes"])
        assert _boxes(other) == _boxes(alone)
    assert alone["images"] == 6 and on_ray["runner"] == "ray"
    # the model's loading (and Ray's start) is reported apart from the photos' time
    assert all(run["startup_seconds"] > 0 and run["seconds"] > 0 for run in (alone, two_jobs, on_ray))


def test_cpu_nodes_get_a_model_actor_per_four_cpus():
    from engine.runs.ray_runner import cpu_model_actors

    nodes = [{"NodeID": "a", "Alive": True, "Resources": {"CPU": 2.0}},
             {"NodeID": "b", "Alive": True, "Resources": {"CPU": 16.0, "memory": 1e9}},
             {"NodeID": "c", "Alive": True, "Resources": {"CPU": 7.0}},
             {"NodeID": "head", "Alive": True, "Resources": {}},  # a head started with --num-cpus=0
             {"NodeID": "gone", "Alive": False, "Resources": {"CPU": 8.0}}]
    assert cpu_model_actors(nodes) == {"a": 1, "b": 4, "c": 1}


def test_a_model_that_cannot_load_is_one_clear_error(folder, capsys):
    images, annotations = folder
    assert main(["localise", str(images), str(annotations), "--ray", "--weights", "/no/such/weights.pt"]) == 1
    err = capsys.readouterr().err
    assert "error: The model could not be loaded on the Ray cluster: Weights must be" in err
    assert "Traceback" not in err and not ray.is_initialized()


def test_two_nodes_joined_by_address_both_cut(folder, capsys):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        images, annotations = folder
        report = _localise(capsys, images, annotations, "--ray", cluster.address, "--gt-known")
        assert report["images"] == 2 * COPIES and sum(report["cuts_per_node"].values()) == 2 * COPIES
        assert len(report["cuts_per_node"]) == 2, report["cuts_per_node"]  # both nodes did work
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def _start(args: list[str]) -> subprocess.Popen:
    # SIGINT back to Python's default, as under a terminal: a suite started with `&` from a script
    # inherits SIGINT ignored (POSIX, for background jobs), and Python then keeps it ignored
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_text().splitlines()) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    raise AssertionError(f"{path} did not reach {count} lines")


def _images_in(path: Path) -> list[str]:
    return [json.loads(line)["image"] for line in path.read_text().splitlines()]


def test_a_killed_worker_loses_and_duplicates_nothing(tmp_path, capsys):
    images, annotations = make_folder(tmp_path, 20)  # 40 photos: the kill lands while the run works
    out = tmp_path / "results.jsonl"
    run = _start(["localise", str(images), str(annotations), "--top", "5", "--ray", "--out", str(out), "--details"])
    try:
        _wait_for_lines(out, 1, run)
        actors = _ray_processes("ray::_ModelActor")
        assert actors, "no model actor process found"
        os.kill(actors[0], signal.SIGKILL)  # the model actor, mid-run: Ray restarts it and retries its calls
        stdout, stderr = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 0, stderr
    names = _images_in(out)
    assert sorted(names) == sorted(p.name for p in images.iterdir())  # every photo exactly once
    alone = _boxes(_localise(capsys, DATA / "images", DATA / "annotations", "--jobs", "1"))  # the copies' originals, in one process
    assert _boxes(json.loads(stdout)) == {name: alone[re.sub(r"\d+\.jpg$", ".jpg", name)] for name in names}


def test_ctrl_c_then_resume_redoes_nothing_finished(tmp_path):
    # 60 photos: long enough a run (several seconds on a fast machine) that the signal finds it
    # working; with 12, a fast machine had finished them all before the test saw the first lines
    copies = 30
    images, annotations = make_folder(tmp_path, copies)
    out = tmp_path / "results.jsonl"
    args = ["localise", str(images), str(annotations), "--top", "1", "--jobs", "1", "--out", str(out)]
    run = _start(args)
    _wait_for_lines(out, 2, run)
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130 and "--resume" in stderr
    done = _images_in(out)
    assert 2 <= len(done) < 2 * copies
    with out.open("a") as file:
        file.write('{"image": "torn')  # as if killed mid-write: the torn line is dropped, its photo redone
    again = _start([*args, "--resume"])
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["processed"] == 2 * copies - len(done) and summary["images"] == 2 * copies
    names = _images_in(out)
    assert names[: len(done)] == done and sorted(names) == sorted(p.name for p in images.iterdir())
