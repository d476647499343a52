"""Every result table follows one interval convention: ``x``, ``x_ci_lower``, ``x_ci_upper``.

The results are built the way the existing tests build them (small synthetic inputs, the
committed pre-layout run) and every DataFrame field is scanned; results saved before the
convention must load under the new names.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_catalog.synthetic import imbalance
from workbench.analyses import compare as compare_mod
from workbench.analyses import imbalance_benchmark as bench
from workbench.analyses.fairness import assess_fairness
from workbench.analyses.gap import gap_analysis
from workbench.analyses.shapley import conformal_shapley
from workbench.store.results import Result, load_result
from workbench.training.trainer import TrainConfig

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout_run"
# old spellings that must not survive anywhere
FORBIDDEN = re.compile(r"(^|_)(lo|hi|low|high|ci_low|ci_high)$|^ci_(lower|upper)$")
# conformal *prediction* intervals of a sample's Shapley value (not confidence intervals of an
# estimate, see ShapleyResult) and a count named after them
NOT_CONFIDENCE = {"lower", "upper", "cond_lower", "cond_upper", "n_positive_lower"}


def interval_violations(name: str, frame: pd.DataFrame) -> list[str]:
    """Columns of ``frame`` that break the convention, as readable strings."""
    cols, bad = set(map(str, frame.columns)), []
    for c in cols:
        if FORBIDDEN.search(c):
            bad.append(f"{name}.{c}: old interval name")
        elif c.endswith(("_lower", "_upper")) and c not in NOT_CONFIDENCE and not c.endswith(("_ci_lower", "_ci_upper")):
            bad.append(f"{name}.{c}: should be <estimate>_ci_lower/_ci_upper")
        elif c.endswith("_ci_lower"):
            est = c[: -len("_ci_lower")]
            if est not in cols or f"{est}_ci_upper" not in cols:
                bad.append(f"{name}.{c}: needs {est!r} and {est}_ci_upper beside it")
        elif c.endswith("_ci_upper") and f"{c[: -len('_ci_upper')]}_ci_lower" not in cols:
            bad.append(f"{name}.{c}: needs its _ci_lower")
    return bad


def tables(result: Result) -> dict[str, pd.DataFrame]:
    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
            if isinstance(getattr(result, f.name), pd.DataFrame)}


def assert_convention(result: Result) -> None:
    bad = [v for name, frame in tables(result).items() for v in interval_violations(name, frame)]
    assert not bad, bad
    assert any(c.endswith("_ci_lower") for f in tables(result).values() for c in f.columns), "no interval at all"


def test_checker_flags_old_names():
    old = pd.DataFrame(columns=["value", "lo", "hi", "mean", "ci_low", "ci_high", "acc", "acc_lower", "acc_upper",
                                "d", "ci_lower", "ci_upper", "x_ci_lower"])
    bad = interval_violations("t", old)
    assert len(bad) == 9, bad
    good = pd.DataFrame(columns=["value", "value_ci_lower", "value_ci_upper", "lower", "upper"])
    assert interval_violations("t", good) == []


def _gap_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, 2, n)
    return pd.DataFrame({"epoch": 1, "sample": np.arange(n), "y": y, "p_true_a": rng.uniform(0.5, 1, n),
                         "p_true_b": rng.uniform(0, 1, n), "pred_a": y, "pred_b": rng.integers(0, 2, n)})


def test_gap_result_follows_the_convention():
    res = gap_analysis(_gap_frame(), ["a", "b"], level=0.9)
    assert_convention(res)
    assert res.level == 0.9
    wide = gap_analysis(_gap_frame(), ["a", "b"])  # 0.95 by default, wider
    assert (wide.summary["mean_gap_ci_upper"] - wide.summary["mean_gap_ci_lower"]
            > res.summary["mean_gap_ci_upper"] - res.summary["mean_gap_ci_lower"]).all()
    with pytest.raises(ValueError, match="level"):
        gap_analysis(_gap_frame(), ["a", "b"], level=95)


def _fairness_predictions(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.5 + 0.3 * (2 * y - 1) + 0.2 * rng.standard_normal(n), 0.01, 0.99)
    frame = pd.DataFrame({"sample": np.arange(n), "y": y, "pred": (p1 > 0.5).astype(int), "p_0": 1 - p1, "p_1": p1,
                          "group_sex": rng.choice(["F", "M"], n)})
    for m in ("audio", "video"):
        frame[f"pred_{m}"] = np.where(rng.random(n) < 0.7, y, 1 - y)
        frame[f"p_true_{m}"] = rng.uniform(0, 1, n)
    return frame


def test_fairness_result_follows_the_convention():
    res = assess_fairness(_fairness_predictions(), n_boot=20, n_perm=20, level=0.9)
    assert_convention(res)
    assert res.params["level"] == 0.9
    with pytest.raises(ValueError, match="level"):
        assess_fairness(_fairness_predictions(), n_boot=5, level=1.5)


def _runs_long() -> pd.DataFrame:
    rows = []
    for config, shift in (("a", 0.0), ("b", 0.05)):
        for seed in range(3):
            rows.append({"config_key": config, "config": config, "dataset": "d", "strategy": config, "fusion": "f",
                         "epochs": 1, "seed": seed, "metric": "acc", "value": 0.8 + shift + 0.01 * seed})
    return pd.DataFrame(rows)


def test_comparison_and_benchmark_tables_follow_the_convention():
    runs = _runs_long()
    cmp = compare_mod.Comparison(summary=compare_mod.summarize_runs(runs, 0.9),
                                 paired=compare_mod.paired_differences(runs, level=0.9), runs=runs, level=0.9)
    assert_convention(cmp)
    scores = runs.rename(columns={"strategy": "method", "fusion": "kind", "value": "accuracy"}).assign(model="fused")
    summary, paired = bench.summarize(scores, level=0.9), bench.paired_differences(scores, "b", "a", level=0.9)
    for name, frame in (("summary", summary), ("paired", paired)):
        assert interval_violations(name, frame) == []
    assert {"mean_ci_lower", "mean_ci_upper"} <= set(summary) and "diff_mean_ci_lower" in paired


@pytest.fixture(scope="module")
def shapley_result():
    ds = imbalance(n=400, dims=[4, 4], snr=[2.0, 0.0], names=["signal", "noise"], seed=0)
    cfg = TrainConfig(epochs=3, seed=0, progress=False, hidden=16, embed=8)
    return ds, conformal_shapley(ds, ds.split(seed=0, train=0.5, calib=0.3, test=0.2), value_method="masked",
                                 config=cfg, alpha=0.1, level=0.9, n_pca=1, progress=False)


def test_shapley_result_follows_the_convention(shapley_result):
    ds, res = shapley_result
    assert_convention(res)
    assert res.level == 0.9 and (res.modalities["level"] == 0.9).all() and (res.modalities["alpha"] == 0.1).all()
    with pytest.raises(ValueError, match="level"):
        conformal_shapley(ds, ds.split(seed=0), level=0.0, progress=False)


def _save_with_old_names(result: Result, folder: Path) -> Path:
    """Save ``result``, then rewrite its tables with the names of before the convention."""
    result.save(folder)
    for table, renames in type(result)._legacy_columns().items():
        frame = getattr(result, table)
        frame.rename(columns={new: old for old, new in renames.items()}).to_parquet(folder / f"{table}.parquet")
    return folder


def test_old_shapley_and_benchmark_columns_are_renamed_on_load(shapley_result, tmp_path):
    _, res = shapley_result
    back = load_result(_save_with_old_names(res, tmp_path / "shapley"))
    assert "mean_lower" in pd.read_parquet(tmp_path / "shapley" / "modalities.parquet")
    for table in ("modalities", "coalitions", "selection"):
        pd.testing.assert_frame_equal(getattr(back, table), getattr(res, table))
    scores = _runs_long().rename(columns={"strategy": "method", "fusion": "kind", "value": "accuracy"})
    scores = scores.assign(model="fused")
    empty = pd.DataFrame()
    result = bench.BalanceBenchmarkResult(scores=scores, summary=bench.summarize(scores), gap_summary=empty,
                                          gaps=empty, gmm=empty, paired=bench.paired_differences(scores, "b", "a"))
    back = load_result(_save_with_old_names(result, tmp_path / "bench"))
    pd.testing.assert_frame_equal(back.summary, result.summary)
    pd.testing.assert_frame_equal(back.paired, result.paired)


def test_results_saved_before_the_convention_load_with_the_new_names(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    old = pd.read_parquet(run_dir / "results" / "fairness" / "by_group.parquet")
    assert {"lo", "hi"} <= set(old.columns)  # the fixture really is from before the rename
    for name in ("gap", "fairness"):
        res = load_result(run_dir / "results" / name)
        assert_convention(res)
    fair = load_result(run_dir / "results" / "fairness")
    assert fair.params["level"] == 0.95 and "ci" not in fair.params
    np.testing.assert_array_equal(fair.by_group["value_ci_lower"].to_numpy(), old["lo"].to_numpy())


def test_old_comparison_columns_are_renamed_on_load(tmp_path):
    runs = _runs_long()
    cmp = compare_mod.Comparison(summary=compare_mod.summarize_runs(runs), paired=compare_mod.paired_differences(runs),
                                 runs=runs)
    folder = cmp.save(tmp_path / "cmp")
    legacy = cmp.summary.rename(columns={"mean_ci_lower": "ci_low", "mean_ci_upper": "ci_high"})
    legacy.to_parquet(folder / "summary.parquet")
    cmp.paired.rename(columns={"mean_diff_ci_lower": "ci_low", "mean_diff_ci_upper": "ci_high"}).to_parquet(
        folder / "paired.parquet")
    back = load_result(folder)
    pd.testing.assert_frame_equal(back.summary, cmp.summary)
    pd.testing.assert_frame_equal(back.paired, cmp.paired)
