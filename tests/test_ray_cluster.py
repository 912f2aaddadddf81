"""The cluster recipe of docs/scaling.md as a user runs it: a head started by `ray start --head` in its
own process, with token authentication, joined by `--ray 127.0.0.1:PORT`, gives the lines of a
one-process run; a driver without the cluster's token, with another token, at a port where nothing
listens or at a head that does not answer stops at once with one line. The head is this module's own
(its own temp dir and port) and is stopped by it, also when a test fails."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.__main__ import main

pytestmark = pytest.mark.xdist_group("ray")  # with -n: on the worker that runs tests/test_ray.py, one Ray at a time

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "localisation"
RAY = Path(sys.executable).with_name("ray")  # the `ray` command of this environment
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


def environment(**settings: str) -> dict:
    """This process's environment without Ray's address and token settings, plus ``settings``."""
    return {**{k: v for k, v in os.environ.items() if k not in AUTH_VARIABLES}, **settings}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and "Traceback" not in stderr, stderr
    return lines[-1]


# --- what fails before any Ray is reached: the address, the network, this driver's token setting ---

@pytest.fixture
def no_ray_settings(monkeypatch):
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _localise_fails(tmp_path, address: str, capsys) -> str:
    out = tmp_path / "results.jsonl"
    code = main(["localise", str(DATA / "images"), str(DATA / "annotations"), "--ray", address, "--out", str(out)])
    assert code == 1 and not out.exists()  # nothing started, nothing written
    return error_line(capsys.readouterr().err)


def test_a_port_where_nothing_listens_is_one_line(tmp_path, capsys, no_ray_settings):
    port = free_port()
    assert _localise_fails(tmp_path, f"127.0.0.1:{port}", capsys) == (
        f"error: Cannot join the Ray cluster at '127.0.0.1:{port}': nothing is listening at 127.0.0.1:{port}: "
        "check the port (`ray start --head --port=PORT` chooses it, and prints the address to join) and that the head is running")


def test_a_head_that_does_not_answer_is_one_line(tmp_path, capsys, monkeypatch, no_ray_settings):
    from engine.runs import ray_cluster

    monkeypatch.setattr(ray_cluster, "CONNECT_SECONDS", 0.5)
    with socket.socket() as silent:  # a full accept queue: the kernel drops further SYNs, as for a lost host
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        host, port = silent.getsockname()
        with socket.create_connection((host, port)):
            line = _localise_fails(tmp_path, f"{host}:{port}", capsys)
    assert line == (f"error: Cannot join the Ray cluster at '{host}:{port}': {host}:{port} did not answer within 0.5 s: "
                    "the head machine is down or unreachable from here (a network or firewall in the way)")


def test_an_unknown_host_is_one_line(tmp_path, capsys, no_ray_settings):
    line = _localise_fails(tmp_path, "no-such-host.invalid:6379", capsys)
    assert line.startswith("error: Cannot join the Ray cluster at 'no-such-host.invalid:6379': the host "
                           "'no-such-host.invalid' is not known here")


def test_token_mode_without_a_readable_token_is_one_line(tmp_path, capsys, monkeypatch, no_ray_settings):
    # Ray's own token loader would abort the whole process here (a failed check in its C++)
    missing = tmp_path / "no-such-token"
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(missing))
    port = free_port()
    assert _localise_fails(tmp_path, f"127.0.0.1:{port}", capsys) == (
        f"error: Cannot join the Ray cluster at '127.0.0.1:{port}': RAY_AUTH_TOKEN_PATH names {missing}, "
        "which cannot be read or is empty: point it at a copy of the cluster's token (see docs/scaling.md)")


def test_a_rejected_token_after_rays_retries_is_named():
    """``--ray auto`` is left to Ray; when ray.init gives up, the line still names the token, not
    Ray's "Failed to connect" (its RuntimeError quotes the last GCS error)."""
    pytest.importorskip("ray")
    from engine.runs.ray_cluster import join_error

    try:
        try:
            raise RuntimeError("Failed to connect to GCS. Last connection error: ray.exceptions.AuthenticationError: "
                               "RPC error: InvalidAuthToken: Authentication token is missing or incorrect")
        except RuntimeError as cause:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from cause
    except ConnectionError as exc:
        error = join_error("auto", exc, env={})
    assert str(error).startswith("Cannot join the Ray cluster at 'auto': the cluster requires a token "
                                 "(token authentication) and this driver sent none: set RAY_AUTH_MODE=token")


# --- the documented path: `ray start --head` with token authentication, then --ray 127.0.0.1:PORT ---

@dataclass(frozen=True)
class Head:
    address: str
    home: Path  # the head machine's HOME: its ~/.ray/auth_token is the cluster's token
    log: Path  # what `ray start` printed

    @property
    def token_file(self) -> Path:
        return self.home / ".ray" / "auth_token"


@pytest.fixture(scope="module")
def head():
    """A head started as docs/scaling.md says: the token made by `ray get-auth-token --generate` in
    ~/.ray/auth_token (here a HOME of its own, not the user's), then `RAY_AUTH_MODE=token ray start
    --head --port=PORT`; on a free loopback port, in a temp dir of its own, stopped at the end."""
    pytest.importorskip("ray")
    root = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp" if os.path.isdir("/tmp") else None))  # short: Ray's sockets live under it
    home, log, port = root / "home", root / "head.log", free_port()
    home.mkdir()
    subprocess.run([str(RAY), "get-auth-token", "--generate"], env=environment(HOME=str(home)), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)  # stdout: the token
    (home / ".ray" / "auth_token").chmod(0o600)
    command = [str(RAY), "start", "--head", f"--port={port}", "--num-cpus=2", f"--temp-dir={root / 'ray'}",
               "--include-dashboard=false", "--disable-usage-stats", "--block"]
    with log.open("w") as output:
        process = subprocess.Popen(command, env=environment(HOME=str(home), RAY_AUTH_MODE="token"), stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_started(process, log)
        yield Head(f"127.0.0.1:{port}", home, log)
    finally:
        _stop(process, root)
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_started(process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, f"`ray start --head` did not start:\n{log.read_text()}"
        time.sleep(0.5)


def _stop(process: subprocess.Popen, root: Path) -> None:
    """Stop this head and only it: SIGTERM to `ray start --block` drains and stops its node; then SIGKILL
    to anything of it still there (its workers run in process groups of their own, under its raylet)."""
    family = _descendants(process.pid)
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
    for pid in family:
        if _is_ray_of(pid, root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(_is_ray_of(pid, root) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in family if _is_ray_of(pid, root)], "a process of the test's Ray head outlived it"


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _is_ray_of(pid: int, root: Path) -> bool:
    """Whether ``pid`` is still a live process of this head (its command line names the head's temp
    dir, or is a Ray worker's title), not a zombie or a new process that took the number."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return state != "Z" and (str(root) in command or command.startswith("ray::"))


def _engine(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def _lines(path: Path) -> list[dict]:
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda line: line["image"])


@pytest.mark.slow
def test_localise_on_a_ray_start_head_gives_the_one_process_lines(head, tmp_path, capsys):
    images, annotations = str(DATA / "images"), str(DATA / "annotations")
    # a driver as the guide has it: RAY_AUTH_MODE=token, the cluster's token in ~/.ray/auth_token
    on_ray = _engine("localise", images, annotations, "--top", "5", "--ray", head.address, "--out", str(tmp_path / "ray.jsonl"),
                     env=environment(HOME=str(head.home), RAY_AUTH_MODE="token"))
    assert on_ray.returncode == 0, on_ray.stderr
    assert main(["localise", images, annotations, "--top", "5", "--jobs", "1", "--out", str(tmp_path / "one.jsonl")]) == 0
    capsys.readouterr()
    assert _lines(tmp_path / "ray.jsonl") == _lines(tmp_path / "one.jsonl")
    report = json.loads(on_ray.stdout)
    assert report["runner"] == "ray" and report["images"] == 2 and sum(report["cuts_per_node"].values()) == 2
    assert head.token_file.read_text() not in on_ray.stdout + on_ray.stderr + head.log.read_text()


@pytest.mark.slow
def test_segment_folder_on_a_ray_start_head_writes_the_one_process_files(head, tmp_path, capsys):
    # the token kept elsewhere than ~/.ray: RAY_AUTH_TOKEN_PATH names its file
    on_ray = _engine("segment-folder", str(DATA / "images"), "--ray", head.address, "--out", str(tmp_path / "ray"),
                     env=environment(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(head.token_file)))
    assert on_ray.returncode == 0, on_ray.stderr
    assert main(["segment-folder", str(DATA / "images"), "--jobs", "1", "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ray").iterdir()) and len(names) == 2 * 3 + 1
    assert _lines(tmp_path / "ray" / "results.jsonl") == _lines(tmp_path / "one" / "results.jsonl")
    for name in names:  # masks, seed maps and JSON files, byte for byte
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("token", ["none", "another"])
def test_the_same_command_without_the_clusters_token_is_one_line(head, tmp_path, token):
    settings, why = {}, "the cluster requires a token (token authentication) and this driver sent none: set RAY_AUTH_MODE=token"
    if token == "another":
        (tmp_path / "token").write_text("0123456789abcdef" * 4)
        settings = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "token")}
        why = f"the cluster rejected this driver's token (from the file RAY_AUTH_TOKEN_PATH names, {tmp_path / 'token'})"
    out = tmp_path / "ray.jsonl"
    run = _engine("localise", str(DATA / "images"), str(DATA / "annotations"), "--top", "5", "--ray", head.address,
                  "--out", str(out), env=environment(**settings))
    assert run.returncode == 1 and not out.exists()
    assert error_line(run.stderr).startswith(f"error: Cannot join the Ray cluster at '{head.address}': {why}")
    assert head.token_file.read_text() not in run.stderr and "0123456789abcdef" not in run.stderr
