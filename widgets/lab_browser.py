"""Drive JupyterLab in headless Chromium (for the JupyterLab browser test and latency benchmark).

:func:`jupyterlab` runs JupyterLab on a free loopback port over a folder (no token, no update or
news checks; its kernels import this checkout first); :func:`drawn` reads what the visible plotly
plots show; :func:`run_cell` runs a notebook cell from the keyboard. The browser comes from
:func:`widgets.browser.chromium`.

Example
-------
>>> with jupyterlab(folder) as url, chromium() as page:   # doctest: +SKIP
...     page.goto(f"{url}/lab/tree/panel.ipynb")
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from widgets import browser

REPO = Path(__file__).resolve().parents[1]

# what the visible plots show: title, trace types, axis titles, shape / annotation counts, x-axis type
DRAWN_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(el => el.checkVisibility())
  .map(el => ({title: (el.layout.title && el.layout.title.text) || '',
    types: (el.data || []).map(t => t.type || 'scatter'),
    xtitle: (el.layout.xaxis && el.layout.xaxis.title && el.layout.xaxis.title.text) || '',
    ytitle: (el.layout.yaxis && el.layout.yaxis.title && el.layout.yaxis.title.text) || '',
    shapes: (el.layout.shapes || []).length, annotations: (el.layout.annotations || []).length,
    xtype: el._fullLayout && el._fullLayout.xaxis ? el._fullLayout.xaxis.type : ''}))"""


@contextmanager
def jupyterlab(root: str | Path, *, pythonpath: str | Path = REPO, args: tuple[str, ...] = ()) -> Iterator[str]:
    """JupyterLab over ``root`` on a free loopback port; yields its URL. Its log is ``root/jupyterlab.log``.

    Kernels get ``pythonpath`` first on ``PYTHONPATH`` (this checkout by default); ``args`` go to
    ``jupyter lab`` as they are (e.g. a traitlets option).
    """
    root = Path(root)
    port = browser.free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")])))
    log = (root / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", *args],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        browser.wait_for_http(f"http://127.0.0.1:{port}/api/status", timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        browser.stop_process(proc, timeout=15)
        log.close()


def drawn(page) -> list[dict]:
    """The visible plotly plots: ``title, types, xtitle, ytitle, shapes, annotations, xtype``."""
    return page.evaluate(DRAWN_JS)


def run_cell(page, index: int) -> None:
    """Run notebook cell ``index`` (click into its editor, Shift+Enter)."""
    page.locator(".jp-Notebook .jp-Cell .cm-content").nth(index).click()
    page.keyboard.press("Shift+Enter")


def open_notebook(page, url: str, name: str, timeout: float = 120.0) -> None:
    """Open notebook ``name`` and wait until its kernel is idle."""
    page.goto(f"{url}/lab/tree/{name}")
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=timeout * 1000)
    page.wait_for_selector(".jp-StatusBar-Widget:has-text('| Idle')", timeout=timeout * 1000)


def wait_prompt(page, index: int, count: int, timeout: float = 120.0) -> None:
    """Wait until cell ``index``'s prompt shows execution count ``count``."""
    prompt = page.locator(".jp-InputPrompt").nth(index)
    browser.wait_until(lambda: f"[{count}]" in (prompt.text_content() or ""), timeout)
