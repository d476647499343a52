"""The recommendation analysis equals its per-user pieces; figures carry captions."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog.synthetic_recsys import synthetic_recsys
from workbench.analyses.recommendation import recommendation_analysis
from workbench.training.ranking import evaluate_ranking, fit_ranking


def test_analysis_tables():
    data = synthetic_recsys(n_users=100, n_items=60, seed=0)
    fit = fit_ranking(data, model="popularity")
    res = recommendation_analysis({"pop": fit}, data, n_boot=100, group_by=("group",))
    ref = evaluate_ranking(fit, data)
    row = res.metrics.query("domain == 'A' and setting == 'transductive' and metric == 'recall' and k == 20")
    assert float(row["value"].iloc[0]) == pytest.approx(ref.loc[ref.domain == "A", "recall@20"].mean())
    assert (row["value_ci_lower"] <= row["value"]).all() and (row["value"] <= row["value_ci_upper"]).all()
    g = res.by_group.query("domain == 'A' and setting == 'transductive' and metric == 'recall' and k == 20")
    gap = res.gaps.query("domain == 'A' and setting == 'transductive' and metric == 'recall' and k == 20")
    assert float(gap["gap"].iloc[0]) == pytest.approx(np.ptp(g["value"].to_numpy()))
    with pytest.raises(ValueError, match="group_by: 'sex'"):
        recommendation_analysis({"pop": fit}, data, group_by=("sex",))


def test_figures_have_captions():
    from widgets.figures.captions import caption_text
    from widgets.figures.recommendation import (
        recommendation_group_figure,
        recommendation_metrics_figure,
    )

    data = synthetic_recsys(n_users=60, n_items=40, seed=1)
    res = recommendation_analysis({"pop": fit_ranking(data, model="popularity")}, data, n_boot=50,
                                  group_by=("group",))
    for fig in (recommendation_metrics_figure(res), recommendation_group_figure(res)):
        assert "bootstrap interval over users" in caption_text(fig)
