"""Hypnogram analysis and view: epochs back at their place in the night, per-night scores equal to
their definitions, missing modalities shaded where the mask says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import cohen_kappa_score

from data_catalog.sleep import synthetic_psg
from widgets.figures.hypnogram import hypnogram_figure, missing_segments, nights_figure
from workbench.analyses.hypnogram import hypnogram, hypnogram_analysis
from workbench.models.coresleep import CoReSleepModel
from workbench.stats.intervals import wilson_interval

STAGES = ["W", "N1", "N2", "N3", "REM"]


def _frame(seed: int = 0, n_seq: int = 4, L: int = 5) -> pd.DataFrame:
    """Two nights of two sequences each, given out of order; EOG missing in one sequence."""
    rng = np.random.default_rng(seed)
    rows = []
    for s, (night, start) in enumerate([(1, 5), (0, 0), (1, 0), (0, 5)][:n_seq]):
        for p in range(L):
            y = int(rng.integers(0, 5))
            rows.append({"sample": s, "position": p, "y": y, "pred": y if rng.random() < 0.7 else (y + 1) % 5,
                         "head": "combined", "present_eeg": True, "present_eog": not (night == 1 and start == 5),
                         "group_night": night, "group_start": start})
    return pd.DataFrame(rows)


def test_epochs_are_placed_in_their_night_and_scored_by_definition():
    frame = _frame()
    res = hypnogram_analysis(frame, stages=STAGES, modalities=["eeg", "eog"], level=0.9)
    for night in (0, 1):
        part = res.night(night)
        assert part["epoch"].tolist() == list(range(10))
        np.testing.assert_allclose(part["hours"], np.arange(10) * 30 / 3600)
        src = frame[frame["group_night"] == night].assign(e=lambda f: f["group_start"] + f["position"]).sort_values("e")
        assert part["y"].tolist() == src["y"].tolist() and part["pred"].tolist() == src["pred"].tolist()
        assert part["true"].tolist() == [STAGES[i] for i in src["y"]]
        row = res.nights.set_index("night").loc[night]
        hits = int((src["y"] == src["pred"]).sum())
        lo, hi = wilson_interval(hits, 10, 0.9)
        assert row["accuracy"] == hits / 10 and row["accuracy_ci_lower"] == lo and row["accuracy_ci_upper"] == hi
        assert row["kappa"] == pytest.approx(cohen_kappa_score(src["y"], src["pred"]))
    assert res.nights["missing_eog"].tolist() == [0.0, 0.5] and res.nights["missing_eeg"].tolist() == [0.0, 0.0]
    # the view: the missing run shaded exactly over epochs 5..9 of night 1, the lines at the display order
    assert missing_segments(res.night(1), "eog") == [(5 * 30 / 3600, 10 * 30 / 3600)]
    fig = hypnogram_figure(res, night=1)
    (shade,) = fig.layout.shapes
    assert (shade.x0, shade.x1) == pytest.approx((5 * 30 / 3600, 10 * 30 / 3600))
    order = res.display_order()
    assert order == ["W", "REM", "N1", "N2", "N3"]
    assert list(fig.data[0].y) == [order.index(s) for s in res.night(1)["true"]]
    assert list(fig.layout.yaxis.ticktext) == order
    acc = nights_figure(res)
    np.testing.assert_allclose(acc.data[0].y, res.nights["accuracy"])


def test_unpredicted_epochs_and_bad_input():
    frame = _frame()
    frame.loc[0, ["pred", "head"]] = [-1, "none"]
    res = hypnogram_analysis(frame, stages=STAGES, modalities=["eeg", "eog"])
    assert res.night(1)["predicted"].iloc[5] == ""
    assert res.nights.set_index("night").loc[1, "n_scored"] == 9
    assert hypnogram_figure(res, night=1).data[1].y[5] is None  # a gap in the predicted line
    with pytest.raises(ValueError, match="group_night"):
        hypnogram_analysis(frame.drop(columns="group_night"), stages=STAGES, modalities=["eeg", "eog"])
    with pytest.raises(ValueError, match="present_emg"):
        hypnogram_analysis(frame, stages=STAGES, modalities=["eeg", "emg"])
    with pytest.raises(ValueError, match="twice"):
        hypnogram_analysis(pd.concat([frame, frame.iloc[:1]]), stages=STAGES, modalities=["eeg", "eog"])
    with pytest.raises(ValueError, match="stages"):
        hypnogram_analysis(frame, stages=STAGES[:3], modalities=["eeg", "eog"])
    with pytest.raises(ValueError, match="night"):
        res.night(7)


def test_a_core_model_over_nights_with_a_modality_missing():
    ds = synthetic_psg(n_nights=3, n_epochs=42, seq_len=21, eeg_only=0.34, seed=0)
    torch.manual_seed(0)
    model = CoReSleepModel(ds.modality_names, n_bins=128, n_frames=29, seq_len=21, n_classes=5, d_model=8, heads=2,
                           inner_layers=1, outer_layers=1, ff=16)
    res = hypnogram(model, ds)
    assert len(res.epochs) == 3 * 42 and (res.nights["n_epochs"] == 42).all()
    eog_nights = ds.groups.loc[~ds.presence("eog").numpy(), "night"].unique()
    assert len(eog_nights) == 1
    missing = res.nights.set_index("night")["missing_eog"]
    assert missing.loc[eog_nights[0]] == 1.0 and (missing.drop(eog_nights[0]) == 0).all()
    # hiding EOG everywhere (test EEG-only) marks every epoch
    hidden = hypnogram(model, ds, mask={"eog": torch.zeros(ds.n_samples, dtype=torch.bool)})
    assert (hidden.nights["missing_eog"] == 1.0).all() and (hidden.epochs["head"] == "eeg").all()
    with pytest.raises(ValueError, match="night"):
        hypnogram(model, ds.__class__(**{**ds.__dict__, "groups": None}))
