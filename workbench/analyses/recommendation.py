"""Recommendation results: metrics by domain and user group, fairness, modality Shapley, anchors, top-K lists.

Takes trained recommenders (:func:`workbench.training.ranking.fit_ranking`) and their data, ranks
every item for every test user (training, or fold-in, and validation items excluded), and
summarises the per-user values (MICRec, arXiv 2510.21812; INMO, Wu et al., SIGIR 2022; metrics in
:mod:`workbench.stats.ranking`).

* :func:`recommendation_analysis`: Recall@K and NDCG@K per model, domain and setting
  (transductive / inductive), percentile-bootstrap intervals over users (coverage checked in
  ``tests/unit/test_ranking_metrics.py``); by user group (``users`` attributes such as gender and
  age band) and the group disparities of :func:`ranking_fairness`.
* :func:`ranking_fairness`: the fairness analysis's interval machinery
  (:mod:`workbench.analyses.fairness`) on per-user ranking values instead of classification
  predictions: per group the mean with a percentile-bootstrap interval (users resampled within
  their group), the max-min gap with the simultaneous max-t interval of the signed pairwise
  differences (:func:`~workbench.analyses.fairness.maxmin_interval`, which can reach 0), the
  worst group's value (:func:`~workbench.analyses.fairness.min_interval`) and a permutation
  p-value of equal groups (group labels permuted over users,
  :func:`~workbench.analyses.fairness.permutation_pvalue`). Groups under ``min_group_size``
  users are flagged and left out of the disparities.
* :func:`ranking_shapley`: which item modality matters, for whom. Players are MICRec's item
  modalities; the value of coalition ``S`` for user ``u`` is ``NDCG@K_S(u) - NDCG@K_{}(u)``,
  where ``NDCG@K_S`` ranks with the trained model whose modalities outside ``S`` are *masked*:
  their projector input is replaced by the baseline (the features' training mean), no
  retraining (the masked value function of the Shapley analysis, a different estimand from
  retraining per coalition). Exact Shapley values over the ``2^M`` coalitions
  (:func:`~workbench.analyses.shapley.shapley_from_values`); users are split at random into
  calibration and test halves and the Shapley analysis's own intervals apply
  (:func:`~workbench.analyses.shapley.interval_tables`: t-interval of the mean, marginal
  conformal and PCA-conditional intervals of a user's value); per group the mean with its
  t-interval over the group's users (calibration and test together).
* :func:`anchor_overlap_curve`: the sparse domain's Recall@20 with cross-domain anchors on and
  off against the overlap ratio, over seeds, with t-intervals and the per-seed paired gain.
* :func:`top_k_list`: one user's top-K list with the items' modalities and which are test hits.

Example
-------
>>> from data_catalog.synthetic_recsys import synthetic_recsys
>>> from workbench.training.ranking import fit_ranking
>>> data = synthetic_recsys(n_users=60, n_items=40, seed=0)
>>> res = recommendation_analysis({"popularity": fit_ranking(data, model="popularity")}, data, n_boot=50,
...                               group_by=("group",))
>>> sorted(res.metrics["setting"].unique())
['inductive', 'transductive']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.analyses.fairness import (
    maxmin_interval,
    min_interval,
    permutation_pvalue,
    permute_within,
)
from workbench.progress import progress_bar
from workbench.stats.intervals import check_level, t_interval
from workbench.stats.ranking import bootstrap_means, summarize_metrics
from workbench.store.results import Result
from workbench.training.ranking import evaluate_ranking, fit_ranking, score_vectors

__all__ = [
    "AnchorCurveResult",
    "RankingFairness",
    "RankingShapleyResult",
    "RecommendationResult",
    "TopKList",
    "anchor_overlap_curve",
    "ranking_fairness",
    "ranking_shapley",
    "recommendation_analysis",
    "top_k_list",
]

DISPARITY_COLUMNS = [
    "attribute",
    "metric",
    "k",
    "disparity",
    "value",
    "value_ci_lower",
    "value_ci_upper",
    "p_value",
    "worst_group",
    "n_groups",
    "excluded",
    "level",
]


# -- metrics by domain, setting and group ------------------------------------------------------------
@dataclass
class RecommendationResult(Result):
    """``per_user``: one row per (model, domain, setting, user); ``metrics``: means with intervals;
    ``by_group``: the same per user-group value (with ``flag`` for small groups); ``disparities``:
    per (model, domain, setting, attribute, metric) the max-min gap and the worst group's value with
    their intervals and a permutation p-value (:func:`ranking_fairness`)."""

    per_user: pd.DataFrame
    metrics: pd.DataFrame
    by_group: pd.DataFrame
    disparities: pd.DataFrame = field(
        default_factory=pd.DataFrame
    )  # absent from results saved before it
    level: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        return self.metrics


def recommendation_analysis(
    fits: Mapping[str, object],
    data,
    *,
    ks: Sequence[int] = (10, 20),
    group_by: Sequence[str] = (),
    level: float = 0.95,
    n_boot: int = 1000,
    n_perm: int = 1000,
    min_group_size: int = 30,
    seed: int = 0,
) -> RecommendationResult:
    """Evaluate every fit (``{label: RankingFit}``) on ``data`` (a ``RecData``), both settings.

    Parameters
    ----------
    fits : mapping of str to RankingFit
    data : RecData
    ks : list lengths
    group_by : columns of ``data.users`` to break the metrics down by
    level : interval level
    n_boot : bootstrap replicates over users
    n_perm : permutations of the group labels for the disparities' p-values
    min_group_size : groups with fewer test users are flagged and left out of the disparities
    seed : bootstrap and permutation seed

    Examples
    --------
    >>> # see the module example
    """
    check_level(level)
    if not fits:
        raise ValueError("fits: give at least one trained model")
    missing = [g for g in group_by if g not in data.users.columns]
    if missing:
        raise ValueError(
            f"group_by: {missing[0]!r} is not a column of the users table ({list(data.users.columns)})"
        )
    frames = []
    for label, fit in fits.items():
        for setting in ("known", "new"):
            f = evaluate_ranking(fit, data, users=setting, ks=tuple(ks))
            f.insert(0, "model", label)
            frames.append(f)
    per_user = pd.concat(frames, ignore_index=True)
    for g in group_by:
        per_user[g] = data.users[g].to_numpy()[per_user["user"].to_numpy()]
    keys = ["model", "domain", "setting"]
    metrics = summarize_metrics(per_user, by=keys, level=level, n_boot=n_boot, seed=seed)
    groups, disparities = [], []
    for key, part in per_user.groupby(keys, sort=False):
        for g in group_by:
            fair = ranking_fairness(
                part,
                attribute=g,
                ks=ks,
                level=level,
                n_boot=n_boot,
                n_perm=n_perm,
                min_group_size=min_group_size,
                seed=seed,
            )
            groups.append(fair.by_group.assign(**dict(zip(keys, key, strict=True))))
            disparities.append(fair.disparities.assign(**dict(zip(keys, key, strict=True))))
    by_group = pd.concat(groups, ignore_index=True) if groups else pd.DataFrame()
    disp = pd.concat(disparities, ignore_index=True) if disparities else pd.DataFrame()
    if len(by_group):
        by_group = by_group[keys + [c for c in by_group.columns if c not in keys]]
        disp = disp[keys + [c for c in disp.columns if c not in keys]]
    return RecommendationResult(
        per_user=per_user, metrics=metrics, by_group=by_group, disparities=disp, level=level
    )


# -- fairness on ranking values ------------------------------------------------------------------------
@dataclass
class RankingFairness(Result):
    """``by_group``: ``attribute, group, metric, k, value, value_ci_lower, value_ci_upper, n_users, flag``;
    ``disparities``: :data:`DISPARITY_COLUMNS` (``disparity`` is ``max_min_gap`` or ``worst_group``)."""

    by_group: pd.DataFrame
    disparities: pd.DataFrame
    level: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        return self.disparities


def ranking_fairness(
    per_user: pd.DataFrame,
    *,
    attribute: str,
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = ("recall", "ndcg"),
    level: float = 0.95,
    n_boot: int = 1000,
    n_perm: int = 1000,
    min_group_size: int = 30,
    seed: int = 0,
) -> RankingFairness:
    """Per-group means of per-user ranking values and their disparities, with intervals (module docstring).

    Parameters
    ----------
    per_user : DataFrame
        One row per user with ``metric@k`` columns and the ``attribute`` column (e.g. the output
        of :func:`~workbench.training.ranking.evaluate_ranking` for one domain and setting, with
        the users' attribute added).
    attribute : str
        The group column.
    ks, metrics : which ``metric@k`` columns
    level : interval level
    n_boot : bootstrap replicates (users resampled within each group)
    n_perm : permutations of the group labels (0: no p-values)
    min_group_size : smaller groups are flagged ``n<min_group_size`` and left out of the disparities
    seed : seeds the bootstrap and the permutations

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = pd.DataFrame({"recall@20": rng.random(200), "sex": np.repeat(["F", "M"], 100)})
    >>> res = ranking_fairness(f, attribute="sex", ks=(20,), metrics=("recall",), n_boot=200, n_perm=200)
    >>> d = res.disparities.set_index("disparity")
    >>> bool(d.loc["max_min_gap", "value_ci_lower"] <= d.loc["max_min_gap", "value"] <= d.loc["max_min_gap", "value_ci_upper"])
    True
    """
    check_level(level)
    if attribute not in per_user.columns:
        raise ValueError(
            f"attribute: {attribute!r} is not a column of per_user ({list(per_user.columns)})"
        )
    cols = [f"{m}@{k}" for m in metrics for k in ks]
    missing = [c for c in cols if c not in per_user.columns]
    if missing:
        raise ValueError(f"per_user has no column {missing[0]!r}")
    labels = per_user[attribute].astype(str).to_numpy()
    names, codes = np.unique(labels, return_inverse=True)
    sizes = np.bincount(codes, minlength=len(names))
    keep = sizes >= min_group_size
    rng = np.random.default_rng(seed)
    rows, disp = [], []
    for j, c in enumerate(cols):
        metric, k = c.split("@")
        v = per_user[c].to_numpy(dtype=float)
        point = np.array(
            [np.nanmean(v[codes == g]) if sizes[g] else np.nan for g in range(len(names))]
        )
        boot = np.stack(
            [
                bootstrap_means(v[codes == g], n_boot=n_boot, seed=seed + 7919 * j + g)
                for g in range(len(names))
            ],
            1,
        )  # (B, G)
        for g, name in enumerate(names):
            lo, hi = np.nanquantile(boot[:, g], [(1 - level) / 2, (1 + level) / 2])
            rows.append(
                {
                    "attribute": attribute,
                    "group": name,
                    "metric": metric,
                    "k": int(k),
                    "value": point[g],
                    "value_ci_lower": float(lo),
                    "value_ci_upper": float(hi),
                    "n_users": int(sizes[g]),
                    "flag": "" if keep[g] else f"n<{min_group_size}",
                    "level": level,
                }
            )
        live = np.flatnonzero(keep & np.isfinite(point))
        excluded = ", ".join(str(n) for n in names[~keep])
        gap = float(np.ptp(point[live])) if len(live) >= 2 else np.nan
        g_lo, g_hi = (
            maxmin_interval(point[live][:, None], boot[:, live][:, :, None], level)
            if len(live) >= 2
            else (np.nan, np.nan)
        )
        p = np.nan
        if n_perm > 0 and len(live) >= 2:
            sel = np.isin(codes, live)
            vv, cc = v[sel], np.searchsorted(live, codes[sel])
            perms = np.vstack([cc, permute_within(cc, n_perm, rng)])
            counts = np.stack([np.bincount(r, minlength=len(live)) for r in perms])
            sums = np.stack([np.bincount(r, weights=vv, minlength=len(live)) for r in perms])
            spread = np.ptp(sums / counts, axis=1)
            p = permutation_pvalue(spread[0], spread[1:])
        w_lo, w_hi = (
            min_interval(point[live], boot[:, live], level) if len(live) else (np.nan, np.nan)
        )
        worst = str(names[live][np.argmin(point[live])]) if len(live) else ""
        common = {
            "attribute": attribute,
            "metric": metric,
            "k": int(k),
            "n_groups": len(live),
            "excluded": excluded,
            "level": level,
            "worst_group": worst,
        }
        disp.append(
            {
                **common,
                "disparity": "max_min_gap",
                "value": gap,
                "value_ci_lower": g_lo,
                "value_ci_upper": g_hi,
                "p_value": p,
            }
        )
        disp.append(
            {
                **common,
                "disparity": "worst_group",
                "value": float(point[live].min()) if len(live) else np.nan,
                "value_ci_lower": w_lo,
                "value_ci_upper": w_hi,
                "p_value": np.nan,
            }
        )
    return RankingFairness(
        by_group=pd.DataFrame(rows), disparities=pd.DataFrame(disp)[DISPARITY_COLUMNS], level=level
    )


# -- which item modality matters ------------------------------------------------------------------------
@dataclass
class RankingShapleyResult(Result):
    """Shapley values of MICRec's item modalities for per-user NDCG@K, per domain.

    ``values``: one row per (domain, user, modality): ``phi`` and, for test users, the marginal
    conformal ``lower/upper`` and conditional ``cond_lower/cond_upper`` prediction intervals
    (the Shapley analysis's values table, ``sample`` = user); ``modalities``: per (domain,
    modality) the mean over calibration users with ``mean_ci_lower/_upper`` (t, at ``level``),
    ``p_value`` and the conformal interval's test coverage; ``by_group``: per (domain, attribute,
    group, modality) the mean over all the group's users with its t-interval (``attribute`` =
    ``all`` for every user); ``coalitions``: per (domain, coalition) mean NDCG@K and the value over
    the empty coalition with t-intervals.
    """

    values: pd.DataFrame
    modalities: pd.DataFrame
    by_group: pd.DataFrame
    coalitions: pd.DataFrame
    k: int = 20
    alpha: float = 0.1
    level: float = 0.95
    modality_names: list = field(default_factory=list)
    efficiency_max_error: float = 0.0

    def to_frame(self) -> pd.DataFrame:
        return self.modalities


def _modal(fit, domain: str):
    model = fit.models.get(domain)
    modal = getattr(model, "modal", None)
    if modal is None:
        raise ValueError(
            f"ranking_shapley needs a MICRec fit (item modalities) in domain {domain!r}, "
            f"got {fit.kind!r}"
        )
    return modal


def ranking_shapley(
    fit,
    data,
    *,
    domains: Sequence[str] | None = None,
    k: int = 20,
    users: str = "known",
    group_by: Sequence[str] = (),
    alpha: float = 0.1,
    level: float = 0.95,
    n_pca: int = 4,
    calib_fraction: float = 0.5,
    seed: int = 0,
    progress: bool = False,
) -> RankingShapleyResult:
    """Shapley values of the item modalities for NDCG@``k`` with the masked value function (module docstring).

    Parameters
    ----------
    fit : RankingFit of ``model="micrec"``
    data : RecData it was trained on
    domains : domains to explain (all of the fit's by default)
    k : NDCG cut-off
    users : ``"known"`` (transductive) or ``"new"`` (inductive, folded in)
    group_by : ``data.users`` columns for the per-group means
    alpha : miscoverage of the conformal prediction intervals of a user's value
    level : level of the confidence intervals of means
    n_pca : PCA components of the user vectors for the conditional intervals
    calib_fraction : share of the users in the calibration half (seeded)
    seed : seeds the split
    progress : tqdm bar over coalitions

    Examples
    --------
    >>> from data_catalog.synthetic_recsys import synthetic_recsys
    >>> data = synthetic_recsys(n_users=80, n_items=40, seed=0)
    >>> fit = fit_ranking(data, model="micrec", domains=["A"], epochs=2, n_layers=1, progress=False)
    >>> res = ranking_shapley(fit, data, k=10)
    >>> sorted(res.modalities["modality"]), res.efficiency_max_error < 1e-9
    (['image', 'text'], True)
    """
    from workbench.analyses.shapley import (
        all_coalitions,
        coalition_label,
        interval_tables,
        shapley_from_values,
    )
    from workbench.stats.conformal import mean_interval

    check_level(level)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not 0 < calib_fraction < 1:
        raise ValueError(f"calib_fraction must be in (0, 1), got {calib_fraction!r}")
    missing = [g for g in group_by if g not in data.users.columns]
    if missing:
        raise ValueError(
            f"group_by: {missing[0]!r} is not a column of the users table ({list(data.users.columns)})"
        )
    domains = list(domains or fit.models)
    bad = [d for d in domains if d not in fit.models]
    if bad:
        raise ValueError(f"domains: {bad[0]!r} is not a domain of the fit ({sorted(fit.models)})")
    mods = {d: _modal(fit, d) for d in domains}
    frames = {"values": [], "modalities": [], "by_group": [], "coalitions": []}
    eff = 0.0
    names = []
    for d in domains:
        modal = mods[d]
        names = list(modal.names)
        coalitions = all_coalitions(len(names))
        ndcg = []
        try:
            for members in progress_bar(coalitions, enabled=progress, desc=f"coalitions ({d})"):
                modal.masked = {m for m, b in zip(names, members, strict=True) if not b}
                f = evaluate_ranking(fit, data, users=users, ks=(k,), domains=[d])
                ndcg.append(f[f"ndcg@{k}"].to_numpy())
        finally:
            modal.masked = set()
        user_ids = f["user"].to_numpy()
        if len(user_ids) < 4:
            raise ValueError(
                f"domain {d!r} has {len(user_ids)} test users; the Shapley intervals need at least 4"
            )
        nd = np.column_stack(ndcg)
        values = nd - nd[:, :1]
        phi = shapley_from_values(values)
        eff = max(eff, float(np.abs(phi.sum(1) - values[:, -1]).max()))
        rng = np.random.default_rng([seed, 5])
        split_of = np.where(rng.random(len(user_ids)) < calib_fraction, "calib", "test").astype(
            object
        )
        if (split_of == "calib").sum() < 2 or (split_of == "test").sum() < 1:
            split_of[: len(split_of) // 2], split_of[len(split_of) // 2 :] = "calib", "test"
        U = score_vectors(fit)[d][0][user_ids]
        table, mtab, _, _ = interval_tables(
            phi,
            np.zeros_like(phi),
            U,
            split_of,
            user_ids,
            np.zeros(len(user_ids)),
            names,
            alpha=alpha,
            n_pca=min(n_pca, U.shape[1]),
            level=level,
        )
        frames["values"].append(
            table.drop(columns=["y"], errors="ignore")
            .rename(columns={"sample": "user"})
            .assign(domain=d)
        )
        frames["modalities"].append(mtab.assign(domain=d, k=k))
        attrs = [("all", np.full(len(user_ids), "all", dtype=object))]
        attrs += [(g, data.users[g].astype(str).to_numpy()[user_ids]) for g in group_by]
        for attr, labels in attrs:
            for grp in np.unique(labels):
                sel = labels == grp
                mi = mean_interval(phi[sel], level) if sel.sum() > 1 else None
                for j, m in enumerate(names):
                    frames["by_group"].append(
                        {
                            "domain": d,
                            "attribute": attr,
                            "group": grp,
                            "modality": m,
                            "mean": float(phi[sel, j].mean()),
                            "mean_ci_lower": float(mi["mean_ci_lower"][j]) if mi else np.nan,
                            "mean_ci_upper": float(mi["mean_ci_upper"][j]) if mi else np.nan,
                            "n_users": int(sel.sum()),
                            "level": level,
                        }
                    )
        vm, vlo, vhi = t_interval(values, level, axis=0)
        nm, nlo, nhi = t_interval(nd, level, axis=0)
        for c, members in enumerate(coalitions):
            frames["coalitions"].append(
                {
                    "domain": d,
                    "coalition": coalition_label(members, names),
                    "size": int(members.sum()),
                    f"ndcg@{k}": nm[c],
                    f"ndcg@{k}_ci_lower": nlo[c],
                    f"ndcg@{k}_ci_upper": nhi[c],
                    "value": vm[c],
                    "value_ci_lower": vlo[c],
                    "value_ci_upper": vhi[c],
                    "n_users": len(user_ids),
                }
            )
    return RankingShapleyResult(
        values=pd.concat(frames["values"], ignore_index=True),
        modalities=pd.concat(frames["modalities"], ignore_index=True),
        by_group=pd.DataFrame(frames["by_group"]),
        coalitions=pd.DataFrame(frames["coalitions"]),
        k=k,
        alpha=alpha,
        level=level,
        modality_names=names,
        efficiency_max_error=eff,
    )


# -- the anchor-overlap curve ---------------------------------------------------------------------------
@dataclass
class AnchorCurveResult(Result):
    """Sparse-domain Recall@K with cross-domain anchors on and off, against the overlap ratio.

    ``runs``: one row per (overlap, seed, anchors): ``recall@k``, ``ndcg@k`` (known test users of
    ``domain``), ``n_anchors``. ``curve``: per (overlap, anchors) the mean over seeds with its
    t-interval. ``gain``: per overlap the relative gain ``on/off - 1`` and the absolute gain
    ``on - off``, paired by seed, with t-intervals over seeds.
    """

    runs: pd.DataFrame
    curve: pd.DataFrame
    gain: pd.DataFrame
    domain: str = "B"
    k: int = 20
    level: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        return self.gain


def anchor_overlap_curve(
    data_fn: Callable[..., object],
    *,
    overlaps: Sequence[float] = (0.0, 0.5, 1.0),
    seeds: Sequence[int] = (0, 1, 2),
    domain: str = "B",
    k: int = 20,
    model: str = "micrec",
    level: float = 0.95,
    progress: bool = True,
    **training,
) -> AnchorCurveResult:
    """Train ``model`` on ``data_fn(overlap=o, seed=s)`` with ``anchors`` off and on; measure ``domain``.

    Parameters
    ----------
    data_fn : callable ``(overlap=..., seed=...) -> RecData`` with two domains (e.g.
        :func:`data_catalog.synthetic_recsys.synthetic_recsys` with its size bound by
        :func:`functools.partial`)
    overlaps : overlap ratios (share of the sparse domain's users also present in the other)
    seeds : data and training seeds (one pair of fits per seed and overlap)
    domain : the sparse domain that is measured
    k : Recall/NDCG cut-off
    model : a :data:`~workbench.training.ranking.MODELS` name
    level : t-interval level over seeds
    progress : tqdm bar over the fits
    training : keyword arguments of :func:`~workbench.training.ranking.fit_ranking`

    Examples
    --------
    >>> from functools import partial
    >>> from data_catalog.synthetic_recsys import synthetic_recsys
    >>> res = anchor_overlap_curve(partial(synthetic_recsys, n_users=60, n_items=30), overlaps=(0.0, 1.0),
    ...                            seeds=(0, 1), epochs=1, n_layers=1, progress=False)
    >>> res.gain.query("overlap == 0")["gain"].tolist()   # no anchors at overlap 0: identical fits
    [0.0]
    """
    check_level(level)
    if len(seeds) < 2:
        raise ValueError(f"seeds: give at least 2 seeds for intervals, got {list(seeds)}")
    bad = [o for o in overlaps if not 0.0 <= float(o) <= 1.0]
    if bad:
        raise ValueError(f"overlaps must lie in [0, 1], got {bad[0]!r}")
    training = {"progress": False, **training}
    rows = []
    grid = [(o, s, a) for o in overlaps for s in seeds for a in (False, True)]
    for o, s, a in progress_bar(grid, enabled=progress, desc="anchor-overlap curve"):
        data = data_fn(overlap=float(o), seed=int(s))
        if domain not in data.domains or len(data.domains) != 2:
            raise ValueError(
                f"data_fn must give two domains including {domain!r}, got {sorted(data.domains)}"
            )
        fit = fit_ranking(data, model=model, anchors=a, seed=int(s), **training)
        f = evaluate_ranking(fit, data, ks=(k,), domains=[domain])
        rows.append(
            {
                "overlap": float(o),
                "seed": int(s),
                "anchors": bool(a),
                f"recall@{k}": f[f"recall@{k}"].mean(),
                f"ndcg@{k}": f[f"ndcg@{k}"].mean(),
                "n_anchors": len(data.anchors()),
                "n_users": len(f),
            }
        )
    runs = pd.DataFrame(rows)
    metric = f"recall@{k}"
    curve = []
    for (o, a), part in runs.groupby(["overlap", "anchors"], sort=True):
        m, lo, hi = t_interval(part[metric].to_numpy(), level)
        curve.append(
            {
                "overlap": o,
                "anchors": a,
                metric: m,
                f"{metric}_ci_lower": lo,
                f"{metric}_ci_upper": hi,
                "n_seeds": len(part),
                "level": level,
            }
        )
    gain = []
    for o, part in runs.groupby("overlap", sort=True):
        wide = part.pivot(index="seed", columns="anchors", values=metric)
        on, off = wide[True].to_numpy(), wide[False].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(off > 0, on / off - 1.0, np.nan)
        g, glo, ghi = t_interval(rel, level)
        dg, dlo, dhi = t_interval(on - off, level)
        gain.append(
            {
                "overlap": o,
                "gain": g,
                "gain_ci_lower": glo,
                "gain_ci_upper": ghi,
                "difference": dg,
                "difference_ci_lower": dlo,
                "difference_ci_upper": dhi,
                "n_seeds": len(wide),
                "n_anchors": float(part["n_anchors"].mean()),
                "level": level,
            }
        )
    return AnchorCurveResult(
        runs=runs,
        curve=pd.DataFrame(curve),
        gain=pd.DataFrame(gain),
        domain=domain,
        k=k,
        level=level,
    )


# -- a user's top-K list ----------------------------------------------------------------------------------
@dataclass
class TopKList(Result):
    """One user's top-K list in one domain: ``rank, item, score, hit`` (a test item of the user) plus the
    item table's columns and a short text per item modality (``modality_<m>``); ``history``: the
    user's training items with the same columns."""

    items: pd.DataFrame
    history: pd.DataFrame
    user: int = 0
    domain: str = ""
    model: str = ""
    recall: float = float("nan")

    def to_frame(self) -> pd.DataFrame:
        return self.items


def _modality_text(x: np.ndarray, top: int = 3) -> list[str]:
    """The ``top`` largest coordinates of each row, e.g. ``"#12 0.31, #4 0.22, #7 0.2"``."""
    order = np.argsort(-x, axis=1)[:, :top]
    return [", ".join(f"#{j} {x[r, j]:.2g}" for j in row) for r, row in enumerate(order)]


def _describe(dom, items: np.ndarray) -> pd.DataFrame:
    out = pd.DataFrame({"item": items})
    if dom.items is not None:
        extra = dom.items.reset_index(drop=True).iloc[items].reset_index(drop=True)
        extra = extra.drop(columns=[c for c in ("item",) if c in extra.columns])
        out = pd.concat([out, extra], axis=1)
    for m, x in dom.item_features.items():
        out[f"modality_{m}"] = _modality_text(np.asarray(x)[items])
    return out


def top_k_list(fit, data, *, user: int, domain: str, k: int = 10) -> TopKList:
    """``user``'s top ``k`` items in ``domain`` (training and validation items excluded, as in the test).

    Examples
    --------
    >>> from data_catalog.synthetic_recsys import synthetic_recsys
    >>> data = synthetic_recsys(n_users=60, n_items=40, seed=0)
    >>> fit = fit_ranking(data, model="popularity")
    >>> lst = top_k_list(fit, data, user=int(data.domains["A"].test[0, 0]), domain="A", k=5)
    >>> len(lst.items), list(lst.items.columns[:4])
    (5, ['rank', 'item', 'score', 'hit'])
    """
    if domain not in fit.models:
        raise ValueError(f"domain: {domain!r} is not a domain of the fit ({sorted(fit.models)})")
    if (
        isinstance(user, bool)
        or not isinstance(user, (int, np.integer))
        or not 0 <= user < data.n_users
    ):
        raise ValueError(f"user must be an integer in [0, {data.n_users}), got {user!r}")
    dom = data.domains[domain]
    U, V = score_vectors(fit)[domain]
    scores = (V @ U[user]).astype(np.float64)
    seen = np.concatenate([dom.train, dom.valid])
    scores[seen[seen[:, 0] == user, 1]] = -np.inf
    k = min(int(k), int(np.isfinite(scores).sum()))
    top = np.lexsort((np.arange(len(scores)), -scores))[:k]
    test = set(dom.test[dom.test[:, 0] == user, 1].tolist())
    items = _describe(dom, top)
    items.insert(0, "rank", np.arange(1, k + 1))
    items.insert(2, "score", scores[top])
    items.insert(3, "hit", [int(i) in test for i in top])
    history = _describe(dom, dom.train[dom.train[:, 0] == user, 1])
    recall = float(items["hit"].sum() / len(test)) if test else float("nan")
    return TopKList(
        items=items, history=history, user=int(user), domain=domain, model=fit.kind, recall=recall
    )


# -- what a ranking run saves ----------------------------------------------------------------------------
def ranking_run_results(fit, data, *, model: str, ks: Sequence[int] = (10, 20), group_by: Sequence[str] = (),
                        n_boot: int = 1000, seed: int = 0) -> dict[str, Result]:
    """The results :func:`workbench.training.train_ranking.train_ranking` saves with ``analyses=True``:
    ``recommendation`` (metrics by domain, setting and user group with intervals, the disparities),
    ``ranking_shapley`` for MICRec (NDCG@max(ks), masked value function) and ``top_k_<domain>``: the
    top-10 list of the known user with the most test items in each domain."""
    out: dict[str, Result] = {
        "recommendation": recommendation_analysis({model: fit}, data, ks=tuple(ks), group_by=tuple(group_by),
                                                  n_boot=n_boot, n_perm=n_boot, seed=seed)}
    if model == "micrec":
        out["ranking_shapley"] = ranking_shapley(fit, data, k=max(ks), group_by=tuple(group_by), seed=seed)
    for d in fit.models:
        test = data.domains[d].test
        known = test[~np.isin(test[:, 0], data.new_users)]
        if len(known):
            users, counts = np.unique(known[:, 0], return_counts=True)
            user = int(users[np.argmax(counts)])
            out[f"top_k_{d}"] = top_k_list(fit, data, user=user, domain=d, k=min(10, max(ks)))
    return out


def ranking_run_fit(run, data=None):
    """``(fit, data)`` of a saved ranking run: the data loaded again by name (unless given) and the fit
    rebuilt from ``model.pt`` (:func:`workbench.training.train_ranking.load_ranking_fit`); kept in
    ``run.extras`` so panels that re-rank on every control change load them once."""
    from workbench.training.train_ranking import load_ranking_data, load_ranking_fit

    if data is None:
        data = run.extras.get("data") or load_ranking_data(run)
    fit = load_ranking_fit(run, data)  # the run's own fit when it holds one
    run.extras.update(fit=fit, data=data)
    return fit, data
