"""Heavy-run slots: at most N long runs at once in a process, the others waiting in first-come order.

A shared server runs many people's work on a few cores; more long runs at once than cores add
memory and slow everyone, quick views included. ``HeavySlots`` is a counting semaphore whose queue is
visible: a waiting run knows its place and can leave the line (``should_stop``). Quick work (a
saliency map, a click's refinement) never takes a slot, so it is never queued behind long runs.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine.stopping import Cancelled, ShouldStop


class Ticket:
    """One run's place: waiting (``position`` ≥ 1, 1 = next) or holding a slot (``position`` 0)."""

    def __init__(self, slots: HeavySlots) -> None:
        self._slots = slots
        self.holding = False

    @property
    def position(self) -> int:
        return self._slots.position(self)


class HeavySlots:
    """``slots`` long runs at once; ``hold()`` waits its turn in first-come order."""

    POLL_S = 0.2  # how often a waiting run asks ``should_stop``

    def __init__(self, slots: int) -> None:
        if int(slots) < 1:
            raise ValueError(f"There must be at least 1 heavy-run slot; got {slots}.")
        self.slots = int(slots)
        self._lock = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def position(self, ticket: Ticket) -> int:
        with self._lock:
            return 0 if ticket.holding else 1 + self._waiting.index(ticket) if ticket in self._waiting else -1

    @contextmanager
    def hold(self, *, should_stop: ShouldStop | None = None, on_wait: Callable[[Ticket], None] | None = None) -> Iterator[Ticket]:
        """Wait for a slot (``on_wait(ticket)`` once, when the run must queue), hold it for the block, free it after.
        ``should_stop`` answering True while waiting leaves the line and raises ``Cancelled``."""
        ticket = Ticket(self)
        with self._lock:
            self._waiting.append(ticket)
            told = False
            while True:
                # asked before the slot is taken too: a run stopped while it waited (its viewer gone) must not start
                # when the slot it waited for frees, which happens at once when every run leaves together
                if should_stop is not None and should_stop():
                    self._waiting.remove(ticket)
                    self._lock.notify_all()  # the one behind may now be first
                    raise Cancelled("left the queue before its turn")
                if self._waiting[0] is ticket and self._running < self.slots:
                    break
                if not told and on_wait is not None:
                    told = True
                    self._lock.release()  # the callback may read positions
                    try:
                        on_wait(ticket)
                    finally:
                        self._lock.acquire()
                    continue
                self._lock.wait(self.POLL_S)
            self._waiting.popleft()
            self._running += 1
            ticket.holding = True
            self._lock.notify_all()  # the next in line may fit in another free slot
        try:
            yield ticket
        finally:
            with self._lock:
                self._running -= 1
                ticket.holding = False
                self._lock.notify_all()
