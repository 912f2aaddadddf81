"""Heavy-run slots (engine.runs.slots): N at once, the rest in first-come order with a visible place,
and a waiting run can leave the line."""
from __future__ import annotations

import threading
import time

import pytest

from engine.runs.slots import HeavySlots
from engine.stopping import Cancelled


def _wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_runs_beyond_the_slots_wait_in_arrival_order_and_know_their_place():
    slots = HeavySlots(1)
    started, release, tickets = [], {i: threading.Event() for i in range(3)}, {}

    def run(i):
        with slots.hold(on_wait=lambda t: tickets.__setitem__(i, t)) as ticket:
            tickets[i] = ticket
            started.append(i)
            release[i].wait(5)

    threads = []
    for i in range(3):
        threads.append(threading.Thread(target=run, args=(i,)))
        threads[-1].start()
        _wait_until(lambda i=i: i in tickets)  # arrived (holding, or in the line)
    assert started == [0] and slots.running == 1 and slots.waiting == 2
    assert [tickets[i].position for i in range(3)] == [0, 1, 2]
    release[0].set()
    _wait_until(lambda: started == [0, 1])
    assert [tickets[1].position, tickets[2].position] == [0, 1]
    release[1].set()
    release[2].set()
    for thread in threads:
        thread.join(5)
    assert started == [0, 1, 2] and slots.running == 0 and slots.waiting == 0
    assert tickets[0].position == -1  # done: in no line


def test_two_slots_run_two_at_once():
    slots = HeavySlots(2)
    inside, most, lock = [0], [0], threading.Lock()

    def run():
        with slots.hold():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert most[0] == 2 and slots.running == 0


def test_a_waiting_run_that_is_stopped_leaves_the_line_and_the_next_moves_up():
    slots = HeavySlots(1)
    stop, outcome, tickets = threading.Event(), [], {}
    holder = slots.hold()
    holder.__enter__()

    def waiter(name, should_stop):
        try:
            with slots.hold(should_stop=should_stop, on_wait=lambda t: tickets.__setitem__(name, t)):
                outcome.append(f"{name} ran")
        except Cancelled:
            outcome.append(f"{name} cancelled")

    first = threading.Thread(target=waiter, args=("first", stop.is_set))
    first.start()
    _wait_until(lambda: "first" in tickets)
    second = threading.Thread(target=waiter, args=("second", None))
    second.start()
    _wait_until(lambda: "second" in tickets)
    assert tickets["second"].position == 2
    stop.set()
    first.join(5)
    assert outcome == ["first cancelled"] and tickets["second"].position == 1
    holder.__exit__(None, None, None)
    second.join(5)
    assert outcome == ["first cancelled", "second ran"] and slots.running == 0


def test_a_run_stopped_while_it_waited_does_not_start_when_its_slot_frees():
    """Every leaver's tab closes at once: the running run ends and frees its slot as the waiting one is told to
    stop; the waiting one must leave the line, not take the slot and start its (long) work."""
    slots = HeavySlots(1)
    stop, outcome, queued = threading.Event(), [], threading.Event()
    holder = slots.hold()
    holder.__enter__()

    def waiter():
        try:
            with slots.hold(should_stop=stop.is_set, on_wait=lambda t: queued.set()):
                outcome.append("ran")
        except Cancelled:
            outcome.append("cancelled")

    thread = threading.Thread(target=waiter)
    thread.start()
    queued.wait(5)
    stop.set()
    holder.__exit__(None, None, None)  # the slot frees as it is told to stop
    thread.join(5)
    assert outcome == ["cancelled"] and slots.running == 0 and slots.waiting == 0


def test_a_run_that_fails_frees_its_slot():
    slots = HeavySlots(1)
    with pytest.raises(RuntimeError):
        with slots.hold():
            raise RuntimeError("boom")
    assert slots.running == 0
    with slots.hold() as ticket:
        assert ticket.position == 0


def test_at_least_one_slot():
    with pytest.raises(ValueError, match="at least 1"):
        HeavySlots(0)
