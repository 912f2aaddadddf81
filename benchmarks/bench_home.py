"""Home with all its pictures, in a real browser (goal: under 2 s from the first request after the server is up).

Each cold round starts `streamlit run app.py` on a free port and waits for its health endpoint (the server
is up: Streamlit imported, no script run yet), then opens Home in a fresh Chromium context and times, from
`page.goto`, until every gallery image on the page is decoded by the browser; the server's first run also
imports torch and loads the model, after the pictures (app.py draws the page before the sidebar). Warm
rounds open Home again in new contexts against the last server. The floor: the same, warm, for a bare
Streamlit page with a title and one picture (Streamlit's own page load and connection, on the same machine
at the same time). Prints medians and each round.

    .venv/bin/python benchmarks/bench_home.py [COLD_ROUNDS] [WARM_ROUNDS]
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runs.gallery import read_gallery  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, _healthy, _stop, free_port, streamlit_server  # noqa: E402

GALLERY = read_gallery(ROOT / "assets" / "gallery")
IMAGES = len(GALLERY.tiles) + len(GALLERY.section("3.1"))  # every tile, and §3.1's photos over their maps
ALL_DECODED = """(count) => Array.from(document.querySelectorAll('[data-testid="stMain"] img'))
                   .filter(img => img.complete && img.naturalWidth > 0).length >= count"""


BARE_PAGE = f"""import streamlit as st
st.title("A bare page")
st.image({str(ROOT / "assets" / "cat.jpg")!r})
"""


def home_seconds(chromium, url: str, count: int = IMAGES) -> float:
    context = chromium.new_context(viewport={"width": 1400, "height": 1100})
    try:
        tab = context.new_page()
        start = time.perf_counter()
        tab.goto(url)
        tab.wait_for_function(ALL_DECODED, arg=count, polling=20, timeout=120_000)
        return time.perf_counter() - start
    finally:
        context.close()


def bare_page_seconds(chromium, rounds: int) -> list[float]:
    """The floor: a title and one picture, in a server of its own, warm."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bare.py"
        script.write_text(BARE_PAGE)
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
                                    "--server.address", "127.0.0.1", "--server.headless", "true",
                                    "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            while not _healthy(url):
                time.sleep(0.3)
            home_seconds(chromium, url, 1)
            return [home_seconds(chromium, url, 1) for _ in range(rounds)]
        finally:
            _stop(process)


def main(cold_rounds: int = 3, warm_rounds: int = 5) -> None:
    from playwright.sync_api import sync_playwright

    cold, warm = [], []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for i in range(cold_rounds):
                with streamlit_server(f"bench-home-{i}.log") as server:
                    cold.append(home_seconds(chromium, server.url))
                    if i == cold_rounds - 1:
                        time.sleep(5)  # the first session's script finishes (torch, the model) before the warm rounds
                        warm = [home_seconds(chromium, server.url) for _ in range(warm_rounds)]
            floor = bare_page_seconds(chromium, warm_rounds)
        finally:
            chromium.close()
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    print(f"Home, {IMAGES} images decoded, from the first request to a fresh server (cold): "
          f"median {statistics.median(cold):.2f} s, rounds {', '.join(f'{s:.2f}' for s in cold)}")
    print(f"Home in a new browser context, server warm: median {statistics.median(warm):.2f} s, "
          f"rounds {', '.join(f'{s:.2f}' for s in warm)}")
    print(f"floor, a bare Streamlit page with a title and one picture, warm: median {statistics.median(floor):.2f} s, "
          f"rounds {', '.join(f'{s:.2f}' for s in floor)}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
