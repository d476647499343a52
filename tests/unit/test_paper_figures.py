"""Paper figures (widgets/paper): files are valid PDF/SVG/PNG and the data drawn equal the result's tables.

The plotted values are read back from the matplotlib artists (line data, collection segments and
paths, bar heights, the heat map's array), never from pixels.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from PIL import Image

from widgets.paper import FORMATS, figure_bytes, paper_builder, paper_figures, save_figures, stem
from widgets.paper.gap import component_density
from widgets.paper.shapley import drawn_limits
from workbench.analyses import compare as compare_mod
from workbench.analyses import imbalance_benchmark as bench
from workbench.analyses.fairness import assess_fairness
from workbench.analyses.gap import gap_analysis
from workbench.analyses.retrieval import retrieval_table
from workbench.store.results import NoFiguresError, Result


# -- checks of the files ------------------------------------------------------------------------------
def assert_valid_pdf(data: bytes) -> None:
    """Header, trailer, and the cross-reference table where ``startxref`` says it is."""
    assert data.startswith(b"%PDF-1."), data[:10]
    assert data.rstrip().endswith(b"%%EOF")
    offset = int(re.findall(rb"startxref\s+(\d+)\s+%%EOF", data)[-1])
    assert data[offset:offset + 4] == b"xref"


def assert_valid_svg(data: bytes, title: str) -> None:
    root = ET.fromstring(data)
    assert root.tag.endswith("svg")
    titles = [el.text for el in root.iter() if el.tag.endswith("title")]
    assert title in titles


def assert_valid_png(path, dpi: int) -> None:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.info["dpi"] == pytest.approx((dpi, dpi), abs=0.5)
        # about one column wide (3.4 in), give or take the tight bounding box
        assert 2.5 * dpi < im.size[0] < 4.2 * dpi


def check_saved(result: Result, tmp_path, expected: list[str]) -> None:
    """Every format saves every figure (named as expected) with its caption; files are valid."""
    for fmt in FORMATS:
        paths = save_figures(result, tmp_path / fmt, format=fmt, dpi=120)
        images = [p for p in paths if p.suffix == f".{fmt}"]
        assert [p.stem for p in images] == expected
        for image in images:
            caption = image.with_suffix(".txt").read_text()
            assert len(caption) > 80 and caption.endswith("\n")
            if fmt == "pdf":
                assert_valid_pdf(image.read_bytes())
            elif fmt == "svg":
                assert_valid_svg(image.read_bytes(), next(f.name for f in paper_figures(result)
                                                          if stem(f.name) == image.stem))
            else:
                assert_valid_png(image, 120)


# -- reading the artists back -------------------------------------------------------------------------
def line(ax, gid: str):
    found = [ln for ln in ax.lines if ln.get_gid() == gid]
    assert len(found) == 1, [ln.get_gid() for ln in ax.lines]
    return found[0]


def collection(ax, gid: str):
    found = [c for c in ax.collections if c.get_gid() == gid]
    assert len(found) == 1, [c.get_gid() for c in ax.collections]
    return found[0]


def errorbar_segments(ax) -> list[np.ndarray]:
    """Segments of every error bar in ``ax`` (one ``(2, 2)`` array per bar), in drawing order."""
    out = []
    for cont in ax.containers:
        if isinstance(cont, ErrorbarContainer):
            for lc in cont.lines[2]:
                out += [np.asarray(s) for s in lc.get_segments()]
    return out


def band_limits(ax, gid: str, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edge of a ``fill_between`` band at each of ``xs``."""
    verts = collection(ax, gid).get_paths()[0].vertices
    lo, hi = [], []
    for x in xs:
        ys = verts[np.isclose(verts[:, 0], x), 1]
        lo.append(ys.min())
        hi.append(ys.max())
    return np.array(lo), np.array(hi)


def heatmap(ax, gid: str = "heatmap"):
    found = [im for im in ax.images if im.get_gid() == gid]
    assert len(found) == 1, [im.get_gid() for im in ax.images]
    return found[0]


def ticklabels(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels()]


# -- results of every type ----------------------------------------------------------------------------
def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def retrieval_result():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(80, 8))
    emb = {m: _unit(base + s * rng.normal(size=(80, 8))) for m, s in (("a", 0.5), ("b", 1.0), ("c", 2.0))}
    return retrieval_table(emb, {"a+b": _unit(emb["a"] + emb["b"])}, ks=(1, 5), n_boot=50)


def test_retrieval_matrix_draws_the_table(retrieval_result, tmp_path):
    res = retrieval_result
    figs = paper_figures(res)
    assert [f.name for f in figs] == ["retrieval_matrix_R@1", "retrieval_matrix_R@5"]
    for fig, metric in zip(figs, ("R@1", "R@5"), strict=True):
        ax = fig.figure.axes[0]
        queries, galleries = ticklabels(ax.yaxis), ticklabels(ax.xaxis)
        assert queries == ["a", "b", "c", "a+b"] and galleries == ["a", "b", "c"]
        drawn = ax.collections[0].get_array()
        t = res.table[res.table["metric"] == metric]
        want = t.pivot(index="query", columns="gallery", values="value").reindex(index=queries, columns=galleries)
        np.testing.assert_array_equal(np.ma.getmaskarray(drawn), want.isna().to_numpy())
        np.testing.assert_allclose(np.ma.filled(drawn, np.nan), want.to_numpy(), equal_nan=True)
        # the cell texts carry the interval of the same row
        row = t[(t["query"] == "a+b") & (t["gallery"] == "c")].iloc[0]
        texts = [x.get_text() for x in ax.texts]
        assert f"{row['value']:.2f}\n[{row['value_ci_lower']:.2f}, {row['value_ci_upper']:.2f}]" in texts
        assert "chance is" in fig.caption and f"{int(row['n'])} queries" in fig.caption
    check_saved(res, tmp_path, ["retrieval_matrix_R1", "retrieval_matrix_R5"])


def _gap_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, parts = 300, []
    for epoch, shift in ((1, 0.0), (2, 0.3)):
        y = rng.integers(0, 2, n)
        strong = rng.random(n) < 0.4  # a share of samples where modality a dominates: a bimodal gap
        parts.append(pd.DataFrame({"epoch": epoch, "sample": np.arange(n), "y": y,
                                   "p_true_a": np.clip(np.where(strong, 0.9, 0.5) + shift * strong
                                                       + 0.05 * rng.standard_normal(n), 0, 1),
                                   "p_true_b": np.clip(0.5 + 0.05 * rng.standard_normal(n), 0, 1)}))
    return pd.concat(parts, ignore_index=True)


def test_gap_histogram_and_mixture_equal_the_stored_fit(tmp_path):
    res = gap_analysis(_gap_frame(), ["a", "b"])
    figs = paper_figures(res)
    assert [f.name for f in figs] == ["gap_histogram_a-b_epoch2", "gap_gmm_a-b"]
    ax = figs[0].figure.axes[0]
    gaps = res.gaps[(res.gaps["pair"] == "a-b") & (res.gaps["epoch"] == 2)]["gap"].to_numpy()
    density, edges = np.histogram(gaps, bins=30, density=True)
    bars = sorted(ax.patches, key=lambda p: p.get_x())
    np.testing.assert_allclose([p.get_height() for p in bars], density, rtol=1e-12)
    np.testing.assert_allclose([p.get_x() for p in bars], edges[:-1], rtol=1e-12)
    fit = res.gmm[(res.gmm["pair"] == "a-b") & (res.gmm["epoch"] == 2)].set_index("component")
    total = 0
    for comp in ("balanced", "imbalanced"):
        drawn = line(ax, f"component:{comp}")
        r = fit.loc[comp]
        want = component_density(drawn.get_xdata(), r["weight"], r["mean"], r["variance"])
        np.testing.assert_allclose(drawn.get_ydata(), want, rtol=1e-12)
        total = total + want
    np.testing.assert_allclose(line(ax, "mixture").get_ydata(), total, rtol=1e-12)
    # the mixture, like the histogram, integrates to one over the drawn range (weights sum to one)
    grid = line(ax, "mixture").get_xdata()
    assert np.trapezoid(total, grid) == pytest.approx(1.0, abs=0.02)
    assert "true-class probability" in figs[0].caption
    with pytest.raises(ValueError, match="pair"):
        paper_builder(res).__globals__["gap_histogram"](res, "b-a")
    # over epochs: the means (with their interval bars), weights and share imbalanced as stored
    left, right = figs[1].figure.axes[:2]
    for comp, part in res.gmm[res.gmm["pair"] == "a-b"].groupby("component"):
        part = part.sort_values("epoch")
        np.testing.assert_allclose(line(left, f"mean:{comp}").get_ydata(), part["mean"].to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(line(right, f"weight:{comp}").get_ydata(), part["weight"].to_numpy(), rtol=1e-12)
    segs = errorbar_segments(left)
    want = res.gmm[res.gmm["pair"] == "a-b"].sort_values(["component", "epoch"])
    np.testing.assert_allclose([s_[:, 1].min() for s_ in segs], want["mean_ci_lower"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose([s_[:, 1].max() for s_ in segs], want["mean_ci_upper"].to_numpy(), rtol=1e-12)
    share = res.summary[res.summary["pair"] == "a-b"].sort_values("epoch")["share_imbalanced"].to_numpy()
    np.testing.assert_allclose(line(right, "share_imbalanced").get_ydata(), share, rtol=1e-12)
    assert "posterior of the imbalanced component" in figs[1].caption
    check_saved(res, tmp_path, ["gap_histogram_a-b_epoch2", "gap_gmm_a-b"])


def _fairness_predictions(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    group = rng.choice(["F", "M"], n)
    group[:12] = "X"  # a group under min_group_size: flagged, drawn grey without an interval
    p1 = np.clip(0.5 + 0.3 * (2 * y - 1) * np.where(group == "F", 1.0, 0.5) + 0.2 * rng.standard_normal(n), 0.01, 0.99)
    frame = pd.DataFrame({"sample": np.arange(n), "y": y, "pred": (p1 > 0.5).astype(int), "p_0": 1 - p1, "p_1": p1,
                          "group_sex": group})
    for m in ("audio", "video"):
        frame[f"pred_{m}"] = np.where(rng.random(n) < 0.7, y, 1 - y)
        frame[f"p_true_{m}"] = rng.uniform(0, 1, n)
    return frame


def test_fairness_bars_and_intervals_equal_the_by_group_table(tmp_path):
    res = assess_fairness(_fairness_predictions(), n_boot=50, n_perm=20, level=0.9)
    figs = paper_figures(res)
    assert [f.name for f in figs] == ["fairness_accuracy_by_sex", "fairness_disparities_sex"]
    ax = figs[0].figure.axes[0]
    table = res.metric_by_group("accuracy", "sex").reset_index()
    np.testing.assert_allclose([p.get_height() for p in ax.patches], table["value"].to_numpy(), rtol=1e-12)
    ok = table[table["flag"] == ""]
    assert len(ok) == 2 and (table["flag"] != "").sum() == 1
    segs = errorbar_segments(ax)
    assert len(segs) == len(ok)  # the flagged group has no interval drawn
    np.testing.assert_allclose([s[:, 1].min() for s in segs], ok["value_ci_lower"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose([s[:, 1].max() for s in segs], ok["value_ci_upper"].to_numpy(), rtol=1e-12)
    overall = float(res.overall.set_index("metric").loc["accuracy", "value"])
    assert line(ax, "overall").get_ydata()[0] == pytest.approx(overall)
    assert ticklabels(ax.xaxis)[0].startswith(str(table["group"].iloc[0]))
    assert "90% bootstrap" in figs[0].caption and "Grey bars" in figs[0].caption
    # disparities: one dot per metric at its value, bars at its interval, each metric's direction named
    part = res.disparities[res.disparities["attribute"] == "sex"]
    ax = figs[1].figure.axes[0]
    np.testing.assert_allclose(line(ax, "disparities").get_xdata(), part["value"].to_numpy(), rtol=1e-12)
    finite = part[np.isfinite(part["value_ci_lower"]) & np.isfinite(part["value_ci_upper"])]
    segs = errorbar_segments(ax)
    np.testing.assert_allclose([s_[:, 0].min() for s_ in segs], finite["value_ci_lower"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose([s_[:, 0].max() for s_ in segs], finite["value_ci_upper"].to_numpy(), rtol=1e-12)
    at = dict(zip(ax.get_yticks(), ticklabels(ax.yaxis), strict=True))
    # the first metric on top, each label naming the metric and its good direction
    assert [at[y].split(" (")[0] for y in sorted(at, reverse=True)] == list(part["metric"])
    assert "not one direction" in figs[1].caption
    check_saved(res, tmp_path, ["fairness_accuracy_by_sex", "fairness_disparities_sex"])


def _benchmark_scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(5):
        base = 0.7 + 0.02 * rng.standard_normal()
        for method, lift in (("naive", 0.0), ("ogm_ge", 0.03), ("ogm_ge_no_ge", 0.01), ("ensemble", 0.02)):
            rows.append({"dataset": "d$1", "method": method, "seed": seed, "model": "fused", "kind": "fused",
                         "accuracy": base + lift + 0.01 * rng.standard_normal()})
            if method != "ensemble":
                rows.append({"dataset": "d$1", "method": method, "seed": seed, "model": "a", "kind": "probe",
                             "accuracy": 0.6 + 0.01 * rng.standard_normal()})
    return pd.DataFrame(rows)


def test_benchmark_paired_differences_equal_the_paired_table(tmp_path):
    scores = _benchmark_scores()
    empty = pd.DataFrame()
    res = bench.BalanceBenchmarkResult(scores=scores, summary=bench.summarize(scores), gap_summary=empty, gaps=empty,
                                       gmm=empty, paired=bench.paired_summary(scores), datasets=["d$1"],
                                       methods=["naive", "ogm_ge", "ogm_ge_no_ge", "ensemble"], seeds=list(range(5)))
    figs = paper_figures(res)
    assert [f.name for f in figs] == ["benchmark_paired_d$1", "benchmark_accuracy_d$1"]
    ax = figs[0].figure.axes[0]
    want = res.paired[res.paired["kind"] == "fused"].reset_index(drop=True)
    assert len(want) == 6  # naive vs ensemble; ogm_ge and its ablation vs naive and ensemble; ogm_ge vs no-GE
    np.testing.assert_allclose(line(ax, "differences").get_xdata(), want["diff_mean"].to_numpy(), rtol=1e-12)
    segs = errorbar_segments(ax)
    np.testing.assert_allclose([s[:, 0].min() for s in segs], want["diff_mean_ci_lower"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose([s[:, 0].max() for s in segs], want["diff_mean_ci_upper"].to_numpy(), rtol=1e-12)
    # labels top to bottom in table order
    labels = [f"{m} − {r}" for m, r in zip(want["method"], want["reference"], strict=True)]
    assert ticklabels(ax.yaxis) == labels
    assert [t.get_text() for t in ax.texts] == [f"{w}/{n}" for w, n in zip(want["wins"], want["n_seeds"], strict=True)]
    acc = figs[1].figure.axes[0]
    fused = res.summary[res.summary["kind"] == "fused"]
    np.testing.assert_allclose(line(acc, "means").get_xdata(), fused["mean"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose([s[:, 0].min() for s in errorbar_segments(acc)], fused["mean_ci_lower"], rtol=1e-12)
    # a "$" in the dataset name is literal text, not mathtext: every format renders
    check_saved(res, tmp_path, ["benchmark_paired_d_1", "benchmark_accuracy_d_1"])


def test_comparison_figures_equal_the_summary_and_paired_tables(tmp_path):
    rows = [{"config_key": c, "config": c, "dataset": "d", "strategy": c, "fusion": "f", "epochs": 1, "seed": s,
             "metric": "acc_fused", "value": 0.8 + shift + 0.01 * s * (1 + shift)}
            for c, shift in (("a", 0.0), ("b", 0.05), ("c", 0.02)) for s in range(3)]
    runs = pd.DataFrame(rows)
    cmp = compare_mod.Comparison(summary=compare_mod.summarize_runs(runs), paired=compare_mod.paired_differences(runs),
                                 runs=runs)
    figs = paper_figures(cmp)
    assert [f.name for f in figs] == ["comparison_acc_fused", "comparison_paired_acc_fused"]
    ax = figs[0].figure.axes[0]
    np.testing.assert_allclose(line(ax, "means:estimates").get_xdata(), cmp.summary["mean"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(sorted(line(ax, "seeds").get_xdata()), sorted(runs["value"]), rtol=1e-12)
    pax = figs[1].figure.axes[0]
    np.testing.assert_allclose(line(pax, "differences:estimates").get_xdata(), cmp.paired["mean_diff"], rtol=1e-12)
    np.testing.assert_allclose([s[:, 0].max() for s in errorbar_segments(pax)], cmp.paired["mean_diff_ci_upper"],
                               rtol=1e-12)
    check_saved(cmp, tmp_path, ["comparison_acc_fused", "comparison_paired_acc_fused"])


@pytest.mark.slow
def test_shapley_forest_draws_the_modality_intervals(tmp_path):
    from data_catalog.synthetic import imbalance
    from workbench.analyses.shapley import conformal_shapley
    from workbench.training.trainer import TrainConfig

    ds = imbalance(n=400, dims=[4, 4], snr=[2.0, 0.0], names=["signal", "noise"], seed=0)
    cfg = TrainConfig(epochs=3, seed=0, progress=False, hidden=16, embed=8)
    res = conformal_shapley(ds, ds.split(seed=0, train=0.5, calib=0.3, test=0.2), value_method="masked",
                            config=cfg, alpha=0.1, level=0.9, n_pca=1, progress=False)
    figs = paper_figures(res)
    assert [f.name for f in figs] == ["shapley_forest", "shapley_selection"]
    ax = figs[0].figure.axes[0]
    mods = res.modalities
    positions = dict(zip(ticklabels(ax.yaxis), ax.get_yticks(), strict=True))
    assert sorted(positions, key=positions.get, reverse=True) == list(mods["modality"])  # first modality on top
    cont = next(c for c in ax.containers if isinstance(c, ErrorbarContainer))
    np.testing.assert_allclose(cont.lines[0].get_xdata(), mods["mean"].to_numpy(), rtol=1e-12)
    segs = errorbar_segments(ax)
    np.testing.assert_allclose([s[:, 0].min() for s in segs], mods["mean_ci_lower"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose([s[:, 0].max() for s in segs], mods["mean_ci_upper"].to_numpy(), rtol=1e-12)
    lo, hi = drawn_limits(mods)
    conformal = collection(ax, "conformal").get_segments()
    np.testing.assert_allclose([s[0, 0] for s in conformal], lo, rtol=1e-12)
    np.testing.assert_allclose([s[1, 0] for s in conformal], hi, rtol=1e-12)
    assert "90% t-interval" in figs[0].caption and "alpha = 0.1" in figs[0].caption
    sel = figs[1].figure.axes[0]
    for rule, part in res.selection.groupby("rule", sort=False):
        np.testing.assert_allclose(line(sel, f"line:{rule}").get_ydata(), part["accuracy"].to_numpy(), rtol=1e-12)
        band_lo, band_hi = band_limits(sel, f"band:{rule}", part["q"].to_numpy())
        np.testing.assert_allclose(band_lo, part["accuracy_ci_lower"].to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(band_hi, part["accuracy_ci_upper"].to_numpy(), rtol=1e-12)
    # through the core's method, found by name
    paths = res.save_figures(tmp_path, format="pdf")
    assert [p.name for p in paths] == ["shapley_forest.pdf", "shapley_forest.txt", "shapley_selection.pdf",
                                       "shapley_selection.txt"]
    assert_valid_pdf(paths[0].read_bytes())


@pytest.mark.slow
def test_learning_curves_and_seed_bands_equal_the_curves_table(tmp_path):
    from workbench import load_dataset
    from workbench.analyses.learning_curves import learning_curves

    res = learning_curves(load_dataset("synthetic-xor", n=300), sizes=[40, 80, 160], seeds=[0, 1], epochs=2,
                          progress=False)
    figs = paper_figures(res)
    assert [f.name for f in figs] == ["learning_curves_accuracy", "learning_curves_log_loss",
                                      "learning_curves_connection"]
    for fig, metric in zip(figs[:2], ("accuracy", "log_loss"), strict=True):
        ax = fig.figure.axes[0]
        for coalition, part in res.curves.groupby("coalition"):
            drawn = line(ax, f"line:{coalition}")
            np.testing.assert_array_equal(drawn.get_xdata(), part["n"].to_numpy())
            np.testing.assert_allclose(drawn.get_ydata(), part[metric].to_numpy(), rtol=1e-12)
            lo, hi = band_limits(ax, f"band:{coalition}", part["n"].to_numpy())
            np.testing.assert_allclose(lo, part[f"{metric}_ci_lower"].to_numpy(), rtol=1e-12)
            np.testing.assert_allclose(hi, part[f"{metric}_ci_upper"].to_numpy(), rtol=1e-12)
        assert "2 seeds" in fig.caption
    left, right = figs[2].figure.axes[:2]
    names = list(dict.fromkeys([*res.pairs["source"], *res.pairs["target"]]))
    for ax, column in ((left, "connection_r2"), (right, "heterogeneity")):
        want = res.pairs.pivot(index="source", columns="target", values=column).reindex(index=names, columns=names)
        drawn = np.ma.filled(heatmap(ax, "connection" if ax is left else "heterogeneity").get_array(), np.nan)
        np.testing.assert_allclose(drawn, want.to_numpy(float), rtol=1e-12)
    assert "cross-validated R^2" in figs[2].caption and "paired difference" in figs[2].caption
    check_saved(res, tmp_path, ["learning_curves_accuracy", "learning_curves_log_loss", "learning_curves_connection"])


def test_bad_format_and_results_without_figures_fail_clearly(retrieval_result, tmp_path):
    with pytest.raises(ValueError, match="format"):
        retrieval_result.save_figures(tmp_path, format="jpeg")
    with pytest.raises(ValueError, match="dpi"):
        save_figures(retrieval_result, tmp_path, dpi=0)
    from dataclasses import dataclass

    @dataclass
    class Plain(Result):
        table: pd.DataFrame

    with pytest.raises(NoFiguresError, match="Plain has no paper figures"):
        Plain(pd.DataFrame({"x": [1]})).save_figures(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written by any of the failures


def test_the_same_result_gives_the_same_vector_files(retrieval_result):
    fig = paper_figures(retrieval_result)[0]
    for fmt in ("pdf", "svg"):
        assert figure_bytes(fig, format=fmt) == figure_bytes(fig, format=fmt)
    assert fig.caption.encode("ascii", "ignore") in figure_bytes(fig, format="svg")


def test_xor_curve_lines_and_bands_equal_the_curve_table(tmp_path):
    from workbench.analyses.retrieval import XorCurveResult

    rows = [{"p": p, "method": m, "top1": top, "top1_ci_lower": top - 0.05, "top1_ci_upper": top + 0.04, "n_seeds": 3}
            for m, slope in (("ConFu", 0.8), ("CLIP", 0.0)) for p in (0.0, 0.5, 1.0)
            for top in [0.125 + slope * p * 0.8]]
    res = XorCurveResult(runs=pd.DataFrame(), curve=pd.DataFrame(rows), differences=pd.DataFrame(), d=3, level=0.95)
    (fig,) = paper_figures(res)
    ax = fig.figure.axes[0]
    for method, part in res.curve.groupby("method"):
        np.testing.assert_allclose(line(ax, f"line:{method}").get_ydata(), part["top1"].to_numpy())
        lo, hi = band_limits(ax, f"band:{method}", part["p"].to_numpy())
        np.testing.assert_allclose(lo, part["top1_ci_lower"].to_numpy())
        np.testing.assert_allclose(hi, part["top1_ci_upper"].to_numpy())
    grid = line(ax, "oracle").get_xdata()
    np.testing.assert_allclose(line(ax, "oracle").get_ydata(), grid + (1 - grid) / 8)
    assert "3 seeds" in fig.caption and "8 bit vectors" in fig.caption
    check_saved(res, tmp_path, ["xor_curve_d3"])


def test_robustness_curves_and_subsets_equal_the_tables(tmp_path):
    from workbench.analyses.robustness import RobustnessResult

    rows = []
    for perturbation, severities in (("missing", [0.0, 0.5, 1.0]), ("noise", [20.0, 0.0, -10.0])):
        for j, modality in enumerate(["audio", "video"]):
            for k, sev in enumerate(severities):
                v = 0.9 - 0.2 * k * (j + 1) / 2
                rows.append({"perturbation": perturbation, "modality": modality, "severity": sev, "metric": "accuracy",
                             "value": v, "value_ci_lower": v - 0.03, "value_ci_upper": v + 0.02, "n": 200,
                             "level": 0.95})
    subsets = pd.DataFrame({"pattern": ["audio+video", "audio", "video"], "difference": [0.01, -0.02, 0.03],
                            "difference_ci_lower": [-0.01, -0.05, 0.0], "difference_ci_upper": [0.03, 0.01, 0.06],
                            "n_seeds": 3, "level": 0.95})
    patterns = pd.DataFrame([{"pattern": p, "size": size, "metric": metric, "value": v, "value_ci_lower": v - 0.02,
                              "value_ci_upper": v + 0.01, "n": 200, "level": 0.95}
                             for p, size, base in (("audio+video", 2, 0.9), ("audio", 1, 0.7), ("video", 1, 0.6))
                             for metric, v in (("accuracy", base), ("macro_f1", base - 0.1))])
    res = RobustnessResult(curves=pd.DataFrame(rows), patterns=patterns, subsets=subsets)
    figs = paper_figures(res)
    assert [f.name for f in figs] == ["robustness_missing_accuracy", "robustness_noise_accuracy",
                                      "robustness_patterns", "robustness_subsets"]
    for fig, perturbation in zip(figs[:2], ("missing", "noise"), strict=True):
        ax = fig.figure.axes[0]
        for modality, part in res.curves[res.curves["perturbation"] == perturbation].groupby("modality"):
            part = part.sort_values("severity")
            np.testing.assert_allclose(line(ax, f"line:{modality}").get_ydata(), part["value"].to_numpy())
            lo, hi = band_limits(ax, f"band:{modality}", part["severity"].to_numpy())
            np.testing.assert_allclose(lo, part["value_ci_lower"].to_numpy())
            np.testing.assert_allclose(hi, part["value_ci_upper"].to_numpy())
        assert "200 test samples" in fig.caption
    assert figs[1].figure.axes[0].xaxis_inverted()  # SNR axis reversed, as in the interactive figure
    ax = figs[2].figure.axes[0]  # patterns by size (the pair first), metrics as columns, intervals in the cells
    np.testing.assert_allclose(heatmap(ax).get_array(), [[0.7, 0.6], [0.6, 0.5], [0.9, 0.8]])
    assert ticklabels(ax.yaxis) == ["audio", "video", "audio+video"]
    assert "[0.680, 0.710]" in [t.get_text().replace("\n", " ") for t in ax.texts][0]
    assert "every presence pattern" in figs[2].caption
    ax = figs[3].figure.axes[0]
    np.testing.assert_allclose(line(ax, "differences").get_xdata(), subsets["difference"].to_numpy())
    np.testing.assert_allclose([s[:, 0].min() for s in errorbar_segments(ax)], subsets["difference_ci_lower"])
    check_saved(res, tmp_path, ["robustness_missing_accuracy", "robustness_noise_accuracy", "robustness_patterns",
                                "robustness_subsets"])


def test_theory_lab_curves_ratios_and_heat_map_equal_the_tables(tmp_path):
    from workbench.analyses.theory_lab import theory_lab

    res = theory_lab(ns=[16, 64, 256], eps=[0.5, 0.05], sigma_y=[0.0, 0.1], seeds=3, learners=("mm", "uni_erm"),
                     grid=256, n_test=512, progress=False)
    figs = paper_figures(res)
    assert [f.name for f in figs] == ["theory_excess_risk", "theory_ratio", "theory_advantage_uni_erm"]
    eps, sig = res.summary["eps"].min(), res.summary["sigma_y"].min()
    cell = res.summary[(res.summary["eps"] == eps) & (res.summary["sigma_y"] == sig)]
    ax = figs[0].figure.axes[0]
    for learner, part in cell.groupby("learner"):
        part = part.sort_values("n")
        np.testing.assert_allclose(line(ax, f"line:{learner}").get_ydata(), part["excess_risk"].clip(lower=1e-16))
        _, hi = band_limits(ax, f"band:{learner}", part["n"].to_numpy())
        np.testing.assert_allclose(hi, part["excess_risk_ci_upper"].clip(lower=1e-16))
    ratios = res.ratios[(res.ratios["eps"] == eps) & (res.ratios["sigma_y"] == sig)].sort_values("n")
    ax = figs[1].figure.axes[0]
    np.testing.assert_allclose(line(ax, "ratio:uni_erm").get_ydata(), ratios["ratio"], rtol=1e-12)
    ref = line(ax, "sqrt_reference").get_ydata()
    np.testing.assert_allclose(ref / ref[0], np.sqrt(ratios["n"].to_numpy() / 16))
    top = res.ratios[(res.ratios["n"] == 256) & (res.ratios["x_only"] == 0)]
    want = np.log10(top.pivot(index="sigma_y", columns="eps", values="ratio").to_numpy())
    np.testing.assert_allclose(heatmap(figs[2].figure.axes[0]).get_array(), want, rtol=1e-12)
    assert "n=256" in figs[2].caption and "3 seeds" in figs[0].caption
    check_saved(res, tmp_path, ["theory_excess_risk", "theory_ratio", "theory_advantage_uni_erm"])


def test_clasp_recall_and_probe_bars_equal_the_summary(tmp_path):
    from workbench.analyses.clasp import ClaspResult

    def row(kind, name, v, chance):
        return {"kind": kind, "name": name, "value": v, "value_ci_lower": v - 0.05, "value_ci_upper": v + 0.04,
                "chance": chance, "n_seeds": 3, "level": 0.95}

    summary = pd.DataFrame([row("retrieval", "sound->shape R@1", 0.05, 0.003),
                            row("retrieval", "shape->sound R@1", 0.06, 0.003),
                            row("retrieval", "sound->shape R@10", 0.2, 0.033),
                            row("retrieval", "shape->sound R@10", 0.25, 0.033),
                            row("probe", "z_sound", 0.5, 0.14), row("probe", "raw_logmel_mean", 0.6, 0.14)])
    res = ClaspResult(pd.DataFrame(), pd.DataFrame(), summary)
    figs = paper_figures(res)
    assert [f.name for f in figs] == ["clasp_R1", "clasp_R10", "clasp_probes"]
    for fig, rows in zip(figs, (summary.iloc[:2], summary.iloc[2:4], summary.iloc[4:]), strict=True):
        ax = fig.figure.axes[0]
        np.testing.assert_allclose([p.get_height() for p in ax.patches], rows["value"].to_numpy())
        segs = errorbar_segments(ax)
        np.testing.assert_allclose([s[:, 1].min() for s in segs], rows["value_ci_lower"].to_numpy())
        np.testing.assert_allclose([s[:, 1].max() for s in segs], rows["value_ci_upper"].to_numpy())
        assert line(ax, "chance").get_ydata()[0] == pytest.approx(rows["chance"].mean())
    assert ticklabels(figs[1].figure.axes[0].xaxis) == ["sound->shape", "shape->sound"]
    assert "top 10" in figs[1].caption and "majority-class" in figs[2].caption
    check_saved(res, tmp_path, ["clasp_R1", "clasp_R10", "clasp_probes"])
