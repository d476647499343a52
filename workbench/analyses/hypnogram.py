"""Hypnograms: true and predicted sleep stages over each night, with the epochs where a modality is missing.

A sleep-staging model (CoRe-Sleep, Kontras et al., arXiv 2304.06485; :mod:`workbench.tasks.coresleep`)
predicts one stage per 30 s epoch of a sequence; the sequences of a night are its consecutive
pieces (``groups["night"]``, ``groups["start"]``: first epoch). This analysis puts every predicted
epoch back at its place in its night and scores each night:

- ``epochs``: one row per epoch: ``night, epoch`` (index in the night), ``hours`` (``epoch * 30 s``),
  ``y``/``true`` and ``pred``/``predicted`` (index and name; ``pred = -1``, ``predicted = ""`` where no
  modality was present), the ``head`` that predicted it and ``present_<m>`` per modality;
- ``nights``: per night the epoch accuracy with its Wilson interval (the epochs of a night are
  correlated, so this interval is optimistic about the night-to-night spread; it describes the night
  shown), Cohen's kappa, the number of epochs and the share of epochs each modality is missing.

Stage order on the y axis of the view follows the clinical convention (W on top, then REM, N1, N2,
N3), not the class indices.

Example
-------
>>> import pandas as pd
>>> frame = pd.DataFrame({"sample": [0, 0, 1, 1], "position": [0, 1, 0, 1], "y": [0, 2, 2, 3],
...                       "pred": [0, 2, 3, -1], "head": ["combined", "combined", "eeg", "none"],
...                       "present_eeg": [True, True, True, False], "present_eog": [True, True, False, False],
...                       "group_night": [5, 5, 5, 5], "group_start": [0, 0, 2, 2]})
>>> res = hypnogram_analysis(frame, stages=["W", "N1", "N2", "N3", "REM"], modalities=["eeg", "eog"])
>>> res.epochs[["epoch", "true", "predicted"]].values.tolist()
[[0, 'W', 'W'], [1, 'N2', 'N2'], [2, 'N2', 'N3'], [3, 'N3', '']]
>>> round(float(res.nights["accuracy"].iloc[0]), 3), float(res.nights["missing_eog"].iloc[0])
(0.667, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from workbench.stats.intervals import LEVEL, check_level, wilson_interval
from workbench.store.results import Result

__all__ = ["EPOCH_SECONDS", "HypnogramResult", "hypnogram", "hypnogram_analysis"]

EPOCH_SECONDS = 30.0
#: clinical hypnogram order, top to bottom
DISPLAY_ORDER = ("W", "REM", "N1", "N2", "N3")


@dataclass
class HypnogramResult(Result):
    """Per-epoch stages of every night (``epochs``) and per-night scores with intervals (``nights``)."""

    epochs: pd.DataFrame
    nights: pd.DataFrame
    stages: list
    modalities: list
    level: float = LEVEL

    def night(self, night=None) -> pd.DataFrame:
        """The epochs of ``night`` (default: the first) in time order."""
        night = self.nights["night"].iloc[0] if night is None else night
        part = self.epochs[self.epochs["night"] == night]
        if part.empty:
            raise ValueError(f"night: {night!r} is not in this result ({', '.join(map(str, self.nights['night']))})")
        return part.sort_values("epoch")

    def display_order(self) -> list[str]:
        """The stages top to bottom: the clinical order for the usual names, any others after them."""
        known = [s for s in DISPLAY_ORDER if s in self.stages]
        return known + [s for s in self.stages if s not in known]


def _check_columns(predictions: pd.DataFrame, modalities: Sequence[str]) -> None:
    need = ["sample", "position", "y", "pred", "head", "group_night", "group_start",
            *(f"present_{m}" for m in modalities)]
    missing = [c for c in need if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions: no column {missing[0]!r} (expected the frame of "
                         "workbench.tasks.coresleep.predict_epochs on a dataset with night and start groups)")


def hypnogram_analysis(predictions: pd.DataFrame, *, stages: Sequence[str], modalities: Sequence[str],
                       level: float = LEVEL) -> HypnogramResult:
    """Stages over each night from per-epoch predictions; see the module docstring.

    Parameters
    ----------
    predictions : DataFrame
        :func:`workbench.tasks.coresleep.predict_epochs`'s frame, with ``group_night`` and
        ``group_start`` (the dataset's groups).
    stages : sequence of str
        Stage names by class index (``ds.classes``).
    modalities : sequence of str
        The model's modalities (their ``present_<m>`` columns).
    level : float
        Level of the Wilson intervals of the per-night accuracy.

    Returns
    -------
    HypnogramResult
    """
    level = check_level(level)
    modalities, stages = list(modalities), [str(s) for s in stages]
    _check_columns(predictions, modalities)
    if predictions.empty:
        raise ValueError("predictions: no epochs")
    y = predictions["y"].to_numpy(int)
    pred = predictions["pred"].to_numpy(int)
    if y.min() < 0 or y.max() >= len(stages) or pred.max() >= len(stages):
        raise ValueError(f"stages: {len(stages)} names do not cover the class indices of y / pred")
    epoch = predictions["group_start"].to_numpy(int) + predictions["position"].to_numpy(int)
    names = np.asarray(stages + [""], dtype=object)
    epochs = pd.DataFrame({"night": predictions["group_night"].to_numpy(), "epoch": epoch,
                           "hours": epoch * EPOCH_SECONDS / 3600.0, "y": y, "pred": pred,
                           "true": names[y], "predicted": names[np.where(pred >= 0, pred, len(stages))],
                           "head": predictions["head"].to_numpy(),
                           **{f"present_{m}": predictions[f"present_{m}"].to_numpy(bool) for m in modalities}})
    if epochs.duplicated(["night", "epoch"]).any():
        raise ValueError("predictions: an epoch of a night appears twice (overlapping sequences?)")
    epochs = epochs.sort_values(["night", "epoch"], kind="stable").reset_index(drop=True)
    return HypnogramResult(epochs, _nights(epochs, modalities, level), stages, modalities, level)


def _nights(epochs: pd.DataFrame, modalities: list[str], level: float) -> pd.DataFrame:
    rows = []
    for night, part in epochs.groupby("night", sort=True):
        scored = part[part["pred"] >= 0]
        hits, n = int((scored["y"] == scored["pred"]).sum()), len(scored)
        lo, hi = wilson_interval(hits, n, level)
        kappa = (float(cohen_kappa_score(scored["y"], scored["pred"]))
                 if len(np.unique(np.r_[scored["y"], scored["pred"]])) > 1 else float("nan"))
        rows.append({"night": night, "n_epochs": len(part), "n_scored": n,
                     "accuracy": hits / n if n else float("nan"), "accuracy_ci_lower": lo, "accuracy_ci_upper": hi,
                     "kappa": kappa, **{f"missing_{m}": float((~part[f"present_{m}"]).mean()) for m in modalities},
                     "level": level})
    return pd.DataFrame(rows)


def hypnogram(model, ds, idx: np.ndarray | None = None, *, mask: dict | None = None,
              level: float = LEVEL) -> HypnogramResult:
    """Predict the sequences at ``idx`` with a CoRe-Sleep ``model`` (``mask`` hides modalities on top of
    the dataset's presence mask, as in :func:`~workbench.tasks.coresleep.predict_epochs`) and lay them
    out as hypnograms.

    Examples
    --------
    >>> from data_catalog.sleep import synthetic_psg
    >>> from workbench.models.coresleep import CoReSleepModel
    >>> ds = synthetic_psg(n_nights=1, n_epochs=42, seq_len=21, eog_only=0.0, seed=0)
    >>> model = CoReSleepModel(ds.modality_names, n_bins=128, n_frames=29, seq_len=21, n_classes=5, d_model=8,
    ...                        heads=2, inner_layers=1, outer_layers=1, ff=16)
    >>> res = hypnogram(model, ds)
    >>> len(res.night()), res.display_order()
    (42, ['W', 'REM', 'N1', 'N2', 'N3'])
    """
    from workbench.tasks.coresleep import predict_epochs

    if ds.groups is None or not {"night", "start"} <= set(ds.groups.columns):
        raise ValueError("ds: a hypnogram needs the groups 'night' and 'start' (as synthetic_psg and the "
                         "Sleep-EDF loader give)")
    frame = predict_epochs(model, ds, idx, mask=mask)
    return hypnogram_analysis(frame, stages=ds.classes, modalities=model.modalities, level=level)
