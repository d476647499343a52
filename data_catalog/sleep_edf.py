"""Users' own sleep recordings in the Sleep-EDF layout, as CoRe-Sleep input.

Layout (PhysioNet Sleep-EDF): per night an EDF/EDF+ signal file (``SC4001E0-PSG.edf``) and an
EDF+ hypnogram file whose annotations score the night (``SC4001EC-Hypnogram.edf``: ``Sleep stage
W``, ``Sleep stage 1`` .. ``4``, ``Sleep stage R``, ``Sleep stage ?``, ``Movement time``, each with
an onset and a duration in seconds). :func:`find_nights` pairs the files of a folder by their first
six characters (the Sleep-EDF subject-night code); :func:`load_sleep_edf` reads them with
``pyedflib`` (``pip install pyedflib``, the project's ``sleep`` extra), resamples each channel to
100 Hz, cuts 30 s epochs and applies the paper's preprocessing (:func:`data_catalog.sleep.stft_epochs`).
Nothing is downloaded.

Stage labels map to W, N1, N2, N3 (stages 3 and 4 merged) and REM (``STAGE_LABELS``, which a
caller may replace); ``UNSCORED`` labels (``?``, movement time) mark epochs that are not used:
a sequence holding one is dropped. Any other label is an error. Errors are one line naming the
file and the channel: a channel not in the file (with the channels it has), an unknown stage
label, a hypnogram whose scored epochs run past the signal, channels of different durations,
annotations that are not whole 30 s epochs.

Example
-------
>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> write_night(folder / "SC4001E0-PSG.edf", folder / "SC4001EC-Hypnogram.edf",
...             {"EEG Fpz-Cz": np.zeros(42 * 3000), "EOG horizontal": np.zeros(42 * 3000)},
...             [("Sleep stage W", 0, 630), ("Sleep stage 2", 630, 630)])
>>> ds = load_sleep_edf(find_nights(folder))
>>> tuple(ds.y.shape), ds.shapes["eeg"]
((2, 21), (21, 29, 128))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal

from data_catalog.sleep import BANDS, EPOCH, EPOCH_SECONDS, FS, STAGES, stft_epochs
from workbench.data import DataError, MultimodalDataset

__all__ = ["DEFAULT_CHANNELS", "STAGE_LABELS", "UNSCORED", "find_nights", "load_sleep_edf", "read_hypnogram",
           "write_night"]

DEFAULT_CHANNELS = {"eeg": "EEG Fpz-Cz", "eog": "EOG horizontal"}
STAGE_LABELS = {"Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage 2": 2, "Sleep stage 3": 3,
                "Sleep stage 4": 3, "Sleep stage R": 4}
UNSCORED = ("Sleep stage ?", "Movement time")


def _pyedflib():
    try:
        import pyedflib
    except ImportError:  # an optional dependency: only this loader needs it
        raise ImportError("reading EDF files needs pyedflib: pip install pyedflib "
                          "(or the project's 'sleep' extra)") from None
    return pyedflib


def find_nights(folder: str | Path) -> list[tuple[Path, Path]]:
    """``(signal file, hypnogram file)`` pairs of a Sleep-EDF folder, matched by the first six
    characters of the names (``*PSG.edf`` with ``*Hypnogram.edf``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"sleep-edf folder {folder}: not a directory")
    psg = sorted(p for p in folder.iterdir() if p.name.lower().endswith("psg.edf"))
    hyp = {p.name[:6]: p for p in folder.iterdir() if p.name.lower().endswith("hypnogram.edf")}
    if not psg:
        raise DataError(f"sleep-edf folder {folder}: no *PSG.edf signal files")
    missing = [p.name for p in psg if p.name[:6] not in hyp]
    if missing:
        raise DataError(f"sleep-edf folder {folder}: no hypnogram file (*Hypnogram.edf) for {missing[0]}")
    return [(p, hyp[p.name[:6]]) for p in psg]


def read_hypnogram(path: str | Path, *, stage_labels: Mapping[str, int] | None = None,
                   unscored: Sequence[str] = UNSCORED) -> np.ndarray:
    """Stage index per 30 s epoch from an EDF+ hypnogram's annotations (-1: unscored epoch).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> write_night(d / "a-PSG.edf", d / "a-Hypnogram.edf", {"EEG": np.zeros(3 * 3000)},
    ...             [("Sleep stage W", 0, 30), ("Sleep stage ?", 30, 30), ("Sleep stage R", 60, 30)])
    >>> read_hypnogram(d / "a-Hypnogram.edf").tolist()
    [0, -1, 4]
    """
    labels = dict(STAGE_LABELS if stage_labels is None else stage_labels)
    path = Path(path)
    try:
        with _pyedflib().EdfReader(str(path)) as reader:
            onsets, durations, texts = reader.readAnnotations()
    except OSError as exc:
        raise DataError(f"hypnogram file {path}: unreadable as EDF+ ({exc})") from None
    if len(texts) == 0:
        raise DataError(f"hypnogram file {path}: holds no annotations")
    end = max(float(o) + float(d) for o, d in zip(onsets, durations, strict=True))
    stages = np.full(int(round(end / EPOCH_SECONDS)), -1, dtype=np.int64)
    for onset, duration, text in zip(onsets, durations, texts, strict=True):
        text = str(text).strip()
        if text not in labels and text not in unscored:
            raise DataError(f"hypnogram file {path}: unknown stage label {text!r} at {float(onset):g} s; "
                            f"expected one of {sorted(labels) + list(unscored)}")
        if abs(onset / EPOCH_SECONDS - round(onset / EPOCH_SECONDS)) > 1e-6 or \
                abs(duration / EPOCH_SECONDS - round(duration / EPOCH_SECONDS)) > 1e-6:
            raise DataError(f"hypnogram file {path}: annotation {text!r} at {float(onset):g} s lasting "
                            f"{float(duration):g} s is not whole {EPOCH_SECONDS} s epochs")
        a, n = int(round(onset / EPOCH_SECONDS)), int(round(duration / EPOCH_SECONDS))
        stages[a:a + n] = labels.get(text, -1)
    return stages


def _read_channels(path: Path, channels: Mapping[str, str]) -> dict[str, np.ndarray]:
    """``modality -> signal at 100 Hz`` for the named channels of one EDF file."""
    try:
        reader = _pyedflib().EdfReader(str(path))
    except OSError as exc:
        raise DataError(f"signal file {path}: unreadable as EDF ({exc})") from None
    with reader:
        have = [label.strip() for label in reader.getSignalLabels()]
        out, seconds = {}, {}
        for m, name in channels.items():
            if name not in have:
                raise DataError(f"signal file {path}: no channel {name!r} (for modality {m!r}); "
                                f"the file has {have}")
            i = have.index(name)
            fs = float(reader.getSampleFrequency(i))
            x = reader.readSignal(i)
            seconds[name] = len(x) / fs
            if fs != FS:  # the paper resamples every channel to 100 Hz
                up, down = _ratio(fs)
                x = signal.resample_poly(x, up, down)
            out[m] = x
    first = next(iter(seconds))
    for name, s in seconds.items():
        if abs(s - seconds[first]) >= 1.0 / FS:
            raise DataError(f"signal file {path}: channel {name!r} lasts {s:g} s but channel {first!r} "
                            f"{seconds[first]:g} s")
    return out


def _ratio(fs: float) -> tuple[int, int]:
    from fractions import Fraction

    f = Fraction(FS) / Fraction(fs).limit_denominator(1000)
    return f.numerator, f.denominator


def load_sleep_edf(nights: Sequence[tuple[str | Path, str | Path]] | str | Path, *,
                   channels: Mapping[str, str] | None = None, seq_len: int = 21,
                   stage_labels: Mapping[str, int] | None = None, unscored: Sequence[str] = UNSCORED,
                   name: str = "sleep-edf") -> MultimodalDataset:
    """Sleep-EDF-layout nights as a dataset of ``seq_len``-epoch sequences (as
    :func:`data_catalog.sleep.synthetic_psg` returns).

    Parameters
    ----------
    nights : folder, or list of (signal file, hypnogram file)
    channels : mapping, keyword-only
        ``modality -> EDF channel label`` (default ``DEFAULT_CHANNELS``: ``eeg`` Fpz-Cz, ``eog``
        horizontal); a modality called ``eog`` is bandpassed 0.3-23 Hz, any other 0.3-40 Hz.
    seq_len : int, keyword-only
        Epochs per sample; each night is cut into non-overlapping sequences from its first epoch.
    stage_labels, unscored : keyword-only
        Annotation text -> stage index (0 W .. 4 REM), and the texts that mark unscored epochs.

    Returns
    -------
    MultimodalDataset
        Modalities ``(n, seq_len, 29, 128)``, ``y`` ``(n, seq_len)``, groups ``night`` (the
        signal file's stem) and ``start``.
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    channels = dict(DEFAULT_CHANNELS if channels is None else channels)
    if len(channels) < 1:
        raise ValueError("channels: name at least one modality -> EDF channel")
    pairs = find_nights(nights) if isinstance(nights, (str, Path)) else [(Path(a), Path(b)) for a, b in nights]
    if not pairs:
        raise ValueError("nights: no (signal file, hypnogram file) pairs given")
    feats: dict[str, list[np.ndarray]] = {m: [] for m in channels}
    ys, night_col, start_col = [], [], []
    for psg, hyp in pairs:
        stages = read_hypnogram(hyp, stage_labels=stage_labels, unscored=unscored)
        sig = _read_channels(psg, channels)
        n_sig = min(len(x) for x in sig.values()) // EPOCH
        scored = np.flatnonzero(stages >= 0)
        if scored.size and scored[-1] >= n_sig:
            ch = channels[next(iter(channels))]
            raise DataError(f"hypnogram file {hyp}: scored epochs run to {(scored[-1] + 1) * EPOCH_SECONDS} s "
                            f"but channel {ch!r} of {psg} holds {n_sig * EPOCH_SECONDS} s")
        n = min(len(stages), n_sig) // seq_len * seq_len
        windows = stages[:n].reshape(-1, seq_len)
        keep = (windows >= 0).all(1)  # a sequence with an unscored epoch is left out
        for m, x in sig.items():
            band = BANDS["eog"] if m == "eog" else BANDS["eeg"]
            spec = stft_epochs(x[: n_sig * EPOCH].reshape(n_sig, EPOCH), band=band)[:n]
            feats[m].append(spec.reshape(-1, seq_len, *spec.shape[1:])[keep])
        ys.append(windows[keep])
        night_col += [psg.stem] * int(keep.sum())
        start_col += list(np.flatnonzero(keep) * seq_len)
    y = np.concatenate(ys)
    if len(y) == 0:
        raise DataError(f"sleep-edf: no complete {seq_len}-epoch scored sequence in {len(pairs)} night(s)")
    return MultimodalDataset({m: np.concatenate(v) for m, v in feats.items()}, y,
                             groups=pd.DataFrame({"night": night_col, "start": start_col}),
                             classes=list(STAGES), kinds={m: "image" for m in channels}, name=name)


def write_night(psg: str | Path, hypnogram: str | Path, signals: Mapping[str, np.ndarray],
                annotations: Sequence[tuple[str, float, float]], *, fs: float = FS) -> None:
    """Write a Sleep-EDF-layout night: an EDF+ signal file (channels in µV at ``fs``) and an EDF+
    hypnogram file with ``(text, onset s, duration s)`` annotations (what the tests read back)."""
    pyedflib = _pyedflib()
    labels = list(signals)
    data = [np.asarray(signals[c], dtype=np.float64) for c in labels]
    headers = []
    for c, x in zip(labels, data, strict=True):
        lim = float(np.ceil(max(np.abs(x).max(), 1.0) * 1.1))  # EDF headers hold 8 characters
        headers.append({"label": c, "dimension": "uV", "sample_frequency": fs, "physical_max": lim,
                        "physical_min": -lim, "digital_max": 32767, "digital_min": -32768})
    with pyedflib.EdfWriter(str(psg), len(labels), file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        w.setSignalHeaders(headers)
        w.writeSamples(data)
    end = max(o + d for _, o, d in annotations)
    # an EDF+ file needs a signal: a flat one spanning the scored time
    with pyedflib.EdfWriter(str(hypnogram), 1, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        w.setSignalHeaders([{"label": "none", "dimension": "", "sample_frequency": 1, "physical_max": 1,
                             "physical_min": -1, "digital_max": 32767, "digital_min": -32768}])
        w.writeSamples([np.zeros(int(np.ceil(end)))])
        for text, onset, duration in annotations:
            w.writeAnnotation(onset, duration, text)
