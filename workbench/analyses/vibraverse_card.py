"""Object cards of VibraVerse objects as a result (VibraVerse, arXiv 2511.20422; :mod:`data_catalog.vibraverse`).

An object card shows what the generator knows about one object: its top-view height map (the
``image`` modality's first channel), its log-mel spectrogram with the ground-truth modal
frequencies, and its sound. :func:`object_cards` copies these out of a dataset generated with
``keep_waveform=True`` into tidy tables, so the cards can be saved in a run
(``run.save_result("objects", cards)``) and drawn from the saved result alone: the figures are found
by name (``widgets.figures.vibraverse_card:report_figures``), so run panels, dashboard tabs and
reports show them, and ``show(cards)`` in JupyterLab adds an audio player per object.

Example
-------
>>> from data_catalog.vibraverse import vibraverse
>>> cards = object_cards(vibraverse(n=3, seed=0, keep_waveform=True), indices=[0, 2])
>>> cards.objects["object"].tolist(), int(cards.waveforms.groupby("object").size().iloc[0])
([0, 2], 22050)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data import MultimodalDataset
from workbench.store.results import Result

__all__ = ["MAX_CARDS", "ObjectCardResult", "object_cards"]

MAX_CARDS = 16  # each card keeps its waveform (22050 samples per second of sound)


@dataclass
class ObjectCardResult(Result):
    """Tables of a few VibraVerse objects (``object`` is the index in the dataset).

    ``objects``: one row per object, the generator's metadata (family, material, rho, E, nu, dimensions,
    hit point, f1, ...). ``modes``: ``object, mode, freq_hz, decay_per_s, amplitude`` (the rendered modes).
    ``spectrograms``: ``object, band, frame, db`` (log-mel, dB re the object's peak).
    ``heights``: ``object, ix, iy, height`` (top-view thickness map, ``window`` m square).
    ``waveforms``: ``object, sample, value`` (peak-normalized, at ``fs`` Hz).
    """

    objects: pd.DataFrame
    modes: pd.DataFrame
    spectrograms: pd.DataFrame
    heights: pd.DataFrame
    waveforms: pd.DataFrame
    mel_centres: list = field(default_factory=list)
    fs: int = 22050
    duration: float = 1.0
    window: float = 0.6

    def to_frame(self) -> pd.DataFrame:
        return self.objects

    def spectrogram(self, obj: int) -> np.ndarray:
        """The ``(bands, frames)`` log-mel (dB) of object ``obj``."""
        part = self._part(self.spectrograms, obj)
        return part.pivot(index="band", columns="frame", values="db").to_numpy()

    def height(self, obj: int) -> np.ndarray:
        """The ``(nx, ny)`` height map of object ``obj``."""
        part = self._part(self.heights, obj)
        return part.pivot(index="ix", columns="iy", values="height").to_numpy()

    def waveform(self, obj: int) -> np.ndarray:
        """The waveform of object ``obj`` (float64, peak 1)."""
        return self._part(self.waveforms, obj).sort_values("sample")["value"].to_numpy(np.float64)

    def freqs(self, obj: int) -> np.ndarray:
        """The rendered modal frequencies (Hz) of object ``obj``."""
        return self._part(self.modes, obj).sort_values("mode")["freq_hz"].to_numpy(np.float64)

    def _part(self, frame: pd.DataFrame, obj: int) -> pd.DataFrame:
        part = frame[frame["object"] == obj]
        if part.empty:
            raise ValueError(
                f"object: {obj!r} has no card here (objects {self.objects['object'].tolist()})"
            )
        return part


def object_cards(ds: MultimodalDataset, *, indices: Sequence[int] = (0,)) -> ObjectCardResult:
    """The cards of objects ``indices`` of a ``vibraverse(..., keep_waveform=True)`` dataset.

    Parameters
    ----------
    ds : MultimodalDataset
        From :func:`data_catalog.vibraverse.vibraverse` with ``keep_waveform=True``.
    indices : sequence of int
        Distinct object indices, at most :data:`MAX_CARDS`.

    Returns
    -------
    ObjectCardResult
    """
    gt = getattr(ds, "ground_truth", None) or {}
    if "objects" not in gt or "freqs" not in gt:
        raise ValueError(
            "ds: not a vibraverse dataset (needs ground_truth['objects'] and ['freqs'])"
        )
    if "waveform" not in gt:
        raise ValueError("ds: the dataset has no waveforms; generate it with keep_waveform=True")
    idx = [int(i) for i in indices]
    if not idx or len(set(idx)) != len(idx) or len(idx) > MAX_CARDS:
        raise ValueError(f"indices: need 1 to {MAX_CARDS} distinct objects, got {list(indices)!r}")
    bad = [i for i in idx if not 0 <= i < ds.n_samples]
    if bad:
        raise ValueError(f"indices: {bad[0]} is outside [0, {ds.n_samples})")
    objects = gt["objects"].iloc[idx].reset_index(drop=True)
    objects.insert(0, "object", idx)
    modes, specs, heights, waves = [], [], [], []
    for i in idx:
        ok = np.isfinite(gt["freqs"][i])
        modes.append(
            pd.DataFrame(
                {
                    "object": i,
                    "mode": np.arange(1, ok.sum() + 1),
                    "freq_hz": gt["freqs"][i][ok],
                    "decay_per_s": gt["decay"][i][ok],
                    "amplitude": gt["amps"][i][ok],
                }
            )
        )
        db = (
            ds.modalities["sound"][i].numpy().astype(np.float64) - 1.0
        ) * 40.0  # back to dB (the generator's scale)
        band, frame = np.meshgrid(np.arange(db.shape[0]), np.arange(db.shape[1]), indexing="ij")
        specs.append(
            pd.DataFrame(
                {"object": i, "band": band.ravel(), "frame": frame.ravel(), "db": db.ravel()}
            )
        )
        h = ds.modalities["image"][i, 0].numpy().astype(np.float64)
        ix, iy = np.meshgrid(np.arange(h.shape[0]), np.arange(h.shape[1]), indexing="ij")
        heights.append(
            pd.DataFrame({"object": i, "ix": ix.ravel(), "iy": iy.ravel(), "height": h.ravel()})
        )
        w = np.asarray(gt["waveform"][i], dtype=np.float32)
        waves.append(pd.DataFrame({"object": i, "sample": np.arange(len(w)), "value": w}))
    return ObjectCardResult(
        objects=objects,
        modes=pd.concat(modes, ignore_index=True),
        spectrograms=pd.concat(specs, ignore_index=True),
        heights=pd.concat(heights, ignore_index=True),
        waveforms=pd.concat(waves, ignore_index=True),
        mel_centres=[float(c) for c in gt["mel_centres"]],
        fs=int(gt["fs"]),
        duration=float(gt["duration"]),
    )
