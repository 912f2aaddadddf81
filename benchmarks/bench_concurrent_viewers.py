"""A demo shown to a room: 12 browser sessions at once against one server, each opening Home, then the
saliency page on its own demo photo and settings (a link, ``saliency?image=...``).

One `streamlit run app.py` on a free port (as the browser tests start it), warmed by one visit to Home
(torch imported, the model loaded: what any server has done before its audience arrives). Then, per round,
12 new contexts of one headless Chromium: all 12 open Home together, and once every Home is drawn, all 12
open their saliency link together. Each page records in the browser, from its navigation start, when its
first picture and when all its pictures were decoded (Home: every gallery tile; saliency: photo, map,
overlay). Round 1 finds the maps uncomputed (ten different photo-and-views pairs, two more reductions);
round 2 opens the same links in 12 new contexts (the maps cached by the server, shared by sessions).

Errors: exceptions and error boxes shown on each page, and tracebacks or errors in the server log. Memory:
the server's resident set (psutil when installed, else /proc) after the warm-up and after each round.
Prints medians and p95 (nearest rank: with 12 pages, the slowest) and each page's times, and the CPU
time of the server, of Chromium and of the whole machine in each phase.

``--server-only`` leaves the browser out: the 12 sessions' model calls (top-5 predictions, then the map)
on 12 threads of one process, each call on its session's thread or the map through ui's shared model
workers (what the app does), alternately ROUNDS times: wall and CPU time, when the median session is
done, peak and final resident memory.

    .venv/bin/python benchmarks/bench_concurrent_viewers.py [SESSIONS] [ROUNDS]
    .venv/bin/python benchmarks/bench_concurrent_viewers.py --server-only [SESSIONS] [ROUNDS]
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runs.gallery import read_gallery  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server  # noqa: E402

GALLERY = read_gallery(ROOT / "assets" / "gallery")
HOME_PICTURES = len(GALLERY.tiles) + len(GALLERY.section("3.1"))
SALIENCY_PICTURES = 3  # photo, map, overlay
PHOTOS = ("cat", "espresso", "astronaut", "grace_hopper", "rocket")
TIMEOUT_S = 600

# Records, in the page, when its first picture and when ``window.__want`` pictures were decoded (ms since
# the navigation started). Runs in every document of the context, before the page's own scripts.
TIMER = """(() => {
  const tick = () => {
    const shown = Array.from(document.querySelectorAll('[data-testid="stMain"] img'))
      .filter(img => img.complete && img.naturalWidth > 0).length;
    if (shown > 0 && window.__first === undefined) window.__first = performance.now();
    if (window.__want && shown >= window.__want && window.__all === undefined) window.__all = performance.now();
    if (window.__all === undefined) setTimeout(tick, 10);
  };
  tick();
})();"""
ERRORS = """() => document.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]').length"""


def saliency_link(i: int) -> str:
    """The i-th session's link: its own photo and views (ten different pairs), then two other reductions."""
    photo, views = PHOTOS[i % len(PHOTOS)], 1 if (i // len(PHOTOS)) % 2 == 0 else 10
    reduce = "" if i < 2 * len(PHOTOS) else "&reduce=l2"
    return f"saliency?image={photo}" + ("&views=10" if views == 10 else "") + reduce


def rss_bytes(pid: int) -> int:
    try:
        import psutil
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line") from None
    return psutil.Process(pid).memory_info().rss


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_cpu_seconds(pid: int) -> float:
    """User and system CPU of the server process, all its threads."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_cpu_seconds(server_pid: int) -> float:
    """User and system CPU of this script's other descendants alive now: Chromium's processes and Playwright's driver."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError):
                continue
    total, mine = 0.0, {os.getpid()}
    for _ in range(12):  # a few levels down the tree
        mine |= {pid for pid, parent in parents.items() if parent in mine and pid != server_pid}
    for pid in mine - {os.getpid()}:
        try:
            total += server_cpu_seconds(pid)
        except (OSError, IndexError):
            continue
    return total


def machine_cpu_seconds() -> float:
    """CPU time spent busy on the whole machine (every process: Chromium, the server, other users)."""
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class PeakRss:
    """The server's largest resident set while in use, sampled every 0.1 s in a thread."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.running = pid, rss_bytes(pid), True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.1)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak


class Clock:
    """Wall time, the server's CPU time and the machine's busy CPU time over a phase."""

    def __init__(self, pid: int):
        self.pid = pid
        self.start = self.now()

    def now(self) -> tuple[float, ...]:
        return time.perf_counter(), server_cpu_seconds(self.pid), browser_cpu_seconds(self.pid), machine_cpu_seconds()

    def read(self) -> str:
        wall, server, browser, machine = (now - then for now, then in zip(self.now(), self.start))
        return (f"wall {wall:.1f} s, CPU: server {server:.1f} s, Chromium {browser:.1f} s, "
                f"whole machine {machine:.1f} s")


def open_all(pages, urls: list[str], want: int) -> tuple[list[float], list[float], list[int]]:
    """Every page navigates to its URL at once; (first picture s, all pictures s, errors shown) per page."""
    for tab, url in zip(pages, urls):
        tab.goto(url, wait_until="commit")
        tab.evaluate(f"() => {{ window.__want = {want}; }}")
    deadline = time.monotonic() + TIMEOUT_S
    pending = set(range(len(pages)))
    while pending and time.monotonic() < deadline:
        for i in list(pending):
            if pages[i].evaluate("() => window.__all !== undefined"):
                pending.discard(i)
        time.sleep(0.1)
    if pending:
        raise RuntimeError(f"pages {sorted(pending)} not drawn after {TIMEOUT_S} s")
    first = [pages[i].evaluate("() => window.__first") / 1000 for i in range(len(pages))]
    every = [pages[i].evaluate("() => window.__all") / 1000 for i in range(len(pages))]
    time.sleep(2)  # a script still running after its pictures (the sidebar, the predictions chart) may yet fail
    return first, every, [tab.evaluate(ERRORS) for tab in pages]


def p95(values: list[float]) -> float:
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]


def summary(name: str, first: list[float], every: list[float], errors: list[int]) -> str:
    return (f"| {name} | {statistics.median(first):.2f} s | {p95(first):.2f} s | {statistics.median(every):.2f} s | "
            f"{p95(every):.2f} s | {sum(errors)} |")


def log_errors(text: str) -> int:
    lines = text.splitlines()
    return sum("Traceback" in line or " ERROR " in line or line.startswith("Error") for line in lines)


def main(sessions: int = 12, rounds: int = 2) -> None:
    from playwright.sync_api import sync_playwright

    rows, detail, memory = [], [], []
    load = [os.getloadavg()[0]]
    with streamlit_server("bench-concurrent-viewers.log") as server, sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            warm = chromium.new_context()
            tab = warm.new_page()
            tab.add_init_script(TIMER)
            open_all([tab], [server.url], HOME_PICTURES)
            tab.wait_for_function("""() => document.querySelector('[data-testid="stApp"]')
                                     .getAttribute('data-test-script-state') === 'notRunning'""", timeout=TIMEOUT_S * 1000)
            warm.close()
            memory.append(("after the warm-up (one Home visit)", rss_bytes(server.pid)))
            for r in range(rounds):
                peak = PeakRss(server.pid)
                contexts = [chromium.new_context(viewport={"width": 1400, "height": 1100}) for _ in range(sessions)]
                try:
                    pages = [context.new_page() for context in contexts]
                    for tab in pages:
                        tab.add_init_script(TIMER)
                    load.append(os.getloadavg()[0])
                    clock = Clock(server.pid)
                    home = open_all(pages, [server.url] * sessions, HOME_PICTURES)
                    memory.append((f"round {r + 1}: peak during Home", peak.stop()))
                    peak = PeakRss(server.pid)
                    detail.append(f"round {r + 1} Home: {clock.read()}")
                    links = [saliency_link(i) for i in range(sessions)]
                    clock = Clock(server.pid)
                    saliency = open_all(pages, [f"{server.url}/{link}" for link in links], SALIENCY_PICTURES)
                    detail.append(f"round {r + 1} saliency: {clock.read()}")
                    load.append(os.getloadavg()[0])
                finally:
                    for context in contexts:
                        context.close()
                    time.sleep(5)  # Chromium's closed pages go away before the next round
                rows.append(summary(f"round {r + 1}: Home, {sessions} at once", *home))
                rows.append(summary(f"round {r + 1}: saliency link, {sessions} at once", *saliency))
                detail.append(f"round {r + 1} Home first/all: " + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(*home[:2])))
                detail.append(f"round {r + 1} saliency first/all: " + ", ".join(
                    f"{link.removeprefix('saliency?')} {a:.2f}/{b:.2f}" for link, a, b in zip(links, *saliency[:2])))
                memory.append(("peak during saliency", peak.stop()))
                memory.append((f"after round {r + 1}", rss_bytes(server.pid)))
        finally:
            chromium.close()
        log = server.log.read_text(errors="replace")
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores; load average (1 min) {' → '.join(f'{v:.1f}' for v in load)}")
    print("| what | first picture, median | p95 | all pictures, median | p95 | errors on the pages |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"server log: {log_errors(log)} error or traceback lines")
    print("server RSS: " + "; ".join(f"{name} {value / 2**20:.0f} MiB" for name, value in memory))
    print("\n".join(detail))


def server_only(sessions: int = 12, rounds: int = 2) -> None:
    """Each mode in a fresh process (its memory starts clean), alternately."""
    import subprocess

    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores; load average (1 min) {os.getloadavg()[0]:.1f}")
    for _ in range(rounds):
        for mode in ("session threads", "model workers"):
            done = subprocess.run([sys.executable, __file__, "--server-mode", mode, str(sessions)], capture_output=True, text=True)
            print(done.stdout.strip() or done.stderr[-2000:])
    print(f"load average (1 min) at the end {os.getloadavg()[0]:.1f}")


def server_mode(mode: str, sessions: int) -> None:
    import concurrent.futures

    from engine.attribution import compute_saliency, predict
    from engine.images import load_image
    from engine.models import load_model

    model = load_model("efficientnet_lite0", "pretrained", device="cpu")
    photos = {name: load_image((ROOT / "assets" / f"{name}.jpg").read_bytes()) for name in PHOTOS}
    predict(model, photos["cat"], top=5)
    compute_saliency(model, photos["cat"])
    workers = concurrent.futures.ThreadPoolExecutor(max(1, (os.cpu_count() or 1) // 4))  # ui.results.MODEL_WORKERS
    calls = []
    for i in range(sessions):
        params = dict(part.split("=") for part in saliency_link(i).split("?")[1].split("&"))
        calls.append((photos[params["image"]], int(params.get("views", 1)), params.get("reduce", "max-abs")))
    finished, pid = [], os.getpid()
    peak = PeakRss(pid)
    start, cpu = time.perf_counter(), server_cpu_seconds(pid)

    def session(image, views, reduce):
        predict(model, image, top=5, views=views)
        if mode == "model workers":
            workers.submit(compute_saliency, model, image, views=views, reduce=reduce).result()
        else:
            compute_saliency(model, image, views=views, reduce=reduce)
        finished.append(time.perf_counter() - start)

    threads = [threading.Thread(target=session, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - start, server_cpu_seconds(pid) - cpu
    print(f"{mode:<16} wall {wall:5.1f} s, CPU {cpu:5.1f} s, median session done at {statistics.median(finished):4.1f} s, "
          f"peak RSS {peak.stop() / 2**20:5.0f} MiB, after {rss_bytes(pid) / 2**20:5.0f} MiB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--server-mode"]:
        server_mode(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["--server-only"]:
        server_only(*(int(a) for a in sys.argv[2:4]))
    else:
        main(*(int(a) for a in sys.argv[1:3]))
