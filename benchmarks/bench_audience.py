"""A demo server and its audience (issue 28): some visitors start the heaviest runs their pages allow and
leave after a few seconds, the others browse; does the work end with its viewers, and do the others notice?

One `streamlit run app.py` on a free loopback port (tests/e2e's server helper, the default limits), one
headless Chromium, a context per visitor; every loop is bounded (``TIMEOUT_S``). Phases:

1. warm-up: one visit to Home and one to the saliency page (torch imported, the model loaded); with
   `--warm-up every-page` also a segmentation page with clicks, its session then left to close.
2. idle: ``--idle`` browsers, one after another, each doing the browsing round alone: Home, then
   ``saliency?image=P&class=C``, then ``segmentation?image=P&class=C``, Input "Clicks", and ``--clicks``
   "not the object" clicks near the canvas's centre. Each has its own photo and class: no map or cut cached for it.
3. leavers alone: ``LEAVERS`` visitors open a heavy link with ``run=1`` (class model: 4 classes × 1000 olah
   steps, the default limits' most; sanity checks: every method, 12 stages, 224 px a step), stay
   ``--stay`` s, and close their tabs. Reported: seconds from the close to each run's worker ending
   (the server log's "run ended" lines) and until the server's CPU is back to idle (under 0.1 core over 1 s,
   counted from when every run has ended: at nice 10 on a busy machine a live run may use little CPU).
4. together: the leavers and ``--browsers`` browsers start at once (the browsers on photos and classes
   of their own); the leavers close after ``--stay`` s; the browsers' times are compared with phase 2's.
5. after: everyone gone; the server's resident memory sampled for 2 minutes (a gone session is closed
   30 s after its tab, ui.jobs.CLOSE_AFTER_S).

Times are the page's own clock: first picture = from navigation start until the first picture in the page
is decoded; click → mask = from the click's mouseup until the "After edits" picture has a new source,
decoded. p95 by nearest rank. Errors: exceptions and error boxes on the pages, tracebacks and errors in
the server log.

``--memory`` starts the server with benchmarks/memory_probe on its PYTHONPATH and prints, after the warm-up and
2 minutes after everyone left, where its memory is: anonymous and file-backed resident set, glibc's heap (in use,
free, arenas) and each Streamlit cache's entries and bytes. ``--arena-max N`` starts the server with
``MALLOC_ARENA_MAX=N`` (glibc's malloc arenas; docs/deployment.md). ``--only-leavers`` stops after phase 3.
``--trace`` also reports, for phase 3, the server's CPU by thread from the close until it is idle (from
/proc/<pid>/task; a thread's Python name from ``py-spy dump`` when py-spy is on PATH), and records the
server with ``py-spy record`` over those seconds (collapsed stacks in
test-output/bench-audience-leavers.pyspy.txt); py-spy pauses the server for each sample, so the times of
a traced run are not the benchmark's.

    .venv/bin/python benchmarks/bench_audience.py [--browsers 8] [--idle 2] [--clicks 3] [--stay 8]
    .venv/bin/python benchmarks/bench_audience.py --only-leavers [--trace] [--idle 0]
    .venv/bin/python benchmarks/bench_audience.py --memory [--arena-max 2] [--browsers 4 --idle 1 --leavers 0]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_concurrent_viewers import (  # noqa: E402
    PeakRss,
    browser_cpu_seconds,
    log_errors,
    machine_cpu_seconds,
    rss_bytes,
    server_cpu_seconds,
)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server  # noqa: E402
from ui.jobs import CLOSE_AFTER_S  # noqa: E402  (a session gone this long is closed)

TIMEOUT_S = 600
# (photo, class) per browser, the phase-4 browsers first, then the idle ones: each its own map and cut, on one of
# the photo's top-2 classes (the embedded model, centre crop), so that every page has an object to cut
VISITORS = (("cat", 282), ("espresso", 967), ("astronaut", 560), ("grace_hopper", 400), ("rocket", 657), ("cat", 285),
            ("espresso", 968), ("astronaut", 450), ("grace_hopper", 667), ("rocket", 744))
WARM_UP_VISITOR = ("astronaut", 0)  # --warm-up every-page: a photo and class no visitor asks for
STEP_TIMEOUT_MS = 60_000  # a Playwright call that waits for an element
LEAVERS = ("class_model?classes=1,2,3,4&preset=olah&steps=1000&run=1",
           "class_model?classes=9,99,130,145&preset=olah&steps=1000&run=1",
           "class_model?classes=281,285,291,292&preset=olah&steps=1000&run=1",
           "faithfulness?methods=gradient,deconvnet,guided,smoothgrad,integrated-gradients,gradcam&stages=12&step=224&run=1")
IDLE_CORES = 0.1  # the server is idle when it uses less than this over IDLE_WINDOW_S
IDLE_WINDOW_S = 1.0
TRACE_S = 15  # --trace: how long after the close
ERRORS = """() => document.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]').length"""
CLOCK = """(() => {
  const bench = window.__bench = {first: undefined, clickAt: undefined, shown: undefined};
  const tick = () => {
    const shown = Array.from(document.querySelectorAll('[data-testid="stMain"] img'))
      .filter(img => img.complete && img.naturalWidth > 0).length;
    if (shown > 0 && bench.first === undefined) bench.first = performance.now();
    if (bench.first === undefined) setTimeout(tick, 10);
  };
  tick();
  window.addEventListener('mouseup', () => { bench.clickAt = performance.now(); }, true);
  bench.after = () => {
    for (const el of document.querySelectorAll('[data-testid="stImage"], [data-testid="stImageContainer"]')) {
      const named = '[data-testid="stImageCaption"]';
      const caption = el.querySelector(named) || el.parentElement?.querySelector(named);
      const img = el.querySelector('img');
      if (img && caption && caption.textContent.trim().startsWith('After edits')) return img;
    }
    return null;
  };
  // after a click: when the "After edits" picture has a new source, decoded; null when the page's run ended (or
  // 60 s passed) and the mask is the same as before (a click on what already is the object)
  bench.watch = () => {
    const first = bench.after(), before = first ? first.src : '', armed = performance.now();
    bench.shown = undefined; bench.clickAt = undefined;
    let ran = false, quiet;
    const poll = () => {
      const img = bench.after();
      if (img && img.src && img.src !== before) { img.decode().catch(() => null).then(() => { bench.shown = performance.now(); }); return; }
      const app = document.querySelector('[data-testid="stApp"]');
      if (app && app.getAttribute('data-test-script-state') === 'running') { ran = true; quiet = undefined; }
      else if (ran) { quiet = quiet === undefined ? performance.now() : quiet; }
      if ((quiet !== undefined && performance.now() - quiet > 1000) || performance.now() - armed > 60000) { bench.shown = null; return; }
      setTimeout(poll, 10);
    };
    poll();
  };
})();"""
CANVAS_WAIT_S = 30  # a segmentation page's canvas, after the page's run has ended
IDLE_PAGE = """() => { const app = document.querySelector('[data-testid="stApp"]');
  return app && app.getAttribute('data-test-script-state') === 'notRunning' && !document.querySelector('[data-stale="true"]'); }"""


def p95(values: list[float]) -> float:
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s / {p95(values):.2f} s (n={len(values)})" if values else "none"


def browse(page, url: str, photo: str, class_index: int, clicks: int, times: dict):
    """A browsing visitor, as a generator that yields what to wait for (a callable: done yet?)."""
    def first_picture(name):
        times.setdefault(name, []).append(page.evaluate("() => window.__bench.first") / 1000)

    for name, path in (("Home", ""), ("saliency", f"saliency?image={photo}&class={class_index}"),
                       ("segmentation", f"segmentation?image={photo}&class={class_index}")):
        page.goto(f"{url}/{path}", wait_until="commit")
        yield lambda: page.evaluate("() => window.__bench && window.__bench.first !== undefined")
        first_picture(name)
        yield lambda: page.evaluate(IDLE_PAGE)
    # the canvas component mounts a moment after the script's run has ended: wait for it (bounded) before counting it missing
    appears_by = time.monotonic() + CANVAS_WAIT_S
    yield lambda: page.locator("canvas.upper-canvas").count() > 0 or time.monotonic() > appears_by
    if page.locator("canvas.upper-canvas").count() == 0 or page.evaluate(ERRORS):
        times["segmentation pages without a canvas"] = times.get("segmentation pages without a canvas", 0) + 1
        return
    page.locator('[data-testid="stRadio"]').filter(has_text="Input").get_by_text("Clicks", exact=True).click(timeout=STEP_TIMEOUT_MS)
    time.sleep(0.3)
    yield lambda: page.evaluate(IDLE_PAGE) and page.locator("canvas.upper-canvas").count() > 0
    negative = page.locator('[data-testid="stRadio"]').filter(has_text="Click").get_by_text("not the object", exact=True)
    negative.click(timeout=STEP_TIMEOUT_MS)
    time.sleep(0.3)
    yield lambda: page.evaluate(IDLE_PAGE) and page.locator("canvas.upper-canvas").count() > 0
    for k in range(clicks):
        canvas = page.locator("canvas.upper-canvas").first
        canvas.scroll_into_view_if_needed(timeout=STEP_TIMEOUT_MS)  # below the fold at 1400×1100 since the mask's controls sit above it
        box = canvas.bounding_box(timeout=STEP_TIMEOUT_MS)
        page.evaluate("() => window.__bench.watch()")
        page.mouse.click(box["x"] + box["width"] * (0.5 + 0.1 * (k % 2) - 0.05 * k), box["y"] + box["height"] * (0.45 + 0.08 * k))
        yield lambda: page.evaluate("() => window.__bench.shown !== undefined")
        took = page.evaluate("() => window.__bench.shown === null ? null : (window.__bench.shown - window.__bench.clickAt) / 1000")
        if took is None:
            times["unchanged clicks"] = times.get("unchanged clicks", 0) + 1
        else:
            times.setdefault("click → mask", []).append(took)
        yield lambda: page.evaluate(IDLE_PAGE)


def step(waiting: dict, routines: list) -> None:
    """Step each waiting visitor's generator whose awaited condition holds; drop the finished ones."""
    for i in list(waiting):
        if waiting[i]():
            try:
                waiting[i] = next(routines[i])
            except StopIteration:
                del waiting[i]


def drive(routines: list) -> None:
    """Step every visitor's generator whenever what it waits for is done, until all are finished."""
    waiting = {i: next(r) for i, r in enumerate(routines)}
    deadline = time.monotonic() + TIMEOUT_S
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"visitors {sorted(waiting)} not done after {TIMEOUT_S} s")
        step(waiting, routines)
        time.sleep(0.05)


def new_tab(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_S * 1000)
    page.add_init_script(CLOCK)
    return context, page


def log_times(log: Path, offset: int, word: str) -> list[float]:
    """Epoch seconds of the server log's ``deep-inside: run <word>`` lines after ``offset``."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    stamps = re.findall(rf"^(\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{{3}}) deep-inside: run {word}", text, re.M)
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S").timestamp() + int(ms) / 1000 for s, ms in stamps]


def cpu_back_to_idle(pid: int, since: float, all_ended, limit_s: float = 120.0) -> float | None:
    """Seconds from ``since`` (time.monotonic) until the server uses less than IDLE_CORES over IDLE_WINDOW_S, in a
    window that starts once ``all_ended()``: a run at nice 10 on a busy machine may use little CPU and still be alive."""
    samples, ended_at = [], None
    while time.monotonic() - since < limit_s:
        now = time.monotonic()
        samples.append((now, server_cpu_seconds(pid)))
        if ended_at is None and all_ended():
            ended_at = now
        if ended_at is not None:
            window = [s for s in samples if ended_at <= s[0] and s[0] >= now - IDLE_WINDOW_S]
            if window and now - window[0][0] >= 0.9 * IDLE_WINDOW_S:
                if (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]) < IDLE_CORES:
                    return window[0][0] - since
        time.sleep(0.1)
    return None


def close(contexts) -> tuple[float, float]:
    """Close the leavers' tabs; when the closing began, by the wall clock (the server log's) and time.monotonic."""
    closed = time.time(), time.monotonic()
    for context in contexts:
        context.close()
    return closed


def leavers_report(log: Path, offset: int, closed: float, count: int) -> str:
    """When the leavers' runs ended (the log's "run ended" lines), in seconds after their tabs closed."""
    deadline = time.monotonic() + 60
    while len(log_times(log, offset, "ended")) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    ended = sorted(t - closed for t in log_times(log, offset, "ended"))
    started = len(log_times(log, offset, "started"))
    return f"{started} runs started, {len(ended)} ended, at {', '.join(f'{e:.1f}' for e in ended)} s after the tabs closed"


class MemoryProbe:
    """benchmarks/memory_probe in the server: ``env()`` for its start, ``read(pid, label)`` a summary line."""

    FOLDER = Path(__file__).resolve().parent / "memory_probe"

    def __init__(self, out: Path):
        self.out = out
        self.first: dict | None = None  # the first reading: later ones say which object types grew since
        out.unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.FOLDER), "MEMPROBE_OUT": str(self.out)}

    def read(self, pid: int, label: str) -> str:
        lines = lambda: self.out.read_text().splitlines() if self.out.exists() else []  # noqa: E731
        before, deadline = len(lines()), time.monotonic() + 60
        os.kill(pid, signal.SIGUSR1)
        while len(lines()) == before and time.monotonic() < deadline:
            time.sleep(0.2)
        if len(lines()) == before:
            return f"{label}: the probe did not answer"
        r = json.loads(lines()[-1])
        if "error" in r:
            return f"{label}: the probe failed: {r['error']}"
        mib = lambda n: f"{n / 2**20:.0f}"  # noqa: E731
        heap, caches = r["heap"], r["caches"]
        biggest = sorted(caches.items(), key=lambda kv: -kv[1][1])[:10]
        objects = r.get("objects", {"total": 0, "by_type": {}})
        if self.first is None:
            self.first, grown = r, f"Python objects {objects['total']}"
        else:
            was = self.first.get("objects", {"total": 0, "by_type": {}})
            growth = sorted(((n - was["by_type"].get(t, 0), t) for t, n in objects["by_type"].items()), reverse=True)[:8]
            grown = (f"Python objects {objects['total']} ({objects['total'] - was['total']:+d}); grown most: "
                     + ", ".join(f"{t} {d:+d}" for d, t in growth if d > 0))
        return (f"{label}: resident {r['VmRSS'] / 2**30:.2f} GiB (anonymous {mib(r['RssAnon'])} MiB, files {mib(r['RssFile'])} MiB); "
                f"heap {mib(heap['in_use'])} MiB in use, {mib(heap['free'])} MiB free, in {heap['arenas']} arenas; "
                f"caches {mib(sum(size for _, size in caches.values()))} MiB; sessions {r.get('sessions')}, held entries {r.get('held')}\n"
                f"    {grown}\n"
                + "\n".join(f"    {name}: {count} entries, {size / 2**20:.1f} MiB" for name, (count, size) in biggest if size >= 2**19))


class ThreadCpu:
    """The server's CPU by thread between ``start()`` and ``report()``: /proc/<pid>/task/<tid>/stat, with the
    threads' Python names from one ``py-spy dump`` per sample when py-spy is on PATH (else the kernel's comm)."""

    def __init__(self, pid: int, out: Path):
        self.pid, self.out, self.spy = pid, out, shutil.which("py-spy")
        self.names: dict[int, str] = {}
        self.record = None

    def cpu(self) -> dict[int, tuple[str, float]]:
        found = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                comm = (task / "comm").read_text().strip()
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended meanwhile
                continue
            found[int(task.name)] = (comm, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
        return found

    def name(self) -> None:
        if self.spy is None:
            return
        dump = subprocess.run([self.spy, "dump", "--pid", str(self.pid), "--nonblocking"], capture_output=True, text=True,
                              timeout=30).stdout
        for tid, name in re.findall(r'^Thread (\d+) \(.*?\): "(.*)"$', dump, re.M):
            self.names[int(tid)] = name

    def start(self, seconds: float) -> None:
        """Sample every second for ``seconds`` (in a thread), and record the stacks meanwhile."""
        self.samples = [(time.monotonic(), self.cpu())]
        if self.spy is not None:
            self.record = subprocess.Popen([self.spy, "record", "--pid", str(self.pid), "--threads", "--nonblocking", "--format", "raw",
                                            "--rate", "50", "--duration", str(int(seconds)), "--output", str(self.out)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.thread = threading.Thread(target=self._sample, args=(seconds,), daemon=True)
        self.thread.start()

    def _sample(self, seconds: float) -> None:
        while time.monotonic() - self.samples[0][0] < seconds:
            time.sleep(1.0)
            self.name()
            self.samples.append((time.monotonic(), self.cpu()))

    def report(self) -> str:
        self.thread.join()
        if self.record is not None:
            self.record.wait(timeout=120)
        t0 = self.samples[0][0]
        lines = []
        for tid in sorted({t for _, s in self.samples for t in s}):
            used = [(t - t0, s[tid][1]) for t, s in self.samples if tid in s]
            total = used[-1][1] - used[0][1]
            if total >= 0.1:
                busy = [f"{a:.0f}-{b:.0f} s: {(cb - ca) / (b - a):.1f}" for (a, ca), (b, cb) in zip(used, used[1:]) if cb - ca > 0.05]
                name = self.names.get(tid, self.samples[-1][1].get(tid, ("?",))[0])
                lines.append(f"    {tid} {name}: {total:.1f} s CPU; cores by interval: {', '.join(busy)}")
        return "server CPU by thread after the close (threads using ≥ 0.1 s):\n" + "\n".join(lines) + (
            f"\n  py-spy record: {self.out}" if self.record is not None else "")


def leavers_alone(args, server, chromium) -> None:
    """Phase 3: the leavers open their heavy links, stay, close; when their runs end and the server is idle."""
    offset = server.log.stat().st_size
    leavers = [new_tab(chromium) for _ in range(args.leavers)]
    for (_, tab), link in zip(leavers, LEAVERS):
        tab.goto(f"{server.url}/{link}", wait_until="commit")
    time.sleep(args.stay)
    closed, since = close([c for c, _ in leavers])
    cpu = [server_cpu_seconds(server.pid)]
    tracer = ThreadCpu(server.pid, server.log.parent / "bench-audience-leavers.pyspy.txt") if args.trace else None
    if tracer is not None:
        tracer.start(TRACE_S)
    idle = cpu_back_to_idle(server.pid, since, lambda: len(log_times(server.log, offset, "ended")) >= len(log_times(
        server.log, offset, "started")), limit_s=30)
    print(f"leavers alone: {leavers_report(server.log, offset, closed, len(leavers))}; server CPU under {IDLE_CORES} core "
          + (f"{idle:.1f} s after the close" if idle is not None else "not within 30 s")
          + f"; server CPU over those {time.monotonic() - since:.0f} s: "
          + f"{(server_cpu_seconds(server.pid) - cpu[0]) / (time.monotonic() - since):.2f} core")
    if tracer is not None:
        print(tracer.report())


def crowd(args, server, chromium, idle_times: dict, memory: dict, peak: PeakRss, probe: MemoryProbe | None) -> int:
    """Phases 4 and 5: the leavers and the browsers together, then everyone gone; the errors on the browsers' pages."""
    offset = server.log.stat().st_size
    leavers = [new_tab(chromium) for _ in range(args.leavers)]
    browsers = [new_tab(chromium) for _ in range(args.browsers)]
    busy_times: dict = {}
    routines = [browse(tab, server.url, *VISITORS[i], args.clicks, busy_times)
                for i, (_, tab) in enumerate(browsers)]
    for (_, tab), link in zip(leavers, LEAVERS):
        tab.goto(f"{server.url}/{link}", wait_until="commit")
    started = time.monotonic()
    cpu = (server_cpu_seconds(server.pid), browser_cpu_seconds(server.pid), machine_cpu_seconds())
    first = [next(r) for r in routines]  # the browsers' first pages are asked for now, with the leavers'
    closed = None
    waiting = dict(enumerate(first))
    deadline = started + TIMEOUT_S
    while waiting and time.monotonic() < deadline:
        if closed is None and time.monotonic() - started >= args.stay:
            closed = close([c for c, _ in leavers])[0]
        step(waiting, routines)
        time.sleep(0.05)
    if closed is None:
        closed = close([c for c, _ in leavers])[0]
    if waiting:
        for i in waiting:
            browsers[i][1].screenshot(path=str(server.log.parent / f"bench-audience-stuck-{i}.png"), full_page=True)
        raise RuntimeError(f"browsers {sorted(waiting)} not done after {TIMEOUT_S} s (screenshots in {server.log.parent})")
    spent = [after - before for before, after in zip(cpu, (server_cpu_seconds(server.pid), browser_cpu_seconds(server.pid),
                                                         machine_cpu_seconds()))]
    wall = time.monotonic() - started
    left = leavers_report(server.log, offset, closed, len(leavers))
    errors = sum(tab.evaluate(ERRORS) for _, tab in browsers)
    print(f"together ({args.leavers} leavers, {args.browsers} browsers): leavers: {left}")
    for name, values in busy_times.items():
        if not isinstance(values, list):
            print(f"  {name}: {values}")
            continue
        base = p95(idle_times[name]) if idle_times.get(name) else float("nan")
        print(f"  {name}: median / p95 {spread(values)}; p95 / idle p95 = {p95(values) / base:.2f}")
    print(f"  where the machine's CPU went over those {wall:.1f} s ({os.cpu_count()} cores): {spent[2]:.1f} core-s busy; "
          f"the server {spent[0]:.1f} ({spent[0] / spent[2]:.0%}), Chromium and Playwright {spent[1]:.1f} "
          f"({spent[1] / spent[2]:.0%}; the leavers' closed tabs not counted), the rest {spent[2] - spent[0] - spent[1]:.1f}")
    for context, _ in browsers:
        context.close()
    gone = time.monotonic()
    samples = []
    while time.monotonic() - gone < 120:
        time.sleep(5)
        samples.append((time.monotonic() - gone, rss_bytes(server.pid)))
    memory["peak"], memory["2 min after"] = peak.stop(), samples[-1][1]
    print("server memory: " + ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in memory.items())
          + f" ({memory['2 min after'] / memory['before'] - 1:+.0%} from before); every 5 s after: "
          + " ".join(f"{v / 2**30:.2f}" for _, v in samples))
    if probe is not None:
        print(probe.read(server.pid, "2 min after"))
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browsers", type=int, default=8)
    parser.add_argument("--idle", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--stay", type=float, default=8.0)
    parser.add_argument("--leavers", type=int, default=len(LEAVERS))
    parser.add_argument("--only-leavers", action="store_true", help="stop after phase 3 (the leavers alone)")
    parser.add_argument("--trace", action="store_true", help="phase 3: the server's CPU by thread after the close (py-spy if on PATH)")
    parser.add_argument("--memory", action="store_true", help="where the server's memory is, before and 2 min after (a probe)")
    parser.add_argument("--warm-up", choices=("home-saliency", "every-page"), default="home-saliency",
                        help="before 'before': Home and a saliency page (default), or also a segmentation page with clicks, "
                             "its session then closed (libraries and code every page uses first loaded)")
    parser.add_argument("--arena-max", type=int, help="MALLOC_ARENA_MAX for the server (default: glibc's, 8 a core)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load (1 min) at the start: {os.getloadavg()[0]:.1f}")
    memory, errors = {}, 0
    probe = MemoryProbe(ROOT / "test-output" / "bench-audience-memory.jsonl") if args.memory else None
    env = {**(probe.env() if probe else {}), **({"MALLOC_ARENA_MAX": str(args.arena_max)} if args.arena_max else {})}
    print(f"server: MALLOC_ARENA_MAX={args.arena_max}" if args.arena_max else "server: glibc's malloc arenas (8 a core)")
    with streamlit_server("bench-audience.log", env=env) as server, sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context, page = new_tab(chromium)
            page.goto(server.url)
            drive([iter([lambda: page.evaluate(IDLE_PAGE)])])
            page.goto(f"{server.url}/saliency")
            drive([iter([lambda: page.evaluate(IDLE_PAGE) and page.locator('[data-testid="stImage"] img').count() >= 3])])
            context.close()
            if args.warm_up == "every-page":  # what a presenter does before the room arrives: each page once, clicks too
                context, page = new_tab(chromium)
                drive([browse(page, server.url, *WARM_UP_VISITOR, args.clicks, {})])
                context.close()
                time.sleep(CLOSE_AFTER_S + 5)  # its session closed, its per-photo data let go
            memory["before"] = rss_bytes(server.pid)
            if probe is not None:
                print(probe.read(server.pid, "after the warm-up"))
            peak = PeakRss(server.pid)

            idle_times: dict = {}
            for i in range(args.idle):
                context, page = new_tab(chromium)
                drive([browse(page, server.url, *VISITORS[-1 - i], args.clicks, idle_times)])
                errors += page.evaluate(ERRORS)
                context.close()
            print("idle server, one visitor at a time:")
            for name, values in idle_times.items():
                print(f"  {name}: " + (f"median / p95 {spread(values)}" if isinstance(values, list) else str(values)))

            leavers_alone(args, server, chromium)
            if args.only_leavers:
                peak.stop()
            else:
                errors += crowd(args, server, chromium, idle_times, memory, peak, probe)
        finally:
            chromium.close()
        server_log = server.log.read_text()
        log_problems = log_errors(server_log)
    print(f"errors: {errors} on the pages, {log_problems} in the server log; load (1 min) at the end: {os.getloadavg()[0]:.1f}")
    if log_problems:  # the log is overwritten by the next run: keep what went wrong here, each line once
        lines = server_log.splitlines()
        shown = sorted({j for i, line in enumerate(lines) if log_errors(line) for j in range(max(0, i - 2), min(len(lines), i + 25))})
        print("\n".join(f"  log {j + 1}: {lines[j]}" for j in shown))


if __name__ == "__main__":
    main()
