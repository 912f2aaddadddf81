"""Shared cache entries that live sessions hold: made once for whoever needs them, dropped when the last
session that used them has been closed.

Owns: the record of which sessions use which per-photo cache entry (a photo's network features, its
refinement grids, a map's cut inputs: up to tens of MB each, needed only while someone clicks or strokes on
that photo), and releasing an entry (``release()``: the cached function's ``clear(args)``) once every
session that held it has been closed (``let_go``, called by ``ui.jobs``' watcher when it closes a session);
the session a helper thread works for (``working_for``, ``ui.results.ahead``). Without a server (AppTest,
the command line) nothing is recorded: the caches' own ``max_entries`` alone bound them.
May import: nothing from ui (``ui.jobs`` and ``ui.results`` import it).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from unittest import mock

from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

_lock = threading.Lock()
_held: dict[Hashable, tuple[set[str], Callable[[], None]]] = {}  # entry -> (the sessions that use it, how to drop it)
_behalf = threading.local()


def serving() -> bool:
    """A real Streamlit server runs this app. AppTest installs a stand-in Runtime (a mock) for each of its runs,
    under which ``runtime.exists()`` is true although no server will ever close a session."""
    return runtime.exists() and not isinstance(runtime.get_instance(), mock.NonCallableMock)


def session_id() -> str | None:
    """This thread's session: its script run's, or the one a helper thread works for."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else getattr(_behalf, "session_id", None)


@contextlib.contextmanager
def working_for(sid: str | None) -> Iterator[None]:
    """Within it, what this (helper) thread holds, session ``sid`` holds."""
    _behalf.session_id = sid
    try:
        yield
    finally:
        _behalf.session_id = None


def hold(key: Hashable, release: Callable[[], None]) -> None:
    """This session uses the cache entry named ``key``; ``release()`` drops it once no live session holds it.
    ``release`` must not refer to the entry's data (a photo's pixels): only to what names it."""
    sid = session_id()
    if sid is None or not serving():
        return
    with _lock:
        _held.setdefault(key, (set(), release))[0].add(sid)


def holders() -> set[str]:
    """The sessions that hold something."""
    with _lock:
        return set().union(*(sessions for sessions, _ in _held.values()))


def let_go(sid: str) -> int:
    """Session ``sid`` has been closed: release what no other session holds; how many entries were released."""
    freed = []
    with _lock:
        for key, (sessions, release) in list(_held.items()):
            sessions.discard(sid)
            if not sessions:
                del _held[key]
                freed.append(release)
    for release in freed:
        release()
    return len(freed)
