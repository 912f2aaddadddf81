"""Background runs that end with their viewer, and the server-wide line for heavy ones.

Owns: every long run a session starts (``start``), on a worker thread; the watcher thread that stops a run
whose viewer has gone (tab closed, session expired: no websocket for ``VIEWER_GRACE_S``) and closes a
session gone for ``CLOSE_AFTER_S`` (its session state and uploads freed, and the shared cache entries only it
held: ``ui.holds``); stopping a session's runs when
it moves to another page (``page_entered``, called by app.py); the heavy-run slots (``engine.runs.slots``,
as many as ``ui.limits``' ``heavy_runs``). Quick work (a map, a click's refinement) never comes here.
May import: ``engine.runs.slots``, ``engine.stopping``, ``ui.holds``, ``ui.limits``; never torch (app.py imports it before
every page, the home page included).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine.runs.slots import HeavySlots, Ticket
from engine.stopping import Cancelled, watching
from ui import holds
from ui.limits import limits

VIEWER_GRACE_S = 1.0  # a websocket gone this long is a viewer gone (a blip reconnects within it)
CLOSE_AFTER_S = 30.0  # a session gone this long is closed: its state and uploads freed
WATCH_EVERY_S = 0.25
# A heavy run's thread (and the torch threads it starts, which inherit it) yields the cores to quick views: on
# Linux a thread's nice value is its own. Quick work (maps, refinements) keeps the normal priority.
HEAVY_NICE = 10
TRIM_AFTER_S = 1.0  # runs that end together (every leaver at once) and sessions closed together share one trim

log = logging.getLogger("deep_inside.jobs")
if not log.handlers:  # the operator's server log: one line per run started and ended
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s deep-inside: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class Run:
    """One long run on its own thread. ``work(run)`` asks ``run.should_stop()`` between its steps and may
    set ``run.progress``. ``stop()`` is the person's Stop (a run that keeps what it has keeps it);
    ``cancel(reason)`` is the viewer gone: whatever it had made is dropped."""

    def __init__(self, session_id: str | None, page: str, label: str, work: Callable[[Run], Any], *, heavy: bool) -> None:
        self.session_id, self.page, self.label, self.heavy = session_id, page, label, heavy
        self.state = "queued" if heavy else "running"  # then "finished", "failed" or "cancelled"
        self.result: Any = None
        self.error: str | None = None
        self.cancel_reason: str | None = None
        self.progress: Any = None
        self._ticket: Ticket | None = None
        self.ran = not heavy  # a heavy run that left the line never ran
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._work, args=(work,), name=f"run {label}", daemon=True)

    @property
    def done(self) -> bool:
        return self.state in ("finished", "failed", "cancelled")

    @property
    def position(self) -> int:
        """Its place in the line for a heavy-run slot (1 = next), 0 once running."""
        return self._ticket.position if self.state == "queued" and self._ticket is not None else 0

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
            log.info("run stopping: %s (%s); session %s", self.label, reason, (self.session_id or "-")[:8])
        self._stop.set()

    def _cancelled(self) -> bool:
        return self.cancel_reason is not None

    def _queued(self, ticket: Ticket) -> None:
        self._ticket = ticket

    def _work(self, work: Callable[[Run], Any]) -> None:
        result = None
        try:
            with watching(self._cancelled):  # a viewer gone drops the result: the model stops inside the step
                if self.heavy:
                    _lower_priority()
                    with _slots().hold(should_stop=self.should_stop, on_wait=self._queued) as ticket:
                        self._ticket, self.state, self.ran = ticket, "running", True
                        result = work(self)
                else:
                    result = work(self)
        except Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 (a worker's error must reach its page, not end silently with its thread)
            self.error = str(exc) or type(exc).__name__
        finally:
            if self.cancel_reason is not None:
                self.state = "cancelled"
            elif self.error is not None:
                self.state = "failed"
            elif self._stop.is_set() and result is None:
                self.state = "cancelled"
            else:
                self.result, self.state = result, "finished"
            _forget(self)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, looked up once (find_library runs ldconfig in a child process); None elsewhere."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS): nothing to trim
        return None


def _give_back_memory() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim): a finished or stopped run, or a closed
    session, frees hundreds of MB in its threads' malloc arenas, which glibc otherwise keeps for the process.
    A trim walks every arena and costs CPU (0.3-1 s each on 2 cores after class model runs, py-spy): call
    ``_give_back_memory_soon``, which lets the runs and sessions that end together share one."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _give_back_memory_soon() -> None:
    """One trim ``TRIM_AFTER_S`` after the last of the calls that come close together."""
    with _lock:
        for waiting in _trim_timer:
            waiting.cancel()  # no-op once it has begun
        _trim_timer[:] = [threading.Timer(TRIM_AFTER_S, _give_back_memory)]
        _trim_timer[0].daemon = True
        _trim_timer[0].start()


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HEAVY_NICE)  # this thread only (Linux)
    except (AttributeError, OSError):  # no setpriority (Windows), or not allowed: the run keeps the normal priority
        pass


# ---------------------------------------------------------------- the registry and its watcher
_lock = threading.Lock()
_runs: set[Run] = set()  # live runs of this process
_sessions: dict[str, str] = {}  # session id -> the page it last entered
_gone_since: dict[str, float] = {}
_watcher: list[threading.Thread] = []
_slot_holder: list[HeavySlots] = []
_trim_timer: list[threading.Timer] = []  # the latest trim asked for


def _slots() -> HeavySlots:
    with _lock:
        if not _slot_holder:
            _slot_holder.append(HeavySlots(limits().heavy_runs))
        return _slot_holder[0]


def live_runs() -> int:
    """Runs started and not yet ended, in this process (the server log prints it with each line)."""
    with _lock:
        return len(_runs)


def queue_length() -> int:
    return _slots().waiting


def _forget(run: Run) -> None:
    with _lock:
        _runs.discard(run)
        live = len(_runs)
    why = f" ({run.cancel_reason})" if run.cancel_reason else f" ({run.error})" if run.error else ""
    if run.heavy and run.ran:
        _give_back_memory_soon()
    log.info("run ended: %s, %s%s; session %s; live runs: %d", run.label, run.state, why, (run.session_id or "-")[:8], live)


def session_id() -> str | None:
    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def start(page: str, label: str, work: Callable[[Run], Any], *, heavy: bool = True) -> Run:
    """Start ``work`` for this session's ``page`` (app.py's url_path of it) on a worker thread; a heavy run
    first waits for one of the server's slots."""
    run = Run(session_id(), page, label, work, heavy=heavy)
    with _lock:
        _runs.add(run)
        live = len(_runs)
    _ensure_watcher()
    log.info("run started: %s; session %s; live runs: %d", label, (run.session_id or "-")[:8], live)
    run.thread.start()
    return run


def viewer_gone(page: str) -> Callable[[], bool]:
    """A ``should_stop`` for work on this session's own script thread (not a worker): True once its viewer has
    left (as the watcher sees it) or has entered another page than ``page``."""
    sid = session_id()

    def gone() -> bool:
        with _lock:
            elsewhere = _sessions.get(sid, page) != page
        since = _gone_since.get(sid)
        return elsewhere or (since is not None and time.monotonic() - since >= VIEWER_GRACE_S)
    return gone


def page_entered(page: str) -> None:
    """This session now shows ``page``: its runs on other pages stop (nothing they half-made is kept)."""
    sid = session_id()
    if sid is None:
        return
    with _lock:
        _sessions[sid] = page
        others = [r for r in _runs if r.session_id == sid and r.page != page]
    for run in others:
        run.cancel("its viewer went to another page")
    _ensure_watcher()


def _ensure_watcher() -> None:
    if not holds.serving():  # AppTest or the command line: no server, no websockets to watch
        return
    with _lock:
        if _watcher and _watcher[0].is_alive():
            return
        _watcher[:] = [threading.Thread(target=_watch, name="deep-inside viewer watcher", daemon=True)]
    _watcher[0].start()


def _watch() -> None:
    while True:
        time.sleep(WATCH_EVERY_S)
        _sweep(time.monotonic())


def _sweep(now: float) -> None:
    try:
        server = runtime.get_instance()
    except RuntimeError:  # no server (AppTest between its runs): nothing to watch
        return
    with _lock:
        known = set(_sessions) | {r.session_id for r in _runs if r.session_id is not None}
    known |= holds.holders()
    closed = False
    for sid in known:
        if server.is_active_session(sid):
            _gone_since.pop(sid, None)
            continue
        gone = now - _gone_since.setdefault(sid, now)
        if gone >= VIEWER_GRACE_S:
            with _lock:
                leaving = [r for r in _runs if r.session_id == sid]
            for run in leaving:
                run.cancel("its viewer left")
        if gone >= CLOSE_AFTER_S:
            # The public, thread-safe way to end a stored (disconnected) session: it is closed on the event loop,
            # which frees its session state (refinement history, photos) and its uploaded files. A tab that
            # comes back later gets a fresh session.
            server.clear_user_info_for_session(sid)
            with _lock:
                _sessions.pop(sid, None)
            _gone_since.pop(sid, None)
            released = holds.let_go(sid)
            log.info("session %s closed: gone for %.0f s; %d cached entries only it held released", sid[:8], gone, released)
            closed = True
    if closed:
        _give_back_memory_soon()  # once the event loop has closed them
