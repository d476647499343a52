"""The balancing benchmark: every strategy x dataset x seed, with probes and gap statistics.

For each (dataset, seed) it trains naive joint training, each balancing strategy, one
model per modality (on CUDA all M at once, as stacked single-modality coalition models from
:mod:`workbench.training.stacked`; the balancing strategies act per model between backward and step,
and the joint runs feed a per-epoch gap tracker, so those train one by one) and the ensemble
of the unimodal models, all with the same optimizer (SGD with momentum by
default: Adam's per-parameter step normalisation props up a weak encoder by itself and
masks the imbalance these methods address; ``TrainConfig.optimizer``).

Measured per run (test split): fused accuracy; per modality the accuracy of a linear probe
(scikit-learn logistic regression fitted on the frozen embeddings of the training split --
comparable across methods whether or not their unimodal heads trained the encoder); and,
from a :class:`workbench.analyses.gap.GapTracker`, the per-epoch gap and GMM fit on the training set.

Which ingredient does the work
------------------------------
Besides the methods, :data:`ABLATIONS` switches off one ingredient at a time:

- ``multi_loss``: the unimodal losses train the encoders and nothing else (MLB with
  ``alpha = 0``, so ``k_m = 1``) -- the simplest baseline the multi-loss methods (MLB, the GMM
  loss, MCR) must beat to credit their own mechanism;
- ``mcr_no_reg`` / ``mcr_no_contrastive`` / ``mcr_no_pretrain``: MCR without its game
  regulariser (``lam = 0``), without its contrastive term, without the unimodal pre-training;
- ``ogm_ge_no_ge``: OGM-GE without the generalization-enhancement noise (OGM alone).

``paired`` reports, for every method (and ablation) and every measured model, the paired
difference over shared seeds (same split, initialisation and data per seed) against naive
training, against the unimodal ensemble (fused accuracy) and, for the rows of
:data:`INGREDIENTS`, against the ablation that removes the method's own ingredient: mean,
sd, t interval at ``level`` (0.95 by default; ``diff_mean_ci_lower`` / ``diff_mean_ci_upper``,
``n - 1`` degrees of freedom), the
seeds it won and the number of seeds. The default is five seeds; fewer than five give wide
intervals (the t quantile at 4 d.o.f. is 2.78).

MultiFair (levels and direction term: ``modality_level``, ``group_level``, ``direction``) is
a fairness method and is benchmarked on group data in notebook 04, not here.

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

from workbench.analyses.baselines import train_unimodal_models
from workbench.analyses.gap import GapResult, GapTracker
from workbench.stats.intervals import LEVEL, check_level, t_interval
from workbench.store.results import Result
from workbench.store.runs import Run
from workbench.training.train import train

JOINT = {"naive": "joint", "ogm_ge": "ogm_ge", "gmm_adaptive": "gmm_adaptive", "mlb": "mlb", "mcr": "mcr"}
# ablation -> (the method it ablates, the parameters that switch its ingredient off)
ABLATIONS = {
    "multi_loss": ("mlb", {"alpha": 0.0}),
    "mcr_no_reg": ("mcr", {"lam": 0.0}),
    "mcr_no_contrastive": ("mcr", {"contrastive_weight": 0.0}),
    "mcr_no_pretrain": ("mcr", {"pretrain_epochs": 0}),
    "ogm_ge_no_ge": ("ogm_ge", {"ge": False}),
}
# method -> [(reference run, what the paired difference measures)]
INGREDIENTS = {
    "mlb": [("multi_loss", "MLB's modulation over multi-loss")],
    "gmm_adaptive": [("multi_loss", "GMM loss over multi-loss")],
    "mcr": [("multi_loss", "MCR over multi-loss"), ("mcr_no_reg", "MCR's regulariser"),
            ("mcr_no_contrastive", "MCR's contrastive term"), ("mcr_no_pretrain", "MCR's pre-training")],
    "ogm_ge": [("ogm_ge_no_ge", "OGM-GE's GE noise")],
}
METHODS = [*JOINT, *ABLATIONS, "unimodal", "ensemble"]
# the authors' settings: OGM-GE alpha 0.8 (their CREMA-D tip), MCR 32 permutations (run.sh) and
# unimodal pre-training (release configs), for as many epochs as the run itself when not given
DEFAULT_METHOD_PARAMS = {"ogm_ge": {"alpha": 0.8}, "mcr": {"num_perms": 32}}
# synthetic-imbalance tuned so the weak modality needs *learned* features (many noisy
# dimensions) and the strong one saturates the fused loss: imbalance shows under naive training
DEFAULT_DATASET_PARAMS = {"synthetic-imbalance": {"snr": [4.0, 2.5], "dims": [16, 1024]}}


@dataclasses.dataclass
class BalanceBenchmarkResult(Result):
    """Tables: ``scores`` (one row per dataset, method, seed, model; kind fused/probe),
    ``summary`` (mean, sd and t interval ``mean_ci_lower``/``mean_ci_upper`` over seeds), ``paired`` (paired differences against
    the references, see the module docstring), ``gap_summary`` (per-epoch gap statistics
    and GMM weights of every joint run), and ``gaps``/``gmm`` (per-sample gaps and GMM fits of the
    first seed, for the distribution plots)."""

    scores: pd.DataFrame
    summary: pd.DataFrame
    gap_summary: pd.DataFrame
    gaps: pd.DataFrame
    gmm: pd.DataFrame
    paired: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    datasets: list = dataclasses.field(default_factory=list)
    methods: list = dataclasses.field(default_factory=list)
    seeds: list = dataclasses.field(default_factory=list)
    config: dict = dataclasses.field(default_factory=dict)
    level: float = LEVEL

    @classmethod
    def _legacy_columns(cls) -> dict[str, dict[str, str]]:
        """Benchmarks saved before the interval convention."""
        return {"summary": {"ci_lower": "mean_ci_lower", "ci_upper": "mean_ci_upper"},
                "paired": {"diff_ci_lower": "diff_mean_ci_lower", "diff_ci_upper": "diff_mean_ci_upper"}}

    def to_frame(self) -> pd.DataFrame:
        return self.summary

    def _repr_html_(self) -> str:
        return self.table().to_html()

    def table(self) -> pd.DataFrame:
        """Wide ``mean +- sd`` table: one row per (dataset, method), one column per model."""
        s = self.summary.assign(cell=lambda f: f["mean"].map("{:.3f}".format) + " ± " + f["sd"].map("{:.3f}".format))
        s["column"] = np.where(s["kind"] == "fused", "fused", "probe " + s["model"])
        return s.pivot_table(index=["dataset", "method"], columns="column", values="cell", aggfunc="first")

    def paired_table(self, reference: str | None = None) -> pd.DataFrame:
        """Paired differences as ``mean [ci_lower, ci_upper] (wins/n)`` cells: one row per
        (dataset, method, reference), one column per model (optionally one reference only)."""
        p = self.paired if reference is None else self.paired[self.paired["reference"] == reference]
        cell = (p["diff_mean"].map("{:+.3f}".format) + " [" + p["diff_mean_ci_lower"].map("{:+.3f}".format) + ", "
                + p["diff_mean_ci_upper"].map("{:+.3f}".format) + "] (" + p["wins"].astype(int).astype(str) + "/"
                + p["n_seeds"].astype(int).astype(str) + ")")
        column = np.where(p["kind"] == "fused", "fused", "probe " + p["model"])
        return (p.assign(cell=cell, column=column)
                .pivot_table(index=["dataset", "method", "reference"], columns="column", values="cell",
                             aggfunc="first", sort=False))

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
                         source=f"benchmark {dataset} / {method} / seed {self.seeds[0]}", level=self.level)


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
    fit = train_unimodal_models(ds, epochs=epochs, seed=seed, **opt)
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


def summarize(scores: pd.DataFrame, *, level: float = LEVEL) -> pd.DataFrame:
    """Mean, sd and the ``level`` t interval (``mean_ci_lower``, ``mean_ci_upper``) over seeds per
    (dataset, method, model, kind).

    Examples
    --------
    >>> scores = pd.DataFrame({"dataset": "d", "method": "m", "model": "fused", "kind": "fused",
    ...                        "accuracy": [0.7, 0.8, 0.9]})
    >>> summarize(scores)[["mean", "mean_ci_lower", "mean_ci_upper"]].round(4).values.tolist()
    [[0.8, 0.5516, 1.0484]]
    """
    def agg(part: pd.Series) -> pd.Series:
        n = len(part)
        mean, lo, hi = t_interval(part.to_numpy(), level)
        sd = part.std(ddof=1) if n > 1 else 0.0
        return pd.Series({"mean": mean, "sd": sd, "mean_ci_lower": lo, "mean_ci_upper": hi, "n_seeds": n})

    keys = ["dataset", "method", "model", "kind"]
    return scores.groupby(keys, sort=False)["accuracy"].apply(agg).unstack().reset_index()


def paired_differences(scores: pd.DataFrame, method: str, reference: str, *, level: float = LEVEL) -> pd.DataFrame:
    """``method - reference`` per (dataset, model, kind) over the seeds both have.

    Mean and sd of the per-seed differences, the ``level`` t interval (``n - 1`` degrees of
    freedom; NaN for one seed), the seeds where the method scored higher and ``n_seeds``.
    The ensemble has only a fused row, so against it only fused accuracy is compared.
    """
    keys = ["dataset", "seed", "model", "kind"]
    a = scores[scores["method"] == method].set_index(keys)["accuracy"]
    b = scores[scores["method"] == reference].set_index(keys)["accuracy"]
    diff = (a - b).dropna().rename("diff").reset_index()
    rows = []
    for (dataset, model, kind), part in diff.groupby(["dataset", "model", "kind"], sort=False):
        d = part["diff"].to_numpy()
        n = len(d)
        mean, lo, hi = t_interval(d, level)
        sd = float(d.std(ddof=1)) if n > 1 else 0.0
        rows.append({"dataset": dataset, "method": method, "reference": reference, "model": model, "kind": kind,
                     "diff_mean": mean, "diff_sd": sd, "diff_mean_ci_lower": lo, "diff_mean_ci_upper": hi,
                     "wins": int((d > 0).sum()), "n_seeds": n})
    return pd.DataFrame(rows)


def paired_summary(scores: pd.DataFrame, *, level: float = LEVEL) -> pd.DataFrame:
    """Every run against naive, against the ensemble and (:data:`INGREDIENTS`) its own ablation,
    with a ``measures`` column saying what each comparison isolates."""
    present = list(dict.fromkeys(scores["method"]))
    runs = [m for m in present if m in JOINT or m in ABLATIONS]
    parts = []
    for m in runs:
        comparisons = [("naive", "over naive joint training"), ("ensemble", "over the unimodal ensemble")]
        comparisons += INGREDIENTS.get(m, [])
        for ref, what in comparisons:
            if ref != m and ref in present:
                parts.append(paired_differences(scores, m, ref, level=level).assign(measures=what))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def run_benchmark(datasets: Sequence[str] = ("synthetic-imbalance", "mfeat"), methods: Sequence[str] = tuple(METHODS),
                  seeds: Sequence[int] = (0, 1, 2, 3, 4), epochs: int = 10, *, optimizer: str = "sgd",
                  lr: float = 0.02, method_params: dict | None = None, dataset_params: dict | None = None,
                  progress: bool = True, level: float = LEVEL) -> BalanceBenchmarkResult:
    """Train every method on every dataset and seed; see the module docstring.

    Parameters
    ----------
    datasets, methods : sequences of str
        Catalog names; methods (and ablations) from :data:`METHODS`.
    seeds : sequence of int
        Seeds of the split, the initialisation and (for synthetic data) the generator.
    epochs : int
    optimizer, lr : str, float
        Shared optimizer and learning rate of every run (``TrainConfig.optimizer`` and ``lr``;
        ``"sgd"`` with momentum 0.9, or ``"adam"``: the trainer's default).
    method_params, dataset_params : dict, optional
        Per-method strategy parameters / per-dataset generator parameters (merged over the
        defaults). An ablation runs its method's parameters with its switch on top; MCR
        pre-trains its encoders for ``epochs`` epochs unless ``pretrain_epochs`` is given.
    level : float
        Confidence level of the t intervals over seeds and of the gap intervals (0.95 by default).
    """
    from workbench import load_dataset

    level = check_level(level)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {METHODS}")
    mparams = {**DEFAULT_METHOD_PARAMS, **(method_params or {})}
    dparams = {**DEFAULT_DATASET_PARAMS, **(dataset_params or {})}
    opt = {"optimizer": optimizer, "lr": lr}  # TrainConfig fields, shared by every run
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
        for method in [m for m in methods if m in JOINT or m in ABLATIONS]:
            tracker = GapTracker(scheme="rest")
            strategy, params = _strategy_of(method, mparams, epochs)
            run = train(ds, epochs=epochs, seed=seed, strategy=strategy, strategy_params=params, **opt,
                        save=False, progress=False, callbacks=[tracker])
            rows += _joint_rows(run, dataset, method, seed)
            gap = tracker.result(seed=seed, level=level)
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
        scores=scores, summary=summarize(scores, level=level), gap_summary=cat(gap_rows), gaps=cat(gap_parts), gmm=cat(gmm_parts),
        paired=paired_summary(scores, level=level),
        datasets=list(datasets), methods=list(methods), seeds=list(seeds), level=level,
        config={"epochs": epochs, "optimizer": optimizer, "lr": lr, "method_params": mparams, "dataset_params": dparams})


def _strategy_of(method: str, mparams: dict, epochs: int) -> tuple[str, dict]:
    """Registered strategy name and parameters of a method or an ablation."""
    base, switch = (method, {}) if method in JOINT else ABLATIONS[method]
    params = {**mparams.get(base, {}), **mparams.get(method, {}), **switch}
    if base == "mcr":
        params.setdefault("pretrain_epochs", epochs)
    return JOINT[base], params


def _gap_rows(gap: GapResult, tag: dict, seed: int) -> pd.DataFrame:
    w = gap.gmm[gap.gmm["component"] == "imbalanced"][["epoch", "pair", "weight", "mean"]]
    w = w.rename(columns={"weight": "gmm_weight_imbalanced", "mean": "gmm_mean_imbalanced"})
    return gap.summary.merge(w, on=["epoch", "pair"]).assign(seed=seed, **tag)
