"""Modality gap and its two-component Gaussian-mixture diagnosis.

After Liu, Yu & Liu, *GMM-guided adaptive loss for modality imbalance* (arXiv 2510.21797;
abstracts only, see ``shared/methods/imbalance.md`` section A):

- **Modality gap** of sample ``i`` between modalities ``a`` and ``b``: the difference of the
  true-class softmax scores of their unimodal heads, ``d_i = p_a,i - p_b,i`` with
  ``p_m,i = softmax(z_m,i)[y_i]``. For ``M > 2`` modalities the paper gives nothing; we
  compute every pair ``a-b`` *and* each modality against the mean of the others,
  ``d_i = p_m,i - mean_{j != m} p_j,i`` (column ``m-rest``). [INFERRED]
- Across samples the gap is bimodal: a 2-component GMM (``sklearn.mixture.GaussianMixture``)
  is fitted per epoch and per pair. The **balanced** component is the one with the smaller
  expected absolute gap ``E|d|`` (:func:`expected_abs_gap`; right for location and scale
  mixtures); the other is **imbalanced**. Bayes' rule gives each sample its posterior
  of the imbalanced component::

      gamma_i = pi_u N(d_i; mu_u, s_u^2) / sum_k pi_k N(d_i; mu_k, s_k^2)

  (:func:`gmm_posterior`, equal to ``predict_proba`` of the fitted mixture).
- Uncertainty beside every estimate, at ``level`` (0.95 by default; columns ``<estimate>``,
  ``<estimate>_ci_lower``, ``<estimate>_ci_upper``): Wilson intervals for accuracies and shares,
  a Student-t interval for the mean gap (:mod:`workbench.stats.intervals`), and for the GMM
  parameters either the intervals that treat the posterior assignments as known
  (``mu_k +- z s_k / sqrt(n pi_k)``, ``pi_k +- z sqrt(pi_k (1 - pi_k) / n)``, ``z = 1.96`` at
  0.95) or, with ``n_boot > 0``, bootstrap refits
  (:func:`gmm_bootstrap`); both under-cover when the components overlap, so both are
  labelled approximate (column ``ci_method``, and the figure's title).

The gap is tracked during training by :class:`GapTracker` (a trainer callback, so it works
with every strategy) and computed on any saved run from its ``p_true_<m>`` columns by
:func:`gap_from_predictions`.

Example
-------
>>> import numpy as np, pandas as pd
>>> from workbench.analyses.gap import gap_analysis
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"epoch": 1, "sample": np.arange(400), "y": 0,
...                       "p_true_a": rng.uniform(0.6, 1, 400), "p_true_b": rng.uniform(0, 1, 400)})
>>> res = gap_analysis(frame, ["a", "b"])
>>> res.pairs
['a-b']
>>> sorted(res.gmm["component"].unique())
['balanced', 'imbalanced']
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.stats.intervals import LEVEL, check_level, t_interval, wilson_interval
from workbench.stats.mixtures import (  # noqa: F401 - re-exported: the gap analysis' mixture
    EM_MAX_ITER,
    EM_TOL,
    GMMFit,
    em_refit,
    expected_abs_gap,
    fit_gap_gmm,
    gmm_bootstrap,
    gmm_posterior,
)
from workbench.store.results import Result
from workbench.strategies.common import unimodal_true_scores


# -- gaps -------------------------------------------------------------------------------------
def gap_pairs(modalities: Sequence[str], scheme: str = "all") -> list[tuple[str, str]]:
    """Pairs for which a gap is computed: ``(a, b)`` for ``a - b`` and ``(m, "rest")``.

    ``scheme``: ``"pairs"`` (every unordered pair, in modality order), ``"rest"`` (each
    modality against the mean of the others) or ``"all"`` (both; for two modalities only
    the single pair, since ``a-rest`` would repeat ``a-b``).
    """
    mods = list(modalities)
    if len(mods) < 2:
        raise ValueError(f"the modality gap needs at least two modalities, got {mods}")
    if scheme not in ("all", "pairs", "rest"):
        raise ValueError(f"unknown gap scheme {scheme!r}; use 'all', 'pairs' or 'rest'")
    pairs = list(itertools.combinations(mods, 2))
    rest = [(m, "rest") for m in mods]
    if len(mods) == 2:
        return pairs
    return {"all": pairs + rest, "pairs": pairs, "rest": rest}[scheme]


def pair_name(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}"


def modality_gaps(p_true: Mapping[str, np.ndarray], scheme: str = "all") -> pd.DataFrame:
    """Per-sample gaps, one column per pair (``"a-b"``, ``"m-rest"``).

    Parameters
    ----------
    p_true : mapping of modality to array (n,)
        True-class probability of each modality's unimodal head.
    scheme : {"all", "pairs", "rest"}

    Examples
    --------
    >>> import numpy as np
    >>> modality_gaps({"a": np.array([0.9, 0.5]), "b": np.array([0.2, 0.5])})["a-b"].round(2).tolist()
    [0.7, 0.0]
    """
    p = {m: np.asarray(v, dtype=float) for m, v in p_true.items()}
    out = {}
    for a, b in gap_pairs(list(p), scheme):
        other = np.mean([p[j] for j in p if j != a], axis=0) if b == "rest" else p[b]
        out[pair_name((a, b))] = p[a] - other
    return pd.DataFrame(out)


# -- the result -----------------------------------------------------------------------------
@dataclasses.dataclass
class GapResult(Result):
    """Modality gaps, their per-epoch GMM fits and unimodal accuracy over epochs.

    Tables
    ------
    gaps : one row per (epoch, pair, sample): ``gap``, ``posterior`` (of the imbalanced
        component), ``imbalanced`` (posterior > 0.5), ``y`` and any extra columns of the input.
    gmm : one row per (epoch, pair, component): weight, mean, variance (with intervals),
        mean log-likelihood.
    summary : one row per (epoch, pair): mean gap (with interval), mean |gap|, share of
        samples assigned to the imbalanced component (with Wilson interval).
    unimodal : one row per (epoch, modality): accuracy of the unimodal head (Wilson interval).
    """

    gaps: pd.DataFrame
    gmm: pd.DataFrame
    summary: pd.DataFrame
    unimodal: pd.DataFrame
    modalities: list = dataclasses.field(default_factory=list)
    pairs: list = dataclasses.field(default_factory=list)
    epochs: list = dataclasses.field(default_factory=list)
    source: str = ""
    level: float = LEVEL

    def to_frame(self) -> pd.DataFrame:
        return self.summary

    def last_epoch(self) -> int:
        return int(max(self.epochs))


def _check_frame(frame: pd.DataFrame, modalities: Sequence[str]) -> None:
    missing = [f"p_true_{m}" for m in modalities if f"p_true_{m}" not in frame.columns]
    if missing:
        raise ValueError(f"gap analysis: columns {missing} are missing; expected p_true_<modality> "
                         f"for modalities {list(modalities)} (got {list(frame.columns)[:12]}...)")


def _unimodal_table(frame: pd.DataFrame, modalities: Sequence[str], level: float = LEVEL) -> pd.DataFrame:
    rows = []
    for epoch, part in frame.groupby("epoch", sort=True):
        for m in modalities:
            col = f"pred_{m}"
            if col not in part or "y" not in part:
                continue
            k, n = int((part[col] == part["y"]).sum()), len(part)
            lo, hi = wilson_interval(k, n, level)
            rows.append({"epoch": int(epoch), "modality": m, "accuracy": k / n, "accuracy_ci_lower": float(lo),
                         "accuracy_ci_upper": float(hi), "mean_p_true": float(part[f"p_true_{m}"].mean()), "n": n})
    return pd.DataFrame(rows, columns=["epoch", "modality", "accuracy", "accuracy_ci_lower", "accuracy_ci_upper",
                                       "mean_p_true", "n"])


def _summary_row(epoch: int, pair: str, d: np.ndarray, gamma: np.ndarray, level: float = LEVEL) -> dict:
    n = len(d)
    k = int((gamma > 0.5).sum())
    lo, hi = wilson_interval(k, n, level)
    mean, mean_lo, mean_hi = t_interval(d, level)
    return {"epoch": epoch, "pair": pair, "mean_gap": mean, "mean_gap_ci_lower": mean_lo,
            "mean_gap_ci_upper": mean_hi, "mean_abs_gap": float(np.abs(d).mean()),
            "share_imbalanced": k / n, "share_imbalanced_ci_lower": float(lo),
            "share_imbalanced_ci_upper": float(hi), "n": n}


def gap_analysis(frame: pd.DataFrame, modalities: Sequence[str], *, scheme: str = "all", seed: int = 0,
                 warm_start: bool = True, source: str = "", progress: bool = False, n_boot: int = 0,
                 level: float = LEVEL) -> GapResult:
    """Gaps, per-epoch GMM fits and unimodal accuracy from per-sample true-class scores.

    Parameters
    ----------
    frame : DataFrame
        One row per (epoch, sample) with ``p_true_<m>`` for every modality; optional ``epoch``
        (default a single epoch 0), ``sample``, ``y``, ``pred_<m>`` (for unimodal accuracy)
        and any other per-sample columns (kept in ``gaps``, e.g. a corruption flag).
    modalities : sequence of str
    scheme : {"all", "pairs", "rest"}
        Which gaps (see :func:`gap_pairs`).
    seed : int
        Seed of the GMM initialisation.
    warm_start : bool
        Initialise each epoch's GMM from the previous epoch's fit of the same pair.
    n_boot : int
        Bootstrap refits per fit for the parameter intervals (:func:`gmm_bootstrap`); 0 (the
        default, cheap enough to track every epoch) keeps the assignments-known intervals.
        Both are labelled approximate in ``gmm["ci_method"]`` and in the figure.
    level : float
        Confidence level of every interval (0.95 by default).

    Returns
    -------
    GapResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> f = pd.DataFrame({"p_true_a": np.r_[np.full(50, .9), np.full(50, .5)] + np.linspace(0, .01, 100),
    ...                   "p_true_b": np.full(100, .5)})
    >>> gap_analysis(f, ["a", "b"]).summary["share_imbalanced"].round(2).tolist()
    [0.5]
    """
    modalities = list(modalities)
    level = check_level(level)
    _check_frame(frame, modalities)
    frame = frame.copy()
    if "epoch" not in frame:
        frame["epoch"] = 0
    if "sample" not in frame:
        frame["sample"] = frame.groupby("epoch").cumcount()
    keep = [c for c in frame.columns if not c.startswith(("p_true_", "pred_", "p_")) or c == "p_true"]
    gap_parts, gmm_rows, summary_rows = [], [], []
    previous: dict[str, GMMFit] = {}
    groups = list(frame.groupby("epoch", sort=True))
    if progress:
        from tqdm.auto import tqdm

        groups = tqdm(groups, desc="gap GMM", leave=False)
    for epoch, part in groups:
        gaps = modality_gaps({m: part[f"p_true_{m}"].to_numpy() for m in modalities}, scheme)
        for pair in gaps.columns:
            d = gaps[pair].to_numpy()
            fit = fit_gap_gmm(d, previous=previous.get(pair) if warm_start else None, seed=seed)
            previous[pair] = fit
            gamma = fit.posterior(d)
            block = part[keep].reset_index(drop=True).assign(pair=pair, gap=d, posterior=gamma,
                                                            imbalanced=gamma > 0.5)
            gap_parts.append(block)
            boot = gmm_bootstrap(d, fit, n_boot=n_boot, level=level, seed=seed) if n_boot > 0 else None
            gmm_rows += [{"epoch": int(epoch), "pair": pair, **r} for r in fit.rows(boot, level)]
            summary_rows.append(_summary_row(int(epoch), pair, d, gamma, level))
    gaps_table = pd.concat(gap_parts, ignore_index=True)
    lead = ["epoch", "pair", "sample", "gap", "posterior", "imbalanced"]
    gaps_table = gaps_table[lead + [c for c in gaps_table.columns if c not in lead]]
    return GapResult(gaps=gaps_table, gmm=pd.DataFrame(gmm_rows), summary=pd.DataFrame(summary_rows),
                     unimodal=_unimodal_table(frame, modalities, level), modalities=modalities,
                     pairs=list(dict.fromkeys(gaps_table["pair"])), epochs=sorted(int(e) for e in frame["epoch"].unique()),
                     source=source, level=level)


def gap_from_predictions(predictions: pd.DataFrame, modalities: Sequence[str] | None = None, *,
                         split: str | None = None, scheme: str = "all", epoch: int = 0, seed: int = 0,
                         level: float = LEVEL) -> GapResult:
    """Gap + GMM on a saved run's per-sample predictions (``p_true_<m>`` columns).

    Parameters
    ----------
    predictions : DataFrame
        ``run.predictions`` (or :func:`workbench.training.trainer.predict_frame` output).
    modalities : sequence of str, optional
        Default: every ``p_true_<m>`` column.
    split : str, optional
        Keep only this split (``train``/``calib``/``test``); default all rows.
    epoch : int
        The epoch label of the single snapshot (e.g. the number of epochs trained).
    level : float
        Confidence level of the intervals (0.95 by default).
    """
    if modalities is None:
        modalities = [c[len("p_true_"):] for c in predictions.columns if c.startswith("p_true_")]
    part = predictions
    if split is not None:
        if "split" not in predictions:
            raise ValueError("gap_from_predictions: split given but the predictions have no 'split' column")
        part = predictions[predictions["split"] == split]
        if part.empty:
            raise ValueError(f"gap_from_predictions: no rows with split == {split!r}")
    part = part.assign(epoch=epoch)
    return gap_analysis(part, modalities, scheme=scheme, seed=seed, source=f"predictions (split={split or 'all'})",
                        level=level)


def gap_from_run(run, *, split: str | None = "test", scheme: str = "all", level: float = LEVEL) -> GapResult:
    """:func:`gap_from_predictions` on a :class:`~workbench.store.runs.Run`, labelled with its last epoch."""
    epochs = int(run.config.get("epochs_run", run.config.get("train", {}).get("epochs", 0)))
    res = gap_from_predictions(run.predictions, run.modalities, split=split, scheme=scheme, epoch=epochs,
                               level=level)
    res.source = f"run {run.run_id} ({split or 'all'} split)"
    return res


def demo_analysis(run) -> tuple[str, GapResult]:
    """Demo entry: gap + GMM on the demo run's saved test-split predictions."""
    return "gap", gap_from_run(run, split="test")


# -- tracking during training ------------------------------------------------------------------
class GapTracker:
    """Trainer callback: record every unimodal head's true-class score on the training set each epoch.

    Works with any strategy (pass it in ``train(..., callbacks=[tracker])``). Adds the mean
    gap of each pair (``gap_<pair>``) and the unimodal training accuracy
    (``train_acc_<m>``) to the epoch's history row; :meth:`result` runs the GMM diagnosis.

    Parameters
    ----------
    every : int
        Record every ``every``-th epoch (and always the last).
    scheme : {"all", "pairs", "rest"}
    extra : DataFrame, optional
        Per-training-sample columns to carry into the gap table (e.g. a corruption flag),
        in the order of the training set.

    Examples
    --------
    >>> import tempfile
    >>> from workbench import train
    >>> tracker = GapTracker()
    >>> run = train("synthetic-imbalance", epochs=2, dataset_params={"n": 300}, save=False,
    ...             callbacks=[tracker], progress=False)
    >>> tracker.result().epochs
    [1, 2]
    """

    def __init__(self, *, every: int = 1, scheme: str = "all", extra: pd.DataFrame | None = None):
        self.every, self.scheme, self.extra = every, scheme, extra
        self.frames: list[pd.DataFrame] = []
        self.modalities: list[str] = []

    def on_epoch_end(self, ctx, epoch: int, row: dict) -> None:
        last = epoch + 1 == getattr(ctx.config, "epochs", -1)
        if (epoch + 1) % self.every and not last:
            return
        p, pred = unimodal_true_scores(ctx.model, ctx.train_x, ctx.train_y, ctx.train_mask)
        self.modalities = list(p)
        frame = {"epoch": epoch + 1, "sample": np.arange(len(ctx.train_y)), "y": ctx.train_y.cpu().numpy()}
        for m in p:
            frame[f"p_true_{m}"] = p[m].cpu().numpy()
            frame[f"pred_{m}"] = pred[m].cpu().numpy()
            row[f"train_acc_{m}"] = float((pred[m] == ctx.train_y).float().mean())
        frame = pd.DataFrame(frame)
        if self.extra is not None:
            frame = pd.concat([frame, self.extra.reset_index(drop=True)], axis=1)
        for pair, d in modality_gaps({m: frame[f"p_true_{m}"] for m in p}, self.scheme).items():
            row[f"gap_{pair}"] = float(d.mean())
        self.frames.append(frame)

    def frame(self) -> pd.DataFrame:
        if not self.frames:
            raise RuntimeError("GapTracker recorded nothing; pass it to train(..., callbacks=[tracker])")
        return pd.concat(self.frames, ignore_index=True)

    def result(self, *, seed: int = 0, progress: bool = False, n_boot: int = 0, level: float = LEVEL) -> GapResult:
        """The GMM diagnosis over every recorded epoch (``n_boot``, ``level``: see :func:`gap_analysis`)."""
        return gap_analysis(self.frame(), self.modalities, scheme=self.scheme, seed=seed,
                            source="training set, tracked per epoch", progress=progress, n_boot=n_boot, level=level)
