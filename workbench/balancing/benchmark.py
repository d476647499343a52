"""The balancing benchmark: every strategy x dataset x seed, with probes and gap statistics.

For each (dataset, seed) it trains naive joint training, each balancing strategy, one
model per modality (on CUDA all M at once, as stacked single-modality coalition models from
:mod:`workbench.batched`; the balancing strategies act per model between backward and step,
and the joint runs feed a per-epoch gap tracker, so those train one by one) and the ensemble
of the unimodal models, all with the same optimizer (SGD with momentum by
default: Adam's per-parameter step normalisation props up a weak encoder by itself and
masks the imbalance these methods address, see :func:`workbench.balancing.common.maybe_sgd`).

Measured per run (test split): fused accuracy; per modality the accuracy of a linear probe
(scikit-learn logistic regression fitted on the frozen embeddings of the training split --
comparable across methods whether or not their unimodal heads trained the encoder); and,
from a :class:`workbench.gap.GapTracker`, the per-epoch gap and GMM fit on the training set.

Example
-------
>>> res = run_benchmark(["synthetic-imbalance"], ["naive", "ogm_ge"], seeds=[0], epochs=2,
...                     dataset_params={"synthetic-imbalance": {"n": 300}}, progress=False)
>>> sorted(res.summary["method"].unique())
['naive', 'ogm_ge']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats

from workbench.balancing.baselines import train_unimodal_models
from workbench.gap import GapResult, GapTracker
from workbench.results import Result
from workbench.runs import Run, train

JOINT = {"naive": "joint", "ogm_ge": "ogm_ge", "gmm_adaptive": "gmm_adaptive", "mlb": "mlb", "mcr": "mcr"}
METHODS = [*JOINT, "unimodal", "ensemble"]
DEFAULT_METHOD_PARAMS = {"ogm_ge": {"alpha": 0.8}, "mcr": {"num_perms": 8}}
# synthetic-imbalance tuned so the weak modality needs *learned* features (many noisy
# dimensions) and the strong one saturates the fused loss: imbalance shows under naive training
DEFAULT_DATASET_PARAMS = {"synthetic-imbalance": {"snr": [4.0, 2.5], "dims": [16, 1024]}}


@dataclasses.dataclass
class BalanceBenchmarkResult(Result):
    """Tables: ``scores`` (one row per dataset, method, seed, model; kind fused/probe),
    ``summary`` (mean, sd and t interval over seeds), ``gap_summary`` (per-epoch gap statistics
    and GMM weights of every joint run), and ``gaps``/``gmm`` (per-sample gaps and GMM fits of the
    first seed, for the distribution plots)."""

    scores: pd.DataFrame
    summary: pd.DataFrame
    gap_summary: pd.DataFrame
    gaps: pd.DataFrame
    gmm: pd.DataFrame
    datasets: list = dataclasses.field(default_factory=list)
    methods: list = dataclasses.field(default_factory=list)
    seeds: list = dataclasses.field(default_factory=list)
    config: dict = dataclasses.field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.summary

    def _repr_html_(self) -> str:
        return self.table().to_html()

    def table(self) -> pd.DataFrame:
        """Wide ``mean +- sd`` table: one row per (dataset, method), one column per model."""
        s = self.summary.assign(cell=lambda f: f["mean"].map("{:.3f}".format) + " ± " + f["sd"].map("{:.3f}".format))
        s["column"] = np.where(s["kind"] == "fused", "fused", "probe " + s["model"])
        return s.pivot_table(index=["dataset", "method"], columns="column", values="cell", aggfunc="first")

    def gap_result(self, dataset: str, method: str) -> GapResult:
        """The :class:`GapResult` of one (dataset, method) run of the first seed (for the gap panels)."""
        sel = lambda f: f[(f["dataset"] == dataset) & (f["method"] == method)].drop(columns=["dataset", "method"])  # noqa: E731
        gaps, gmm = sel(self.gaps), sel(self.gmm)
        if gaps.empty:
            raise ValueError(f"no gap record for dataset {dataset!r}, method {method!r}")
        summary = sel(self.gap_summary[self.gap_summary["seed"] == self.seeds[0]]).drop(columns="seed")
        mods = [m for m in self.scores.query("dataset == @dataset and kind == 'probe'")["model"].unique()]
        return GapResult(gaps=gaps.reset_index(drop=True), gmm=gmm.reset_index(drop=True),
                         summary=summary.reset_index(drop=True), unimodal=pd.DataFrame(), modalities=mods,
                         pairs=list(dict.fromkeys(gaps["pair"])), epochs=sorted(int(e) for e in gaps["epoch"].unique()),
                         source=f"benchmark {dataset} / {method} / seed {self.seeds[0]}")


def probe_accuracy(model, ds, train_idx: np.ndarray, test_idx: np.ndarray) -> dict[str, float]:
    """Test accuracy of a logistic-regression probe on each modality's frozen embedding."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model.eval()
    with torch.no_grad():
        emb = model.encode({m: t.to(next(model.parameters()).device) for m, t in ds.modalities.items()})
    y = ds.y.numpy()
    out = {}
    for m, z in emb.items():
        z = z.float().cpu().numpy()
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0))
        clf.fit(z[train_idx], y[train_idx])
        out[m] = float((clf.predict(z[test_idx]) == y[test_idx]).mean())
    return out


def _joint_rows(run: Run, dataset: str, method: str, seed: int) -> list[dict]:
    ds, splits = run.dataset, run.splits
    rows = [{"dataset": dataset, "method": method, "seed": seed, "model": "fused", "kind": "fused",
             "accuracy": run.metrics["test"]["fused"]}]
    for m, acc in probe_accuracy(run.model, ds, splits.train, splits.test).items():
        rows.append({"dataset": dataset, "method": method, "seed": seed, "model": m, "kind": "probe", "accuracy": acc})
    return rows


def _unimodal_rows(ds, dataset: str, seed: int, epochs: int, opt: dict, methods: Sequence[str]) -> list[dict]:
    fit = train_unimodal_models(ds, epochs=epochs, seed=seed, strategy_params=opt)
    test, rows = fit.splits.test, []
    if "unimodal" in methods:
        for m, model in fit.models.items():
            probe_ds = ds if fit.batched else ds.select_modalities([m])
            acc = probe_accuracy(model, probe_ds, fit.splits.train, test)[m]
            rows += [{"dataset": dataset, "method": f"unimodal {m}", "seed": seed, "model": "fused", "kind": "fused",
                      "accuracy": fit.accuracy(m, test)},
                     {"dataset": dataset, "method": f"unimodal {m}", "seed": seed, "model": m, "kind": "probe",
                      "accuracy": acc}]
    if "ensemble" in methods:
        rows.append({"dataset": dataset, "method": "ensemble", "seed": seed, "model": "fused", "kind": "fused",
                     "accuracy": fit.ensemble_accuracy(test)})
    return rows


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and 95% t interval over seeds per (dataset, method, model, kind)."""
    def agg(part: pd.Series) -> pd.Series:
        n, mean = len(part), part.mean()
        sd = part.std(ddof=1) if n > 1 else 0.0
        half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n) if n > 1 else np.nan
        return pd.Series({"mean": mean, "sd": sd, "ci_lower": mean - half, "ci_upper": mean + half, "n_seeds": n})

    keys = ["dataset", "method", "model", "kind"]
    return scores.groupby(keys, sort=False)["accuracy"].apply(agg).unstack().reset_index()


def run_benchmark(datasets: Sequence[str] = ("synthetic-imbalance", "mfeat"), methods: Sequence[str] = tuple(METHODS),
                  seeds: Sequence[int] = (0, 1, 2), epochs: int = 10, *, optimizer: str = "sgd",
                  lr: float = 0.02, method_params: dict | None = None, dataset_params: dict | None = None,
                  progress: bool = True) -> BalanceBenchmarkResult:
    """Train every method on every dataset and seed; see the module docstring.

    Parameters
    ----------
    datasets, methods : sequences of str
        Catalog names; methods from :data:`METHODS`.
    seeds : sequence of int
        Seeds of the split, the initialisation and (for synthetic data) the generator.
    epochs : int
    optimizer, lr : str, float
        Shared optimizer (``"sgd"`` with momentum 0.9, or ``"adam"``: the trainer's default).
    method_params, dataset_params : dict, optional
        Per-method strategy parameters / per-dataset generator parameters (merged over the defaults).
    """
    from workbench import load_dataset

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {METHODS}")
    mparams = {**DEFAULT_METHOD_PARAMS, **(method_params or {})}
    dparams = {**DEFAULT_DATASET_PARAMS, **(dataset_params or {})}
    opt = {"optimizer": optimizer, "sgd_lr": lr} if optimizer == "sgd" else {}
    rows, gap_rows, gap_parts, gmm_parts = [], [], [], []
    grid = [(d, s) for d in datasets for s in seeds]
    if progress:
        from tqdm.auto import tqdm

        grid = tqdm(grid, desc="balancing benchmark")
    for dataset, seed in grid:
        extra = dict(dparams.get(dataset, {}))
        if dataset.startswith("synthetic"):
            extra["seed"] = seed
        ds = load_dataset(dataset, **extra)
        for method in [m for m in methods if m in JOINT]:
            tracker = GapTracker(scheme="rest")
            run = train(ds, epochs=epochs, seed=seed, strategy=JOINT[method],
                        strategy_params={**opt, **mparams.get(method, {})}, save=False, progress=False,
                        callbacks=[tracker])
            rows += _joint_rows(run, dataset, method, seed)
            gap = tracker.result(seed=seed)
            tag = {"dataset": dataset, "method": method}
            gap_rows.append(_gap_rows(gap, tag, seed))
            if seed == seeds[0]:
                gap_parts.append(gap.gaps.assign(**tag))
                gmm_parts.append(gap.gmm.assign(**tag))
        if {"unimodal", "ensemble"} & set(methods):
            rows += _unimodal_rows(ds, dataset, seed, epochs, opt, methods)
    scores = pd.DataFrame(rows)
    cat = lambda parts: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()  # noqa: E731
    return BalanceBenchmarkResult(
        scores=scores, summary=summarize(scores), gap_summary=cat(gap_rows), gaps=cat(gap_parts), gmm=cat(gmm_parts),
        datasets=list(datasets), methods=list(methods), seeds=list(seeds),
        config={"epochs": epochs, "optimizer": optimizer, "lr": lr, "method_params": mparams, "dataset_params": dparams})


def _gap_rows(gap: GapResult, tag: dict, seed: int) -> pd.DataFrame:
    w = gap.gmm[gap.gmm["component"] == "imbalanced"][["epoch", "pair", "weight", "mean"]]
    w = w.rename(columns={"weight": "gmm_weight_imbalanced", "mean": "gmm_mean_imbalanced"})
    return gap.summary.merge(w, on=["epoch", "pair"]).assign(seed=seed, **tag)
