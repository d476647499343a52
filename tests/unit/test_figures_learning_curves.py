"""Learning-curve figures draw the result's own tables, show 63 coalitions readably, and are found by name."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from widgets.figures.captions import caption_text
from widgets.figures.learning_curves import (
    connection_figure,
    learning_curve_figure,
    report_figures,
)
from widgets.registry import figures_target
from workbench.analyses.learning_curves import LearningCurvesResult

MODALITIES = ["fac", "fou", "kar", "mor", "pix", "zer"]  # mfeat's six: 63 coalitions
SIZES = [50, 100, 200, 400]


def coalitions() -> list[str]:
    return ["+".join(c) for k in range(1, 7) for c in itertools.combinations(MODALITIES, k)]


@pytest.fixture(scope="module")
def result() -> LearningCurvesResult:
    """A result with known tables: accuracy grows with n and with the coalition's size; 'pix' is the best single."""
    rng = np.random.default_rng(0)
    runs, curves = [], []
    for c in coalitions():
        size = c.count("+") + 1
        for n in SIZES:
            base = 0.3 + 0.08 * size + 0.05 * np.log2(n / 50) + (0.1 if c == "pix" else 0.0) + rng.uniform(0, 0.01)
            for seed in range(3):
                runs.append({"coalition": c, "size": size, "n": n, "seed": seed, "accuracy": base + 0.01 * seed,
                             "log_loss": 2 - base})
            curves.append({"coalition": c, "size": size, "n": n, "accuracy": base + 0.01,
                           "accuracy_ci_lower": base - 0.02, "accuracy_ci_upper": base + 0.04, "log_loss": 2 - base,
                           "log_loss_ci_lower": 1.9 - base, "log_loss_ci_upper": 2.1 - base})
    pairs = [{"source": a, "target": b, "connection_r2": 0.1 * i + 0.05 * j, "connection_r2_ci_lower": 0.1 * i,
              "connection_r2_ci_upper": 0.1 * i + 0.1, "heterogeneity": 0.01 * (i + j) - 0.03,
              "heterogeneity_ci_lower": 0.01 * (i + j) - 0.05, "heterogeneity_ci_upper": 0.01 * (i + j) - 0.01}
             for (i, a), (j, b) in itertools.permutations(enumerate(MODALITIES), 2)]
    return LearningCurvesResult(pd.DataFrame(runs), pd.DataFrame(curves), pd.DataFrame(pairs), 100.0, 0.12, 0.1,
                                0.14, 0.95, "pix")


def test_63_coalitions_show_singletons_full_and_top_few(result):
    fig = learning_curve_figure(result, top=3)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(lines) == 63
    visible = [t.legendgroup for t in lines if t.visible is True]
    full = "+".join(MODALITIES)
    # top 3 at the largest n among the 5-modality coalitions (largest size after the full one), ties by order
    five = [c for c in coalitions() if c.count("+") == 4]
    last = result.curves[(result.curves["n"] == 400) & result.curves["coalition"].isin(five)]
    top = last.sort_values("accuracy", ascending=False, kind="stable")["coalition"].tolist()[:3]
    assert visible == [full, *MODALITIES, *top]
    assert {t.visible for t in lines if t.legendgroup not in visible} == {"legendonly"}
    names = {t.legendgroup: t.name for t in lines}
    assert names[full] == f"{full} (all)" and names["pix"] == "pix (best unimodal)"
    widths = {t.legendgroup: t.line.width for t in lines}
    assert widths[full] == widths["pix"] == 4 and widths["fac"] < 4
    assert fig.layout.xaxis.type == "log"


@pytest.mark.parametrize("metric", ["accuracy", "log_loss"])
def test_plotted_values_and_bands_equal_the_curves_table(result, metric):
    fig = learning_curve_figure(result, metric=metric)
    c = result.curves
    bands = {t.legendgroup: t for t in fig.data if t.fill == "toself"}
    for t in (t for t in fig.data if t.mode == "lines+markers"):
        g = c[c["coalition"] == t.legendgroup].sort_values("n")
        assert np.array_equal(t.x, g["n"].to_numpy(float))
        assert np.allclose(t.y, g[metric])
        band = bands[t.legendgroup]
        assert band.visible == t.visible  # the band toggles with its line (same legend group)
        assert np.allclose(band.y, np.r_[g[f"{metric}_ci_upper"], g[f"{metric}_ci_lower"][::-1]])


def test_crossover_is_marked_at_the_full_models_value(result):
    fig = learning_curve_figure(result)
    star = [t for t in fig.data if t.name and t.name.startswith("crossover")]
    assert len(star) == 1 and star[0].x == (100.0,)
    full = result.curves[(result.curves["coalition"] == "+".join(MODALITIES)) & (result.curves["n"] == 100)]
    assert star[0].y[0] == pytest.approx(float(full["accuracy"].iloc[0]))
    assert fig.layout.shapes[0].x0 == 100.0
    caption = caption_text(fig)
    assert "crossover n=100" in caption and "+0.120 [+0.100, +0.140]" in caption and "95% t interval" in caption


def test_no_crossover_is_said(result):
    import dataclasses

    fig = learning_curve_figure(dataclasses.replace(result, crossover_n=None))
    assert not [t for t in fig.data if t.name and t.name.startswith("crossover")]
    assert "No crossover" in caption_text(fig)


def test_connection_map_equals_the_pairs_table(result):
    fig = connection_figure(result)
    r2, het = fig.data
    p = result.pairs
    assert list(r2.x) == MODALITIES and list(r2.y) == MODALITIES
    for i, a in enumerate(MODALITIES):
        assert np.isnan(r2.z[i][i]) and np.isnan(het.z[i][i])  # no self-pairs
        for j, b in enumerate(MODALITIES):
            if a == b:
                continue
            row = p[(p["source"] == a) & (p["target"] == b)].iloc[0]
            assert r2.z[i][j] == pytest.approx(row["connection_r2"])
            assert het.z[i][j] == pytest.approx(row["heterogeneity"])
            assert r2.text[i][j] == (f"{row['connection_r2']:.2f} [{row['connection_r2_ci_lower']:.2f}, "
                                     f"{row['connection_r2_ci_upper']:.2f}]")
            assert het.text[i][j] == (f"{row['heterogeneity']:+.3f} [{row['heterogeneity_ci_lower']:+.3f}, "
                                      f"{row['heterogeneity_ci_upper']:+.3f}]")
    assert het.zmid == 0
    caption = caption_text(fig)
    assert "R^2" in caption and "heterogeneity" in caption and "95% t interval over 3 seeds" in caption


def test_bad_options_are_named(result):
    with pytest.raises(ValueError, match="metric"):
        learning_curve_figure(result, metric="auc")
    with pytest.raises(ValueError, match="top"):
        learning_curve_figure(result, top=-1)


def test_found_by_name_and_report_figures(result):
    assert figures_target(LearningCurvesResult) == "widgets.figures.learning_curves:report_figures"
    figs = report_figures(result)
    assert [f.layout.yaxis.title.text for f in figs[:2]] == ["test accuracy (share correct)", "test log loss (nats)"]
    assert len(figs) == 3 and all("better" in caption_text(f) for f in figs)
