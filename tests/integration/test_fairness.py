"""Fairness assessment: metrics against fairlearn/sklearn and hand examples, bootstrap, flags, I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    true_positive_rate,
)
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from workbench.analyses.fairness import (
    FairnessResult,
    assess_fairness,
    auc_score,
    es_auc,
    expected_calibration_error,
)
from workbench.store.results import load_result


def _predictions(n: int = 600, seed: int = 0, n_classes: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    sex = rng.choice(["F", "M"], n, p=[0.4, 0.6])
    race = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    noise = np.where(sex == "F", 1.5, 0.6)  # the model is worse for F
    logits = np.eye(n_classes)[y] * 1.5 + noise[:, None] * rng.standard_normal((n, n_classes))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    frame = pd.DataFrame({"sample": np.arange(n), "y": y, "pred": proba.argmax(1)})
    for c in range(n_classes):
        frame[f"p_{c}"] = proba[:, c]
    for m, acc in (("audio", 0.8), ("video", 0.6)):
        right = rng.random(n) < acc
        frame[f"pred_{m}"] = np.where(right, y, (y + 1) % n_classes)
        frame[f"p_true_{m}"] = np.clip(np.where(right, 0.7, 0.3) + 0.1 * rng.standard_normal(n), 0, 1)
    frame["group_sex"], frame["group_race"] = sex, race
    return frame


@pytest.fixture(scope="module")
def preds() -> pd.DataFrame:
    return _predictions()


@pytest.fixture(scope="module")
def result(preds) -> FairnessResult:
    return assess_fairness(preds, n_boot=60, seed=1)


# -- ES-AUC ---------------------------------------------------------------------------------------
def test_es_auc_hand_example():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7])
    g = np.array(["a"] * 4 + ["b"] * 4)
    # AUC_a = 1, AUC_b = 3/4, AUC = 15/16 -> 0.9375 / (1 + 0.0625 + 0.1875) = 0.75
    assert es_auc(y, s, g) == pytest.approx(0.75)


def test_es_auc_equal_groups_and_upper_bound():
    y = np.array([0, 1, 0, 1])
    s = np.array([0.2, 0.7, 0.2, 0.7])
    assert es_auc(y, s, np.array(["a", "a", "b", "b"])) == pytest.approx(roc_auc_score(y, s))
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 200)
        s = rng.random(200) + 0.3 * y
        g = rng.choice(["a", "b", "c"], 200)
        assert es_auc(y, s, g) <= roc_auc_score(y, s) + 1e-12


def test_es_auc_skips_one_class_group():
    y = np.array([0, 1, 0, 1, 1, 1])
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.4])
    g = np.array(["a", "a", "a", "a", "b", "b"])  # b has positives only
    val = es_auc(y, s, g)
    assert np.isfinite(val)
    overall = roc_auc_score(y, s)
    assert val == pytest.approx(overall / (1 + abs(1.0 - overall)))


def test_auc_and_ece_primitives():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    p = rng.dirichlet(np.ones(3), 300)
    assert auc_score(y, p) == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    ties = np.round(rng.random(300), 1)
    yb = rng.integers(0, 2, 300)
    assert auc_score(yb, ties) == pytest.approx(roc_auc_score(yb, ties))
    # ECE by hand: conf 0.9 (2 right of 2) and 0.6 (1 right of 2) -> 0.5*0.1 + 0.5*0.1
    proba = np.array([[0.1, 0.9], [0.1, 0.9], [0.4, 0.6], [0.4, 0.6]])
    assert expected_calibration_error(np.array([1, 1, 1, 0]), proba) == pytest.approx(0.1)


# -- per-group metrics against fairlearn / sklearn ---------------------------------------------------
def test_group_metrics_match_fairlearn(preds, result):
    test = preds
    mf = MetricFrame(metrics={"auc": roc_auc_score, "bacc": balanced_accuracy_score, "tpr": true_positive_rate},
                     y_true=test["y"], y_pred=test["pred"], sensitive_features=test["group_sex"])
    mf_auc = MetricFrame(metrics=roc_auc_score, y_true=test["y"], y_pred=test["p_1"],
                         sensitive_features=test["group_sex"])
    for g in ("F", "M"):
        assert result.metric_by_group("auc", "sex").loc[g, "value"] == pytest.approx(mf_auc.by_group[g])
        assert result.metric_by_group("balanced_accuracy", "sex").loc[g, "value"] == pytest.approx(mf.by_group.loc[g, "bacc"])
        assert result.metric_by_group("tpr", "sex").loc[g, "value"] == pytest.approx(mf.by_group.loc[g, "tpr"])
    dpd = demographic_parity_difference(test["y"], test["pred"], sensitive_features=test["group_sex"])
    eod = equalized_odds_difference(test["y"], test["pred"], sensitive_features=test["group_sex"])
    assert result.disparity("demographic_parity_difference", "sex")["value"] == pytest.approx(dpd)
    assert result.disparity("equalized_odds_difference", "sex")["value"] == pytest.approx(eod)
    acc = test.groupby("group_sex").apply(lambda d: (d.y == d.pred).mean(), include_groups=False)
    assert result.disparity("worst_group_accuracy", "sex")["value"] == pytest.approx(acc.min())
    assert result.difference("accuracy", "sex") == pytest.approx(acc.max() - acc.min())
    assert result.group_min("accuracy", "sex") < result.group_max("accuracy", "sex")
    assert result.metric_by_group("accuracy", "sex").loc["F", "value"] < acc["M"]  # the generator's F is harder


def test_intersections_match_metricframe(preds, result):
    mf = MetricFrame(metrics=roc_auc_score, y_true=preds["y"], y_pred=preds["p_1"],
                     sensitive_features=preds[["group_sex", "group_race"]])
    assert len(mf.by_group) == 6
    inter = result.metric_by_group("auc", "sex & race")
    for (s, r), v in mf.by_group.items():
        assert inter.loc[f"{s} & {r}", "value"] == pytest.approx(v)


def test_multiclass_disparities_reduce_to_per_class():
    preds = _predictions(n=500, n_classes=3, seed=2)
    res = assess_fairness(preds, "sex", n_boot=0)
    assert "tpr_2" in res.metrics and res.by_group["value_ci_lower"].isna().all()
    sel = preds.groupby("group_sex")["pred"].apply(lambda p: np.array([(p == c).mean() for c in range(3)]))
    expected = max(abs(sel["F"][c] - sel["M"][c]) for c in range(3))
    assert res.disparity("demographic_parity_difference", "sex")["value"] == pytest.approx(expected)


# -- bootstrap ------------------------------------------------------------------------------------
def test_bootstrap_intervals_bracket_and_scale(result, preds):
    by = result.by_group.dropna(subset=["value_ci_lower"]).query("metric != 'ece'")  # ECE's bootstrap is biased upward
    assert (by["value_ci_lower"] <= by["value"] + 1e-9).all() and (by["value"] <= by["value_ci_upper"] + 1e-9).all()
    acc = result.metric_by_group("accuracy", "sex")
    for g, row in acc.iterrows():
        se = np.sqrt(row["value"] * (1 - row["value"]) / row["n"])
        width = row["value_ci_upper"] - row["value_ci_lower"]
        assert 0.6 * 2 * 1.96 * se < width < 1.5 * 2 * 1.96 * se, g  # binomial width
    n_rows = acc["n"]
    assert (result.metric_by_group("n", "sex")["value_ci_lower"] == n_rows).all()  # resampled within groups
    d = result.disparities.dropna(subset=["value_ci_lower"])
    assert (d["value_ci_lower"] <= d["value"] + 1e-9).all() and (d["value"] <= d["value_ci_upper"] + 1e-9).all()


def test_small_and_one_class_groups_are_flagged(preds):
    frame = preds.copy()
    frame.loc[:19, "group_sex"] = "X"  # 20 samples: too small
    one = frame.index[(frame["y"] == 1)][:40]
    frame.loc[one, "group_sex"] = "Y"  # 40 positives: one class
    res = assess_fairness(frame, "sex", n_boot=20)
    flags = res.metric_by_group("accuracy", "sex")["flag"]
    assert flags["X"] == "n<30" and flags["Y"] == "one class" and flags["F"] == "" and flags["M"] == ""
    row = res.disparity("worst_group_accuracy", "sex")
    assert row["n_groups"] == 2 and set(row["excluded"].split(", ")) == {"X", "Y"}
    assert np.isnan(res.metric_by_group("auc", "sex").loc["Y", "value"])
    assert np.isfinite(res.disparity("es_auc", "sex")["value"])


# -- modality by group ----------------------------------------------------------------------------
def test_modality_by_group_and_shapley(preds):
    rng = np.random.default_rng(0)
    shap = pd.DataFrame({"sample": np.repeat(preds["sample"], 2), "modality": ["audio", "video"] * len(preds),
                         "value": rng.random(2 * len(preds))})
    res = assess_fairness(preds, "sex", shapley=shap, n_boot=10)
    mbg = res.modality_by_group.set_index(["group", "modality", "metric"])["value"]
    f = preds[preds.group_sex == "F"]
    assert mbg[("F", "audio", "accuracy")] == pytest.approx((f.pred_audio == f.y).mean())
    assert mbg[("F", "audio", "gap")] == pytest.approx((f.p_true_audio - f.p_true_video).mean())
    sf = shap[shap["sample"].isin(f["sample"]) & (shap.modality == "video")]
    assert mbg[("F", "video", "shapley")] == pytest.approx(sf["value"].mean())
    with pytest.raises(ValueError, match="modalities"):
        assess_fairness(preds, "sex", shapley=shap.assign(modality="text"), n_boot=0)


# -- I/O and errors -------------------------------------------------------------------------------
def test_save_load_roundtrip(result, tmp_path):
    result.save(tmp_path / "fairness")
    back = load_result(tmp_path / "fairness")
    assert isinstance(back, FairnessResult)
    pd.testing.assert_frame_equal(back.by_group, result.by_group)
    assert back.difference("accuracy", "sex") == pytest.approx(result.difference("accuracy", "sex"))
    assert back.to_frame() is back.by_group


def test_clear_errors(preds):
    with pytest.raises(ValueError, match="'site'"):
        assess_fairness(preds, "site")
    with pytest.raises(ValueError, match="no group"):
        assess_fairness(preds.drop(columns=["group_sex", "group_race"]))
    with pytest.raises(KeyError, match="attribute"):
        assess_fairness(preds, "sex", n_boot=0).metric_by_group("accuracy", "race")


def test_actg175_loader_has_groups_and_no_leakage():
    from workbench import load_dataset

    ds = load_dataset("actg175")
    assert ds.n_samples == 2139 and ds.modality_names == ["demographics", "history", "immunology"]
    assert set(ds.groups.columns) == {"race", "gender"}
    assert ds.groups["gender"].value_counts()["female"] == 368
    assert float(ds.y.float().mean()) == pytest.approx(0.2436, abs=1e-3)
    assert load_dataset("actg175", drop_group_features=True).shapes["demographics"] == (5,)


def test_figures_and_panel_draw_the_result(result):
    from widgets.figures import figures_for_result
    from widgets.figures.fairness import group_metric_figure
    from widgets.panels.fairness import fairness_panel

    figs = figures_for_result("fairness", result)
    assert len(figs) == 2 * len(result.attributes) + 1
    bar = group_metric_figure(result, "auc", "sex")
    expected = result.metric_by_group("auc", "sex")
    assert list(bar.data[0].y) == pytest.approx(list(expected["value"]))
    assert list(bar.data[0].error_y.array) == pytest.approx(list(expected["value_ci_upper"] - expected["value"]))
    panel = fairness_panel(result)
    attr, metric, _ = panel.children[0].children
    attr.value, metric.value = "race", "auc"
    assert "auc by race" in panel.children[1].figure.layout.title.text


def test_demo_analysis_needs_groups():
    from types import SimpleNamespace

    from workbench.analyses.fairness import demo_analysis

    with pytest.raises(ValueError, match="no group"):
        demo_analysis(SimpleNamespace(run_id="r", predictions=pd.DataFrame({"y": [0], "pred": [0]})))
    name, res = demo_analysis(SimpleNamespace(run_id="r", predictions=_predictions(n=200)))
    assert name == "fairness" and "sex" in res.attributes


# -- disparity intervals and tests of equality (issue 14, item 7) ----------------------------------
def _simulate_rates(rates, sizes, sims: int, n_boot: int, seed: int):
    """Per simulation: group rates of a Bernoulli indicator (G, 1) and their within-group
    bootstrap (B, G, 1), resampled by the same routine as :func:`assess_fairness`."""
    from workbench.analyses.fairness import _resample_within, group_rates

    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(len(sizes)), sizes)
    for _ in range(sims):
        x = (rng.random(len(codes)) < np.asarray(rates)[codes]).astype(float)
        boot_idx = _resample_within(codes, n_boot, rng)
        xb = x[boot_idx]
        boot = np.stack([xb[:, codes == g].mean(1) for g in range(len(sizes))], axis=1)[:, :, None]
        yield group_rates(x, codes, len(sizes))[0], boot


def _coverage(rates, sizes, truth, sims=300, n_boot=200, seed=0):
    from workbench.analyses.fairness import maxmin_interval

    hits, old_hits = [], []
    for point, boot in _simulate_rates(rates, sizes, sims, n_boot, seed):
        lo, hi = maxmin_interval(point, boot)
        hits.append(lo - 1e-12 <= truth <= hi + 1e-12)
        spread = boot[:, :, 0].max(1) - boot[:, :, 0].min(1)  # the old percentile interval
        old_lo, old_hi = np.percentile(spread, [2.5, 97.5])
        old_hits.append(old_lo <= truth <= old_hi)
    return float(np.mean(hits)), float(np.mean(old_hits))


def test_accuracy_gap_interval_covers_zero_for_equal_groups():
    cov, old = _coverage([0.8, 0.8], [150, 250], truth=0.0)
    assert cov >= 0.93, cov
    assert old < 0.8  # the percentile interval of the max-min gap missed 0 about half the time


def test_demographic_parity_interval_covers_zero_for_equal_groups_three_groups():
    cov, old = _coverage([0.4, 0.4, 0.4], [120, 100, 180], truth=0.0, seed=1)
    assert cov >= 0.93, cov
    assert old < 0.8


@pytest.mark.parametrize("rates,sizes", [([0.85, 0.7], [150, 250]), ([0.3, 0.5], [200, 200])])
def test_disparity_interval_covers_true_gap_for_unequal_groups(rates, sizes):
    # 800 simulations: the Monte-Carlo sd of the coverage is 0.008 (2000 gave 0.947 and 0.952)
    cov, _ = _coverage(rates, sizes, truth=abs(rates[0] - rates[1]), sims=800, seed=2)
    assert 0.93 <= cov <= 0.97, cov


def test_worst_group_interval_covers():
    from workbench.analyses.fairness import min_interval

    hits = [min_interval(point[:, 0], boot[:, :, 0]) for point, boot in
            _simulate_rates([0.8, 0.8], [150, 250], 300, 200, seed=3)]
    cov = np.mean([lo <= 0.8 <= hi for lo, hi in hits])
    assert cov >= 0.93, cov


def test_permutation_pvalues_uniform_under_null_and_powerful_otherwise():
    from workbench.analyses.fairness import disparity_pvalues

    rng = np.random.default_rng(4)
    n = 300
    g = np.where(np.arange(n) < 120, "a", "b")

    def draw(shift: float) -> dict:
        y = rng.integers(0, 2, n)
        s = 0.5 + 0.25 * (2 * y - 1) + 0.3 * rng.standard_normal(n) + shift * (g == "a")
        s = np.clip(s, 0, 1)
        return disparity_pvalues(y, (s > 0.5).astype(int), np.c_[1 - s, s], g, 100, rng)

    null = pd.DataFrame([draw(0.0) for _ in range(300)])
    for metric in null.columns:  # all four nulls hold: scores do not depend on the group
        rate = (null[metric] <= 0.05).mean()
        assert 0.02 <= rate <= 0.08, (metric, rate)
        assert 0.44 <= null[metric].mean() <= 0.56, metric
        assert np.histogram(null[metric], bins=4, range=(0, 1))[0].min() >= 50, metric  # roughly uniform
    alt = pd.DataFrame([draw(0.25) for _ in range(40)])
    assert (alt[["demographic_parity_difference", "equalized_odds_difference"]] <= 0.05).mean().min() > 0.9


def test_assess_fairness_reports_intervals_tests_and_pairwise(preds, result):
    d = result.disparities.set_index(["attribute", "metric"])
    assert {"p_value", "ci_method"} <= set(result.disparities.columns)
    # the generator makes the model worse for F: the accuracy gap is significant and its interval excludes 0
    row = d.loc[("sex", "accuracy_gap")]
    assert row["p_value"] < 0.01 and row["value_ci_lower"] > 0 and row["value_ci_lower"] <= row["value"] <= row["value_ci_upper"]
    # pairwise signed differences agree with fairlearn's MetricFrame
    mf = MetricFrame(metrics={"accuracy": lambda a, b: float(np.mean(a == b))}, y_true=preds["y"],
                     y_pred=preds["pred"], sensitive_features=preds["group_race"])
    pw = result.pairwise_differences("accuracy", "race")
    assert len(pw) == 3
    for r in pw.itertuples():
        assert r.value == pytest.approx(mf.by_group.loc[r.group, "accuracy"] - mf.by_group.loc[r.reference, "accuracy"])
        assert r.value_ci_lower <= r.value <= r.value_ci_upper
    assert max(abs(pw["value"])) == pytest.approx(mf.difference()["accuracy"])
    assert d.loc[("race", "accuracy_gap"), "value"] == pytest.approx(mf.difference()["accuracy"])


def test_identical_groups_give_zero_inside_the_interval_and_p_one():
    base = _predictions(n=300, seed=5)
    twin = pd.concat([base.assign(group_site="A"), base.assign(group_site="B", sample=base["sample"] + 300)],
                     ignore_index=True)
    res = assess_fairness(twin, "site", n_boot=50, n_perm=200, intersections=None)
    d = res.disparities.set_index("metric")
    for metric in ("accuracy_gap", "demographic_parity_difference", "equalized_odds_difference", "auc_gap"):
        assert d.loc[metric, "value"] == pytest.approx(0.0, abs=1e-12)
        assert d.loc[metric, "value_ci_lower"] == 0.0 and d.loc[metric, "value_ci_upper"] > 0
        assert d.loc[metric, "p_value"] == pytest.approx(1.0)
