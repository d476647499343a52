"""Ranking (recommendation): how a saved ranking run's per-user metrics are read back.

A ranking run is trained by :func:`workbench.training.train_ranking.train_ranking` (BPR over an
interaction graph, :mod:`workbench.training.ranking`), not by the sample-wise
:class:`~workbench.training.trainer.Trainer`: a recommender's epoch is sampled (user, positive,
negative) triples over a whole graph, not a pass over samples. This task is what the run store,
the runs table, the run panels and the dashboard read such a run through:

* predictions: one row per (domain, setting, user) with ``n_test`` and ``recall@K``/``ndcg@K``
  (``setting``: ``transductive`` for users trained on, ``inductive`` for new users folded in
  from their history), plus the user's group attributes as ``group_<attribute>``;
* metrics: per split, the mean of every metric per domain and setting
  (``"A/transductive/ndcg@20"``) and the number of users;
* the headline score: NDCG at the largest K, per domain and setting.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"sample": [0, 1], "split": "test", "domain": "A", "setting": "transductive",
...                       "user": [0, 1], "n_test": [2, 1], "recall@20": [1.0, 0.0], "ndcg@20": [0.5, 0.0]})
>>> RankingTask().metrics(frame, [])["test"]["A/transductive/ndcg@20"]
0.25
>>> RankingTask().score_table(frame, [])[["model", "accuracy", "measure"]].to_dict("records")
[{'model': 'A (transductive)', 'accuracy': 0.25, 'measure': 'NDCG@20 (mean over users)'}]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd
from torch import nn

from workbench.tasks.base import Task, register_task

__all__ = ["RankingTask", "metric_columns"]

_METRIC = re.compile(r"^(recall|ndcg)@(\d+)$")


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The ``recall@K``/``ndcg@K`` columns of a per-user frame, by K then name."""
    found = [c for c in frame.columns if _METRIC.match(str(c))]
    return sorted(found, key=lambda c: (int(_METRIC.match(c).group(2)), c))


@register_task("ranking")
class RankingTask(Task):
    """Per-user Recall@K and NDCG@K of a recommender, per domain and setting (module docstring)."""

    name = "ranking"
    train_metric = "bpr"

    def check_dataset(self, ds: Any) -> None:
        if not hasattr(ds, "domains") or not hasattr(ds, "new_users"):
            raise ValueError(f"task 'ranking' needs interaction data (a RecData), not {type(ds).__name__} "
                             f"{getattr(ds, 'name', '')!r}: see workbench.training.train_ranking")

    def build_model(self, *, shapes: Mapping[str, tuple[int, ...]], kinds: Mapping[str, str], n_classes: int,
                    config: Mapping[str, Any], encoders: dict[str, nn.Module] | None = None) -> nn.Module:
        raise NotImplementedError("a ranking run's models need its interaction graph: reload them with "
                                  "workbench.training.train_ranking.load_ranking_fit(run)")

    def prediction_columns(self, modalities: list[str]) -> list[str]:
        return ["sample", "split", "domain", "setting", "user", "n_test"]

    def metrics(self, predictions: pd.DataFrame, modalities: list[str]) -> dict:
        out: dict[str, dict] = {}
        columns = metric_columns(predictions)
        for split, part in predictions.groupby("split", sort=False):
            row: dict[str, float | int] = {}
            for (domain, setting), cell in part.groupby(["domain", "setting"], sort=True):
                for c in columns:
                    row[f"{domain}/{setting}/{c}"] = float(cell[c].mean())
                row[f"{domain}/{setting}/n"] = int(len(cell))
            row["n"] = int(len(part))
            out[str(split)] = row
        return out

    def score_table(self, predictions: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
        ndcg = [c for c in metric_columns(predictions) if c.startswith("ndcg@")]
        if not ndcg:
            return super().score_table(predictions, modalities)
        head = ndcg[-1]
        rows = []
        for (split, domain, setting), cell in predictions.groupby(["split", "domain", "setting"], sort=False):
            rows.append({"split": str(split), "model": f"{domain} ({setting})", "kind": str(setting),
                         "accuracy": float(cell[head].mean()), "n": int(len(cell)),
                         "measure": f"{head.replace('ndcg', 'NDCG')} (mean over users)"})
        return pd.DataFrame(rows, columns=["split", "model", "kind", "accuracy", "n", "measure"])
