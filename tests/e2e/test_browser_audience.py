"""Work ends with its viewer, in a real browser: a class model run stops within 5 s of its tab closing,
and when its viewer goes to another page. What is observed is the server log's line that the run's worker
thread writes as its last act (ui.jobs: "run ended: …; live runs: N").

The run is the paper's preset on one class (1000 steps: minutes of work), whose steps are short: a run
stops between two steps, and this test is about noticing the viewer has gone. How long the heaviest run
the limits allow takes to stop (its steps are longer) is measured in benchmarks/bench_audience.py."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import open_page

pytestmark = pytest.mark.e2e
LONG = "class_model?classes=1&steps=1000"  # the most steps the default limits allow
STARTED = re.compile(r"run started: class model, 1 classes × 1000 steps; session (?P<session>\w+);")
ENDED = re.compile(r"run ended: class model, 1 classes × 1000 steps, cancelled \((?P<why>[^)]*)\); session (?P<session>\w+); "
                   r"live runs: (?P<live>\d+)")


def _log_after(server, offset: int) -> str:
    with server.log.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def _start_run(context, server) -> tuple:
    """Open the long run's link in ``context``, press Run, wait for its first steps: the tab, the log's size
    then, and the run's session (the server is shared: other tests' runs write to the same log)."""
    tab = context.new_page()
    open_page(tab, server.url, LONG)
    before = server.log.stat().st_size
    tab.get_by_role("button", name="Run").click()
    expect(tab.get_by_text(re.compile(r"step [1-9]\d* of 1000"))).to_be_visible(timeout=120_000)
    offset = server.log.stat().st_size
    [session] = [m["session"] for m in STARTED.finditer(_log_after(server, before))]
    return tab, offset, session


def _ended_line(server, offset: int, session: str, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [m for m in ENDED.finditer(_log_after(server, offset)) if m["session"] == session]
        if found:
            return found[0]
        time.sleep(0.05)
    return None


def test_a_run_stops_within_5_s_of_its_tab_closing(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    _, offset, session = _start_run(context, server)
    closed = time.monotonic()
    context.close()
    ended = _ended_line(server, offset, session, timeout_s=30)
    seconds = time.monotonic() - closed
    assert ended is not None, server.log.read_text()[-3000:]
    assert ended["why"] == "its viewer left" and seconds <= 5.0, (seconds, ended.group(0))


def test_a_run_stops_when_its_viewer_goes_to_another_page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        tab, offset, session = _start_run(context, server)
        tab.get_by_role("link", name=re.compile("Class saliency")).click()
        ended = _ended_line(server, offset, session, timeout_s=30)
        assert ended is not None and ended["why"] == "its viewer went to another page", server.log.read_text()[-3000:]
    finally:
        context.close()
