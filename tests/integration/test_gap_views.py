"""Gap views with a pair selector over every pair (issue 17, item 5): the report's all-pairs
figures (plotly's own dropdown, so it works in a static page), the run panel's gap tab and the
dashboard's gap tab."""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest

from widgets.figures.gap import gap_histogram_figure, gmm_params_figure, report_figures
from workbench.analyses.gap import gap_analysis

HOSTILE = "c<img src=x>"


@pytest.fixture(scope="module")
def gap():
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"epoch": np.repeat([1, 2], n // 2), "y": rng.integers(0, 3, n),
                          "p_true_a": rng.uniform(0.5, 1, n), "p_true_b": rng.uniform(0, 1, n),
                          f"p_true_{HOSTILE}": rng.beta(2, 5, n)})
    return gap_analysis(frame, ["a", "b", HOSTILE])


def test_report_figures_offer_every_pair_one_at_a_time(gap) -> None:
    assert len(gap.pairs) == 6 and sum(str(p).endswith("-rest") for p in gap.pairs) == 3
    hist, gmm = report_figures(gap)[:2]
    for merged, builder in ((hist, gap_histogram_figure), (gmm, gmm_params_figure)):
        (menu,) = merged.layout.updatemenus
        assert [b.label for b in menu.buttons] == [html.escape(str(p), quote=False) for p in gap.pairs]
        start = 0
        for button, pair in zip(menu.buttons, gap.pairs, strict=True):
            alone = builder(gap, pair)
            visible, relayout = button.args
            shown = [t for t, v in zip(merged.data, visible["visible"], strict=True) if v]
            # the entry shows exactly that pair's traces, with its data, and puts back its title and caption
            assert [t.name for t in shown] == [t.name for t in alone.data]
            np.testing.assert_allclose(np.asarray(shown[-1].y, float), np.asarray(alone.data[-1].y, float))
            assert relayout["title.text"] == alone.layout.title.text
            assert [a["text"] for a in relayout["annotations"]] == [a.text for a in alone.layout.annotations]
            assert visible["visible"][start:start + len(alone.data)] == [True] * len(alone.data)
            start += len(alone.data)
        # the first pair is shown to begin with
        assert [t.visible for t in merged.data[:len(builder(gap, gap.pairs[0]).data)]] == [True] * len(
            builder(gap, gap.pairs[0]).data)
    text = json.dumps(hist.to_plotly_json(), default=str)
    assert "<img" not in text and "c&lt;img src=x&gt;" in text  # labels, titles and captions all escaped


def test_run_panel_gap_tab_has_a_pair_selector(gap, tmp_path) -> None:
    from widgets.panels.base import RunPanel
    from workbench.training.train import train

    run = train("synthetic-imbalance", epochs=2, seed=0, runs_dir=tmp_path, dataset_params={"n": 200},
                progress=False)
    run.save_result("gap", gap)
    panel = RunPanel(run)
    tab = panel.tabs.children[list(panel.tabs.titles).index("gap")]
    pair = next(c for c in tab.children[0].children if getattr(c, "description", "") == "pair")
    assert list(pair.options) == list(gap.pairs)
    views = [c for c in tab.children if hasattr(c, "figure")]
    pair.value = gap.pairs[-1]  # each modality against the rest too
    assert views[0].figure.layout.title.text == gap_histogram_figure(gap, gap.pairs[-1]).layout.title.text


def test_dashboard_gap_tab_builds_one_pair_at_a_time(gap, tmp_path) -> None:
    from widgets.dashboard import GapTab

    tab = GapTab("gap", gap)
    assert list(tab.pair_select.options.values()) == [str(p) for p in gap.pairs]
    tab.pair_select.value = str(gap.pairs[-1])
    titles = [v.object.layout.title.text for v in tab.pair_view]
    assert titles == [gap_histogram_figure(gap, gap.pairs[-1]).layout.title.text,
                      gmm_params_figure(gap, gap.pairs[-1]).layout.title.text]
