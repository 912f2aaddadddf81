"""A run told to stop ends inside a step (engine.stopping.watching + stoppable): the network asks before each
block, forward and backward; nothing is asked outside ``watching``; ui.jobs watches for a viewer gone, not Stop."""
from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from engine import stopping
from engine.stopping import Cancelled
from ui import jobs as ui_jobs


class Counted(nn.Module):
    """A block that records that it ran, and may wait for a signal first."""

    def __init__(self, name: str, ran: list, entered: threading.Event | None = None, go: threading.Event | None = None):
        super().__init__()
        self.name, self.ran, self.entered, self.go = name, ran, entered, go
        self.scale = nn.Parameter(torch.tensor(2.0), requires_grad=False)

    def forward(self, x):
        if self.entered is not None:
            self.entered.set()
            self.go.wait(5)
        self.ran.append(self.name)
        return x * self.scale


def network(ran: list, **waits) -> nn.Module:
    return stopping.stoppable(nn.Sequential(*(Counted(f"block {i}", ran, **(waits if i == 1 else {})) for i in range(4))))


def test_the_forward_pass_stops_after_the_block_during_which_it_was_told():
    ran, asked = [], []

    def should_stop():
        asked.append(len(ran))
        return len(ran) >= 2

    with stopping.watching(should_stop), pytest.raises(Cancelled):
        network(ran)(torch.ones(3))
    assert ran == ["block 0", "block 1"] and asked == [1, 2]  # asked after each block; blocks 2 and 3 never ran


def test_the_backward_pass_stops_at_the_first_block_it_reaches_once_told():
    ran, stop = [], [False]
    net = network(ran)
    x = torch.ones(3, requires_grad=True)
    with stopping.watching(lambda: stop[0]):
        y = net(x).sum()  # forward done: the four blocks ran, nothing said stop
        stop[0] = True
        with pytest.raises(Cancelled):
            y.backward()
    assert len(ran) == 4 and x.grad is None  # the gradient never reached the input


def test_outside_watching_nothing_is_asked_and_gradients_are_exact():
    ran = []
    x = torch.ones(3, requires_grad=True)
    network(ran)(x).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), 16.0))  # 2⁴, by hand
    with stopping.watching(lambda: False):
        x.grad = None
        network(ran)(x).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), 16.0))  # hooks asked and let it be


def test_the_embedded_model_is_stoppable_at_each_of_its_blocks(embedded_model):
    hooked = [name for name, m in embedded_model.module.named_modules() if stopping._block_done in m._forward_hooks.values()]
    assert sum(name.count(".") == 2 and name.startswith("blocks.") for name in hooked) == 16  # the 16 MBConv blocks
    calls = []
    with stopping.watching(lambda: calls.append(1) or len(calls) > 5), pytest.raises(Cancelled), torch.no_grad():
        embedded_model.module(torch.zeros(1, 3, 224, 224))
    assert len(calls) == 6


@pytest.fixture
def one_slot(monkeypatch):
    monkeypatch.setattr(ui_jobs, "_slot_holder", [ui_jobs.HeavySlots(1)])


@pytest.mark.parametrize("how", ["viewer left", "Stop pressed"])
def test_a_run_whose_viewer_left_ends_inside_its_step_and_one_stopped_by_its_person_finishes_it(one_slot, how):
    ran, entered, go = [], threading.Event(), threading.Event()
    net = network(ran, entered=entered, go=go)

    def one_step(run):
        net(torch.ones(3))
        return "the step's image"

    run = ui_jobs.start("class_model", "optimise", one_step)
    assert entered.wait(5)  # inside block 1 of its one step
    run.cancel("its viewer left") if how == "viewer left" else run.stop()
    go.set()
    run.thread.join(5)
    if how == "viewer left":  # its result is dropped anyway: blocks 2 and 3 never ran
        assert run.state == "cancelled" and ran == ["block 0", "block 1"] and run.result is None
    else:  # the person keeps what the step makes (the class model's on_step decides after it)
        assert run.state == "finished" and len(ran) == 4 and run.result == "the step's image"


def test_a_class_model_step_being_dropped_stops_between_its_network_and_its_transforms(tiny_convnet):
    from engine.classviz.visualise import get_preset, visualise_class

    steps = []
    with stopping.watching(lambda: True), pytest.raises(Cancelled):  # no block hooks on this model: the step's own checks
        visualise_class(tiny_convnet, [1], config=get_preset("paper"), on_step=steps.append)
    assert steps == []  # not one step finished
    unwatched = visualise_class(tiny_convnet, [1], config=get_preset("paper"), on_step=lambda p: len(steps) < 2 and not steps.append(p))
    assert unwatched.steps_run == 3  # outside watching it runs until its on_step says stop
