"""The runs table, differing settings, default comparisons and learning curves over seeds
(:mod:`workbench.analyses.runs_table`), on run folders written here with known configs and scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench.analyses.runs_table import (
    RUN_COLUMNS,
    comparable_runs,
    compare_runs,
    configuration_labels,
    differing_parameters,
    non_default_parameters,
    runs_table,
    seed_curves,
)
from workbench.store.runs import RunStore
from workbench.training.config import TrainConfig


def write_run(
    root: Path,
    run_id: str,
    *,
    dataset: str = "toy",
    created: str = "2026-01-01T00:00:00",
    accuracy: dict | None = None,
    dataset_params: dict | None = None,
    **train,
) -> str:
    """A complete run folder's JSON files (what the runs table reads), with the given training settings."""
    folder = root / run_id
    folder.mkdir(parents=True)
    cfg = {
        "dataset": dataset,
        "dataset_params": dataset_params or {},
        "train": TrainConfig(**{"progress": False, **train}).to_dict(),
        "modalities": ["audio", "video"],
        "shapes": {"audio": [4], "video": [4]},
        "kinds": {"audio": "vector", "video": "vector"},
        "classes": [0, 1],
        "created": created,
    }
    acc = accuracy or {"fused": 0.9, "audio": 0.7, "video": 0.6}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "metrics.json").write_text(json.dumps({"test": {**acc, "n": 100}}))
    (folder / "status.json").write_text(json.dumps({"status": "complete", "version": 1}))
    return run_id


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_run(root, "base-s0", seed=0, created="2026-01-01T10:00:00", dataset_params={"n": 300})
    write_run(
        root,
        "base-s1",
        seed=1,
        created="2026-01-01T11:00:00",
        dataset_params={"n": 300},
        accuracy={"fused": 0.8, "audio": 0.5, "video": 0.75},
    )
    write_run(
        root,
        "sgd-s0",
        seed=0,
        lr=0.01,
        optimizer="sgd",
        created="2026-01-02T10:00:00",
        dataset_params={"n": 300},
    )
    write_run(
        root,
        "ogm-s0",
        seed=0,
        strategy="ogm_ge",
        strategy_params={"alpha": 0.5},
        created="2026-01-03T10:00:00",
        dataset_params={"n": 300},
    )
    RunStore(root).mark_failed(
        "oom-s0", {"dataset": "toy", "train": {"strategy": "mlb", "seed": 0}}, "CUDA OOM"
    )
    (root / ".incomplete" / "killed-s0").mkdir(parents=True)
    (root / ".incomplete" / "killed-s0.lock").write_text("12345")
    return root


def test_one_row_per_run_with_its_settings_scores_and_status(root: Path) -> None:
    store = RunStore(root)
    with store.lock("live-s3"):  # a trainer holds this lock right now
        table = runs_table(root)
    runs = table.runs.set_index("run_id")
    assert list(table.runs.columns) == RUN_COLUMNS
    assert runs["status"].to_dict() == {
        "ogm-s0": "complete",
        "sgd-s0": "complete",
        "base-s1": "complete",
        "base-s0": "complete",
        "oom-s0": "failed",
        "live-s3": "running",
        "killed-s0": "interrupted",
    }
    # only the settings that differ from TrainConfig's defaults, strategy/fusion/seed/epochs in their own columns
    assert runs.loc["base-s0", "params"] == ""
    assert runs.loc["sgd-s0", "params"] == "lr=0.01, optimizer=sgd"
    assert runs.loc["ogm-s0", "params"] == "strategy_params.alpha=0.5"
    assert (
        runs.loc["ogm-s0", "strategy"] == "ogm_ge"
        and runs.loc["base-s0", "dataset_params"] == "n=300"
    )
    assert runs.loc[
        "base-s1", ["acc_fused", "best_modality", "acc_best", "worst_modality", "acc_worst"]
    ].tolist() == [0.8, "video", 0.75, "audio", 0.5]
    assert runs.loc["oom-s0", "error"] == "CUDA OOM" and runs.loc["oom-s0", "strategy"] == "mlb"
    # configuration = everything but the seed: the two base runs share one, the others each have their own
    assert runs.loc["base-s0", "configuration"] == runs.loc["base-s1", "configuration"]
    assert runs.loc[["base-s0", "sgd-s0", "ogm-s0"], "configuration"].nunique() == 3
    # newest first (the failed, running and interrupted ones were made today)
    assert [r for r in table.runs["run_id"] if r in table.complete()] == [
        "ogm-s0",
        "sgd-s0",
        "base-s1",
        "base-s0",
    ]
    assert "live-s3" not in set(
        runs_table(root).runs["run_id"]
    )  # lock released, nothing trained: gone


def test_non_default_parameters_against_the_declared_defaults() -> None:
    assert non_default_parameters(TrainConfig().to_dict()) == {}
    assert non_default_parameters(
        {**TrainConfig().to_dict(), "dropout": 0.3, "epochs": 99, "device": "cpu"}
    ) == {"dropout": 0.3}  # epochs has its own column, device does not change the numbers


def test_differing_parameters_and_labels(root: Path) -> None:
    table = runs_table(root)
    differ = differing_parameters(table, ["base-s0", "sgd-s0", "base-s1"])
    assert differ.index.tolist() == ["lr", "optimizer", "seed"]
    assert differ.loc["lr"].tolist() == ["0.001", "0.01", "0.001"]
    assert differ.loc["seed"].tolist() == ["0", "0", "1"]
    assert differing_parameters(table, ["base-s0", "base-s1"], include_seed=False).empty
    assert differing_parameters(table, ["base-s0", "ogm-s0"]).index.tolist() == [
        "strategy",
        "strategy_params.alpha",
    ]
    assert differing_parameters(table, ["base-s0", "ogm-s0"]).loc[
        "strategy_params.alpha"
    ].tolist() == ["(unset)", "0.5"]
    labels = configuration_labels(table, ["base-s0", "base-s1", "sgd-s0"])
    assert labels == {
        "base-s0": "lr=0.001, optimizer=adam",
        "base-s1": "lr=0.001, optimizer=adam",
        "sgd-s0": "lr=0.01, optimizer=sgd",
    }
    assert configuration_labels(table, ["base-s0", "base-s1"]) == dict.fromkeys(
        ["base-s0", "base-s1"], "toy · naive · concat"
    )
    with pytest.raises(ValueError, match="run_ids: 'oom-s0' is not a complete run"):
        differing_parameters(table, ["base-s0", "oom-s0"])


def test_default_comparison_is_seeds_of_one_configuration_never_unrelated_runs(
    root: Path, tmp_path: Path
) -> None:
    write_run(root, "sgd-s1", seed=1, lr=0.01, optimizer="sgd", dataset_params={"n": 300})
    write_run(root, "base-s2", seed=2, dataset_params={"n": 300})
    write_run(root, "other-s0", dataset="elsewhere", seed=0, created="2026-02-01T00:00:00")
    write_run(
        root, "other-s1", dataset="elsewhere", seed=1, created="2026-02-01T00:00:00", epochs=5
    )
    # base has 3 seeds; sgd shares 2 of them on the same dataset; ogm shares one; 'elsewhere' is unrelated
    assert sorted(comparable_runs(runs_table(root))) == [
        "base-s0",
        "base-s1",
        "base-s2",
        "sgd-s0",
        "sgd-s1",
    ]
    lone = tmp_path / "lone"
    write_run(lone, "a", seed=0)
    write_run(lone, "b", seed=0, lr=0.01)
    write_run(lone, "c", seed=0, lr=0.01, optimizer="sgd", dropout=0.3)
    write_run(lone, "z", dataset="elsewhere", seed=0)
    assert comparable_runs(runs_table(lone)) == ["a", "b"]  # one setting apart: the closest pair


def _run(run_id: str, seed: int, values: list[float]):
    from workbench.store.runs import Run

    history = pd.DataFrame(
        {
            "epoch": range(1, len(values) + 1),
            "heldout_acc": values,
            "train_loss": [1.0 / v for v in values],
        }
    )
    config = {"dataset": "toy", "train": {**TrainConfig(seed=seed, progress=False).to_dict()}}
    predictions = pd.DataFrame({"sample": [0], "split": ["test"], "pred": [1], "y": [1]})
    return Run(run_id, config, history, predictions, {"test": {"fused": values[-1], "n": 10}})


def test_seed_curves_mean_and_t_interval_per_epoch() -> None:
    runs = [
        _run("a0", 0, [0.5, 0.6, 0.7]),
        _run("a1", 1, [0.6, 0.8, 0.9]),
        _run("a2", 2, [0.4, 0.7]),
        _run("b0", 0, [0.3, 0.3, 0.3]),
    ]
    labels = {"a0": "A", "a1": "A", "a2": "A", "b0": "B"}
    curves = seed_curves(runs, "heldout_acc", labels=labels).set_index(["configuration", "epoch"])
    values = np.array([0.6, 0.8, 0.7])
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    assert curves.loc[("A", 2), ["n", "mean"]].tolist() == [3, pytest.approx(0.7)]
    assert curves.loc[("A", 2), "mean_ci_lower"] == pytest.approx(0.7 - half)
    assert curves.loc[("A", 2), "mean_ci_upper"] == pytest.approx(0.7 + half)
    assert (
        curves.loc[("A", 3), "n"] == 2 and curves.loc[("A", 3), "seeds"] == "0,1"
    )  # seed 2 stopped at epoch 2
    assert np.isnan(curves.loc[("B", 1), "mean_ci_lower"])  # one seed: no interval
    with pytest.raises(ValueError, match="metric 'nope' is not a numeric history column"):
        seed_curves(runs, "nope", labels=labels)


def test_compare_runs_takes_any_history_column_and_names_configurations(tmp_path: Path) -> None:
    runs = [
        _run("a0", 0, [0.5, 0.7]),
        _run("a1", 1, [0.6, 0.8]),
        _run("b0", 0, [0.5, 0.6]),
        _run("b1", 1, [0.5, 0.5]),
    ]
    cmp = compare_runs(runs, {"a0": "lr=0.1", "a1": "lr=0.1", "b0": "lr=1", "b1": "lr=1"})
    assert {"acc_fused", "final_heldout_acc", "final_train_loss"} <= set(cmp.metrics())
    paired = cmp.paired.set_index("metric")
    # B - A per seed: 0.6 - 0.7 and 0.5 - 0.8
    assert paired.at["final_heldout_acc", "mean_diff"] == pytest.approx(-0.2)
    assert (
        paired.at["final_heldout_acc", "config_a"],
        paired.at["final_heldout_acc", "config_b"],
    ) == ("lr=0.1", "lr=1")


def test_hostile_configuration_names_show_literally_in_the_figure_json() -> None:
    """plotly decodes &lt; &gt; &amp; but not &quot;: a quote must reach it as a quote, a tag never as a tag."""
    from plotly.io import to_json

    from widgets.figures.compare import configurations_figure
    from widgets.figures.runs_table import seed_curves_figure
    from widgets.panels.view import figure_spec

    hostile = 'lr="0.1" <img src=x onerror="window.__pwned=1">'
    runs = [_run("a0", 0, [0.5, 0.6]), _run("a1", 1, [0.6, 0.8]), _run("b0", 0, [0.3, 0.3])]
    curves = seed_curves(runs, "heldout_acc", labels={"a0": hostile, "a1": hostile, "b0": "B"})
    spec = figure_spec(seed_curves_figure(curves, metric="heldout_acc"))
    names = [t.get("name", "") for t in spec["data"]]
    shown = next(n for n in names if n.startswith("lr="))
    assert shown == 'lr="0.1" &lt;img src=x onerror="window.__pwned=1"&gt; (2 seeds)'
    text = to_json(spec)
    assert "&quot;" not in text and "&#x27;" not in text and "<img" not in text
    # wrapped names on an axis: each line escaped, the breaks kept
    cmp = compare_runs(runs, {"a0": hostile * 2, "a1": hostile * 2, "b0": "B"})
    ticks = configurations_figure(cmp, metric="final_heldout_acc").layout.yaxis.ticktext
    lines = [line for t in ticks for line in t.split("<br>")]
    assert len(lines) > len(ticks) and not any("<" in line or ">" in line for line in lines)
    assert "".join(lines).replace(" ", "").startswith('lr="0.1"&lt;imgsrc=xonerror=')
