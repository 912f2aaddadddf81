"""Folder-scale runs of §3.2 (Simonyan et al. 2013): localisation and segmentation, one photo at a time.

Every photo goes through two stages. The model stage (``Stages.propose``) decodes the photo and
makes its class saliency maps in one batched pass; it needs the network. The cut stage
(``Stages.finish``) turns one map into a box or a mask with a graph cut; it needs no network and
runs anywhere. ``Stages.assemble`` makes the photo's JSON line from both.

Two runners drive the stages:
- ``run_local``: the model stage in this process, the cuts in ``jobs`` worker processes (spawned:
  they never import torch), the model working on the next photo while the cuts run;
- ``engine.runs.ray_runner.run_ray``: model actors (one per GPU, or one per four CPUs of a node) and cut
  tasks on a Ray cluster, local or joined by address.

Lines come back in order of completion through ``on_line``; a photo that cannot be read is a line
with an ``error``, never a dead run. The model stage computes on one CPU thread in every runner:
oneDNN's sums depend on the thread count (maps 1e-7 apart, measured), and one thread everywhere
makes every runner's boxes bit for bit the same.
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Line = dict  # one photo's result, JSON-able; {"image": name, "error": reason} when it failed


@dataclass(frozen=True, eq=False)
class Proposal:
    """The model stage's output for one photo: what each cut needs, and what assembling needs."""

    image: str  # the photo's file name
    image_hwc: np.ndarray
    payloads: tuple  # one per cut (e.g. a class's saliency map)
    context: Any  # whatever assemble needs besides the cuts' results

    def without_arrays(self) -> Proposal:
        """What assembling the line needs, a few bytes: the photo as an empty (H, W, 0) array (its size
        kept), the payloads as Nones (their number kept). Ray's driver gets this; the cuts get the arrays."""
        height, width = self.image_hwc.shape[:2]
        return dataclasses.replace(self, image_hwc=np.empty((height, width, 0), np.uint8), payloads=(None,) * len(self.payloads))


@dataclass(frozen=True)
class Photo:
    """A photo to process: its name, its bytes, and what else the model stage needs (an annotation);
    ``error`` when reading it already failed."""

    name: str
    data: bytes = b""
    extra: Any = None
    error: str | None = None


class _Done:
    """A finished value with the interface of a future."""

    def __init__(self, value):
        self.value = value

    def done(self) -> bool:
        return True

    def result(self):
        return self.value


class _PhotoJob:
    """One photo's cuts in flight; ``result()`` is its line."""

    def __init__(self, stages, proposal: Proposal, futures):
        self.stages, self.proposal, self.futures = stages, proposal, futures

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def result(self) -> Line:
        return self.stages.assemble(self.proposal, [f.result() for f in self.futures])


def propose_or_fail(stages, photo: Photo) -> Proposal | Line:
    """The model stage, with a bad photo turned into an error line."""
    if photo.error is not None:
        return {"image": photo.name, "error": photo.error}
    try:
        return stages.propose(photo)
    except (ValueError, OSError) as exc:  # ImageError and a bad annotation are ValueErrors
        return {"image": photo.name, "error": str(exc)}


def run_local(stages, photos: Iterable[Photo], *, jobs: int = 1, on_line: Callable[[Line], None]) -> None:
    """Both stages on this machine: cuts in ``jobs`` processes (none for 1), at most 2·jobs photos in flight."""
    if int(jobs) < 1:
        raise ValueError(f"jobs must be at least 1; got {jobs}.")
    with _cut_pool(int(jobs)) as pool, one_thread():
        pending: collections.deque = collections.deque()
        for photo in photos:
            proposal = propose_or_fail(stages, photo)
            if isinstance(proposal, dict):
                pending.append(_Done(proposal))
            elif pool is None:
                pending.append(_Done(stages.assemble(proposal, [stages.finish(proposal.image_hwc, p) for p in proposal.payloads])))
            else:
                futures = [pool.submit(stages.finish, proposal.image_hwc, p) for p in proposal.payloads]
                pending.append(_PhotoJob(stages, proposal, futures))
            while pending and (len(pending) > 2 * int(jobs) or pending[0].done()):
                on_line(pending.popleft().result())
        while pending:
            on_line(pending.popleft().result())


@contextlib.contextmanager
def _cut_pool(jobs: int):
    if jobs == 1:
        yield None
        return
    context = multiprocessing.get_context("spawn")  # the cut stage needs no torch: a fork of it is not needed
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        yield pool


@contextlib.contextmanager
def one_thread():
    """The model stage on one CPU thread (see the module docstring), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- JSON lines: streaming, resuming
def read_lines(path: str | Path) -> list[Line]:
    """The complete lines of a JSON-lines file; a torn last line (a killed run) is dropped."""
    return _complete_lines(Path(path).read_bytes())[0]


def _complete_lines(data: bytes) -> tuple[list[Line], int]:
    """(the lines up to the first incomplete or unreadable one, the byte offset where it starts)."""
    lines, end = [], 0
    for raw in data.splitlines(keepends=True):
        try:
            line = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        if not raw.endswith(b"\n") or not isinstance(line, dict) or not isinstance(line.get("image"), str):
            break
        lines.append(line)
        end += len(raw)
    return lines, end


class LineWriter:
    """Appends lines as they come, each flushed whole; with ``resume`` keeps the file's complete lines
    (dropping a torn last line) and reports which photos they cover."""

    def __init__(self, path: str | Path | None, *, resume: bool = False):
        self.path = None if path is None else Path(path)
        self.kept: list[Line] = []
        self._file = None
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.is_file():
            self.kept, end = _complete_lines(self.path.read_bytes())
            with self.path.open("r+b") as file:
                file.truncate(end)  # drop a torn last line; everything before it stays untouched
            self._file = self.path.open("a")
        else:
            self._file = self.path.open("w")

    @property
    def done(self) -> set[str]:
        return {line["image"] for line in self.kept}

    def write(self, line: Line) -> None:
        if self._file is not None:
            self._file.write(json.dumps(line) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def photos_from(paths: Sequence[Path], extra: Callable[[Path], Any] = lambda path: None) -> Iterable[Photo]:
    """Photos read lazily, in order; ``extra(path)`` adds what the model stage needs (an annotation).
    A file that cannot be read, or whose extra cannot, becomes a photo with its ``error``."""
    for path in paths:
        try:
            yield Photo(path.name, path.read_bytes(), extra(path))
        except (OSError, ValueError) as exc:
            yield Photo(path.name, error=str(exc))
