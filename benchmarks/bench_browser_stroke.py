"""What a person waits for after a stroke, measured in Chromium (issue 20).

    .venv/bin/python benchmarks/bench_browser_stroke.py [--sizes small 12mp] [--strokes 6] [--photos 6]
        [--pages segmentation review] [--json FILE] [--profile FOLDER]

For each photo size it builds a review workspace in a temporary folder (``--photos`` variants of the
GrabCut ``llama`` photo, segmented by ``python -m engine segment-folder``), starts ``streamlit run
app.py`` on a free loopback port with that workspace (tests/e2e's server helper), and drives headless
Chromium (Playwright, Debian's /usr/bin/chromium) through:

- the segmentation page: upload the photo, then paint ``--strokes`` background strokes with the mouse;
- the review page: ``Next`` through the queue (``--photos`` - 1 moves, every photo seen the first
  time), then the same strokes on the photo open there.

Sizes: ``small`` is ``llama.png`` itself (513×371, uploaded as that PNG); ``12mp`` is the same photo
upscaled in memory to 4000×3000 and uploaded as a JPEG (quality 90), the size of a phone photo.

Every time is taken by the page's own clock (``performance.now()``), from:

- mouse-up: the ``mouseup`` event of the stroke (a capture listener on ``window``); for an upload,
  just before the file is put into the uploader's ``<input type=file>``; for ``Next``, the click;
- canvas reports: the first WebSocket message the page sends after mouse-up (the canvas component's
  new value: at once with ``ui.canvas_frontend.canvas_component``, 200 ms later with the stock component);
- run starts: the app root's ``data-test-script-state`` turns ``running`` (a MutationObserver);
- run ends: it turns ``notRunning`` again;
- last delta: the last WebSocket message received before the mask is shown (the background travels in
  the canvas's delta, as a data URL);
- new mask on screen: the seed canvas's background (the photo with the mask drawn over it, on the
  component's own ``<canvas>``) differs, pixel for pixel (a fingerprint of its pixels, taken in every
  animation frame), from the one before mouse-up: found in a ``requestAnimationFrame`` callback, so it
  is in the frame being painted. Until issue 27 this was a picture below the canvas ("After edits").

A stroke that leaves the mask as it was leaves the background as it was: it is counted as "unchanged"
(its run end is still reported) and left out of the mask-on-screen figures.

Prints, per page and size, the median and the worst of each, and the load (``uptime``) before and
after. Runs for minutes: run it alone on a quiet machine. ``--profile FOLDER`` also profiles every
script run of the server (cProfile in the script thread, through a sitecustomize.py on the server's
path) and prints, per phase, the runs' wall times and the calls with the most cumulative time.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.browser import BACKGROUND_FINGERPRINT, settle  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, START_TIMEOUT_S, streamlit_server  # noqa: E402

PHOTO = Path("/work/shared/data/interactive-dev/grabcut/images/llama.png")  # read from there, never copied here
SIZES = {"small": None, "12mp": (4000, 3000)}
# background strokes (canvas fractions) across the llama's head and neck, each on rows not painted before
STROKES = [((0.30, 0.42), (0.62, 0.42)), ((0.27, 0.62), (0.50, 0.62)), ((0.27, 0.72), (0.50, 0.72)),
           ((0.27, 0.82), (0.50, 0.82)), ((0.27, 0.92), (0.50, 0.92)), ((0.40, 0.50), (0.66, 0.50)),
           ((0.27, 0.56), (0.50, 0.56)), ((0.27, 0.67), (0.50, 0.67)), ((0.27, 0.77), (0.50, 0.77)),
           ((0.27, 0.87), (0.50, 0.87))]

# Installed before any page script: WebSocket traffic, mouse-ups and script-state changes with their times.
PROBE = """
(() => {
  const bench = window.__bench = {sends: [], msgs: [], states: [], up: null, shown: null};
  const Original = window.WebSocket;
  class Hooked extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', e => bench.msgs.push([performance.now(), e.data.byteLength || e.data.length || e.data.size || 0]));
    }
    send(data) {
      bench.sends.push([performance.now(), data.byteLength || data.length || data.size || 0]);
      return super.send(data);
    }
  }
  window.WebSocket = Hooked;
  window.addEventListener('mouseup', () => { bench.up = performance.now(); }, true);
  const watch = () => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) { setTimeout(watch, 20); return; }
    let last = app.getAttribute('data-test-script-state');
    bench.states.push([performance.now(), last]);
    new MutationObserver(() => {
      const state = app.getAttribute('data-test-script-state');
      if (state !== last) { last = state; bench.states.push([performance.now(), state]); }
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  };
  watch();
  // the canvas's background: a fingerprint of its pixels ('' while there is no canvas)
  bench.fingerprint = FINGERPRINT;
  // watch for a new background, in the frame that paints it
  bench.watchResult = () => {
    const before = bench.fingerprint();
    bench.shown = null;
    const token = bench.token = (bench.token || 0) + 1;
    const poll = () => {
      if (bench.token !== token || bench.shown !== null) return;
      const now = bench.fingerprint();
      if (now !== '' && now !== before) { bench.shown = performance.now(); return; }
      requestAnimationFrame(poll);
    };
    requestAnimationFrame(poll);
    return before;
  };
})();
""".replace("FINGERPRINT", BACKGROUND_FINGERPRINT)


# With --profile: a sitecustomize.py for the server that profiles each script run (cProfile in the script
# thread) into $STROKE_PROFILE_DIR/NNNN-{app|fragment}-<ms>.prof.
PROFILER = """
import cProfile, itertools, os, time
from streamlit.runtime.scriptrunner import script_runner

_real, _count, _folder = script_runner.ScriptRunner._run_script, itertools.count(), os.environ["STROKE_PROFILE_DIR"]


def _run_script(self, rerun_data):
    profile, started = cProfile.Profile(), time.perf_counter()
    profile.enable()
    try:
        return _real(self, rerun_data)
    finally:
        profile.disable()
        kind = "fragment" if rerun_data.fragment_id_queue else "app"
        ms = (time.perf_counter() - started) * 1000
        profile.dump_stats(os.path.join(_folder, f"{next(_count):04d}-{kind}-{ms:.0f}.prof"))


script_runner.ScriptRunner._run_script = _run_script
"""


def photo_bytes(size: str, variant: int = 0) -> tuple[str, bytes]:
    """``llama`` at ``size`` as the bytes of a file; variants 1.. are shifted crops (every other one
    mirrored) so that each workspace photo is a different file."""
    image = Image.open(PHOTO).convert("RGB")
    if variant:
        width, height = image.size
        shift = 0.02 * variant
        image = image.crop((round(shift * width / 2), round(shift * height / 2), width, height))
        if variant % 2:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    target = SIZES[size] or Image.open(PHOTO).size
    if image.size != target:
        image = image.resize(target, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    if SIZES[size] is None:
        image.save(buffer, format="PNG")
        return f"llama_{variant}.png", buffer.getvalue()
    image.save(buffer, format="JPEG", quality=90)
    return f"llama_{size}_{variant}.jpg", buffer.getvalue()


def make_workspace(root: Path, size: str, photos: int) -> None:
    (root / "images").mkdir(parents=True)
    for variant in range(photos):
        name, data = photo_bytes(size, variant)
        (root / "images" / name).write_bytes(data)
    done = subprocess.run([sys.executable, "-m", "engine", "segment-folder", str(root / "images"), "--out",
                           str(root / "segmentations"), "--jobs", "1"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


# ---------------------------------------------------------------- one measured action
def measure(page, act, *, timeout_s: float = 120) -> dict:
    """Run ``act`` (which must set window.__bench.up, or leave it to a mouseup) and time what follows."""
    settle(page)
    page.evaluate("() => window.__bench.watchResult()")
    page.evaluate("() => { window.__bench.up = null; }")
    act()
    page.wait_for_function("() => window.__bench.shown !== null", timeout=timeout_s * 1000, polling=50)
    settle(page)
    return page.evaluate("""() => {
      const b = window.__bench, up = b.up, shown = b.shown;
      const after = (list) => list.filter(([t]) => t >= up);
      const sent = after(b.sends)[0];
      const running = after(b.states).find(([, s]) => s === 'running');
      const ended = running && b.states.find(([t, s]) => t >= running[0] && s === 'notRunning');
      const msgs = after(b.msgs).filter(([t]) => t <= shown);
      const runs = after(b.states).filter(([, s]) => s === 'running').length;
      return {
        report: sent ? sent[0] - up : null, start: running ? running[0] - up : null,
        end: ended ? ended[0] - up : null, last_delta: msgs.length ? msgs[msgs.length - 1][0] - up : null,
        shown: shown - up, received_kb: msgs.reduce((s, [, n]) => s + n, 0) / 1024, runs,
      };
    }""")


def run_end_only(page) -> dict:
    """For a stroke that did not change the mask: when did its run end."""
    return page.evaluate("""() => {
      const b = window.__bench, up = b.up;
      const running = b.states.find(([t, s]) => t >= up && s === 'running');
      const ended = running && b.states.find(([t, s]) => t >= running[0] && s === 'notRunning');
      return {start: running ? running[0] - up : null, end: ended ? ended[0] - up : null};
    }""")


def paint(page, canvas, start, end) -> None:
    box = canvas.bounding_box()
    x0, y0 = box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"]
    x1, y1 = box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=20)
    page.mouse.up()


def strokes(page, count: int) -> list[dict]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator('[data-testid="stRadio"]').filter(has_text="Brush").get_by_text("background", exact=True).click()
    settle(page)
    canvas = page.locator("canvas.upper-canvas").first
    canvas.scroll_into_view_if_needed()
    results = []
    for start, end in STROKES[:count]:
        try:
            results.append(measure(page, lambda: paint(page, canvas, start, end), timeout_s=30))
        except PlaywrightTimeout:  # no new mask: the stroke changed nothing
            settle(page)
            results.append({"unchanged": True, **run_end_only(page)})
    return results


def upload(page, name: str, data: bytes) -> dict:
    file_input = page.locator('[data-testid="stFileUploader"] input[type="file"]').first

    def act():
        page.evaluate("() => { window.__bench.up = performance.now(); }")
        file_input.set_input_files(files=[{"name": name, "mimeType": "image/png" if name.endswith(".png") else "image/jpeg",
                                           "buffer": data}])
    return measure(page, act, timeout_s=300)


def next_photo(page) -> dict:
    button = page.locator(".st-key-rev_next button")

    def act():
        page.evaluate("() => { window.__bench.up = performance.now(); }")
        button.click()
    return measure(page, act, timeout_s=300)


# ---------------------------------------------------------------- report
FIELDS = (("report", "mouse-up → canvas reports"), ("start", "mouse-up → run starts"), ("end", "mouse-up → run ends"),
          ("last_delta", "mouse-up → last delta received"), ("shown", "mouse-up → new mask on screen"),
          ("received_kb", "WebSocket in (kB)"),
          ("runs", "script runs"))


def summary(title: str, rows: list[dict]) -> None:
    changed = [r for r in rows if not r.get("unchanged")]
    print(f"  {title}: {len(changed)} of {len(rows)} changed the mask")
    for key, label in FIELDS:
        values = [r[key] for r in changed if r.get(key) is not None]
        if values:
            unit = "" if key in ("received_kb", "runs") else " s"
            scale = 1 if unit == "" else 1000
            print(f"    {label:<36} median {statistics.median(values) / scale:8.3f}{unit}   worst {max(values) / scale:8.3f}{unit}")


def profile_summary(title: str, files: list[Path], top: int) -> None:
    """The script runs of one phase (their wall times) and the calls with the most cumulative time in them."""
    import pstats

    if not files:
        return
    runs = ", ".join(f"{f.stem.split('-')[1]} {int(f.stem.split('-')[2])} ms" for f in files)
    print(f"\n==== {title}: {len(files)} script runs ({runs})")
    stats = pstats.Stats(*map(str, files), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(top)


def bench_size(browser, size: str, args) -> dict:
    out, phases = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        make_workspace(root, size, args.photos)
        print(f"[{size}] workspace of {args.photos} photos segmented in {time.perf_counter() - started:.0f} s", flush=True)
        env = {"DEEP_INSIDE_WORKSPACE": str(root)}
        if args.profile:
            profiles = args.profile / size
            profiles.mkdir(parents=True, exist_ok=True)
            (root / "site").mkdir()
            (root / "site" / "sitecustomize.py").write_text(PROFILER)
            env.update(PYTHONPATH=os.pathsep.join([str(root / "site"), os.environ.get("PYTHONPATH", "")]),
                       STROKE_PROFILE_DIR=str(profiles))

        def phase(title, run):
            seen = set(profiles.iterdir()) if args.profile else set()
            out[title] = run()
            if args.profile:
                phases[title] = sorted(set(profiles.iterdir()) - seen)

        with streamlit_server(f"bench-browser-stroke-{size}.log", env) as server:
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.add_init_script(PROBE)
            context.set_default_timeout(START_TIMEOUT_S * 1000)
            page = context.new_page()
            try:
                page.goto(server.url)
                settle(page, timeout_ms=START_TIMEOUT_S * 1000)  # torch imported, the model loaded
                if "segmentation" in args.pages:
                    page.goto(f"{server.url}/segmentation")
                    settle(page)
                    name, data = photo_bytes(size)
                    phase("segmentation upload", lambda: [upload(page, name, data)])
                    phase("segmentation strokes", lambda: strokes(page, args.strokes))
                if "review" in args.pages:
                    page.goto(f"{server.url}/review")
                    settle(page)
                    phase("review next", lambda: [next_photo(page) for _ in range(args.photos - 1)])
                    phase("review strokes", lambda: strokes(page, args.strokes))
            finally:
                context.close()
    for title, files in phases.items():
        profile_summary(f"[{size}] {title}", files, args.profile_top)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--pages", nargs="+", default=["segmentation", "review"], choices=["segmentation", "review"])
    parser.add_argument("--strokes", type=int, default=6)
    parser.add_argument("--photos", type=int, default=6, help="workspace photos; Next moves = photos - 1")
    parser.add_argument("--json", type=Path, help="write every measurement there")
    parser.add_argument("--profile", type=Path, help="profile the server's script runs into this folder and print each phase's")
    parser.add_argument("--profile-top", type=int, default=40)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load before: {load()}", flush=True)
    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for size in args.sizes:
                results[size] = bench_size(browser, size, args)
                print(f"[{size}] load now: {load()}", flush=True)
                for title, rows in results[size].items():
                    summary(title, rows)
        finally:
            browser.close()
    print(f"load after: {load()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
