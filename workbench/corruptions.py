"""Corruption models: how sensors fail, seeded, applied to a dataset's modalities with the true mask.

Each corruption is a small frozen dataclass with a ``kind`` (its name in specs and run configs) and
``apply(x, present, rng) -> (x, present, hit)`` on one modality's tensor ``x`` of shape
``(n, *feature_shape)``: ``present`` is the presence mask after the corruption (False where the
modality carries no information any more), ``hit`` marks the samples the corruption touched.
:func:`corrupt` applies a list of specs to a :class:`~workbench.data.MultimodalDataset` (test
time), :func:`corrupt_batch` to a training batch (augmentation, ``TrainConfig.augment``).

=====================  ===========================================================================
``missing``            missing completely at random per sample (Bernoulli ``rate``)
``missing_runs``       missing in contiguous runs of consecutive samples (the epochs of a night,
                       the frames of a recording): run starts at ``rate / mean_length`` per sample,
                       geometric lengths of mean ``mean_length``, so a share ``rate`` goes missing
``gaussian``           additive white Gaussian noise at ``snr_db``: noise variance = signal
                       variance / 10^(snr/10); the signal variance is, for sequences, each
                       sample's and channel's variance over time, and for vectors and images
                       each feature's variance over the samples (features on different scales,
                       such as mfeat's, each get noise on their own scale; a raw mean square
                       would count their offsets as signal)
``electrode_pop``      sequences: a step of ``amplitude`` x the sample's std at a random time,
                       decaying exponentially with time constant ``tau`` seconds (at ``fs`` Hz)
``flat_line``          the sensor reports a constant (its first value): no information, so the
                       true mask marks the modality missing
``mains``              sequences: a ``freq`` Hz (50 or 60) sinusoid of ``amplitude`` x the std
``motion``             sequences: bursts of low-pass (< 5 Hz) noise of ``amplitude`` x the std
                       lasting ``duration`` seconds at a random time
=====================  ===========================================================================

Faults can also hit the **raw signals** behind a dataset's features (the EEG before its STFT, say):
:class:`RawSignals` holds the signals and the function that turns them into the model's input, and
:func:`fault_signals` applies a spec to every epoch (the last axis is time) and re-computes the
features, returning the per-epoch true presence (a flat line carries nothing).

Absent values are zero-filled, as the data contract stores them (the model zeroes an absent
modality's embedding; the mask, not the zeros, says what is missing). ``rate`` is the share of
samples hit for every kind. Noise and faults keep ``present`` True: the modality is there,
only worse (a model or a quality rule has to notice).

Examples
--------
>>> import numpy as np, torch
>>> x = torch.ones(1000, 3)
>>> xc, present, hit = make_corruption({"kind": "missing", "rate": 0.3}).apply(x, torch.ones(1000, dtype=torch.bool),
...                                                                          np.random.default_rng(0))
>>> round(float((~present).float().mean()), 2), float(xc[~present].abs().sum())
(0.28, 0.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from workbench.data import MultimodalDataset

__all__ = ["CORRUPTIONS", "Corruption", "RawSignals", "check_specs", "corrupt", "corrupt_batch", "fault_signals",
           "make_corruption"]

Result = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    """Base: ``modalities`` (None: every modality) and ``rate`` (share of samples hit)."""

    kind: ClassVar[str] = ""
    sequence_only: ClassVar[bool] = False
    rate: float = 0.1
    modalities: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"corruption {self.kind!r}: rate must be in [0, 1], got {self.rate!r}")

    def spec(self) -> dict:
        """The plain dict that :func:`make_corruption` turns back into this corruption (run configs)."""
        out = {"kind": self.kind, **dataclasses.asdict(self)}
        if out["modalities"] is not None:
            out["modalities"] = list(out["modalities"])
        return out

    def _hit(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.random(n) < self.rate

    def apply(self, x: torch.Tensor, present: torch.Tensor, rng: np.random.Generator) -> Result:
        hit = torch.as_tensor(self._hit(len(x), rng))
        return self._corrupt(x.clone(), present.clone(), hit, rng)

    def _corrupt(self, x: torch.Tensor, present: torch.Tensor, hit: torch.Tensor, rng: np.random.Generator) -> Result:
        raise NotImplementedError


@dataclass(frozen=True)
class Missing(Corruption):
    kind: ClassVar[str] = "missing"

    def _corrupt(self, x, present, hit, rng):
        x[hit] = 0
        return x, present & ~hit, hit


@dataclass(frozen=True)
class MissingRuns(Missing):
    kind: ClassVar[str] = "missing_runs"
    mean_length: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.mean_length >= 1:
            raise ValueError(f"corruption 'missing_runs': mean_length must be >= 1, got {self.mean_length!r}")

    def _hit(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # alternating renewal process: gaps and runs with geometric lengths, share rate in runs
        hit = np.zeros(n, dtype=bool)
        if self.rate == 0:
            return hit
        if self.rate == 1:
            return ~hit
        mean_gap = self.mean_length * (1 - self.rate) / self.rate
        i = 0 if rng.random() < self.rate else int(rng.geometric(1 / max(mean_gap, 1.0)))
        while i < n:
            length = int(rng.geometric(1 / self.mean_length))
            hit[i : i + length] = True
            i += length + int(rng.geometric(1 / max(mean_gap, 1.0)))
        return hit


def _sample_std(x: torch.Tensor) -> torch.Tensor:
    """Per-sample standard deviation, shaped to broadcast over the sample's features."""
    flat = x.reshape(len(x), -1)
    return flat.std(1, unbiased=False).clamp_min(1e-8).reshape(-1, *([1] * (x.dim() - 1)))


@dataclass(frozen=True)
class Gaussian(Corruption):
    kind: ClassVar[str] = "gaussian"
    rate: float = 1.0
    snr_db: float = 10.0

    def _corrupt(self, x, present, hit, rng):
        if x.dim() >= 3:  # (n, channels, time): each sample's own signal
            power = x.var(-1, unbiased=False, keepdim=True)
        else:  # vectors and images: each feature's spread over the samples
            power = x.var(0, unbiased=False, keepdim=True) if len(x) > 1 else x.pow(2)
        std = (power / 10 ** (self.snr_db / 10)).sqrt()
        noise = torch.as_tensor(rng.standard_normal(x.shape), dtype=x.dtype) * std
        x[hit] += noise[hit]
        return x, present, hit


@dataclass(frozen=True)
class _SequenceFault(Corruption):
    """Faults of a time series ``(n, channels, time)`` (or ``(n, time)``) sampled at ``fs`` Hz."""

    sequence_only: ClassVar[bool] = True
    fs: float = 100.0
    amplitude: float = 5.0

    def _corrupt(self, x, present, hit, rng):
        if x.dim() < 2:
            raise ValueError(f"corruption {self.kind!r} needs sequences (n, [channels,] time), got shape "
                             f"{tuple(x.shape)}")
        t = torch.arange(x.shape[-1], dtype=x.dtype) / self.fs
        std = _sample_std(x)
        rows = np.flatnonzero(hit.numpy())
        for i in rows:
            x[i] = x[i] + std[i] * self._artefact(t, rng)
        return x, present, hit

    def _artefact(self, t: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class ElectrodePop(_SequenceFault):
    kind: ClassVar[str] = "electrode_pop"
    tau: float = 0.5

    def _artefact(self, t, rng):
        t0 = float(rng.uniform(0, float(t[-1])))
        return torch.where(t >= t0, self.amplitude * torch.exp(-(t - t0) / self.tau), torch.zeros_like(t))


@dataclass(frozen=True)
class Mains(_SequenceFault):
    kind: ClassVar[str] = "mains"
    freq: float = 50.0
    amplitude: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.freq < self.fs / 2:
            raise ValueError(f"corruption 'mains': freq must be in (0, fs/2) = (0, {self.fs / 2}), got {self.freq!r}")

    def _artefact(self, t, rng):
        return self.amplitude * torch.sin(2 * np.pi * self.freq * t + float(rng.uniform(0, 2 * np.pi)))


@dataclass(frozen=True)
class Motion(_SequenceFault):
    kind: ClassVar[str] = "motion"
    duration: float = 2.0

    def _artefact(self, t, rng):
        n = len(t)
        length = max(1, min(n, int(round(self.duration * self.fs))))
        start = int(rng.integers(0, n - length + 1))
        white = rng.standard_normal(length)
        spectrum = np.fft.rfft(white)
        spectrum[np.fft.rfftfreq(length, 1 / self.fs) > 5.0] = 0  # body movement: below 5 Hz
        burst = np.fft.irfft(spectrum, length)
        burst = burst / max(burst.std(), 1e-12) * self.amplitude
        out = torch.zeros(n, dtype=t.dtype)
        out[start : start + length] = torch.as_tensor(burst * np.hanning(length), dtype=t.dtype)
        return out


@dataclass(frozen=True)
class FlatLine(Corruption):
    kind: ClassVar[str] = "flat_line"

    def _corrupt(self, x, present, hit, rng):
        if x.dim() >= 2:
            x[hit] = x[hit][..., :1].expand_as(x[hit]).clone()
        else:
            x[hit] = 0
        return x, present & ~hit, hit


CORRUPTIONS: dict[str, type[Corruption]] = {
    c.kind: c for c in (Missing, MissingRuns, Gaussian, ElectrodePop, FlatLine, Mains, Motion)}


def make_corruption(spec: Mapping[str, Any] | Corruption) -> Corruption:
    """A corruption from its spec ``{"kind": ..., **parameters}`` (one-line errors naming the bad key)."""
    if isinstance(spec, Corruption):
        return spec
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise ValueError(f"corruption spec {spec!r}: expected a dict with a 'kind' (one of {sorted(CORRUPTIONS)})")
    kind = spec["kind"]
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption kind {kind!r}; choose one of {sorted(CORRUPTIONS)}")
    cls = CORRUPTIONS[kind]
    params = {k: v for k, v in spec.items() if k != "kind"}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ValueError(f"corruption {kind!r}: unknown parameter {unknown[0]!r}; it takes {sorted(names)}")
    for key, value in params.items():
        if key != "modalities" and not (isinstance(value, (int, float)) and np.isfinite(value)):
            raise ValueError(f"corruption {kind!r}: {key} must be a finite number, got {value!r}")
    if params.get("modalities") is not None:
        if isinstance(params["modalities"], str):
            params["modalities"] = [params["modalities"]]
        params["modalities"] = tuple(params["modalities"])
    return cls(**params)


def check_specs(specs: Sequence[Mapping[str, Any] | Corruption], ds: MultimodalDataset | None = None) -> list[Corruption]:
    """Build every spec and, with a dataset, check the modalities they name and their kinds
    (sequence faults need sequences) before any work."""
    built = [make_corruption(s) for s in specs]
    if ds is not None:
        for c in built:
            for m in c.modalities or ds.modality_names:
                if m not in ds.modalities:
                    raise ValueError(f"corruption {c.kind!r}: modality {m!r} is not in dataset {ds.name!r} "
                                     f"(it has {ds.modality_names})")
                if c.sequence_only and ds.modalities[m].dim() < 3 and ds.kinds.get(m) != "sequence":
                    raise ValueError(f"corruption {c.kind!r} needs a sequence modality; {m!r} of dataset "
                                     f"{ds.name!r} is a {ds.kinds.get(m, 'vector')}")
    return built


def _apply_all(x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], corruptions: list[Corruption],
               rng: np.random.Generator) -> tuple[dict, dict, dict]:
    x, mask = dict(x), dict(mask)
    hits = {m: torch.zeros(len(v), dtype=torch.bool) for m, v in x.items()}
    for c in corruptions:
        for m in c.modalities or list(x):
            x[m], mask[m], hit = c.apply(x[m], mask[m], rng)
            hits[m] = hits[m] | hit
    return x, mask, hits


def corrupt(ds: MultimodalDataset, specs: Sequence[Mapping[str, Any] | Corruption], *, seed: int = 0,
            idx: np.ndarray | None = None) -> tuple[MultimodalDataset, dict[str, torch.Tensor]]:
    """The dataset with ``specs`` applied (to the samples ``idx``, default all) and the samples hit.

    The returned dataset carries the true presence mask (the dataset's own mask ANDed with what
    the corruptions removed) and records the specs and seed in ``ground_truth["corruptions"]``.

    Examples
    --------
    >>> import torch
    >>> ds = MultimodalDataset({"a": torch.randn(200, 4), "b": torch.randn(200, 4)}, torch.zeros(200, dtype=torch.long))
    >>> out, hits = corrupt(ds, [{"kind": "missing", "rate": 0.5, "modalities": ["a"]}], seed=1)
    >>> bool(out.mask["b"].all()), 0.4 < float((~out.mask["a"]).float().mean()) < 0.6
    (True, True)
    """
    corruptions = check_specs(specs, ds)
    rng = np.random.default_rng(seed)
    sel = np.arange(ds.n_samples) if idx is None else np.asarray(idx)
    sel_t = torch.as_tensor(sel, dtype=torch.long)
    base = {m: ds.presence(m) for m in ds.modality_names}
    part_x = {m: v[sel_t] for m, v in ds.modalities.items()}
    part_mask = {m: base[m][sel_t] for m in ds.modality_names}
    new_x, new_mask, part_hits = _apply_all(part_x, part_mask, corruptions, rng)
    modalities, mask, hits = {}, {}, {}
    for m in ds.modality_names:
        modalities[m] = ds.modalities[m].clone()
        modalities[m][sel_t] = new_x[m]
        mask[m] = base[m].clone()
        mask[m][sel_t] = new_mask[m]
        hits[m] = torch.zeros(ds.n_samples, dtype=torch.bool)
        hits[m][sel_t] = part_hits[m]
    if not any(bool((~v).any()) for v in mask.values()):
        mask_out = ds.mask
    else:
        mask_out = mask
    truth = {**ds.ground_truth, "corruptions": {"specs": [c.spec() for c in corruptions], "seed": seed}}
    out = dataclasses.replace(ds, modalities=modalities, mask=mask_out, ground_truth=truth)
    return out, hits


def corrupt_batch(x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor] | None, corruptions: list[Corruption],
                  rng: np.random.Generator) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Training-time augmentation: ``corruptions`` applied to one batch (on the CPU, moved back to
    the batch's device); returns the corrupted inputs and the presence mask."""
    device = next(iter(x.values())).device
    cpu_x = {m: v.detach().cpu() for m, v in x.items()}
    cpu_mask = {m: (mask[m].cpu() if mask is not None else torch.ones(len(v), dtype=torch.bool))
                for m, v in cpu_x.items()}
    new_x, new_mask, _ = _apply_all(cpu_x, cpu_mask, corruptions, rng)
    return {m: v.to(device) for m, v in new_x.items()}, {m: v.to(device) for m, v in new_mask.items()}


@dataclass(frozen=True)
class RawSignals:
    """The raw signals behind a dataset's features, and how they become the features.

    Attributes
    ----------
    signals : dict of str to ndarray
        Per modality ``(n_samples, n_epochs, n_times)`` (or ``(n_samples, n_times)``), aligned with
        the dataset's samples.
    featurize : callable
        ``featurize(modality, signals_of_idx, idx) -> features`` of the dataset's shape for those
        samples (for sleep data: bandpass over the night, STFT).
    quality_rule : callable, optional
        ``quality_rule(signals_of_idx, idx) -> {modality: bool (n, n_epochs)}``, True where a rule
        computed from the signals alone (no ground truth) keeps the epoch; the robustness analysis
        can mask what it rejects (CoRe-Sleep's std rule: :func:`data_catalog.sleep.std_rule`).
    fs : float
        Sampling rate in Hz (the faults' time axis).
    """

    signals: Mapping[str, np.ndarray]
    featurize: Callable[[str, np.ndarray, np.ndarray], np.ndarray]
    quality_rule: Callable[[Mapping[str, np.ndarray], np.ndarray], dict[str, np.ndarray]] | None = None
    fs: float = 100.0


def fault_signals(raw: RawSignals, modality: str, spec: Mapping[str, Any] | Corruption, idx: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply one corruption to every epoch of ``modality``'s raw signals of samples ``idx``.

    Each epoch is one sample of the corruption (``rate`` = share of epochs hit); a sequence fault's
    ``fs`` is set to the signals' rate. Returns the faulted signals, the re-computed features and
    the true per-epoch presence ``(len(idx), n_epochs)`` (False where a flat line left nothing).

    Examples
    --------
    >>> import numpy as np
    >>> raw = RawSignals({"a": np.random.default_rng(0).standard_normal((4, 3, 100))},
    ...                  featurize=lambda m, s, i: s.std(-1, keepdims=True))
    >>> sig, feats, present = fault_signals(raw, "a", {"kind": "flat_line", "rate": 1.0}, np.arange(4),
    ...                                     np.random.default_rng(0))
    >>> feats.shape, bool(present.any()), float(feats.max()) < 1e-6
    ((4, 3, 1), False, True)
    """
    if modality not in raw.signals:
        raise ValueError(f"modality {modality!r} has no raw signals (it has {sorted(raw.signals)})")
    corruption = make_corruption(spec)
    if isinstance(corruption, _SequenceFault) and corruption.fs != raw.fs:
        corruption = dataclasses.replace(corruption, fs=raw.fs)
    sig = np.asarray(raw.signals[modality])[np.asarray(idx)]
    shape = sig.shape
    epochs = torch.as_tensor(sig.reshape(-1, 1, shape[-1]).astype(np.float32))  # (samples*epochs, 1, time)
    out, present, _ = corruption.apply(epochs, torch.ones(len(epochs), dtype=torch.bool), rng)
    faulted = out.numpy().reshape(shape)
    per_epoch = present.numpy().reshape(shape[:-1]) if len(shape) > 2 else present.numpy()
    return faulted, np.asarray(raw.featurize(modality, faulted, np.asarray(idx))), per_epoch
