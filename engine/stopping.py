"""Stopping a long run from outside: the hook every long engine run takes, and what it raises.

A run that keeps what it has when asked to stop (class model visualisation, §2 of Simonyan et al. 2013)
takes ``on_step`` returning False, as scikit-image's progress callbacks do. A run whose half-made
result means nothing (the sanity checks, a folder of cuts) takes ``should_stop``, a callable asked
between its steps; when it answers True the run raises ``Cancelled`` and leaves nothing behind.
"""
from __future__ import annotations

from collections.abc import Callable

ShouldStop = Callable[[], bool]


class Cancelled(Exception):
    """A run stopped by its ``should_stop`` before it finished; what it had made is dropped."""


def check(should_stop: ShouldStop | None) -> None:
    """Raise ``Cancelled`` when ``should_stop`` says so (None: never)."""
    if should_stop is not None and should_stop():
        raise Cancelled("stopped before it finished")
