"""The recommendation analyses equal their per-user pieces and known answers; figures carry captions."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch

from data_catalog.synthetic_recsys import synthetic_recsys
from workbench.analyses.recommendation import (
    RecommendationResult,
    anchor_overlap_curve,
    ranking_fairness,
    ranking_shapley,
    recommendation_analysis,
    top_k_list,
)
from workbench.stats.ranking import full_ranking
from workbench.training.ranking import evaluate_ranking, fit_ranking, score_vectors


@pytest.fixture(scope="module")
def small():
    return synthetic_recsys(n_users=100, n_items=60, seed=0)


@pytest.fixture(scope="module")
def micrec(small):
    return fit_ranking(
        small, model="micrec", epochs=4, batch_size=256, lr=1e-2, n_layers=1, progress=False
    )


def test_analysis_tables(small, tmp_path):
    fit = fit_ranking(small, model="popularity")
    res = recommendation_analysis(
        {"pop": fit}, small, n_boot=100, n_perm=100, group_by=("group",), min_group_size=10
    )
    ref = evaluate_ranking(fit, small)
    row = res.metrics.query(
        "domain == 'A' and setting == 'transductive' and metric == 'recall' and k == 20"
    )
    assert float(row["value"].iloc[0]) == pytest.approx(
        ref.loc[ref.domain == "A", "recall@20"].mean()
    )
    assert (row["value_ci_lower"] <= row["value"]).all() and (
        row["value"] <= row["value_ci_upper"]
    ).all()
    q = "domain == 'A' and setting == 'transductive' and metric == 'recall' and k == 20"
    g = res.by_group.query(q)
    per = ref[ref.domain == "A"].assign(
        group=small.users["group"].to_numpy()[ref.loc[ref.domain == "A", "user"]]
    )
    assert g.set_index("group")["value"].to_dict() == pytest.approx(
        per.groupby("group")["recall@20"].mean().to_dict()
    )
    gap = res.disparities.query(q + " and disparity == 'max_min_gap'")
    assert float(gap["value"].iloc[0]) == pytest.approx(np.ptp(g["value"].to_numpy()))
    worst = res.disparities.query(q + " and disparity == 'worst_group'")
    assert float(worst["value"].iloc[0]) == pytest.approx(g["value"].min())
    back = RecommendationResult.load(res.save(tmp_path / "rec"))
    pd.testing.assert_frame_equal(back.disparities, res.disparities)
    with pytest.raises(ValueError, match="group_by: 'sex'"):
        recommendation_analysis({"pop": fit}, small, group_by=("sex",))


def test_ranking_fairness_known_answers():
    n = 400
    misses, rejections = 0, 0
    for seed in range(
        40
    ):  # equal groups: the gap's interval reaches 0 and p > 0.05 about 95% of the time
        rng = np.random.default_rng(seed)
        equal = pd.DataFrame({"recall@20": rng.random(n), "g": rng.choice(["a", "b", "c"], n)})
        res = ranking_fairness(
            equal, attribute="g", ks=(20,), metrics=("recall",), n_boot=200, n_perm=200, seed=seed
        )
        d = res.disparities.set_index("disparity")
        misses += d.loc["max_min_gap", "value_ci_lower"] > 0
        rejections += d.loc["max_min_gap", "p_value"] < 0.05
    assert misses <= 6 and rejections <= 6  # Binomial(40, 0.05) exceeds 6 with probability 0.005
    shifted = equal.assign(**{"recall@20": equal["recall@20"] + 0.3 * (equal["g"] == "c")})
    res = ranking_fairness(
        shifted, attribute="g", ks=(20,), metrics=("recall",), n_boot=300, n_perm=300
    )
    d = res.disparities.set_index("disparity")
    assert d.loc["max_min_gap", "value_ci_lower"] > 0.1 and d.loc["max_min_gap", "p_value"] < 0.01
    assert d.loc["max_min_gap", "value_ci_lower"] <= 0.3 <= d.loc["max_min_gap", "value_ci_upper"]
    assert d.loc["worst_group", "worst_group"] in ("a", "b")
    tiny = equal.assign(g=np.r_[np.repeat("big", n - 5), np.repeat("tiny", 5)])
    res = ranking_fairness(tiny, attribute="g", ks=(20,), metrics=("recall",), n_boot=50, n_perm=0)
    assert res.by_group.set_index("group").loc["tiny", "flag"] == "n<30"
    assert res.disparities["excluded"].iloc[0] == "tiny" and np.isnan(
        res.disparities["value"].iloc[0]
    )
    with pytest.raises(ValueError, match="attribute: 'sex'"):
        ranking_fairness(equal, attribute="sex")


def test_masked_modality_is_its_baseline(micrec):
    modal = micrec.models["A"].modal
    with torch.no_grad():
        full = modal()
        modal.masked = {"text"}
        masked = modal()
        modal.masked = set()
        gate = torch.sigmoid(modal.gates)
        image = gate[modal.names.index("image")] * modal.proj["image"](modal.x_image)
        text_bias = gate[modal.names.index("text")] * modal.proj["text"].bias
    torch.testing.assert_close(
        masked, image + text_bias
    )  # the text projector's input is the mean (0)
    assert not torch.allclose(full, masked)


def test_shapley_efficiency_and_dummy(small, micrec):
    res = ranking_shapley(micrec, small, domains=["A"], k=10, group_by=("group",))
    assert res.efficiency_max_error < 1e-9
    phi = res.values.pivot(index="user", columns="modality", values="phi")
    full = res.coalitions.query("size == 2")["value"].iloc[0]
    assert phi.sum(1).mean() == pytest.approx(full)
    by = res.by_group.query("attribute == 'all'").set_index("modality")
    assert by.loc["text", "mean"] == pytest.approx(phi["text"].mean())
    assert set(res.by_group["group"]) == {"all", "g0", "g1"}
    # a dummy player: an image projector that outputs only its bias gets phi = 0 for every user
    with torch.no_grad():
        micrec.models["A"].modal.proj["image"].weight.zero_()
    res = ranking_shapley(micrec, small, domains=["A"], k=10)
    assert np.abs(res.values.query("modality == 'image'")["phi"]).max() == 0.0
    with pytest.raises(ValueError, match="needs a MICRec fit"):
        ranking_shapley(fit_ranking(small, model="popularity"), small)


def test_top_k_list_is_the_full_ranking(small, micrec):
    dom = small.domains["A"]
    user = int(dom.test[0, 0])
    lst = top_k_list(micrec, small, user=user, domain="A", k=10)
    U, V = score_vectors(micrec)["A"]
    seen = np.concatenate([dom.train, dom.valid])
    ref = full_ranking(U[[user]], V, k=10, exclude=[seen[seen[:, 0] == user, 1]])[0]
    assert lst.items["item"].tolist() == ref.tolist()
    test = set(dom.test[dom.test[:, 0] == user, 1].tolist())
    assert lst.items["hit"].tolist() == [int(i) in test for i in ref]
    assert {"modality_text", "modality_image"} <= set(lst.items.columns)
    assert len(lst.history) == int((dom.train[:, 0] == user).sum())
    with pytest.raises(ValueError, match="user must be an integer"):
        top_k_list(micrec, small, user=10**6, domain="A")


def test_anchor_curve_pairs_and_zero_overlap():
    res = anchor_overlap_curve(
        partial(synthetic_recsys, n_users=60, n_items=30),
        overlaps=(0.0, 1.0),
        seeds=(0, 1),
        epochs=2,
        n_layers=1,
        batch_size=256,
        anchor_reg=0.1,
        progress=False,
    )
    assert len(res.runs) == 8
    zero = res.runs.query("overlap == 0")
    assert zero["n_anchors"].max() == 0
    assert (
        res.gain.query("overlap == 0")["gain"].iloc[0] == 0.0
    )  # no anchor: the two fits are the same
    one = res.gain.query("overlap == 1").iloc[0]
    wide = res.runs.query("overlap == 1").pivot(index="seed", columns="anchors", values="recall@20")
    assert one["difference"] == pytest.approx((wide[True] - wide[False]).mean())
    with pytest.raises(ValueError, match="at least 2 seeds"):
        anchor_overlap_curve(synthetic_recsys, seeds=(0,))


def test_validation_split_and_early_stopping(small):
    fit = fit_ranking(
        small,
        model="mf",
        epochs=12,
        batch_size=256,
        lr=3e-2,
        valid_every=2,
        patience=2,
        progress=False,
    )
    h = fit.history.dropna(subset=["valid_recall@20"])
    best = int(h.loc[h["valid_recall@20"].idxmax(), "epoch"])
    assert fit.params["best_epoch"] == best
    v = evaluate_ranking(fit, small, split="valid", ks=(20,))["recall@20"].mean()
    assert v == pytest.approx(h["valid_recall@20"].max())  # the kept weights are the best epoch's
    f = evaluate_ranking(fit, small, split="valid", domains=["B"])
    assert set(f["domain"]) == {"B"}
    dom = small.domains["B"]
    assert f["n_test"].sum() == int((~np.isin(dom.valid[:, 0], small.new_users)).sum())


def test_figures_have_captions(small, micrec):
    from widgets.figures.captions import caption_text
    from widgets.figures.recommendation import report_figures
    from widgets.registry import figures_builder

    res = recommendation_analysis(
        {"pop": fit_ranking(small, model="popularity")},
        small,
        n_boot=50,
        n_perm=50,
        group_by=("group",),
    )
    shap = ranking_shapley(micrec, small, domains=["A"], k=10, group_by=("group",))
    lst = top_k_list(micrec, small, user=int(small.domains["A"].test[0, 0]), domain="A", k=5)
    curve = anchor_overlap_curve(
        partial(synthetic_recsys, n_users=40, n_items=20),
        overlaps=(0.0, 1.0),
        seeds=(0, 1),
        epochs=1,
        n_layers=1,
        progress=False,
    )
    fair = ranking_fairness(
        res.per_user.query("domain == 'A' and setting == 'transductive'"),
        attribute="group",
        n_boot=50,
        n_perm=0,
    )
    expect = {
        "within their group": fair,
        "bootstrap interval over users": res,
        "t-interval of the mean": shap,
        "green rows": lst,
        "relative gain": curve,
    }
    for phrase, result in expect.items():
        assert (
            figures_builder(result) is report_figures
        )  # found by name: panels, dashboard tabs, reports
        figs = report_figures(result)
        assert figs and all(caption_text(f) for f in figs)
        assert any(phrase in caption_text(f) for f in figs)


def test_checkpoint_resume_gives_the_same_numbers(small, tmp_path):
    kw = dict(
        model="micrec",
        anchors=True,
        transfer="map",
        batch_size=256,
        lr=1e-2,
        n_layers=1,
        valid_every=2,
        patience=10,
        progress=False,
    )
    straight = fit_ranking(small, epochs=6, **kw)
    ck = tmp_path / "ranking.ckpt"
    fit_ranking(small, epochs=3, checkpoint_path=ck, **kw)  # "killed" after 3 epochs
    resumed = fit_ranking(small, epochs=6, checkpoint_path=ck, **kw)
    pd.testing.assert_frame_equal(resumed.history, straight.history)
    for d in ("A", "B"):
        a, b = straight.models[d].state_dict(), resumed.models[d].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert resumed.models[d].alpha == straight.models[d].alpha
    assert torch.equal(resumed.maps["A_to_B"].weight, straight.maps["A_to_B"].weight)
    # a checkpoint of other settings, or a truncated one, is moved aside (kept) and the fit restarts
    with pytest.warns(RuntimeWarning, match="other settings.*moved it to ranking.bad-1"):
        other = fit_ranking(small, epochs=2, checkpoint_path=ck, **{**kw, "lr": 1e-3})
    assert (tmp_path / "ranking.bad-1").exists() and len(other.history) == 2
    fresh = fit_ranking(small, epochs=2, **{**kw, "lr": 1e-3})
    pd.testing.assert_frame_equal(other.history, fresh.history)
    ck.write_bytes(ck.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="cannot be resumed from.*moved it to ranking.bad-2"):
        again = fit_ranking(small, epochs=2, checkpoint_path=ck, **{**kw, "lr": 1e-3})
    pd.testing.assert_frame_equal(again.history, fresh.history)
    with pytest.raises(ValueError, match="device 'cuda:7'"):
        fit_ranking(small, epochs=1, device="cuda:7", **kw)
