"""A memory probe for a benchmark's `streamlit run app.py`: with this folder on PYTHONPATH and MEMPROBE_OUT naming
a file, SIGUSR1 appends a JSON line to that file: the resident set (anonymous and file-backed), glibc's heap
(mallinfo2: in use, free; the arenas' count from malloc_info), and each Streamlit cache's entries and bytes
(numpy arrays, torch tensors, bytes and str inside its values, each buffer counted once), the sessions,
the entries ui.holds keeps, and the Python objects by type. Python imports this module at start-up (site's sitecustomize); in any other
process, or without MEMPROBE_OUT, it does nothing. benchmarks/bench_audience.py --memory uses it.
"""
import ctypes
import json
import os
import re
import signal
import sys
import tempfile
import threading

OUT = os.environ.get("MEMPROBE_OUT")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                                      "uordblks", "fordblks", "keepcost")]


def _heap() -> dict:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile("r", suffix=".xml") as xml:
        stream = libc.fopen(xml.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        arenas = len(re.findall("<heap nr=", xml.read()))
    return {"arena": info.arena, "in_use": info.uordblks, "free": info.fordblks, "mmapped": info.hblkhd, "arenas": arenas}


def _bytes(value, seen: set, depth: int = 0) -> int:
    """Bytes of the arrays, tensors, bytes and str in ``value``; a buffer already in ``seen`` counts 0."""
    if depth > 12 or id(value) in seen:
        return 0
    seen.add(id(value))
    np, torch = sys.modules.get("numpy"), sys.modules.get("torch")
    if np is not None and isinstance(value, np.ndarray):
        base = value
        while isinstance(base.base, np.ndarray):
            base = base.base
        if base is not value and id(base) in seen:
            return 0
        seen.add(id(base))
        return base.nbytes
    if torch is not None and isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        if ("storage", storage.data_ptr()) in seen:
            return 0
        seen.add(("storage", storage.data_ptr()))
        return storage.nbytes()
    if torch is not None and isinstance(value, torch.nn.Module):
        return sum(_bytes(t, seen, depth + 1) for t in [*value.parameters(), *value.buffers()])
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if isinstance(value, type) or type(value).__module__.startswith(("threading", "concurrent")):
        return 0
    if isinstance(value, dict):
        return sum(_bytes(k, seen, depth + 1) + _bytes(v, seen, depth + 1) for k, v in list(value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(_bytes(v, seen, depth + 1) for v in list(value))
    found = _bytes(vars(value), seen, depth + 1) if hasattr(value, "__dict__") else 0
    return found + sum(_bytes(getattr(value, s), seen, depth + 1) for s in getattr(type(value), "__slots__", ()) if hasattr(value, s))


def _caches(seen: set) -> dict:
    from streamlit.runtime.caching.cache_data_api import _data_caches
    from streamlit.runtime.caching.cache_resource_api import _resource_caches

    found: dict[str, list[int]] = {}
    for kind, registry in (("resource", _resource_caches), ("data", _data_caches)):
        for scope, caches in list(registry._function_caches.items()):
            for cache in list(caches.values()):
                name = f"{kind} {cache.display_name}" + ("" if scope is None else " (session)")
                if kind == "resource":
                    values = [r.value for r in list(cache._mem_cache.values())]
                    size = sum(_bytes(v, seen) for v in values)
                else:  # pickled bytes
                    values = list(getattr(cache.storage, "_mem_cache", {}).values())
                    size = sum(len(v) for v in values)
                entry = found.setdefault(name, [0, 0])
                entry[0] += len(values)
                entry[1] += size
    return found


def _objects() -> dict:
    """Python objects the collector tracks, by type (the 400 commonest): a session's objects that outlive it show here."""
    import collections
    import gc

    def kind(o) -> str:  # a function by where it was defined: closures that outlive their session say whose they are
        if type(o).__name__ == "function":
            return f"function {getattr(o, '__module__', None)}.{getattr(o, '__qualname__', '?')}"
        return f"{type(o).__module__}.{type(o).__qualname__}"

    counts = collections.Counter(kind(o) for o in gc.get_objects())
    return {"total": sum(counts.values()), "by_type": dict(counts.most_common(400))}


def report() -> dict:
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if line.startswith(("VmRSS", "RssAnon", "RssFile")))
    seen: set = set()
    out = {key: int(value.split()[0]) * 1024 for key, value in status.items()}
    out.update(heap=_heap(), caches=_caches(seen), objects=_objects())
    from streamlit import runtime

    if runtime.exists():
        manager = runtime.get_instance()._session_mgr
        out["sessions"] = len(manager.list_sessions())
    holds = sys.modules.get("ui.holds")
    out["held"] = None if holds is None else len(holds._held)
    return out


def _write() -> None:
    try:
        line = report()
    except Exception as exc:  # noqa: BLE001 (a probe that fails says so in its file, not in the server)
        line = {"error": repr(exc)}
    with open(OUT, "a") as sink:
        sink.write(json.dumps(line) + "\n")


if OUT and "app.py" in sys.argv:  # `python -m streamlit run app.py ...`: argv holds the script
    signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=_write, daemon=True).start())
