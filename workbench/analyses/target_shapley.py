"""Which modality matters for which target: modality Shapley values of one dataset under several labels.

VibraVerse (arXiv 2511.20422) asks which modality carries the material and which the shape. The
answer is the modality Shapley analysis of :mod:`workbench.analyses.shapley` (Chandy et al.,
arXiv 2602.00171: players are the modalities, the value of a coalition is its log-loss reduction
over the class prior), run once per target on the same inputs and the same train / calibration /
test split. A target is a column of ``ds.groups`` (VibraVerse: ``material``, ``family``); its values
become the class labels.

Per target and modality the table holds the mean Shapley value with its t-interval and one-sided
p-value (from :func:`workbench.analyses.shapley.modality_table`, over the calibration samples),
the modality's ``share`` of the total (the mean values sum to the full coalition's value, the
efficiency axiom; the share is a point estimate, no interval), the full coalition's value and its
test accuracy against the majority-class share. The coalition table of every target is kept too.

Nothing is changed from :func:`workbench.analyses.shapley.conformal_shapley`: each target is one call
of it, so its training (early stopping on a validation slice of the training split), value methods
and intervals are those of that module.

Example
-------
>>> from data_catalog.vibraverse import vibraverse
>>> ds = vibraverse(n=120, seed=0).select_modalities(["shape", "sound"])
>>> res = target_shapley(ds, targets=("material", "family"), value_method="masked", epochs=1,
...                      patience=None, progress=False)
>>> sorted(res.modalities["target"].unique()), len(res.modalities)
(['family', 'material'], 4)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data import MultimodalDataset
from workbench.progress import progress_bar
from workbench.stats.intervals import LEVEL, check_level
from workbench.store.results import Result

__all__ = ["TargetShapleyResult", "relabel", "target_shapley"]


@dataclass
class TargetShapleyResult(Result):
    """Modality Shapley values per target.

    ``modalities``: ``target, modality, mean, mean_ci_lower, mean_ci_upper, p_value, share, total,
    full_accuracy, chance, n_classes, n_calib, level`` (``mean`` in nats of log-loss reduction;
    ``total`` = the sum of the target's means = the full coalition's value; ``chance`` the
    majority-class share of the test split). ``coalitions``: the coalition table of
    :class:`workbench.analyses.shapley.ShapleyResult` with a ``target`` column.
    """

    modalities: pd.DataFrame
    coalitions: pd.DataFrame
    targets: list = field(default_factory=list)
    value_method: str = "retrain"
    dataset: str = ""
    level: float = LEVEL

    def to_frame(self) -> pd.DataFrame:
        return self.modalities


def relabel(ds: MultimodalDataset, target: str) -> MultimodalDataset:
    """``ds`` with the labels replaced by the values of ``ds.groups[target]`` (classes sorted).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> ds = MultimodalDataset({"a": np.zeros((3, 1))}, np.zeros(3), groups=pd.DataFrame({"g": ["y", "x", "y"]}))
    >>> r = relabel(ds, "g")
    >>> r.classes, r.y.tolist()
    (['x', 'y'], [1, 0, 1])
    """
    if ds.groups is None or target not in ds.groups.columns:
        have = [] if ds.groups is None else list(ds.groups.columns)
        raise ValueError(
            f"targets: {target!r} is not a groups column of dataset {ds.name!r} (it has {have})"
        )
    values = ds.groups[target].astype(str).to_numpy()
    classes = sorted(set(values))
    if len(classes) < 2:
        raise ValueError(
            f"targets: {target!r} has a single value ({classes[0]!r}) in dataset {ds.name!r}"
        )
    y = np.searchsorted(np.array(classes), values).astype(np.int64)
    return dataclasses.replace(ds, y=y, classes=classes)


def target_shapley(
    ds: MultimodalDataset,
    *,
    targets: Sequence[str] = ("material", "family"),
    value_method: str = "retrain",
    seed: int = 0,
    epochs: int = 100,
    patience: int | None = 5,
    alpha: float = 0.1,
    level: float = LEVEL,
    progress: bool = True,
) -> TargetShapleyResult:
    """Modality Shapley values of ``ds`` for each target (a ``groups`` column), on one shared split.

    Parameters
    ----------
    ds : MultimodalDataset
        Two or more modalities and a ``groups`` table holding every target column.
    targets : sequence of str
        ``groups`` columns whose values are the labels (VibraVerse: ``"material"``, ``"family"``).
    value_method : {"retrain", "masked"}
        Coalition predictors (see :mod:`workbench.analyses.shapley`): one model per coalition
        (the paper's estimand) or one modality-dropout model evaluated under masks.
    seed : int
        Seed of the split (``ds.split(seed=seed)``, 0.6 / 0.2 / 0.2) and of training.
    epochs, patience : int
        Training to convergence as in :func:`workbench.analyses.shapley.conformal_shapley`.
    alpha : float
        Miscoverage of the conformal intervals (kept in the coalition tables; not summarized here).
    level : float
        Level of the t-intervals of the mean Shapley values.
    progress : bool
        A progress bar over the targets.

    Returns
    -------
    TargetShapleyResult
    """
    from workbench.analyses.shapley import conformal_shapley

    check_level(level)
    targets = list(targets)
    if not targets or len(set(targets)) != len(targets):
        raise ValueError(f"targets: must be distinct and non-empty, got {targets!r}")
    relabelled = {t: relabel(ds, t) for t in targets}  # every target checked before any training
    splits = ds.split(seed=seed)
    rows, coalitions = [], []
    for target in progress_bar(targets, desc="targets", enabled=progress):
        part = relabelled[target]
        res = conformal_shapley(
            part,
            splits,
            value_method=value_method,
            alpha=alpha,
            epochs=epochs,
            patience=patience,
            seed=seed,
            level=level,
            progress=False,
        )
        mods = res.modalities
        total = float(mods["mean"].sum())
        coal = res.coalitions.assign(target=target)
        full = coal[(coal["size"] == len(res.modality_names)) & (coal["split"] == "test")]
        y_test = part.y.numpy()[splits.test]
        for _, r in mods.iterrows():
            rows.append(
                {
                    "target": target,
                    "modality": r["modality"],
                    "mean": float(r["mean"]),
                    "mean_ci_lower": float(r["mean_ci_lower"]),
                    "mean_ci_upper": float(r["mean_ci_upper"]),
                    "p_value": float(r["p_value"]),
                    "share": float(r["mean"]) / total if total else np.nan,
                    "total": total,
                    "full_accuracy": float(full["accuracy"].iloc[0]),
                    "chance": float(np.bincount(y_test).max() / len(y_test)),
                    "n_classes": part.n_classes,
                    "n_calib": int(r["n_calib"]),
                    "level": level,
                }
            )
        coalitions.append(coal)
    return TargetShapleyResult(
        pd.DataFrame(rows),
        pd.concat(coalitions, ignore_index=True),
        targets=targets,
        value_method=value_method,
        dataset=ds.name,
        level=level,
    )
