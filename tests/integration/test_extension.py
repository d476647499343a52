"""An analysis from outside the package: defined here, registered via widgets.registry, saved into a
real run under an arbitrary name, and drawn by every view -- with no package file edited."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from widgets import registry
from workbench.store.results import Result
from workbench.training.train import train

# the name the report kernel imports this file by (pytest's own name for it, tests.integration..., is
# shadowed there by an installed ``tests`` package); the class declares it, so both processes agree
EXTENSION_MODULE = "test_extension"
sys.modules.setdefault(EXTENSION_MODULE, sys.modules[__name__])
SAVED_AS = "whatever-name"  # not a name any built-in knows
TITLE = "modality agreement (extension)"


@dataclass
class AgreementResult(Result):
    """How often each unimodal head agrees with the fused model (a toy analysis)."""

    __module__ = EXTENSION_MODULE

    agreement: pd.DataFrame
    note: str = ""


def agreement_figures(result: AgreementResult) -> list[go.Figure]:
    frame = result.agreement
    return [go.Figure(go.Bar(x=frame["modality"], y=frame["agreement"]), layout={"title": {"text": TITLE}})]


# registered at import, as an extension module would; the report kernel imports this module too
registry.register_figures(AgreementResult, f"{EXTENSION_MODULE}:agreement_figures")


def agreement(run) -> AgreementResult:
    pred = run.predictions
    rows = [{"modality": m, "agreement": float((pred[f"pred_{m}"] == pred["pred"]).mean())} for m in run.modalities]
    return AgreementResult(pd.DataFrame(rows), note="<b>not HTML</b>")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = train("synthetic-imbalance", epochs=2, runs_dir=tmp_path_factory.mktemp("runs"),
                dataset_params={"n": 300}, progress=False)
    run.save_result(SAVED_AS, agreement(run))
    return run


def test_result_figures_by_class(run):
    from widgets.figures.result import result_figures
    from workbench.store.results import load_result

    loaded = load_result(run.path / "results" / SAVED_AS)
    assert isinstance(loaded, AgreementResult)
    figures = result_figures(SAVED_AS, loaded)
    assert list(figures) == [TITLE] and figures[TITLE].data[0].type == "bar"


def test_panel_paths(run, monkeypatch):
    from widgets.panels.base import ResultPanel, RunPanel
    from workbench import load_run
    from workbench.display import show

    panel = RunPanel(load_run(run.path))
    tab = panel.tabs.children[1 + run.result_names().index(SAVED_AS)]
    assert isinstance(tab, ResultPanel) and tab.figure.layout.title.text == TITLE
    shown: list = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    show(agreement(run))
    assert isinstance(shown[0], ResultPanel) and shown[0].figure.layout.title.text == TITLE


def test_html_report(run, tmp_path, monkeypatch):
    from workbench.cli.report import render_run_report

    # the report kernel is another process: it imports this module as an extension
    monkeypatch.setenv(registry.EXTENSIONS_ENV, EXTENSION_MODULE)
    folder = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([folder, os.environ.get("PYTHONPATH", "")]))
    html = render_run_report(run.path, tmp_path / "report.html").read_text()
    assert f"<h3>{SAVED_AS}</h3>" in html and TITLE in html
    assert "What this run says" in html and "Accuracy by model: fused, unimodal head" in html
    assert "cannot be loaded" not in html and "Traceback" not in html
