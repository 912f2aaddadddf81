"""Real-browser fixtures: one ``streamlit run app.py`` per test session, Debian's Chromium via Playwright.

The server runs in its own process group on a free loopback port and is always stopped (SIGTERM to
the group, then SIGKILL); screenshots and the server log go to test-output/ (git-ignored).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 180  # importing torch and streamlit on 2 busy cores


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT
    pid: int  # the streamlit process itself (the group leader)
    log: Path

    def rss_bytes(self) -> int:
        """Resident memory of the server process, from /proc (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@contextlib.contextmanager
def streamlit_server(log_name: str = "streamlit-server.log", env: dict[str, str] | None = None):
    """``streamlit run app.py`` on a free loopback port (with ``env`` added to its environment), healthy;
    stopped, with its whole process group, on leaving."""
    OUTPUT.mkdir(exist_ok=True)
    port = free_port()
    log = OUTPUT / log_name
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true",
               "--browser.gatherUsageStats", "false"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                   start_new_session=True)  # its own group: the finaliser stops all of it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit not healthy after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Server(url, process.pid, log)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def server():
    """``streamlit run app.py`` on a free loopback port, healthy, for the whole session."""
    pytest.importorskip("playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with streamlit_server() as running:
        yield running


@pytest.fixture(scope="session")
def browser(server):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=90_000)  # a first run imports torch; 2 shared cores
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            _warm_up(chromium, server)
            yield chromium
        finally:
            chromium.close()


def _warm_up(chromium, server: Server) -> None:
    """One session runs the app once: torch imported, model loaded, st.navigation seen by the
    server, so no test pays for (or races) the process's first run."""
    from tests.e2e.browser import settle

    context = chromium.new_context()
    try:
        tab = context.new_page()
        tab.goto(server.url)
        settle(tab, timeout_ms=START_TIMEOUT_S * 1000)
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when == "call":
        item.failed_call = outcome.get_result().failed


@pytest.fixture
def page(browser, request):
    """A fresh browser context (a new Streamlit session) and page; closed after the test.

    A failing test leaves test-output/FAILED_<test>.png behind."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    context.set_default_timeout(90_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        if getattr(request.node, "failed_call", False):
            name = "".join(c if c.isalnum() else "_" for c in request.node.name)
            tab.screenshot(path=str(OUTPUT / f"FAILED_{name}.png"), full_page=True)
        context.close()
