"""Drive the served dashboard in headless Chromium (for the browser tests and the latency benchmark).

Uses the Python ``playwright`` package with Debian's ``/usr/bin/chromium`` (``playwright install``
cannot download browsers here), a fresh user-data folder and flags that keep Chromium off the
network. Panel renders inside shadow DOM, so page queries walk shadow roots.

Example
-------
>>> with dashboard_server("runs") as url, chromium() as page:   # doctest: +SKIP
...     open_dashboard(page, url)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
INSTALL_HINT = "apt-get update && apt-get install -y chromium"

# every plotly graph on the page (through shadow roots): visibility, title, x-range and a data signature
_PLOTS_JS = """() => { const out = []; const walk = (root) => root.querySelectorAll('*').forEach(el => {
  if (el.classList && el.classList.contains('js-plotly-plot')) out.push(el);
  if (el.shadowRoot) walk(el.shadowRoot); });
  walk(document);
  return out.map(el => ({visible: el.checkVisibility(),
    title: (el.layout && el.layout.title && el.layout.title.text) || '',
    xrange: JSON.stringify((el.layout && el.layout.xaxis && el.layout.xaxis.range) || null),
    sig: JSON.stringify((el.data || []).map(t => [t.name, t.x, t.y, t.cells && t.cells.values]))})); }"""


# the number of visible, non-empty plotly graphs (for in-page waits: no round trip per poll)
VISIBLE_PLOTS_JS = """() => { let n = 0; const walk = (root) => root.querySelectorAll('*').forEach(el => {
  if (el.classList && el.classList.contains('js-plotly-plot') && el.checkVisibility() && (el.data || []).length) n++;
  if (el.shadowRoot) walk(el.shadowRoot); });
  walk(document); return n; }"""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Block until ``url`` answers (or raise, with the server's output when it died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"dashboard server exited with {process.returncode}: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


@contextmanager
def dashboard_server(runs_dir: str | Path, port: int | None = None) -> Iterator[str]:
    """Run ``workbench serve`` over ``runs_dir`` on a free loopback port in a subprocess; yields its URL."""
    port = port or free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                                     os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli.main", "serve", "--runs-dir", str(runs_dir),
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, process=proc)
        yield url
    finally:
        stop_process(proc, timeout=10)


def stop_process(proc: subprocess.Popen, *, timeout: float) -> None:
    """Terminate a server process, killing it when it has not exited after ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def dashboard_thread(runs_dir: str | Path, port: int | None = None) -> Iterator[str]:
    """Serve the dashboard over ``runs_dir`` from a thread of this process (sees its registries); yields its URL."""
    from widgets.dashboard import serve
    from widgets.plotly_bundle import use_bundle

    port = port or free_port()
    server = serve(runs_dir, port=port, threaded=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url)
        yield url
    finally:
        server.stop()
        use_bundle("full")  # serve() switched this process's Panel to the light plotly.js: switch back


def require_chromium() -> str:
    """The Chromium executable, or a clear error naming the install command."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} not found: install Debian's Chromium with `{INSTALL_HINT}`")
    return CHROMIUM


@contextmanager
def chromium(width: int = 1300, height: int = 1000):
    """A headless Chromium page with a fresh user-data folder (removed afterwards)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="workbench-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=require_chromium(), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height})
            try:
                yield context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def plots(page) -> list[dict]:
    """The plotly graphs on the page: ``visible``, ``title``, ``xrange`` and ``sig`` (trace data)."""
    return page.evaluate(_PLOTS_JS)


def visible_plots(page) -> list[dict]:
    return [p for p in plots(page) if p["visible"] and p["sig"] != "[]"]


def wait_until(predicate, timeout: float = 30.0, poll: float = 0.01):
    """Poll ``predicate()`` until it returns something truthy; returns it, or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"condition not met within {timeout:.0f}s")


def open_dashboard(page, url: str, n_plots: int = 2, timeout: float = 60.0) -> float:
    """Open the dashboard and wait until ``n_plots`` figures are drawn; returns the seconds it took."""
    t0 = time.perf_counter()
    page.goto(url)
    wait_until(lambda: len(visible_plots(page)) >= n_plots, timeout)
    return time.perf_counter() - t0


def drag_slider_handle(page, handle: str = ".noUi-handle-upper", fraction: float = 0.0) -> None:
    """Drag a (range) slider handle to ``fraction`` of the slider's width (0 = left end)."""
    knob = page.locator(handle).first
    track = page.locator(".noUi-base").first.bounding_box()
    box = knob.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + fraction * track["width"], box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()


def history_plot(page) -> dict | None:
    """The visible training-history figure (``None`` while it is not drawn)."""
    return next((p for p in visible_plots(page) if p["title"].startswith("Training history")), None)
