"""The JupyterLab panels in a real JupyterLab 4: headless Debian Chromium driven by playwright.

JupyterLab runs on a loopback port over a temporary folder holding a copy of the pre-layout
fixture run (a gap and a fairness result, no training needed) and a notebook that shows it.
The test runs the notebook, times the panel's appearance, switches every registered figure of
every result tab and checks that the drawn plot is the selected figure -- its title, trace types,
axis titles, and as many shapes and annotations as that figure has (the old FigureWidget re-draw
kept the previous figure's shapes, annotations and axis types) -- and times a control's re-draw.
The timings go to ``test-artifacts/jupyterlab_latency.json`` with a screenshot.

Set ``WORKBENCH_SKIP_BROWSER=1`` to skip deliberately; without Chromium the test skips and says
so, unless ``WORKBENCH_REQUIRE_BROWSER=1`` (CI) makes that an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from widgets import browser
from widgets.figures.gap import gap_histogram_figure, gmm_params_figure, unimodal_accuracy_figure
from widgets.figures.result import result_figures
from widgets.figures.run import accuracy_figure
from widgets.lab_browser import drawn, jupyterlab, open_notebook, run_cell, wait_prompt
from widgets.panels.view import PLOTLY_MIME, figure_bundle
from widgets.summary import base_rate, load_run_results
from workbench.store.runs import load_run

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "pre_layout_run"
ARTIFACTS = REPO / "test-artifacts"

pytestmark = [
    pytest.mark.skipif(os.environ.get("WORKBENCH_SKIP_BROWSER") == "1", reason="WORKBENCH_SKIP_BROWSER=1 set"),
    pytest.mark.skipif(not Path(browser.CHROMIUM).exists() and os.environ.get("WORKBENCH_REQUIRE_BROWSER") != "1",
                       reason=f"{browser.CHROMIUM} is missing (install: {browser.INSTALL_HINT})"),
]

def expected(fig) -> dict:
    """What :data:`_DRAWN_JS` should read for ``fig`` (from the JSON the panel sends)."""
    spec = figure_bundle(fig)[PLOTLY_MIME]
    layout = spec["layout"]

    def title(obj: dict | None) -> str:
        t = (obj or {}).get("title") or {}
        return t.get("text", "") if isinstance(t, dict) else str(t)

    return {"title": title(layout), "types": [t.get("type", "scatter") for t in spec["data"]],
            "xtitle": title(layout.get("xaxis")), "ytitle": title(layout.get("yaxis")),
            "shapes": len(layout.get("shapes", [])), "annotations": len(layout.get("annotations", []))}


def wait_drawn(page, want: dict, timeout: float = 30.0) -> dict:
    """Wait until a visible plot has ``want``'s title; return what is drawn there."""
    def find():
        return next((d for d in drawn(page) if d["title"] == want["title"]), None)
    return browser.wait_until(find, timeout, poll=0.005)


def test_panel_figures_switch_correctly_in_jupyterlab(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "run")
    # cell 0 warms the kernel (imports), cell 1 shows the panel: its time is the panel's own
    nb = new_notebook(cells=[new_code_cell("import workbench, widgets.panels.base"),
                             new_code_cell("from workbench import load_run\nload_run('run')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "panel.ipynb")
    run = load_run(tmp_path / "run")
    results = load_run_results(run)
    # a result tab offers its registered figures in one selector; the gap tab is the gap panel
    figures = {name: result_figures(name, res) for name, res in results.items() if name != "gap"}
    assert set(figures) == {"fairness"} and len(figures["fairness"]) == 3
    times: dict[str, float | list[float]] = {"figure_switch_s": []}

    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path) as url, browser.chromium(width=1400, height=1100) as page:
        t0 = time.perf_counter()
        try:
            open_notebook(page, url, "panel.ipynb")
            times["lab_open_s"] = time.perf_counter() - t0
            run_cell(page, 0)
            wait_prompt(page, 0, 1)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab_failed.png"))
            raise
        t1 = time.perf_counter()
        run_cell(page, 1)
        browser.wait_until(lambda: len(drawn(page)) >= 2, 60, poll=0.005)
        times["panel_appears_s"] = time.perf_counter() - t1
        overview = {d["title"] for d in drawn(page)}
        assert overview == {"Training history", "Accuracy on the test split"}

        for name, figs in figures.items():
            page.locator(".widget-tab .lm-TabBar-tab").filter(has_text=re.compile(f"^{name}$")).click()
            first = expected(next(iter(figs.values())))
            assert wait_drawn(page, first)["types"] == first["types"]
            select = page.locator(".widget-dropdown select >> visible=true")  # the shown tab's selector only
            assert select.count() == 1
            shown_figs = list(figs.values())
            for i in [*range(1, len(shown_figs)), 0]:  # every figure, then back to the first: each a real change
                want = expected(shown_figs[i])
                t = time.perf_counter()
                select.select_option(index=i)
                got = wait_drawn(page, want)
                times["figure_switch_s"].append(time.perf_counter() - t)
                shown = [d for d in drawn(page) if d["title"] == want["title"]]
                assert len(drawn(page)) == 1 and len(shown) == 1, (name, i, drawn(page))
                assert {k: got[k] for k in want} == want, (name, i)
        # the gap tab: the selected pair's histogram (one per class on request), its GMM fit, unimodal accuracy
        gap = results["gap"]
        pair, epoch = gap.pairs[0], gap.last_epoch()
        page.locator(".widget-tab .lm-TabBar-tab").filter(has_text=re.compile("^gap$")).click()
        shown = [gap_histogram_figure(gap, pair, epoch), gmm_params_figure(gap, pair), unimodal_accuracy_figure(gap)]
        for fig in shown:
            want = expected(fig)
            got = wait_drawn(page, want)
            assert {k: got[k] for k in want} == want
        classes = page.locator(".widget-dropdown select >> visible=true").filter(has_text="all classes")
        labels = [o.strip().replace("\xa0", " ") for o in classes.locator("option").all_text_contents()]
        for i in [*range(1, len(labels)), 0]:
            label = None if i == 0 else int(labels[i].removeprefix("class "))
            want = expected(gap_histogram_figure(gap, pair, epoch, label=label))
            t = time.perf_counter()
            classes.select_option(index=i)
            got = wait_drawn(page, want)
            times["figure_switch_s"].append(time.perf_counter() - t)
            assert {k: got[k] for k in want} == want, (label, got)
        page.screenshot(path=str(tmp_path / "switched.png"))

        page.locator(".widget-tab .lm-TabBar-tab").filter(has_text=re.compile("^overview$")).click()
        wait_drawn(page, {"title": "Accuracy on the test split"})
        t2 = time.perf_counter()
        page.locator(".widget-dropdown select >> visible=true").select_option("calib")
        want = expected(accuracy_figure(run.accuracy(), split="calib", base_rate=base_rate(run, "calib")))
        got = wait_drawn(page, want)
        times["control_redraw_s"] = time.perf_counter() - t2
        assert {k: got[k] for k in want} == want and got["shapes"] == 1  # one line: the calib split's base rate

    shutil.copy(tmp_path / "switched.png", ARTIFACTS / "jupyterlab_switched.png")
    (ARTIFACTS / "jupyterlab_latency.json").write_text(json.dumps(times, indent=1))
    print("jupyterlab latency:", json.dumps(times))
    assert times["panel_appears_s"] < 10 and max(times["figure_switch_s"]) < 5  # loose: a shared 2-core CI box


def _saved(path: Path, cell: int, n: int) -> bool:
    try:  # JupyterLab may be writing the file
        return len(nbformat.read(path, as_version=4).cells[cell].outputs) >= n
    except Exception:  # noqa: BLE001
        return False


def _static_copy_shown(page, want: set[str]) -> None:
    """Wait until the static copy is visible with exactly ``want``'s figures drawn, the widget's error line hidden."""
    browser.wait_until(lambda: {d["title"] for d in drawn(page)} == want, 60, poll=0.05)
    assert page.locator(".workbench-static-panel").first.is_visible()
    dead = page.locator(".jp-OutputArea-output").filter(has_text=re.compile("Error displaying widget|Loading widget"))
    assert not any(dead.nth(i).is_visible() for i in range(dead.count()))


def test_saved_notebook_reopened_shows_the_static_figures(tmp_path: Path) -> None:
    """Run a panel, save, reopen with a fresh kernel and with none: the static copy takes the panel's place."""
    shutil.copytree(FIXTURE, tmp_path / "run")
    notebook = tmp_path / "panel.ipynb"
    nb = new_notebook(cells=[new_code_cell("import workbench, widgets.panels.base"),
                             new_code_cell("from workbench import load_run\nload_run('run')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebook)
    from widgets.panels.base import RunPanel
    from widgets.panels.view import views

    want = {v.figure.layout.title.text for v in views(RunPanel(load_run(tmp_path / "run"))) if v.figure is not None}
    assert len(want) >= 4  # the overview's two and the result tabs' first figures

    ARTIFACTS.mkdir(exist_ok=True)
    with jupyterlab(tmp_path) as url, browser.chromium(width=1400, height=1100) as page:
        open_notebook(page, url, notebook.name)
        run_cell(page, 0)
        wait_prompt(page, 0, 1)
        run_cell(page, 1)
        browser.wait_until(lambda: len(drawn(page)) >= 2, 60, poll=0.05)
        page.wait_for_timeout(1000)  # the copy's script has decided by now
        assert page.locator(".workbench-static-panel").count() == 1
        assert not page.locator(".workbench-static-panel").first.is_visible()  # hidden behind the live panel
        assert {d["title"] for d in drawn(page)} == {"Training history", "Accuracy on the test split"}
        page.locator(".jp-NotebookPanel-toolbar [data-command='docmanager:save']").first.click()
        browser.wait_until(lambda: _saved(notebook, 1, 2), 30)

    # reopened: JupyterLab starts a fresh kernel, which has no model for the saved widget view
    with jupyterlab(tmp_path) as url, browser.chromium(width=1400, height=1100) as page:
        page.goto(f"{url}/lab/tree/{notebook.name}")
        _static_copy_shown(page, want)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_reopened.png"))

    # reopened where no kernel can start ("No Kernel"): the widget stays on "Loading widget..."
    no_kernels = ("--KernelSpecManager.allowed_kernelspecs=['none-here']",)
    with jupyterlab(tmp_path, args=no_kernels) as url, browser.chromium(width=1400, height=1100) as page:
        page.goto(f"{url}/lab/tree/{notebook.name}")
        _static_copy_shown(page, want)  # also behind JupyterLab's "Select Kernel" dialog
        dialog = page.locator(".jp-Dialog button").filter(has_text=re.compile("^No Kernel$"))
        if dialog.count():
            dialog.first.click()
        page.screenshot(path=str(ARTIFACTS / "jupyterlab_reopened_no_kernel.png"))

    # the HTML report of the saved notebook: the copy, drawn; no widget output
    from workbench.cli.report import notebook_to_html

    report = notebook_to_html(notebook, tmp_path / "panel.html")
    with browser.chromium(width=1400, height=1100) as page:
        page.goto(report.as_uri())
        browser.wait_until(lambda: {d["title"] for d in drawn(page)} == want, 60, poll=0.05)


def test_static_copy_draws_with_the_pages_plotlyjs_and_says_when_there_is_none(tmp_path: Path, monkeypatch) -> None:
    """plotly.js rides in a kernel's first static copy; a later copy on a page without it says so."""
    import plotly.graph_objects as go

    from widgets.panels import view
    from widgets.panels.view import FigureView, PanelBox, static_html

    monkeypatch.setattr(view, "_PLOTLYJS_SENT", set())  # as in a fresh kernel

    first = static_html(PanelBox([FigureView(go.Figure(go.Bar(y=[1, 2]), layout={"title": "first"}))]))
    later = static_html(PanelBox([FigureView(go.Figure(go.Scatter(y=[3, 1]), layout={"title": "later"}))]))
    assert "class='workbench-plotlyjs'" not in later  # once per kernel
    for name, body, drawn_titles, note in (("both", first + later, {"first", "later"}, False),
                                           ("later", later, set(), True)):
        page_file = tmp_path / f"{name}.html"
        page_file.write_text(f"<html><body>{body}</body></html>", encoding="utf-8")
        with browser.chromium() as page:
            page.goto(page_file.as_uri())
            browser.wait_until(lambda: page.locator(".workbench-static-panel").last.is_visible(), 30)
            if drawn_titles:
                browser.wait_until(lambda t=drawn_titles: {d["title"] for d in drawn(page)} == t, 30)
            assert page.locator(".workbench-no-plotlyjs").last.is_visible() is note
            assert not page.locator(".workbench-untrusted").count()  # the script ran: the trust hint is gone
