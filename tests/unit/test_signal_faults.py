"""Faults on the raw signals before the STFT (electrode pop, flat line, motion), CoRe-Sleep's std
rule, and the robustness analysis on re-computed features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_catalog.sleep import psg_features, psg_signals, std_rule, synthetic_psg
from workbench.analyses.robustness import robustness_analysis
from workbench.corruptions import fault_signals
from workbench.models.coresleep import CoReSleepModel


@pytest.fixture(scope="module")
def psg():
    return synthetic_psg(n_nights=3, n_epochs=42, seq_len=21, seed=1, keep_raw=True)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CoReSleepModel(["eeg", "eog"], n_bins=128, n_frames=29, seq_len=21, n_classes=5, d_model=8, heads=2,
                          inner_layers=1, outer_layers=1, ff=16).eval()


def authors_std_rule(std_eeg, std_eog, threshold, perc_threshold):
    """The loop of CoRe-Sleep's datasets/sleepset.py::_get_broken_modalities on one patient
    (skip = 1 means the modality is dropped for the epoch)."""
    mod_diff = std_eeg - std_eog
    if (np.abs(mod_diff) > threshold).sum() / len(mod_diff) <= perc_threshold:
        return np.zeros((len(mod_diff), 2))
    skip = np.zeros((len(mod_diff), 2))
    skip[mod_diff > threshold, 0] = 1
    skip[mod_diff < -threshold, 1] = 1
    return skip


def test_std_rule_equals_the_authors_loop():
    rng = np.random.default_rng(3)
    eeg = rng.normal(0, 1, (12, 5, 200)) * rng.uniform(5, 120, (12, 5, 1))
    eog = rng.normal(0, 1, (12, 5, 200)) * rng.uniform(5, 120, (12, 5, 1))
    nights = np.repeat(np.arange(4), 3)
    for thr, perc in [(41.0, 0.4), (20.0, 0.2), (60.0, 0.1)]:
        keep = std_rule(eeg, eog, nights, std_threshold=thr, perc_threshold=perc)
        for night in range(4):
            rows = nights == night
            skip = authors_std_rule(eeg[rows].std(-1).ravel(), eog[rows].std(-1).ravel(), thr, perc)
            assert np.array_equal(~keep["eeg"][rows].ravel(), skip[:, 0].astype(bool))
            assert np.array_equal(~keep["eog"][rows].ravel(), skip[:, 1].astype(bool))


def test_clean_signals_give_the_datasets_features_and_faults_change_only_their_epochs(psg):
    raw = psg_signals(psg)
    idx = np.arange(psg.n_samples)
    for m in ("eeg", "eog"):
        assert np.allclose(raw.featurize(m, raw.signals[m][idx], idx), psg.modalities[m].numpy(), atol=1e-4)
    # whole nights passed in any order get their own rows back (a night is bandpassed as one signal)
    sub = np.array([5, 0, 4, 1])
    assert np.allclose(psg_features(psg, "eeg", raw.signals["eeg"][sub], sub), psg.modalities["eeg"].numpy()[sub],
                       atol=1e-3)
    sig, _, present = fault_signals(raw, "eeg", {"kind": "flat_line", "rate": 0.5}, idx, np.random.default_rng(0))
    flat = np.ptp(sig, axis=-1) == 0
    assert np.array_equal(flat, ~present) and 0.35 < flat.mean() < 0.65
    assert np.array_equal(sig[present], raw.signals["eeg"][idx][present])  # untouched epochs are identical
    pop, _, present = fault_signals(raw, "eeg", {"kind": "electrode_pop", "rate": 1.0, "amplitude": 20.0}, idx,
                                    np.random.default_rng(0))
    assert present.all() and (pop.std(-1) > raw.signals["eeg"][idx].std(-1)).all()


def test_robustness_on_faulted_signals_has_the_known_answers(psg, model):
    raw = psg_signals(psg)
    idx = np.arange(psg.n_samples)
    res = robustness_analysis(model, psg, idx, missing_rates=(0.0,), snr_db=(), patterns=True, n_boot=40,
                              signal_faults=({"kind": "flat_line"}, {"kind": "electrode_pop", "amplitude": 400.0,
                                                                     "tau": 30.0}),
                              raw=raw, fault_rates=(0.0, 1.0), fault_masks=("none", "true", "std_rule"),
                              progress=False)
    acc = res.curves.query("metric == 'accuracy'")
    clean = acc.query("perturbation == 'missing' and modality == 'all'")["value"].item()
    faults = acc.query("perturbation == 'fault'").set_index(["fault", "modality", "severity", "masking"])
    # rate 0: features re-computed from the clean signals are the dataset's, whatever the masking
    assert faults.xs(0.0, level="severity")["value"].to_numpy() == pytest.approx(clean)
    # every EEG epoch flat and masked as such = the EOG-only pattern
    eog_only = res.patterns.query("metric == 'accuracy' and pattern == 'eog'")["value"].item()
    assert faults.loc[("flat_line", "eeg", 1.0, "true"), "value"] == pytest.approx(eog_only)
    # huge pops on every EEG epoch: the std rule rejects (nearly) all of them, as computing it directly says
    sig, _, _ = fault_signals(raw, "eeg", {"kind": "electrode_pop", "rate": 1.0, "amplitude": 400.0, "tau": 30.0},
                              idx, np.random.default_rng([0, 0]))
    share = faults.loc[("electrode_pop", "eeg", 1.0, "std_rule"), "masked_share"]
    assert share > 0.9
    direct = std_rule(sig, raw.signals["eog"][idx], psg.groups["night"].to_numpy()[idx])
    assert 0.9 < 1 - direct["eeg"].mean()
    with pytest.raises(ValueError, match="raw signals"):
        robustness_analysis(model, psg, idx, signal_faults=({"kind": "flat_line"},), progress=False)
    with pytest.raises(ValueError, match="fault_masks"):
        robustness_analysis(model, psg, idx, signal_faults=({"kind": "flat_line"},), raw=raw,
                            fault_masks=("oracle",), progress=False)
    with pytest.raises(ValueError, match="keep_raw"):
        psg_signals(synthetic_psg(n_nights=1, n_epochs=21, seq_len=21))


def test_fault_curves_are_drawn_a_line_per_modality_fault_and_masking(psg, model):
    from widgets.figures.robustness import report_figures
    from widgets.paper.robustness import paper_figures

    res = robustness_analysis(model, psg, np.arange(psg.n_samples), missing_rates=(0.0,), snr_db=(), patterns=False,
                              n_boot=20, signal_faults=({"kind": "flat_line"},), raw=psg_signals(psg),
                              modalities=["eeg"], fault_rates=(0.0, 0.5), fault_masks=("none", "true"), progress=False)
    fig = next(f for f in report_figures(res) if "sensor faults" in f.layout.title.text)
    lines = {t.name: list(t.y) for t in fig.data if t.mode == "lines+markers"}
    want = res.curves.query("perturbation == 'fault' and metric == 'accuracy'")
    assert set(lines) == {"eeg: flat_line (mask: none)", "eeg: flat_line (mask: true)"}
    for masking in ("none", "true"):
        assert lines[f"eeg: flat_line (mask: {masking})"] == list(
            want.query("masking == @masking").sort_values("severity")["value"])
    assert any(p.name == "robustness_fault_accuracy" for p in paper_figures(res))
