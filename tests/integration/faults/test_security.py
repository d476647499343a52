"""Issue 15, security classes 1-4: hostile text is escaped everywhere it is shown, report parameter
names are checked, every name that becomes a path is validated in one place, and YAML alias bombs
are refused without leaving anything on disk.

Payload run folders are written by hand from one tiny trained run: the run id, a failed run's
error, config values, the dataset, modality, group-attribute, group and result names all carry a
script payload. The unit tests check the HTML and figures the panels, the dashboard and the run
report produce; the browser test serves the folder and asserts that no payload ever runs.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import plotly.graph_objects as go
import pytest
import yaml

from data_catalog.names import UnsafeNameError, is_safe_name, safe_name
from widgets.text import escape, escape_figure, escape_plotly
from workbench.cli.main import main


# each payload, if it ever ran, leaves its field's name in window.__xss (or changes the title)
def payload(field: str) -> str:
    return f"<img src=x onerror=\"window.__xss='{field}';document.title='XSS {field}'\">"


SCRIPT = "<script>window.__xss='script'</script>"
MD_LINK = "[click](javascript:window.__xss='md')"
RUN_ID = payload("runid")
FAILED_ID = payload("failedid")
MODALITY = payload("modality")
ATTRIBUTE = payload("attribute")
GROUP = payload("group")
RESULT = payload("result")


def all_strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in all_strings(k) + all_strings(v)]
    if isinstance(obj, (list, tuple, np.ndarray, pd.Series)):
        return [s for v in obj for s in all_strings(v)]
    return []


def raw_tags(strings: list[str]) -> list[str]:
    """Strings holding a live payload tag (escaped text has ``&lt;`` instead of ``<``)."""
    return [s for s in strings if "<img" in s or "<script" in s]


# -- payload run folders ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from workbench.training.train import train

    root = tmp_path_factory.mktemp("trained")
    run = train("synthetic-group-noise", epochs=1, seed=0, runs_dir=root, dataset_params={"n": 160}, progress=False)
    return run.path


def plant_payload_runs(trained: Path, root: Path) -> dict[str, Path]:
    """A copy of ``trained`` whose every user-visible text is a payload, a failed run, and a good run."""
    from workbench.analyses.fairness import assess_fairness
    from workbench.jobs.sweep import SweepResult

    root.mkdir(parents=True, exist_ok=True)
    good = root / trained.name
    shutil.copytree(trained, good)
    run = root / RUN_ID
    shutil.copytree(trained, run)
    cfg = json.loads((run / "config.json").read_text())
    old = cfg["modalities"][0]
    rename = {c: c.replace(old, MODALITY) for c in pd.read_parquet(run / "predictions.parquet").columns
              if c.endswith("_" + old)}
    cfg["modalities"][0] = MODALITY
    cfg["shapes"][MODALITY], cfg["kinds"][MODALITY] = cfg["shapes"].pop(old), cfg["kinds"].pop(old)
    cfg.update(dataset=payload("dataset"), created=SCRIPT, groups=[ATTRIBUTE])
    cfg["train"].update(strategy=payload("strategy"), fusion=MD_LINK,
                        strategy_params={payload("param"): payload("value")})
    (run / "config.json").write_text(json.dumps(cfg))
    history = pd.read_parquet(run / "history.parquet")
    history.rename(columns={f"heldout_acc_{old}": f"heldout_acc_{MODALITY}"}).to_parquet(run / "history.parquet")
    preds = pd.read_parquet(run / "predictions.parquet").rename(columns=rename)
    preds = preds.drop(columns=[c for c in preds if c.startswith("group_")])
    preds[f"group_{ATTRIBUTE}"] = np.where(preds["sample"] % 2 == 0, GROUP, "plain group")
    preds.to_parquet(run / "predictions.parquet")
    result = assess_fairness(preds, n_boot=20, min_group_size=5)
    result.save(run / "results" / "fairness")
    # a payload result name, of a class with no figures (figures go by class): shown as a table
    SweepResult(result.to_frame()).save(run / "results" / RESULT)
    failed = root / FAILED_ID
    failed.mkdir()
    (failed / "config.json").write_text(json.dumps(cfg))
    (failed / "status.json").write_text(json.dumps({"status": "failed", "error": payload("error") + SCRIPT,
                                                    "version": 1}))
    return {"good": good, "payload": run, "failed": failed}


@pytest.fixture(scope="module")
def payload_root(trained, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("payload") / "runs"
    plant_payload_runs(trained, root)
    return root


# -- 1. one escape helper; every figure builder escapes ------------------------------------------------
def test_escape_is_idempotent_and_complete() -> None:
    for text in (RUN_ID, SCRIPT, "a & b", "it's \"quoted\"", "&lt;already&gt;"):
        once = escape(text)
        assert "<" not in once and ">" not in once and '"' not in once and "'" not in once
        assert escape(once) == once
    assert escape(3) == "3"


# every module of widgets.figures but the helpers that draw no text of their own
FIGURE_MODULES = sorted(f"widgets.figures.{m.name}" for m in pkgutil.iter_modules(
    importlib.import_module("widgets.figures").__path__) if m.name not in ("captions", "error_bars"))


def test_every_public_figure_builder_escapes() -> None:
    """Every function of the figure modules that returns a figure is wrapped by the escape decorator."""
    builders = []
    for name in FIGURE_MODULES:
        module = importlib.import_module(name)
        for fname, fn in vars(module).items():
            # show_epochs only moves the x-range of a figure a builder made: it adds no text
            if inspect.isfunction(fn) and fn.__module__ == name and not fname.startswith("_") and fname != "show_epochs":
                ret = inspect.signature(inspect.unwrap(fn)).return_annotation
                if ret in ("go.Figure", go.Figure):
                    builders.append(fn)
                    assert hasattr(fn, "__wrapped__"), f"{name}.{fname} returns a figure but does not escape it"
    assert len(builders) >= 40


def test_figures_of_a_payload_run_hold_no_live_tag(trained, tmp_path) -> None:
    from widgets.figures import figures_for_result
    from widgets.figures.result import result_figures, table_frame
    from widgets.figures.run import accuracy_figure, history_figure, runs_accuracy_figure
    from workbench.store.results import load_result
    from workbench.store.runs import RunStore

    runs = plant_payload_runs(trained, tmp_path / "runs")
    run = RunStore(tmp_path / "runs").load(RUN_ID)
    figs = [history_figure(run.history), accuracy_figure(run.accuracy()),
            runs_accuracy_figure({RUN_ID: run.accuracy(), "other": run.accuracy()})]
    fairness = load_result(runs["payload"] / "results" / "fairness")
    figs += figures_for_result("fairness", fairness)
    table = result_figures(RESULT, load_result(runs["payload"] / "results" / RESULT))
    figs += list(table.values())
    for fig in figs:
        strings = all_strings(fig.to_plotly_json())
        assert not raw_tags(strings), raw_tags(strings)[:3]
    # the payload is still there, as text: escaped for plotly (&, <, > only: it shows &quot; literally),
    # so plotly shows the characters, quotes included
    shown = " ".join(s for f in figs for s in all_strings(f.to_plotly_json()))
    for text in (MODALITY, RUN_ID, GROUP, ATTRIBUTE, RESULT):
        assert escape_plotly(text) in shown, text
    assert "&quot;" not in shown and "&#x27;" not in shown
    # the dashboard's HTML table of a table figure gets the original text back (and escapes it itself)
    frame = table_frame(next(iter(table.values())))
    assert GROUP in frame.to_numpy().ravel().tolist()
    assert not raw_tags(all_strings(pn.pane.DataFrame(frame)._get_properties(None)["text"]))


def test_escape_figure_covers_titles_axes_annotations_ticks_and_tables() -> None:
    fig = go.Figure([go.Bar(x=[RUN_ID, "b"], y=[1, 2], name=MODALITY, text=[SCRIPT, "t"], hovertext=[GROUP, "h"]),
                     go.Table(header={"values": [ATTRIBUTE]}, cells={"values": [[GROUP]]})])
    fig.update_layout(title=RUN_ID, legend_title_text=SCRIPT, xaxis={"title": {"text": GROUP},
                      "ticktext": [RESULT], "tickvals": [0]})
    fig.add_annotation(text=SCRIPT, x=0, y=0)
    strings = all_strings(escape_figure(fig).to_plotly_json())
    assert not raw_tags(strings)
    assert escape_figure(go.Figure(fig)).to_plotly_json() == fig.to_plotly_json()  # idempotent
    assert list(fig.data[0].y) == [1, 2]  # numbers untouched


# -- 1. panels, dashboard and report produce escaped HTML ----------------------------------------------
def _panel_html(layout) -> list[str]:
    texts = []
    for pane in layout.select(pn.pane.HTML) + layout.select(pn.pane.Markdown) + layout.select(pn.pane.Str):
        texts.append(str(pane.object))
    return texts


def test_dashboard_html_of_payload_runs_is_escaped(payload_root: Path) -> None:
    from widgets.dashboard import Dashboard

    dash = Dashboard(payload_root)
    assert not [m for m in dash.layout.select(pn.pane.Markdown)], "no Markdown pane may show run text"
    for rid in (RUN_ID, FAILED_ID, dash.run_ids()[-1]):
        dash.run_select.value = rid
        texts = _panel_html(dash.layout)
        assert not raw_tags(texts), (rid, raw_tags(texts)[:2])
        figs = [dash.history_plot.object, dash.accuracy_plot.object]
        assert not raw_tags(all_strings([f.to_plotly_json() for f in figs if f is not None]))
    dash.run_select.value = FAILED_ID
    assert dash.message.visible and escape(payload("error")) in dash.message.object
    dash.run_select.value = RUN_ID
    assert escape(payload("dataset")) in dash.summary.object and escape(SCRIPT) in dash.summary.object
    assert {t.name for t in dash.tabs} >= {"fairness", RESULT}  # tab titles are plain text (browser test)
    dash.compare_select.value = [RUN_ID, FAILED_ID]
    dash.redraw_compare()
    assert dash.compare_message.visible and not raw_tags([dash.compare_message.object])


def test_jupyter_panels_of_a_payload_run_are_escaped(payload_root: Path) -> None:
    import ipywidgets as w

    from widgets.panels.base import RunPanel
    from widgets.panels.fairness import fairness_panel
    from workbench.store.runs import RunStore

    run = RunStore(payload_root).load(RUN_ID)
    (run.path / "results" / "broken").mkdir()  # a result that cannot load: its error is shown as HTML
    try:
        panel = RunPanel(run)
    finally:
        (run.path / "results" / "broken").rmdir()
    html_values = [c.value for c in _walk_widgets(panel) if isinstance(c, w.HTML)]
    assert html_values and not raw_tags(html_values)
    from widgets.panels.view import static_html, views

    fair = fairness_panel(_fairness(run))
    shown = views(panel) + views(fair)
    # what reaches the page: the figure JSON shown in the views, and the saved static copy
    assert shown and not raw_tags(all_strings([v.spec() for v in shown]))
    assert "<script>window.__xss" not in static_html(panel) + static_html(fair)


def _fairness(run):
    from workbench.store.results import load_result

    return load_result(run.path / "results" / "fairness")


def _walk_widgets(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk_widgets(child)


def test_run_report_of_a_payload_run_is_escaped(payload_root: Path, tmp_path: Path) -> None:
    from workbench.cli.report import render_run_report

    run = payload_root / RUN_ID
    html = render_run_report(run, tmp_path / "report.html").read_text()
    assert "<img src=x" not in html and "<script>window.__xss" not in html
    # shown as text (nbconvert re-serialises the HTML, so quotes come back unescaped inside text)
    assert "<b>dataset</b> &lt;img src=x onerror=" in html and "<b>strategy</b> &lt;img src=x onerror=" in html
    assert "<h3>&lt;img src=x onerror=" in html  # the payload result's heading


# -- 2. report -p names ---------------------------------------------------------------------------------
def _notebook(path: Path) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    params = new_code_cell('n = 3\nlabel = "default"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell('print(f"PARAMS n={n} label={label!r}")')]
    nbformat.write(nb, str(path))
    return path


@pytest.mark.parametrize("name, expected", [
    ("x=__import__('os').system('touch PWNED');y", "not a Python identifier"),
    ("import os; os.system('touch PWNED')#", "not a Python identifier"),
    ("class", "not a Python identifier"),
    ("nn", "'nn' is not in nb.ipynb's parameters cell (it defines: n, label)"),
])
def test_report_refuses_parameter_names_not_in_the_parameters_cell(tmp_path, capsys, monkeypatch, name, expected):
    monkeypatch.chdir(tmp_path)
    notebook = _notebook(tmp_path / "nb.ipynb")
    t0 = time.perf_counter()
    assert main(["report", str(notebook), "-p", name, "1", "-o", str(tmp_path / "out.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err, err
    assert time.perf_counter() - t0 < 5  # refused before a kernel starts
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "out.html").exists()


def test_report_without_parameters_cell_refuses_any_parameter(tmp_path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from workbench.cli.report import check_parameters

    nb = tmp_path / "plain.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), str(nb))
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        check_parameters(nb, {"x": 2})
    check_parameters(nb, {})


HOSTILE_VALUES = ['"); open("PWNED", "w"); ("', "a\\\"b\nc'''d", "${x}; rm -rf /", {"k\"); x=(\"": ["\\", 1, None]}]


def test_report_values_are_injected_as_literals(tmp_path: Path) -> None:
    """Papermill's translator quotes values: the injected cell is plain assignments of literals."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from workbench.cli.report import _parameter_value

    nb = load_notebook_node(str(_notebook(tmp_path / "nb.ipynb")))  # as papermill's executor reads it
    for value in HOSTILE_VALUES + [_parameter_value('{"a": [1, "); x"]}'), _parameter_value("1e3")]:
        out = parameterize_notebook(nb, {"label": value})
        injected = next(c for c in out.cells if "injected-parameters" in c.metadata.get("tags", []))
        tree = ast.parse(injected.source)
        assert [type(node) for node in tree.body] == [ast.Assign]
        assert ast.literal_eval(tree.body[0].value) == value


def test_report_runs_a_hostile_value_as_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out.html"
    assert main(["report", str(_notebook(tmp_path / "nb.ipynb")), "-p", "label", HOSTILE_VALUES[0], "-o", str(out)]) == 0
    assert not (tmp_path / "PWNED").exists()
    assert "PARAMS n=3 label=" in out.read_text() and "PWNED" in out.read_text()  # printed as a string


# -- 3. names that become paths --------------------------------------------------------------------------
def _data_folder(path: Path, card: dict | str | None = None, n: int = 24) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(path / "a.npy", rng.normal(size=(n, 3)).astype(np.float32))
    np.save(path / "b.npy", rng.normal(size=(n, 2)).astype(np.float32))
    np.save(path / "labels.npy", np.arange(n) % 2)
    if card is not None:
        text = card if isinstance(card, str) else yaml.safe_dump(card)
        (path / "card.yaml").write_text(text)
    return path


def _card(name: str = "study") -> dict:
    return {"name": name, "description": "d", "source": "s", "license": "l", "loader": "folder",
            "label": {"file": "labels.npy"}, "modalities": {"a": {"kind": "vector", "shape": [3]},
                                                             "b": {"kind": "vector", "shape": [2]}}}


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("bad", ["../../escaped", "..", ".hidden", "a/b", "/abs", "a\\b", "", "x" * 129,
                                 "a..b", "name with space", "<img src=x>", "nul\x00"])
def test_safe_name_refuses_anything_that_is_not_one_plain_path_component(bad: str) -> None:
    assert not is_safe_name(bad)
    with pytest.raises(UnsafeNameError, match="dataset name"):
        safe_name("dataset", bad)


@pytest.mark.parametrize("how", ["--name over card.yaml", "name in card.yaml", "--name without card"])
def test_datasets_add_refuses_an_escaping_name(tmp_path: Path, capsys, how: str) -> None:
    home = Path(os.environ["WORKBENCH_HOME"])
    with_card = how != "--name without card"
    folder = _data_folder(tmp_path / "data" / "study",
                          _card("../../escaped" if how == "name in card.yaml" else "study") if with_card else None)
    before = _all_files(tmp_path)
    argv = ["datasets", "add", str(folder)] + ([] if how == "name in card.yaml" else ["--name", "../../escaped"])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "'../../escaped'" in err and "not allowed" in err and "\n" not in err, err
    assert _all_files(tmp_path) == before  # nothing written anywhere (inside or outside the catalog)
    assert not (home / "catalog").exists() or not any((home / "catalog").iterdir())


def test_datasets_add_name_over_card_yaml_is_used_and_checked_by_the_schema(tmp_path: Path) -> None:
    from data_catalog.registry import add_folder, get_card

    folder = _data_folder(tmp_path / "data" / "study", _card("study"))
    target = add_folder(folder, name="renamed")
    assert target.name == "renamed.yaml" and get_card("renamed").name == "renamed"
    assert yaml.safe_load(target.read_text())["name"] == "renamed"


# -- 4. YAML bombs and temp files -----------------------------------------------------------------------
def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    body = "\n".join("  " + line for line in lines)
    card = yaml.safe_dump(_card("bomb"), sort_keys=False)
    return card + "params:\n" + body + "\n"


def test_billion_laughs_card_is_refused_fast_and_leaves_nothing(tmp_path: Path, capsys) -> None:
    bomb = billion_laughs()
    assert len(bomb.encode()) < 1200  # ~1 KB of YAML, 9^9 (~3.9e8) strings once expanded
    home = Path(os.environ["WORKBENCH_HOME"])
    _data_folder(tmp_path / "data" / "ok", _card("ok"))
    assert main(["datasets", "add", str(tmp_path / "data" / "ok")]) == 0
    before = _all_files(home)
    folder = _data_folder(tmp_path / "data" / "bomb", bomb)
    t0 = time.perf_counter()
    assert main(["datasets", "add", str(folder)]) == 2
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert elapsed < 2.0, elapsed
    assert "\n" not in err and "card.yaml" in err and "aliases" in err, err
    assert _all_files(home) == before  # no card, no temp file (hidden or not)
    assert main(["datasets"]) == 0
    listing = capsys.readouterr().out
    assert "ok" in listing and "mfeat" in listing and "bomb" not in listing


def test_a_bad_card_in_the_catalog_does_not_hide_the_others(tmp_path: Path, capsys) -> None:
    catalog = Path(os.environ["WORKBENCH_HOME"]) / "catalog"
    catalog.mkdir(parents=True)
    (catalog / "bomb.yaml").write_text(billion_laughs())
    (catalog / ".card-leftover.yaml").write_text("")  # a temp file an old version left: not a card
    with pytest.warns(UserWarning, match="bomb.yaml.*aliases"):
        assert main(["datasets"]) == 0
    assert "mfeat" in capsys.readouterr().out
    from data_catalog.registry import list_cards

    with pytest.raises(ValueError, match="aliases"):
        list_cards()


def test_oversized_card_is_refused_before_parsing(tmp_path: Path) -> None:
    from data_catalog.cards_schema import MAX_CARD_BYTES, CardError, read_card

    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_CARD_BYTES)
    with pytest.raises(CardError, match="larger than"):
        read_card(path)


def test_a_failed_card_write_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    from data_catalog import registry

    folder = _data_folder(tmp_path / "data" / "study", _card("study"))
    catalog = tmp_path / "catalog"

    def boom(*_a, **_k):
        raise OSError("No space left on device")

    monkeypatch.setattr(registry.yaml, "safe_dump", boom)
    with pytest.raises(OSError, match="No space"):
        registry.add_folder(folder, catalog_dir=catalog)
    assert _all_files(catalog) == []


def test_card_schema_checks_the_name_with_safe_name() -> None:
    from data_catalog.cards_schema import CardError, parse_card

    with pytest.raises(CardError, match="field 'name'.*not allowed"):
        parse_card(_card("../x"), origin="t")


# -- 1. the served dashboard in Chromium: no payload runs --------------------------------------------------
XSS_STATE = "() => ({xss: window.__xss === undefined ? null : String(window.__xss), title: document.title})"


@pytest.mark.browser
def test_no_payload_runs_in_the_browser(payload_root: Path) -> None:
    from widgets import browser

    if not Path(browser.CHROMIUM).exists():
        pytest.fail(f"{browser.CHROMIUM} is missing: install it with `{browser.INSTALL_HINT}`")
    states = []
    with browser.dashboard_server(payload_root) as url, browser.chromium() as page:
        page.goto(url)
        title = page.evaluate("document.title")
        # the failed run sorts first: its payload error is shown, as text
        page.get_by_text("window.__xss='error'").first.wait_for(state="visible", timeout=60_000)
        states.append(page.evaluate(XSS_STATE))
        page.locator("select").first.select_option(RUN_ID)
        browser.wait_until(lambda: len(browser.visible_plots(page)) >= 2, timeout=60)
        page.get_by_text("window.__xss='dataset'").first.wait_for(state="visible")  # the summary, as text
        tabs = page.locator(".bk-tab")
        names = [t.strip() for t in tabs.all_inner_texts()]
        assert "fairness" in names and RESULT in names, names  # the payload result name shown as text
        for i, name in enumerate(names):
            tabs.nth(i).click()
            page.wait_for_timeout(700)
            if name == RESULT:  # its table (an HTML table of the result's rows) shows group names as text
                page.get_by_text(re.compile("window.__xss='(group|attribute)'")).first.wait_for(state="visible")
            states.append(page.evaluate(XSS_STATE))
        page.mouse.move(400, 400)  # hover labels of whatever figure is under the pointer
        page.wait_for_timeout(300)
        states.append(page.evaluate(XSS_STATE))
    assert all(s["xss"] is None and s["title"] == title for s in states), states


# -- 6. the dashboard's shared, bounded run cache; deferred page building ---------------------------------
def test_run_cache_is_shared_bounded_and_sees_rewritten_runs(payload_root: Path, tmp_path: Path) -> None:
    from widgets.dashboard import Dashboard, RunCache
    from workbench.store.runs import RunStore

    root = tmp_path / "runs"
    good = next(p.name for p in payload_root.iterdir() if p.name.startswith("synthetic"))
    shutil.copytree(payload_root / good, root / good)
    for i in range(3):
        shutil.copytree(root / good, root / f"copy-{i}")
    cache = RunCache(maxsize=2)
    store = RunStore(root)
    first = Dashboard(root, cache=cache, defer=True)
    assert first.body.loading and first.history_plot.object is None  # deferred: nothing loaded yet
    first.start()
    assert first.history_plot.object is not None
    second = Dashboard(root, cache=cache)
    assert second.load(first.run_select.value) is first.load(first.run_select.value)  # shared between sessions
    for rid in ("copy-0", "copy-1", "copy-2"):
        cache.get(store, rid)
    assert len(cache) == 2  # bounded: least recently used runs dropped
    kept = cache.get(store, "copy-2")
    status = root / "copy-2" / "status.json"
    os.utime(status, ns=(status.stat().st_atime_ns, status.stat().st_mtime_ns + 10**9))
    assert cache.get(store, "copy-2") is not kept  # re-written run: read again
    with pytest.raises(ValueError, match="cache_size"):
        RunCache(0)


def test_run_ids_never_leave_the_runs_folder(tmp_path) -> None:
    """Every readable part of a run id is reduced to [A-Za-z0-9_-], whatever the names."""
    from workbench.store.runs import RunStore
    from workbench.training.config import TrainConfig
    from workbench.training.train import run_id_for

    store = RunStore(tmp_path)
    for hostile in ("../../evil", "<img src=x onerror=alert(1)>", "a/b\\c", ".hidden", "naïve"):
        run_id = run_id_for(hostile, TrainConfig(strategy=hostile, fusion="concat"))
        assert set(run_id) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        assert store.path(run_id).parent == tmp_path and store.incomplete_path(run_id).parent.parent == tmp_path
