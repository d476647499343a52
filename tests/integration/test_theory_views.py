"""The theory lab and learning-curve results in the notebook panel (``workbench.display.show``) and as
dashboard tabs of a run they were saved into: the figures shown are their registered builders' figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import pytest

import workbench.display as display_mod
from widgets.dashboard import Dashboard, ResultTab
from widgets.figures.learning_curves import report_figures as curve_figures
from widgets.figures.theory import report_figures as theory_figures
from widgets.panels.base import ResultPanel
from widgets.registry import panel_builder
from workbench import load_dataset
from workbench.analyses.learning_curves import LearningCurvesResult, learning_curves
from workbench.analyses.theory_lab import TheoryLabResult, theory_lab
from workbench.training.train import train


@pytest.fixture(scope="module")
def curves() -> LearningCurvesResult:
    return learning_curves(load_dataset("synthetic-xor", n=300), sizes=[40, 80, 160], seeds=[0, 1], epochs=3,
                           progress=False)


@pytest.fixture(scope="module")
def lab() -> TheoryLabResult:
    return theory_lab(ns=[8, 32], eps=[0.5, 0.05], sigma_y=[0.0, 0.5], learners=["mm", "uni_erm"], seeds=3,
                      grid=256, n_test=512, progress=False)


def titles(figs) -> list[str]:
    return [f.layout.title.text for f in figs]


def same_ys(a, b) -> bool:
    """The two figures draw the same scatter traces with the same y values (NaN equal to NaN)."""
    ta = [t for t in a.data if t.type == "scatter"]
    tb = [t for t in b.data if t.type == "scatter"]
    return len(ta) == len(tb) and all(np.allclose(np.asarray(x.y, float), np.asarray(y.y, float), equal_nan=True)
                                      for x, y in zip(ta, tb, strict=True))


@pytest.mark.parametrize("which", ["curves", "lab"])
def test_show_gives_the_result_panel_with_the_registered_figures(which, request, monkeypatch):
    result = request.getfixturevalue(which)
    expected = (curve_figures if which == "curves" else theory_figures)(result)
    assert panel_builder(result) is ResultPanel
    shown: list = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    display_mod.show(result)
    assert len(shown) == 1 and isinstance(shown[0], ResultPanel)
    panel = shown[0]
    assert list(panel.figures) == titles(expected)
    assert len(panel.selector.options) == len(expected)
    assert same_ys(panel.figure, expected[0])  # the first figure is displayed
    panel.selector.value = titles(expected)[-1]
    assert [t.type for t in panel.figure.data] == [t.type for t in expected[-1].data]


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, curves, lab) -> Path:
    root = tmp_path_factory.mktemp("runs")
    run = train("synthetic-imbalance", epochs=2, seed=0, runs_dir=root, dataset_params={"n": 200}, progress=False)
    run.save_result("coalition_curves", curves)
    run.save_result("theory", lab)
    return root


def test_saved_learning_curves_round_trip(runs_root, curves):
    from workbench.store.results import load_result

    folder = next(runs_root.iterdir()) / "results" / "coalition_curves"
    back = load_result(folder)
    assert isinstance(back, LearningCurvesResult) and back.best_unimodal == curves.best_unimodal
    pd.testing.assert_frame_equal(back.curves, curves.curves)
    assert back.crossover_n == curves.crossover_n and back.gap == pytest.approx(curves.gap)


def test_dashboard_shows_a_tab_per_saved_result_with_its_figures(runs_root, curves, lab):
    dash = Dashboard(runs_root)
    assert not dash.message.visible
    assert [t.name for t in dash.tabs] == ["overview", "coalition_curves", "theory", "compare runs"]
    for tab, result, builder in ((dash.tabs[1], curves, curve_figures), (dash.tabs[2], lab, theory_figures)):
        assert isinstance(tab, ResultTab)
        expected = builder(result)
        assert list(tab.figures) == titles(expected)
        pane = tab.view[0]
        assert isinstance(pane, pn.pane.Plotly) and same_ys(pane.object, expected[0])
        tab.selector.value = titles(expected)[-1]  # the selector switches the drawn figure
        assert [t.type for t in tab.view[0].object.data] == [t.type for t in expected[-1].data]
    # the learning-curve tab's first figure draws the saved table's numbers
    full = curves.curves[curves.curves["size"] == curves.curves["size"].max()].sort_values("n")
    first = dash.tabs[1].figures[titles(curve_figures(curves))[0]]
    shown = {t.legendgroup: t for t in first.data if t.mode == "lines+markers"}
    assert np.allclose(shown[full["coalition"].iloc[0]].y, full["accuracy"])
