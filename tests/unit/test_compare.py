"""Comparison statistics against hand computation; the figure builder; the CLI end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.analyses.compare import Comparison, compare
from workbench.cli.main import main
from workbench.stats.intervals import t_interval
from workbench.store.runs import Run, RunStore

T975_2 = 4.302652729749462  # Student t 0.975 quantile, 2 degrees of freedom (tables: 4.303)

# fused test accuracy per seed; B beats A by 0.05, 0.10, 0.0 on seeds 0, 1, 2
ACC = {"naive": [0.80, 0.90, 0.85], "better": [0.85, 1.00, 0.85]}


def _run(strategy: str, seed: int, acc: float) -> Run:
    n = 20
    correct_a = 10  # group A always right; group B carries every error
    correct_b = round(acc * n) - correct_a
    y = np.zeros(n, dtype=int)
    pred = y.copy()
    pred[correct_a + correct_b:] = 1
    predictions = pd.DataFrame({"sample": range(n), "y": y, "pred": pred, "split": "test",
                                "group_site": ["A"] * 10 + ["B"] * 10})
    config = {"dataset": "toy", "dataset_params": {}, "train": {"strategy": strategy, "fusion": "concat", "epochs": 3,
                                                                "seed": seed, "lr": 1e-3, "progress": False}}
    history = pd.DataFrame({"epoch": [1, 2], "modality_gap": [0.5, 0.1 * (seed + 1)]})
    metrics = {"test": {"fused": acc, "audio": 0.5 + 0.01 * seed, "n": n}}
    return Run(f"toy-{strategy}-s{seed}", config, history, predictions, metrics)


@pytest.fixture
def runs() -> list[Run]:
    return [_run(s, seed, a) for s, accs in ACC.items() for seed, a in enumerate(accs)]


def _row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = np.logical_and.reduce([frame[k] == v for k, v in where.items()])
    assert mask.sum() == 1, where
    return frame[mask].iloc[0]


def test_summary_matches_hand_computation(runs):
    cmp = compare(runs)
    row = _row(cmp.summary, strategy="naive", metric="acc_fused")
    # mean 0.85; deviations -0.05, 0.05, 0 -> sd = sqrt(0.005 / 2) = 0.05; half-width t * 0.05 / sqrt(3)
    half = T975_2 * 0.05 / math.sqrt(3)
    assert row["n"] == 3 and row["seeds"] == "0,1,2"
    assert row["mean"] == pytest.approx(0.85) and row["sd"] == pytest.approx(0.05)
    assert (row["mean_ci_lower"], row["mean_ci_upper"]) == pytest.approx((0.85 - half, 0.85 + half))
    assert row["config"] == "toy | naive | concat | 3 ep"
    # worst group: group A is always right, so the worst group is B with (acc * 20 - 10) / 10 correct
    worst = _row(cmp.summary, strategy="better", metric="worst_group_acc_site")
    assert worst["mean"] == pytest.approx(np.mean([(a * 20 - 10) / 10 for a in ACC["better"]]))
    gap = _row(cmp.summary, strategy="naive", metric="modality_gap")  # last epoch: 0.1, 0.2, 0.3
    assert gap["mean"] == pytest.approx(0.2) and gap["sd"] == pytest.approx(0.1)
    assert set(cmp.metrics()) == {"acc_fused", "acc_audio", "worst_group_acc_site", "modality_gap"}


def test_paired_differences_match_hand_computation(runs):
    paired = compare(runs, baseline="naive").paired
    row = _row(paired, metric="acc_fused")
    assert row["config_a"].startswith("toy | naive") and row["config_b"].startswith("toy | better")
    # d = 0.05, 0.10, 0.00: mean 0.05, sd 0.05
    half = T975_2 * 0.05 / math.sqrt(3)
    assert row["n"] == 3 and row["mean_diff"] == pytest.approx(0.05) and row["sd_diff"] == pytest.approx(0.05)
    assert (row["mean_diff_ci_lower"], row["mean_diff_ci_upper"]) == pytest.approx((0.05 - half, 0.05 + half))
    t_stat = 0.05 / (0.05 / math.sqrt(3))
    from scipy import stats

    assert row["p_value"] == pytest.approx(2 * stats.t.sf(t_stat, 2))
    same = _row(paired, metric="acc_audio")  # identical per seed -> exactly zero, no p-value
    assert same["mean_diff"] == 0 and same["sd_diff"] == 0 and np.isnan(same["p_value"])


def test_unpaired_seeds_are_dropped_and_single_seed_has_no_interval(runs):
    cmp = compare(runs[:3] + runs[3:4])  # "better" only has seed 0
    row = _row(cmp.summary, strategy="better", metric="acc_fused")
    assert row["n"] == 1 and np.isnan(row["sd"]) and np.isnan(row["mean_ci_lower"])
    pair = _row(cmp.paired, metric="acc_fused")
    # no baseline: A before B in label order, so "better" is A here
    assert pair["config_a"].startswith("toy | better") and pair["n"] == 1 and pair["seeds"] == "0"
    assert pair["mean_diff"] == pytest.approx(-0.05)
    assert t_interval(np.array([2.0]))[0] == 2.0


def test_comparison_saves_and_draws(runs, tmp_path):
    from widgets.figures import figures_for_result
    from widgets.figures.compare import configurations_figure, paired_figure

    cmp = compare(runs, baseline="naive")
    from workbench.store.results import load_result

    loaded = load_result(cmp.save(tmp_path / "cmp"))
    assert isinstance(loaded, Comparison)
    pd.testing.assert_frame_equal(loaded.summary, cmp.summary)
    fig = configurations_figure(loaded, metric="acc_fused")
    means, seeds = fig.data
    names = ["toy | naive | concat | 3 ep", "toy | better | concat | 3 ep"]
    assert [t.replace("<br>", " ") for t in fig.layout.yaxis.ticktext] == names
    assert list(means.y) == [0, 1] and sorted(seeds.y) == [0, 0, 0, 1, 1, 1]
    row = _row(cmp.summary, strategy="naive", metric="acc_fused")
    assert means.error_x.array[0] == pytest.approx(row["mean_ci_upper"] - row["mean"])
    assert len(seeds.x) == 6
    diffs = paired_figure(loaded, metric="acc_fused")
    assert diffs.data[0].x[0] == pytest.approx(0.05)
    assert diffs.layout.yaxis.ticktext[0] == "toy | better | concat | 3 ep<br>− toy | naive | concat | 3 ep"
    figs = figures_for_result("comparison", loaded)
    assert len(figs) == 2 * len(loaded.metrics())  # per metric: the means, the paired differences
    assert figs[0].layout.title.text == "acc_fused: mean over seeds per configuration"
    for builder in (configurations_figure, paired_figure):
        with pytest.raises(ValueError, match="no_metric"):
            builder(cmp, metric="no_metric")


def test_cli_sweep_then_compare(tmp_path, capsys):
    argv = ["--runs-dir", str(tmp_path), "sweep", "--dataset", "synthetic-xor", "--fusion", "concat,late",
            "--seeds", "0,1", "--epochs", "2", "--dataset-param", "n=200", "--workers", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    sweep_id = out.split("workbench compare ")[-1].split()[0]
    assert len(RunStore(tmp_path).run_ids()) == 4
    assert main(["--runs-dir", str(tmp_path), "compare", sweep_id, "--metric", "acc_fused",
                 "--save", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "synthetic-xor | naive | late | 2 ep" in out and "paired differences" in out
    cmp = Comparison.load(tmp_path / "cmp")
    assert set(cmp.summary.loc[cmp.summary["metric"] == "acc_fused", "n"]) == {2}
    # an unknown strategy fails its cells, the command reports it and exits non-zero
    assert main([*argv, "--strategy", "nope"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_comparison_panel_offers_every_figure_of_the_comparison(runs):
    from widgets.panels.base import ResultPanel
    from widgets.panels.compare import comparison_panel

    cmp = compare(runs, baseline="naive")
    panel = comparison_panel(cmp)
    table, figures = panel.children
    assert "toy | better | concat | 3 ep" in table.value and isinstance(figures, ResultPanel)
    titles = list(figures.selector.options)
    assert len(titles) == 2 * len(cmp.metrics()) and "Paired difference of acc_fused (B − A)" in titles
    figures.selector.value = "Paired difference of acc_fused (B − A)"
    assert figures.figure.data[0].x[0] == pytest.approx(0.05)  # the selected figure, not the first
