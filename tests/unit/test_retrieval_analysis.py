"""Retrieval analyses against references: chunked log-probabilities vs a dense log-softmax,
retrieval Shapley on hand-made embeddings (known answers), linear probes, the embedding map."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.analyses.retrieval import (
    coalition_embedding,
    embedding_map,
    linear_probes,
    retrieval_analysis,
    retrieval_log_probs,
    retrieval_shapley,
)


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fake_run(z: dict[str, np.ndarray], splits: np.ndarray, y: np.ndarray | None = None, tau: float = 0.07):
    frame = {"sample": np.arange(len(splits)), "y": np.zeros(len(splits), int) if y is None else y, "split": splits}
    for name, v in z.items():
        for k in range(v.shape[1]):
            frame[f"z_{name}_{k}"] = v[:, k]
    return SimpleNamespace(run_id="fake", predictions=pd.DataFrame(frame),
                           config={"dataset": "fake", "train": {"task": "alignment", "task_params": {"tau": tau}}})


def test_chunked_log_probs_equal_a_dense_log_softmax():
    rng = np.random.default_rng(0)
    q, g = _unit(rng.normal(size=(53, 6))), _unit(rng.normal(size=(53, 6)))
    dense = torch.log_softmax(torch.as_tensor(q @ g.T / 0.1), dim=1).diagonal().numpy()
    assert np.allclose(retrieval_log_probs(q, g, tau=0.1, chunk=7), dense, atol=1e-10)


def test_coalition_embedding_uses_the_fused_head_for_a_pair_and_normalised_sums_otherwise():
    rng = np.random.default_rng(1)
    s = {m: _unit(rng.normal(size=(5, 3))) for m in "abc"}
    p = {"a+b": _unit(rng.normal(size=(5, 3)))}
    assert np.array_equal(coalition_embedding(["a"], s, p), s["a"])
    assert np.array_equal(coalition_embedding(["b", "a"], s, p), p["a+b"])
    assert np.allclose(coalition_embedding(["a", "c"], s, p), _unit(s["a"] + s["c"]))


def _xor_like(n=1200, d=16, seed=0):
    """b's embedding is determined by the fused pair a+c only; a and c alone are independent of it."""
    rng = np.random.default_rng(seed)
    b = _unit(rng.normal(size=(n, d)))
    z = {"a": _unit(rng.normal(size=(n, d))), "b": b, "c": _unit(rng.normal(size=(n, d))),
         "a+c": _unit(b + 0.3 * rng.normal(size=(n, d)))}
    splits = np.array(["train"] * 200 + ["calib"] * 500 + ["test"] * (n - 700), dtype=object)
    return z, splits


def test_retrieval_shapley_splits_an_xor_pair_equally_and_is_efficient():
    z, splits = _xor_like()
    res = retrieval_shapley(_fake_run(z, splits, tau=1.0), target="b")
    coal = res.coalitions.query("split == 'calib'").set_index("coalition")
    # a random query's logits ~ N(0, 1/(d tau^2)): its partner gets log p ~ -log n - 1/(2 d tau^2)
    assert coal.loc["a", "value"] == pytest.approx(-1 / 32, abs=0.03)
    assert coal.loc["c", "value"] == pytest.approx(-1 / 32, abs=0.03)
    assert coal.loc["a+c", "value"] > 0.5
    mods = res.modalities.set_index("modality")
    assert res.efficiency_max_error < 1e-9
    # exact two-player Shapley, averaged over the calibration split: (v(a) + v(ac) - v(c)) / 2
    expected_a = (coal.loc["a", "value"] + coal.loc["a+c", "value"] - coal.loc["c", "value"]) / 2
    assert mods.loc["a", "mean"] == pytest.approx(expected_a, rel=1e-9)
    assert mods.loc["a", "mean"] == pytest.approx(mods.loc["c", "mean"], rel=0.1)
    assert res.value_method == "retrieval" and res.selection.empty


def test_retrieval_shapley_finds_the_one_informative_modality_and_its_intervals_cover():
    rng = np.random.default_rng(2)
    n, d = 1500, 12
    b = _unit(rng.normal(size=(n, d)))
    z = {"a": _unit(b + 0.5 * rng.normal(size=(n, d))), "b": b, "c": _unit(rng.normal(size=(n, d)))}
    splits = np.array(["train"] * 100 + ["calib"] * 700 + ["test"] * (n - 800), dtype=object)
    res = retrieval_shapley(_fake_run(z, splits), target="b", alpha=0.1)
    mods = res.modalities.set_index("modality")
    assert mods.loc["a", "mean_ci_lower"] > 1.0
    assert mods.loc["c", "mean"] < mods.loc["a", "mean"] / 5
    # split-conformal marginal intervals: test coverage 1 - alpha up to sampling error
    assert (mods["coverage"] >= 0.86).all() and (mods["coverage"] <= 0.95).all()


def test_retrieval_shapley_refuses_a_bad_target_and_a_classification_run():
    z, splits = _xor_like(n=800)
    with pytest.raises(ValueError, match="target 'x' is not a modality"):
        retrieval_shapley(_fake_run(z, splits), target="x")
    run = _fake_run(z, splits)
    run.config["train"]["task"] = "classification"
    with pytest.raises(ValueError, match="not 'alignment'"):
        retrieval_shapley(run, target="b")
    with pytest.raises(ValueError, match="alpha"):
        retrieval_shapley(_fake_run(z, splits), target="b", alpha=1.5)


def test_linear_probes_separate_a_linearly_separable_label_and_not_noise():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    signal = np.c_[2.0 * y - 1 + 0.1 * rng.normal(size=600), rng.normal(size=600)]
    noise = rng.normal(size=(600, 2))
    tr, te = slice(0, 400), slice(400, 600)
    t = linear_probes({"s": signal[tr], "n": noise[tr]}, y[tr], {"s": signal[te], "n": noise[te]}, y[te])
    t = t.set_index("representation")
    assert t.loc["s", "accuracy"] == 1.0 and t.loc["s||n", "accuracy"] == 1.0
    assert t.loc["n", "accuracy_ci_lower"] < 0.5 < t.loc["n", "accuracy_ci_upper"] + 0.1
    assert t.loc["s||n", "kind"] == "concatenation"


def test_embedding_map_preserves_distances_of_points_in_a_plane():
    rng = np.random.default_rng(4)
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0]
    a, b = rng.normal(size=(40, 2)) @ basis.T, rng.normal(size=(40, 2)) @ basis.T
    pts = embedding_map({"a": a, "b": b}, n_points=40)
    xy = pts[["x", "y"]].to_numpy()
    orig = np.r_[a, b]
    dist = lambda v: np.linalg.norm(v[:, None] - v[None], axis=-1)  # noqa: E731
    assert np.allclose(dist(xy), dist(orig), atol=1e-9)


def test_retrieval_analysis_of_a_fake_run_has_table_map_and_probes():
    z, splits = _xor_like(n=900)
    y = (z["b"][:, 0] > 0).astype(int)
    res = retrieval_analysis(_fake_run(z, splits, y), n_boot=50, n_points=50)
    assert set(res.table["kind"]) == {"1->1", "2->1"}
    r10 = res.table.query("query == 'a+c' and gallery == 'b' and metric == 'R@10'")["value"].iloc[0]
    assert r10 > 0.9
    assert len(res.points) == 3 * 50
    probes = res.probes.set_index("representation")
    assert probes.loc["b", "accuracy"] > 0.9 and probes.loc["a", "accuracy"] < 0.65


def test_figures_draw_the_result_tables():
    from widgets.figures.retrieval import report_figures
    from workbench.analyses.retrieval import XorCurveResult

    z, splits = _xor_like(n=900)
    y = (z["b"][:, 0] > 0).astype(int)
    res = retrieval_analysis(_fake_run(z, splits, y), ks=(1, 10), n_boot=50, n_points=40)
    figs = report_figures(res)
    assert len(figs) == 5  # R@1, R@10 matrices, gains, embedding map, probes
    r10 = res.table.query("metric == 'R@10'")
    heat = figs[1].data[0]
    row, col = list(heat.y).index("a+c"), list(heat.x).index("b")
    assert heat.z[row][col] == pytest.approx(r10.query("query == 'a+c' and gallery == 'b'")["value"].iloc[0])
    assert list(figs[2].data[0].x) == list(res.gains["gain"][::-1])
    markers = [t for t in figs[3].data if t.mode == "markers"]
    assert sum(len(t.x) for t in markers) == len(res.points)
    probe_x = np.concatenate([np.asarray(t.x) for t in figs[4].data])
    assert sorted(probe_x) == sorted(res.probes["accuracy"])
    assert all(f.layout.annotations for f in figs)  # every figure carries a caption
    curve = pd.DataFrame({"p": [0.0, 1.0], "method": "ConFu", "top1": [0.12, 0.97], "top1_ci_lower": [0.1, 0.95],
                          "top1_ci_upper": [0.14, 0.99], "oracle": [0.125, 1.0], "chance": 0.125, "n_seeds": 3,
                          "level": 0.95})
    (fig,) = report_figures(XorCurveResult(pd.DataFrame(), curve, pd.DataFrame(), 3, 0.95))
    assert list(fig.data[0].y) == [0.12, 0.97]
    assert fig.data[1].y[-1] == pytest.approx(1.0) and fig.data[1].y[0] == pytest.approx(1 / 8)


def test_fused_gain_equals_a_dense_computation_and_its_interval_is_paired():
    from workbench.analyses.retrieval import fused_gain_table

    z, _ = _xor_like(n=400)
    singles = {m: z[m] for m in "abc"}
    t = fused_gain_table(singles, {"a+c": z["a+c"]}, k=5, n_boot=300).iloc[0]
    def r5(q, g):
        s = q @ g.T
        return ((s > np.diag(s)[:, None]).sum(1) + 1 <= 5).mean()
    best = max(r5(z["a"], z["b"]), r5(z["c"], z["b"]))
    assert t["gallery"] == "b" and t["gain"] == pytest.approx(r5(z["a+c"], z["b"]) - best)
    assert t["gain_ci_lower"] > 0.6 and t["gain_ci_lower"] <= t["gain"] <= t["gain_ci_upper"]


def test_recall_bootstrap_interval_covers_the_known_recall():
    """Queries whose partner is identical to them (probability p) rank it first; the others rank
    it first with probability 1/n by symmetry: true R@1 = p + (1 - p)/n."""
    from workbench.analyses.retrieval import retrieval_table

    n, p, covered = 200, 0.4, []
    for sim in range(400):
        rng = np.random.default_rng(sim)
        g = _unit(rng.normal(size=(n, 8)))
        q = np.where((rng.random(n) < p)[:, None], g, _unit(rng.normal(size=(n, 8))))
        t = retrieval_table({"q": q, "g": g}, ks=(1,), n_boot=200, seed=sim).table
        row = t.query("query == 'q' and metric == 'R@1'").iloc[0]
        covered.append(row["value_ci_lower"] <= p + (1 - p) / n <= row["value_ci_upper"])
    # measured 0.93 over 600 simulations: the percentile bootstrap of a proportion at n = 200 runs a
    # little under its nominal 0.95 (the README says so)
    assert 0.90 <= np.mean(covered) <= 0.97


def test_hostile_modality_names_are_escaped_in_hover_data():
    from widgets.figures.retrieval import embedding_map_figure

    pts = pd.DataFrame({"sample": [0, 0], "modality": ["<b>a</b>", "<img src=x onerror=alert(1)>"], "label": 0,
                        "x": [0.0, 1.0], "y": [0.0, 1.0]})
    fig = embedding_map_figure(pts)
    shown = [str(v) for t in fig.data if t.customdata is not None for row in t.customdata for v in row]
    assert shown and not any("<" in v for v in shown)
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown
