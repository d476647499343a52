"""Robustness to missing and noisy modalities, evaluated without retraining.

One trained classifier is evaluated under corruptions of its test inputs
(:mod:`workbench.corruptions`):

- **missing**: each modality alone (and ``"all"``: every modality independently) missing
  completely at random at each rate in ``missing_rates``; absent modalities are masked the way the
  data contract marks them (embedding zeroed, the fusion told), so one encoder pass serves every
  missing-rate condition;
- **noise**: additive Gaussian noise on one modality at each SNR in ``snr_db`` (one encoder pass
  per condition);
- **patterns**: every non-empty subset of modalities forced present (the others masked): the
  metric per presence pattern, i.e. how the one model does for whatever subset arrives.

A CoRe-Sleep model (:class:`~workbench.models.coresleep.CoReSleepModel`, sequences of epochs) is
evaluated the same way on its per-epoch predictions (the combined head where two or more modalities
are present, else the present one's; an epoch with none counts as an error): a modality missing
means missing for the whole sequence, noise is added to its input (the log-STFT frames, not the raw
signal), and the bootstrap resamples whole sequences (epochs of a sequence are correlated), so the
intervals are cluster-bootstrap intervals.

- **faults on the raw signals** (``signal_faults=`` with ``raw=`` a
  :class:`~workbench.corruptions.RawSignals`, e.g. :func:`data_catalog.sleep.psg_signals`): each
  spec (electrode pop, flat line, motion, mains, Gaussian) hits each modality's raw epochs at each
  rate in ``fault_rates`` (share of epochs hit), the features are re-computed from the faulted
  signal (bandpass + STFT for sleep data) and the model is evaluated with, per ``fault_masks``:
  ``"none"`` (the model is told nothing, as in deployment without a quality check), ``"true"``
  (the epochs a fault left without information, i.e. flat lines, are masked) or ``"std_rule"``
  (the signals' own quality rule, CoRe-Sleep's std rule, masks what it rejects; per epoch).
  Rows have ``perturbation == "fault"``, the spec's ``fault`` kind, ``masking`` and, for
  ``"std_rule"``, ``masked_share`` (share of the modality's epochs the rule masked).

Metrics: accuracy, macro-F1 and Cohen's kappa (:mod:`workbench.stats.classification`), each with
a percentile bootstrap interval over the evaluated samples; the same resamples serve every
condition, so the intervals of two conditions are paired. Corruptions are seeded (``seed``), so a
robustness table is reproducible; a sample the dataset already lacks a modality for stays
without it.

:func:`subset_models` answers the CoRe-Sleep paper's claim that multimodal training helps
unimodal testing: per presence pattern, one model trained once with modality dropout (evaluated
masked) against a model trained on that subset only (batched coalition training), paired over
seeds, with the difference's t-interval.

Examples
--------
>>> from workbench import load_dataset, train
>>> run = train(load_dataset("synthetic-imbalance", n=400), epochs=3, save=False, progress=False)
>>> res = robustness_analysis(run.model, run.dataset, run.splits.test, missing_rates=(0.0, 0.5), snr_db=(10.0,),
...                           n_boot=50, progress=False)
>>> sorted(res.curves["perturbation"].unique()), sorted(res.patterns["pattern"].unique())
(['missing', 'noise'], ['strong', 'strong+weak', 'weak'])
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from workbench.corruptions import Gaussian, Missing, RawSignals, fault_signals, make_corruption
from workbench.data import MultimodalDataset
from workbench.models.coresleep import CoReSleepModel
from workbench.models.multimodal import MultimodalModel
from workbench.progress import progress_bar
from workbench.stats.classification import bootstrap_scores, bootstrap_weights
from workbench.stats.intervals import check_level, t_interval
from workbench.store.results import Result
from workbench.tasks.coresleep import one_model_prediction

__all__ = ["RobustnessResult", "robustness_analysis", "subset_models"]


@dataclass
class RobustnessResult(Result):
    """Metrics under corruption.

    ``curves``: ``perturbation ("missing" | "noise" | "fault"), modality, severity (missing rate, SNR
    in dB, or share of epochs a fault hit), metric, value, value_ci_lower, value_ci_upper, n, level``. ``patterns``: ``pattern, size,
    metric, value, value_ci_lower, value_ci_upper, n, level`` and ``has_<modality>``.
    ``subsets`` (from :func:`subset_models`, else empty): per pattern and metric, the one model,
    the per-subset models and their paired difference over seeds.
    """

    curves: pd.DataFrame
    patterns: pd.DataFrame
    subsets: pd.DataFrame = field(default_factory=pd.DataFrame)
    dataset: str = ""
    modality_names: list = field(default_factory=list)
    level: float = 0.95


@torch.no_grad()
def _predict(model: MultimodalModel, emb: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> np.ndarray:
    masked = {m: h * mask[m].to(h.dtype).unsqueeze(1) for m, h in emb.items()}
    uni = {m: model.unimodal_heads[m](h) for m, h in masked.items()}
    return model.fuse(masked, uni, mask).argmax(1).cpu().numpy()


@torch.no_grad()
def _predict_sequences(model: CoReSleepModel, x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor],
                       y: np.ndarray, n_classes: int, device: torch.device, batch: int = 128) -> np.ndarray:
    """Flat per-epoch predictions of a CoRe-Sleep model (combined head where >= 2 modalities are
    present, else the present one's); an epoch with no modality present has no prediction and counts
    as an error (it is given a class other than its true one)."""
    n = len(next(iter(mask.values())))
    preds = []
    for s in range(0, n, batch):
        out = model({m: v[s:s + batch].to(device) for m, v in x.items()}, {m: v[s:s + batch] for m, v in mask.items()})
        logits, head = one_model_prediction(out)
        preds.append(torch.where(head >= 0, logits.argmax(-1), -1).reshape(-1).cpu())
    pred = torch.cat(preds).numpy()
    return np.where(pred >= 0, pred, (y + 1) % n_classes)


@torch.no_grad()
def _encode(model: MultimodalModel, x: dict[str, torch.Tensor], device: torch.device, batch: int = 4096):
    parts = [model.encode({m: v[s : s + batch].to(device) for m, v in x.items()}) for s in range(0, len(next(iter(
        x.values()))), batch)]
    return {m: torch.cat([p[m] for p in parts]) for m in model.modalities}


def _rows(scores: dict, **keys) -> list[dict]:
    return [{**keys, "metric": name, "value": v, "value_ci_lower": lo, "value_ci_upper": hi}
            for name, (v, lo, hi) in scores.items()]


def _check_faults(signal_faults, raw, fault_rates, fault_masks, modalities) -> list[dict]:
    """Validate the raw-signal fault arguments before any work (one-line errors)."""
    if not signal_faults:
        return []
    if raw is None:
        raise ValueError("signal_faults need the raw signals: pass raw= (e.g. data_catalog.sleep.psg_signals(ds))")
    specs = []
    for spec in signal_faults:
        built = make_corruption({k: v for k, v in dict(spec).items() if k != "rate"} | {"rate": 0.0})
        specs.append({k: v for k, v in built.spec().items() if k not in ("rate", "modalities")})
    if not [m for m in modalities if m in raw.signals]:
        raise ValueError(f"raw: no raw signals for the modalities {modalities} (it has {sorted(raw.signals)})")
    if not all(0 <= r <= 1 for r in fault_rates):
        raise ValueError(f"fault_rates must be shares of epochs in [0, 1], got {list(fault_rates)}")
    unknown = sorted(set(fault_masks) - {"none", "true", "std_rule"})
    if unknown:
        raise ValueError(f"fault_masks: unknown {unknown[0]!r}; choose from 'none', 'true', 'std_rule'")
    if "std_rule" in fault_masks and raw.quality_rule is None:
        raise ValueError("fault_masks 'std_rule' needs raw.quality_rule (the signals carry no quality rule)")
    return specs


def _with_epochs(base: torch.Tensor, keep: np.ndarray, device: torch.device) -> torch.Tensor:
    """A sample-level presence combined with a per-epoch one (``(n, L)`` for sequences)."""
    keep_t = torch.as_tensor(np.asarray(keep), dtype=torch.bool, device=device)
    if keep_t.dim() == 2 and base.dim() == 1:
        return base.unsqueeze(1) & keep_t
    return base & keep_t.reshape(base.shape)


def robustness_analysis(model: MultimodalModel | CoReSleepModel, ds: MultimodalDataset, idx: np.ndarray, *,
                        missing_rates: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9),
                        snr_db: tuple[float, ...] = (30.0, 20.0, 10.0, 5.0, 0.0, -5.0),
                        modalities: list[str] | None = None, patterns: bool = True, seed: int = 0,
                        signal_faults: tuple = (), raw: RawSignals | None = None,
                        fault_rates: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0),
                        fault_masks: tuple[str, ...] = ("none",),
                        n_boot: int = 500, level: float = 0.95, progress: bool = True) -> RobustnessResult:
    """Accuracy, macro-F1 and kappa of ``model`` on ``ds[idx]`` against missing rate and SNR per
    modality, and per presence pattern (see the module docstring).

    Parameters
    ----------
    model : the trained classifier (``run.model`` or ``run.load_model()``).
    ds, idx : the dataset and the samples to evaluate (e.g. ``run.splits.test``).
    missing_rates, snr_db : the severities (rates in [0, 1]; SNR in dB, finite).
    modalities : the modalities to corrupt one at a time (default all).
    signal_faults, raw, fault_rates, fault_masks : faults on the raw signals (module docstring):
        corruption specs, the :class:`~workbench.corruptions.RawSignals` behind ``ds``'s features,
        the shares of epochs hit, and how the model is told (``"none"``, ``"true"``, ``"std_rule"``).
    """
    check_level(level)
    names = list(model.modalities)
    if list(ds.modality_names) != names:
        raise ValueError(f"model modalities {names} differ from dataset {ds.name!r}'s {ds.modality_names}")
    modalities = names if modalities is None else list(modalities)
    unknown = sorted(set(modalities) - set(names))
    if unknown:
        raise ValueError(f"modality {unknown[0]!r} is not in dataset {ds.name!r} (it has {names})")
    if not all(0 <= r <= 1 for r in missing_rates):
        raise ValueError(f"missing_rates must be in [0, 1], got {list(missing_rates)}")
    if not all(np.isfinite(s) for s in snr_db):
        raise ValueError(f"snr_db must be finite numbers of decibels, got {list(snr_db)}")
    faults = _check_faults(signal_faults, raw, fault_rates, fault_masks, modalities)
    idx = np.asarray(idx)
    if len(idx) < 2:
        raise ValueError(f"robustness needs at least 2 samples to evaluate, got {len(idx)}")
    model.eval()
    device = next(model.parameters()).device
    sl = torch.as_tensor(idx, dtype=torch.long)
    x = {m: ds.modalities[m][sl] for m in names}
    base = {m: ds.presence(m)[sl] for m in names}
    y = ds.y.numpy()[idx]
    rng = np.random.default_rng(seed)
    weights = bootstrap_weights(len(idx), n_boot, rng)
    n_classes = ds.n_classes
    if y.ndim == 2:  # sequences (sleep staging): score epochs, resample whole sequences
        weights = np.repeat(weights, y.shape[1], axis=1)
        y = y.reshape(-1)

    def score(pred: np.ndarray) -> dict:
        return bootstrap_scores(y, pred, n_classes, weights, level=level)

    dev = {m: v.to(device) for m, v in base.items()}
    if isinstance(model, CoReSleepModel):
        emb = x  # no shared encoder pass: the cross-attention branch sees every present modality

        def predict(inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> np.ndarray:
            return _predict_sequences(model, inputs, mask, y, n_classes, device)

        def encode(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return inputs
    else:
        emb = _encode(model, x, device)

        def predict(inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> np.ndarray:
            return _predict(model, inputs, mask)

        def encode(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return _encode(model, inputs, device)
    rows = []
    conditions = [("missing", m, r) for m in [*modalities, "all"] for r in missing_rates]
    conditions += [("noise", m, s) for m in modalities for s in snr_db]
    for kind, target, severity in progress_bar(conditions, enabled=progress, desc="robustness conditions"):
        crng = np.random.default_rng([seed, len(rows)])
        if kind == "missing":
            mask = dict(dev)
            for m in (names if target == "all" else [target]):
                _, present, _ = Missing(rate=float(severity)).apply(torch.zeros(len(idx), 1), base[m], crng)
                mask[m] = present.to(device)
            pred = predict(emb, mask)
        else:
            noisy, _, _ = Gaussian(rate=1.0, snr_db=float(severity)).apply(x[target], base[target], crng)
            pred = predict({**emb, **encode({**x, target: noisy})}, dev)
        rows += _rows(score(pred), perturbation=kind, modality=target, severity=float(severity))
    conditions = [(spec, m, r) for spec in faults for m in modalities if m in raw.signals for r in fault_rates]
    # the clean signals of the evaluated samples, sliced once: the quality rule sees them beside the faulted one
    clean = {m: np.asarray(v)[idx] for m, v in raw.signals.items()} if "std_rule" in fault_masks and faults else {}
    for spec, target, rate in progress_bar(conditions, enabled=progress, desc="signal faults"):
        crng = np.random.default_rng([seed, len(rows), 7])
        signals, feats, present = fault_signals(raw, target, {**spec, "rate": float(rate)}, idx, crng)
        inputs = {**emb, **encode({**x, target: torch.as_tensor(feats, dtype=x[target].dtype)})}
        for masking in fault_masks:
            mask, share = dict(dev), np.nan
            if masking == "true":
                mask[target] = _with_epochs(dev[target], present, device)
            elif masking == "std_rule":
                keep = raw.quality_rule({**clean, target: signals}, idx)
                mask = {m: _with_epochs(dev[m], keep[m], device) if m in keep else dev[m] for m in names}
                share = float(1 - keep[target].mean())
            rows += _rows(score(predict(inputs, mask)), perturbation="fault", modality=target, severity=float(rate),
                          fault=spec["kind"], masking=masking, masked_share=share)
    curves = pd.DataFrame(rows).assign(n=len(idx), level=level)
    pattern_rows = []
    if patterns:
        for size in range(1, len(names) + 1):
            for subset in itertools.combinations(names, size):
                mask = {m: dev[m] & (m in subset) for m in names}
                pattern_rows += _rows(score(predict(emb, mask)), pattern="+".join(subset), size=size,
                                      **{f"has_{m}": m in subset for m in names})
    table = pd.DataFrame(pattern_rows).assign(n=len(idx), level=level) if pattern_rows else pd.DataFrame()
    return RobustnessResult(curves, table, dataset=ds.name, modality_names=names, level=level)


def subset_models(ds: MultimodalDataset, *, seeds: tuple[int, ...] = (0, 1, 2), config=None, level: float = 0.95,
                  progress: bool = True) -> pd.DataFrame:
    """One model for every subset against a model per subset, per presence pattern, paired over seeds.

    For each seed: the split of that seed; "one model" is trained once with the
    ``modality_dropout`` strategy (its defaults) and evaluated with the other
    modalities masked; "per subset" trains one model on each subset's modalities only (batched,
    :func:`workbench.analyses.shapley.coalition_values`). Test accuracy per pattern; the paired
    difference (one - per subset) with its t-interval over seeds, reported whatever its sign.
    """
    import dataclasses

    from workbench.analyses.shapley import (
        all_coalitions,
        coalition_label,
        coalition_values,
        train_dropout_model,
    )
    from workbench.training.config import TrainConfig

    check_level(level)
    if len(seeds) < 2:
        raise ValueError(f"subset_models needs >= 2 seeds for a paired interval, got {list(seeds)}")
    names = ds.modality_names
    coalitions = all_coalitions(len(names))[1:]
    rows = []
    for seed in progress_bar(list(seeds), enabled=progress, desc="subset models"):
        cfg = dataclasses.replace(config or TrainConfig(epochs=30, patience=5, progress=False), seed=seed,
                                  progress=False)
        splits = ds.split(seed=seed)
        one = train_dropout_model(ds, splits, cfg)
        masked = coalition_values(ds, splits, coalitions, method="masked", model=one, idx=splits.test, progress=False)
        retrained = coalition_values(ds, splits, coalitions, method="retrain", config=cfg, idx=splits.test,
                                     progress=False)
        y = ds.y.numpy()[splits.test]
        for k, members in enumerate(coalitions):
            rows.append({"seed": seed, "pattern": coalition_label(members, names), "size": int(members.sum()),
                         "one_model": float((masked.pred[:, k] == y).mean()),
                         "per_subset": float((retrained.pred[:, k] == y).mean())})
    runs = pd.DataFrame(rows)
    out = []
    for (pattern, size), part in runs.groupby(["pattern", "size"], sort=False):
        diff = (part["one_model"] - part["per_subset"]).to_numpy()
        mean, lo, hi = t_interval(diff, level)
        out.append({"pattern": pattern, "size": size, "metric": "accuracy", "one_model": part["one_model"].mean(),
                    "per_subset": part["per_subset"].mean(), "difference": float(mean),
                    "difference_ci_lower": float(lo), "difference_ci_upper": float(hi), "n_seeds": len(part),
                    "level": level})
    return pd.DataFrame(out)

