"""Recommendation results: Recall@K and NDCG@K per domain, transductive and inductive, and by user group.

Takes trained recommenders (:func:`workbench.training.ranking.fit_ranking`) and their data, ranks
every item for every test user (training, or fold-in, and validation items excluded), and
summarises the per-user values with percentile-bootstrap intervals over users
(:func:`workbench.stats.ranking.summarize_metrics`; coverage checked in
``tests/unit/test_ranking_metrics.py``). By group: the same summary within each value of a
``users`` attribute (gender, age band), and the largest between-group gap per metric. The
fairness analysis (:mod:`workbench.analyses.fairness`) reads classification predictions
(``y``, ``p_*``), so it is not reused here; its max-min disparity intervals are not yet applied
to per-user ranking values (not done).

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.stats.ranking import summarize_metrics
from workbench.store.results import Result
from workbench.training.ranking import evaluate_ranking

__all__ = ["RecommendationResult", "recommendation_analysis"]


@dataclass
class RecommendationResult(Result):
    """``per_user``: one row per (model, domain, setting, user); ``metrics``: means with intervals;
    ``by_group``: the same per user-group value; ``gaps``: max - min over the groups per metric."""

    per_user: pd.DataFrame
    metrics: pd.DataFrame
    by_group: pd.DataFrame
    gaps: pd.DataFrame
    level: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        return self.metrics


def recommendation_analysis(fits: Mapping[str, object], data, *, ks: Sequence[int] = (10, 20),
                            group_by: Sequence[str] = (), level: float = 0.95, n_boot: int = 1000,
                            seed: int = 0) -> RecommendationResult:
    """Evaluate every fit (``{label: RankingFit}``) on ``data`` (a ``RecData``), both settings.

    Parameters
    ----------
    fits : mapping of str to RankingFit
    data : RecData
    ks : list lengths
    group_by : columns of ``data.users`` to break the metrics down by
    level : interval level
    n_boot : bootstrap replicates over users
    seed : bootstrap seed
    """
    if not fits:
        raise ValueError("fits: give at least one trained model")
    missing = [g for g in group_by if g not in data.users.columns]
    if missing:
        raise ValueError(f"group_by: {missing[0]!r} is not a column of the users table ({list(data.users.columns)})")
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
    groups, gaps = [], []
    for g in group_by:
        t = summarize_metrics(per_user, by=keys + [g], level=level, n_boot=n_boot, seed=seed)
        t = t.rename(columns={g: "group"}).assign(attribute=g)
        groups.append(t)
        gap = t.groupby(keys + ["metric", "k"])["value"].agg(lambda v: float(np.nanmax(v) - np.nanmin(v)))
        gaps.append(gap.rename("gap").reset_index().assign(attribute=g))
    by_group = pd.concat(groups, ignore_index=True) if groups else pd.DataFrame()
    return RecommendationResult(per_user=per_user, metrics=metrics, by_group=by_group,
                                gaps=pd.concat(gaps, ignore_index=True) if gaps else pd.DataFrame(), level=level)
