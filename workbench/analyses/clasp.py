"""CLASP-style alignment of shape, image and sound (VibraVerse, arXiv 2511.20422), evaluated over seeds.

CLASP's loss is UNCONFIRMED (method note ``shared/methods/vibraverse.md``); we take the note's
assumption, CLIP-style symmetric InfoNCE over every pair of modalities, which is the existing
alignment task at ``lam = 0`` (:mod:`workbench.tasks.alignment`). For each training seed:

* the retrieval table of :func:`workbench.analyses.retrieval.retrieval_analysis` on the test
  split (Recall@k with bootstrap intervals over queries);
* material probes (logistic regression, fitted on the training split, scored on the test split):
  from each modality's embedding ``z_m`` and, as the baseline the issue names, from the raw
  spectrogram's mean over time (one number per mel band).

``summary`` averages each direction's Recall@k and each probe's accuracy over the seeds with a
Student-t interval (the between-seed spread: training seed and split change together). Chance
for Recall@k is ``k / n_test``; for the probe, the largest class share of the test split.

Example
-------
>>> from data_catalog.vibraverse import vibraverse
>>> res = clasp_analysis(vibraverse(n=120, seed=0), seeds=(0, 1), epochs=1, n_boot=20)
>>> sorted(res.summary["kind"].unique()), int(res.summary["n_seeds"].max())
(['probe', 'retrieval'], 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data import MultimodalDataset
from workbench.stats.intervals import check_level, t_interval
from workbench.store.results import Result

__all__ = ["ClaspResult", "clasp_analysis"]


@dataclass
class ClaspResult(Result):
    """Per-seed retrieval and probes of CLASP alignment runs, and their means over seeds.

    ``retrieval``: ``seed, query, gallery, metric, value, value_ci_lower, value_ci_upper, n, chance``
    (1->1 directions; interval: bootstrap over queries). ``probes``: ``seed, representation,
    accuracy, n, chance`` (``representation`` is ``z_<modality>`` or ``spectrogram_mean``).
    ``summary``: ``kind ("retrieval" | "probe"), name ("sound->shape R@10", "z_sound", ...),
    value, value_ci_lower, value_ci_upper, chance, n_seeds, level`` (t-interval over seeds).
    """

    retrieval: pd.DataFrame
    probes: pd.DataFrame
    summary: pd.DataFrame
    label: str = ""
    level: float = 0.95
    config: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.summary


def _spectrogram_mean_probe(ds: MultimodalDataset, train_idx: np.ndarray, test_idx: np.ndarray,
                            modality: str) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = ds.modalities[modality].numpy()
    x = x.reshape(len(x), x.shape[1], -1).mean(-1)  # mean over time per band
    y = ds.y.numpy()
    scaler = StandardScaler().fit(x[train_idx])
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(x[train_idx]), y[train_idx])
    return float((clf.predict(scaler.transform(x[test_idx])) == y[test_idx]).mean())


def clasp_analysis(ds: MultimodalDataset, *, seeds: tuple[int, ...] | list[int] = (0, 1, 2), epochs: int = 20,
                   dim: int = 32, batch_size: int = 128, lr: float = 3e-3, ks: tuple[int, ...] = (1, 5, 10),
                   sound: str = "sound", level: float = 0.95, n_boot: int = 200, label: str = "") -> ClaspResult:
    """Train CLIP/CLASP alignment (``lam = 0``) once per seed on ``ds`` and evaluate retrieval and probes.

    Parameters
    ----------
    ds : MultimodalDataset
        Two or more modalities, no missing values (e.g. :func:`data_catalog.vibraverse.vibraverse`).
    seeds : sequence of int
        Training seeds (each also draws the 0.6/0.2/0.2 split).
    epochs, dim, batch_size, lr : int, int, int, float
        Training length, embedding dimension, batch size (the InfoNCE negatives) and Adam's rate.
    ks : tuple of int
        Recall@k levels.
    sound : str
        The modality whose raw mean over its last axis is the probe baseline.
    level : float
        Level of every interval.
    n_boot : int
        Bootstrap draws for the per-seed Recall@k intervals.
    label : str
        Name of the condition (e.g. ``"hit on"``), kept in the result.

    Returns
    -------
    ClaspResult

    Examples
    --------
    >>> from data_catalog.vibraverse import vibraverse
    >>> res = clasp_analysis(vibraverse(n=100, seed=1), seeds=(0,), epochs=1, n_boot=10)
    >>> bool((res.retrieval["chance"] == 10 / res.retrieval["n"]).any())
    True
    """
    check_level(level)
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"clasp_analysis: seeds must be distinct and non-empty, got {seeds!r}")
    if sound not in ds.modalities:
        raise ValueError(f"clasp_analysis: sound {sound!r} is not a modality of the dataset ({ds.modality_names})")
    if len(ds.modalities) < 2:
        raise ValueError("clasp_analysis: ds needs at least two modalities to align")
    if epochs < 1 or dim < 1 or batch_size < 2:
        raise ValueError(f"clasp_analysis: epochs, dim must be >= 1 and batch_size >= 2, got {epochs}, {dim}, {batch_size}")
    from workbench.analyses.retrieval import _split_embeddings, linear_probes, retrieval_table
    from workbench.training.train import train

    ret_rows, probe_rows = [], []
    for seed in seeds:
        run = train(ds, task="alignment", task_params={"lam": 0.0, "dim": dim}, epochs=epochs, batch_size=batch_size,
                    lr=lr, seed=seed, save=False, progress=False)
        test_z, _, test_frame = _split_embeddings(run, "test")
        train_z, _, train_frame = _split_embeddings(run, "train")
        table = retrieval_table(test_z, ks=ks, level=level, n_boot=n_boot, seed=seed).table
        table = table[table["metric"] != "median_rank"].drop(columns=["kind", "level"])
        table["chance"] = [int(m[2:]) / n for m, n in zip(table["metric"], table["n"], strict=True)]
        ret_rows.append(table.assign(seed=seed))
        y_test = test_frame["y"].to_numpy()
        chance = float(np.bincount(y_test).max() / len(y_test))
        probes = linear_probes(train_z, train_frame["y"].to_numpy(), test_z, y_test, level=level)
        probes = probes[probes["kind"] == "modality"]
        for rep, acc in zip(probes["representation"], probes["accuracy"], strict=True):
            probe_rows.append({"seed": seed, "representation": f"z_{rep}", "accuracy": float(acc),
                               "n": len(y_test), "chance": chance})
        raw = _spectrogram_mean_probe(ds, train_frame["sample"].to_numpy(), test_frame["sample"].to_numpy(), sound)
        probe_rows.append({"seed": seed, "representation": f"{sound}_mean", "accuracy": raw, "n": len(y_test),
                           "chance": chance})
    retrieval = pd.concat(ret_rows, ignore_index=True)[
        ["seed", "query", "gallery", "metric", "value", "value_ci_lower", "value_ci_upper", "n", "chance"]]
    probes = pd.DataFrame(probe_rows)
    rows = []
    for (q, g, m), grp in retrieval.groupby(["query", "gallery", "metric"], sort=False):
        mean, lo, hi = t_interval(grp["value"].to_numpy(), level)
        rows.append({"kind": "retrieval", "name": f"{q}->{g} {m}", "value": float(mean), "value_ci_lower": float(lo),
                     "value_ci_upper": float(hi), "chance": float(grp["chance"].mean()), "n_seeds": len(grp),
                     "level": level})
    for rep, grp in probes.groupby("representation", sort=False):
        mean, lo, hi = t_interval(grp["accuracy"].to_numpy(), level)
        rows.append({"kind": "probe", "name": rep, "value": float(mean), "value_ci_lower": float(lo),
                     "value_ci_upper": float(hi), "chance": float(grp["chance"].mean()), "n_seeds": len(grp),
                     "level": level})
    config = {"seeds": seeds, "epochs": epochs, "dim": dim, "batch_size": batch_size, "lr": lr, "ks": list(ks)}
    return ClaspResult(retrieval, probes, pd.DataFrame(rows), label=label, level=level, config=config)
