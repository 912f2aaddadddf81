"""Stopping a long run from outside: the hook every long engine run takes, and what it raises.

A run that keeps what it has when asked to stop (class model visualisation, §2 of Simonyan et al. 2013)
takes ``on_step`` returning False, as scikit-image's progress callbacks do. A run whose half-made
result means nothing (the sanity checks, a folder of cuts) takes ``should_stop``, a callable asked
between its steps; when it answers True the run raises ``Cancelled`` and leaves nothing behind.

A step can be long: one class model step of 4 classes is a forward and backward pass of a batch, and on a
machine busy with other work it has taken 18 s at a heavy run's lower priority. Within ``watching(should_stop)``
a network made ``stoppable`` (every loaded model is) asks ``should_stop`` after each of its blocks in the
forward pass and again as the backward pass reaches each block, so a run whose result is to be dropped ends
within one block. No torch here: ``ui.jobs`` imports this before anything loads torch.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator

ShouldStop = Callable[[], bool]


class Cancelled(Exception):
    """A run stopped by its ``should_stop`` before it finished; what it had made is dropped."""


def check(should_stop: ShouldStop | None) -> None:
    """Raise ``Cancelled`` when ``should_stop`` says so (None: never)."""
    if should_stop is not None and should_stop():
        raise Cancelled("stopped before it finished")


_watched = threading.local()


@contextlib.contextmanager
def watching(should_stop: ShouldStop | None) -> Iterator[None]:
    """Within it, on this thread, a ``stoppable`` network raises ``Cancelled`` between blocks once ``should_stop``
    says so. Only for work whose half-made result is dropped: the stop lands inside a step."""
    previous = getattr(_watched, "should_stop", None)
    _watched.should_stop = should_stop
    try:
        yield
    finally:
        _watched.should_stop = previous


def checkpoint() -> None:
    """Raise ``Cancelled`` when this thread's ``watching`` says so: for the work between a network's blocks (a
    class model step's transforms and its second backward pass)."""
    check(getattr(_watched, "should_stop", None))


def stoppable(module):
    """Ask the thread's ``watching`` after each block of ``module`` (a torch module, returned) in the forward
    pass, and as the backward pass reaches each block. The blocks are the children of its sequential
    containers (a timm EfficientNet's 7 stages and 16 blocks, a VGG's layers, a ResNet's stages and blocks):
    a few dozen hooks, each an attribute read when nothing is watched. Hooks go on at load, before the model
    is shared."""
    containers = [m for m in module.modules() if type(m).__name__ in ("Sequential", "ModuleList")]
    blocks = {id(child): child for container in containers for child in container.children()}
    for block in blocks.values():
        block.register_forward_hook(_block_done)
    return module


def _block_done(module, inputs, output) -> None:
    should_stop = getattr(_watched, "should_stop", None)
    if should_stop is None:
        return
    check(should_stop)
    if getattr(output, "requires_grad", False):  # a tensor in a graph: ask again when the backward pass gets here
        output.register_hook(functools.partial(_backward_reached, should_stop))


def _backward_reached(should_stop: ShouldStop, grad) -> None:
    check(should_stop)
