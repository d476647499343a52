"""The served dashboard in a real browser: headless Debian Chromium driven by playwright.

Two tiny runs (synthetic-imbalance, n=300, 2 epochs) and a small saved analysis result; the test
opens the page, moves the epoch slider, changes the split, opens the analysis and comparison tabs,
switches runs, selects a broken run, and checks each figure changed. A second test drives the runs
table (a hostile run name shown as text, a header filter, sorting, ticking a row), the compare view
(settings that differ, any metric, paired differences, learning curves over seeds), the CSV export
and the link that reopens a view. Screenshots go to
``test-artifacts/``. Chromium is required (CI installs it with ``apt-get install -y chromium``);
set ``WORKBENCH_SKIP_BROWSER=1`` to skip these tests deliberately.
"""

from __future__ import annotations

import json
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from widgets import browser
from widgets.figures import RESULT_FIGURES
from workbench.store.results import Result
from workbench.training.train import train

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOY_MODULE = "workbench._toy_result_for_tests"

pytestmark = pytest.mark.skipif(
    os.environ.get("WORKBENCH_SKIP_BROWSER") == "1", reason="WORKBENCH_SKIP_BROWSER=1 set"
)


@dataclass
class ToyResult(Result):
    """A small analysis result: one score per modality."""

    scores: pd.DataFrame
    note: str = ""


@dataclass
class ToyTable(Result):
    """The same table in a class with no figures registered (figures go by class): shown as a table."""

    scores: pd.DataFrame
    note: str = ""


def toy_figures(result: ToyResult) -> list[go.Figure]:
    s = result.scores
    return [
        go.Figure(go.Bar(x=s["modality"], y=s["score"]), layout={"title": {"text": "toy scores"}}),
        go.Figure(
            go.Bar(x=s["modality"], y=1 - s["score"]), layout={"title": {"text": "toy complement"}}
        ),
    ]


def install_toy_result(monkeypatch) -> None:
    """Make :class:`ToyResult` loadable by ``load_result`` (which imports only ``workbench.*`` modules)."""
    module = types.ModuleType(TOY_MODULE)
    module.ToyResult, module.ToyTable, module.toy_figures = ToyResult, ToyTable, toy_figures
    monkeypatch.setattr(ToyResult, "__module__", TOY_MODULE)
    monkeypatch.setattr(ToyTable, "__module__", TOY_MODULE)
    monkeypatch.setitem(sys.modules, TOY_MODULE, module)
    monkeypatch.setitem(RESULT_FIGURES, f"{TOY_MODULE}:ToyResult", f"{TOY_MODULE}:toy_figures")


def make_runs(root: Path) -> list:
    runs = [
        train(
            "synthetic-imbalance",
            epochs=2,
            seed=seed,
            runs_dir=root,
            dataset_params={"n": 300},
            progress=False,
        )
        for seed in (0, 1)
    ]
    broken = root / "zz-broken-run"
    broken.mkdir()
    (broken / "status.json").write_text(json.dumps({"status": "complete", "version": 999}))
    return runs


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    make_runs(root)
    return root


@pytest.fixture
def page():
    if not Path(browser.CHROMIUM).exists():
        pytest.fail(
            f"{browser.CHROMIUM} is missing: install it with `{browser.INSTALL_HINT}` "
            "(or set WORKBENCH_SKIP_BROWSER=1 to skip the browser tests)"
        )
    ARTIFACTS.mkdir(exist_ok=True)
    with browser.chromium() as page:
        yield page


def tab(page, name: str):
    return page.locator(".bk-tab", has_text=name).first


def test_dashboard_in_browser(runs_root: Path, page, monkeypatch) -> None:
    install_toy_result(monkeypatch)
    run0, run1 = sorted(p.name for p in runs_root.iterdir() if p.name.startswith("synthetic"))
    scores = pd.DataFrame({"modality": ["strong", "weak"], "score": [0.8, 0.3]})
    ToyResult(scores, note="test").save(runs_root / run0 / "results" / "toy")
    ToyTable(scores.assign(score=[0.123, 0.456])).save(
        runs_root / run0 / "results" / "scores"
    )  # no figures
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    with browser.dashboard_thread(runs_root) as url:
        browser.open_dashboard(page, url)
        page.screenshot(path=str(ARTIFACTS / "dashboard_overview.png"))
        # the result tabs come with the run's figures (one hold); wait for them rather than race the page
        browser.wait_until(lambda: [t.strip() for t in page.locator(".bk-tab").all_inner_texts()] == [
            "overview",
            "scores",
            "toy",
            "compare runs",
        ], 30)

        # the epoch slider zooms the learning curves
        before = browser.wait_until(lambda: browser.history_plot(page))
        browser.drag_slider_handle(page, ".noUi-handle-upper", 0.0)
        after = browser.wait_until(
            lambda: (h := browser.history_plot(page)) and h["xrange"] != before["xrange"] and h
        )
        assert json.loads(after["xrange"]) == [0.5, 1.5]
        page.screenshot(path=str(ARTIFACTS / "dashboard_slider.png"))

        # the split selector re-draws the accuracy bars
        page.locator("select").nth(1).select_option("train")
        browser.wait_until(
            lambda: any(
                p["title"] == "Accuracy on the train split" for p in browser.visible_plots(page)
            )
        )

        # the analysis tab shows the registered figures, and its selector switches between them
        tab(page, "toy").click()
        shown = browser.wait_until(
            lambda: [p for p in browser.visible_plots(page) if p["title"] == "toy scores"]
        )
        assert "0.8" in shown[0]["sig"]
        page.locator("select").nth(1).select_option("toy complement")
        browser.wait_until(
            lambda: [p for p in browser.visible_plots(page) if p["title"] == "toy complement"]
        )
        page.screenshot(path=str(ARTIFACTS / "dashboard_analysis.png"))

        # a result without registered figures shows its table (HTML: the light plotly.js has no tables)
        tab(page, "scores").click()
        page.locator("table", has_text="0.456").first.wait_for(state="visible")

        # the comparison tab puts both runs side by side
        tab(page, "compare runs").click()
        compare = browser.wait_until(
            lambda: [p for p in browser.visible_plots(page) if "run by run" in p["title"]]
        )
        assert run0 in compare[0]["sig"] and run1 in compare[0]["sig"]
        page.screenshot(path=str(ARTIFACTS / "dashboard_compare.png"))

        # switching runs re-draws the overview and drops the other run's analysis tab
        tab(page, "overview").click()
        history0 = browser.wait_until(lambda: browser.history_plot(page))
        page.locator("select").first.select_option(run1)
        page.get_by_text(f"run {run1} \u00b7").first.wait_for(state="visible")
        browser.wait_until(
            lambda: (
                [t.strip() for t in page.locator(".bk-tab").all_inner_texts()]
                == ["overview", "compare runs"]
            )
        )
        assert browser.wait_until(
            lambda: (h := browser.history_plot(page)) and h["sig"] != history0["sig"]
        )
        page.screenshot(path=str(ARTIFACTS / "dashboard_run_switch.png"))

        # a broken run shows a message in the page, and the server keeps serving
        page.locator("select").first.select_option("zz-broken-run")
        message = page.get_by_text("Run 'zz-broken-run' cannot be shown").first
        message.wait_for(state="visible")
        assert "format version 999" in message.inner_text()
        assert not browser.visible_plots(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard_bad_run.png"))
        page.locator("select").first.select_option(run0)
        browser.wait_until(lambda: len(browser.visible_plots(page)) >= 2)
    remote = [
        r
        for r in requests
        if r.startswith(("http:", "https:", "ws:", "wss:")) and not r.startswith(url)
    ]
    assert requests and not remote, (
        remote
    )  # everything (plotly.js included) is served by the dashboard
    plotly_js = [r for r in requests if "plotly" in r and r.endswith(".js")]
    assert len(plotly_js) == 1 and "plotly-cartesian-3.1.0.min.js" in plotly_js[0], plotly_js


# a run folder name that would run script if any view inserted it as HTML
EVIL = '<img src=x onerror="window.__pwned=1">'

# the text of every visible Tabulator row (through shadow roots)
_ROWS_JS = """() => { const out = []; const walk = (root) => root.querySelectorAll('*').forEach(el => {
  if (el.classList && el.classList.contains('tabulator-row') && el.checkVisibility()) out.push(el.innerText);
  if (el.shadowRoot) walk(el.shadowRoot); });
  walk(document); return out; }"""

# every <img> element anywhere on the page (through shadow roots)
_IMGS_JS = """() => { let n = 0; const walk = (root) => root.querySelectorAll('*').forEach(el => {
  if (el.tagName === 'IMG') n++; if (el.shadowRoot) walk(el.shadowRoot); });
  walk(document); return n; }"""


def rows(page) -> list[str]:
    return page.evaluate(_ROWS_JS)


def test_runs_table_compare_and_export_in_browser(runs_root: Path, tmp_path: Path, page) -> None:
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(runs_root, root, ignore=shutil.ignore_patterns("results"))
    run0, run1 = sorted(p.name for p in root.iterdir() if p.name.startswith("synthetic"))
    train(
        "synthetic-imbalance",
        epochs=2,
        seed=0,
        lr=0.01,
        runs_dir=root,
        dataset_params={"n": 300},
        progress=False,
    )
    shutil.copytree(root / run0, root / EVIL)
    config = json.loads((root / EVIL / "config.json").read_text())
    config["train"]["seed"] = (
        2  # a third seed of the base configuration (the copy's numbers are seed 0's)
    )
    (root / EVIL / "config.json").write_text(json.dumps(config))
    with browser.dashboard_thread(root) as url:
        browser.open_dashboard(page, url)
        browser.wait_until(
            lambda: len(rows(page)) == 5
        )  # 3 runs, the hostile copy, the broken folder
        assert any(EVIL in r for r in rows(page))  # shown as text ...
        assert (
            page.evaluate("() => window.__pwned") is None and page.evaluate(_IMGS_JS) == 0
        )  # ... never as HTML
        assert any("lr=0.01" in r for r in rows(page)) and any(
            "unreadable" in r for r in rows(page)
        )
        page.screenshot(path=str(ARTIFACTS / "dashboard_runs_table.png"))

        # a header filter narrows the table; sorting by a column orders it
        run_filter = page.locator(
            ".tabulator-col[tabulator-field='run_id'] .tabulator-header-filter input"
        ).first
        run_filter.fill("s1-")
        run_filter.press("Enter")  # header filters apply on change
        browser.wait_until(lambda: len(rows(page)) == 1 and run1 in rows(page)[0])
        run_filter.fill("")
        run_filter.press("Enter")
        browser.wait_until(lambda: len(rows(page)) == 5)
        page.locator(".tabulator-col[tabulator-field='params'] .tabulator-col-title").first.click()
        browser.wait_until(lambda: "lr=0.01" in rows(page)[-1] or "lr=0.01" in rows(page)[0])

        # ticking a row shows that run in the overview
        sgd_row = page.locator(".tabulator-row", has_text="lr=0.01").first
        sgd_row.locator("input[type='checkbox']").first.click()
        sgd = next(
            p.name
            for p in root.iterdir()
            if p.name.startswith("synthetic") and p.name not in (run0, run1)
        )
        page.get_by_text(f"run {sgd} \u00b7").first.wait_for(state="visible")
        search = lambda: page.evaluate("() => window.location.search")  # noqa: E731 (page.url lags replaceState)
        browser.wait_until(lambda: f"run={sgd}" in search())  # the view is in the link

        # compare: the ticked runs, told apart by the setting that differs; any metric; curves over seeds
        tab(page, "compare runs").click()
        titles = lambda: {p["title"] for p in browser.visible_plots(page)}  # noqa: E731
        browser.wait_until(
            lambda: (
                {
                    "acc_fused: mean over seeds per configuration",
                    "Paired difference of acc_fused (B − A)",
                    "heldout_acc per epoch, mean over seeds",
                }
                <= titles()
            )
        )
        browser.wait_until(lambda: "tab=compare" in search())
        curves = next(
            p for p in browser.visible_plots(page) if p["title"].startswith("heldout_acc per epoch")
        )
        assert "lr=0.001 (3 seeds)" in curves["sig"] and "lr=0.01 (1 seed)" in curves["sig"]
        browser.wait_until(
            lambda: any(r.startswith("lr") for r in rows(page))
        )  # settings that differ: lr (and seed)
        page.locator(
            "select", has=page.locator("option", has_text="final_train_loss")
        ).first.select_option("final_train_loss")
        browser.wait_until(
            lambda: "final_train_loss: mean over seeds per configuration" in titles()
        )
        page.screenshot(path=str(ARTIFACTS / "dashboard_compare_runs.png"), full_page=True)
        # the hostile run heads a column of the settings table (Tabulator titles are HTML): shown as text
        assert page.get_by_text(EVIL).count() >= 1
        assert page.evaluate("() => window.__pwned") is None and page.evaluate(_IMGS_JS) == 0

        # CSV export of the runs table
        with page.expect_download() as info:
            page.get_by_text("runs table (CSV)").first.click()
        csv = pd.read_csv(info.value.path())
        assert {run0, run1, sgd, EVIL} <= set(csv["run_id"])

        # the link reopens the view: the run and the tab
        page.goto(f"{url}?run={sgd}&tab=compare+runs")
        page.get_by_text(f"run {sgd} \u00b7").first.wait_for(state="visible", timeout=60_000)
        browser.wait_until(lambda: "Paired difference of acc_fused (B − A)" in titles(), timeout=60)
