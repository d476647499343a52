"""Conformal Shapley intervals per modality and modality selection with a guarantee.

Chandy et al., "Uncertainty-Aware Multimodal Learning via Conformal Shapley Intervals",
arXiv 2602.00171 (method note ``shared/methods/shapley.md``; interval statistics live in
:mod:`workbench.conformal`).

Players and values
    Players are the ``M`` modalities. The value of coalition ``S`` for sample ``i`` is the
    log-loss reduction over the empty coalition,
    ``val_i(S) = log p_S(y_i | x_i,S) - log prior(y_i)``, where the empty coalition
    predicts the class prior of the training labels. Dataset-level values are the means
    over samples (and accuracy / log loss of each coalition's predictor is reported).

Coalition predictors (``value_method``)
    ``retrain``  one model per coalition, trained on that coalition's modalities only
                 (the paper's estimand, the reference).
    ``masked``   one model trained with modality dropout (:mod:`workbench.modality_dropout`)
                 and evaluated with absent modalities masked (embedding zeroed, see
                 :mod:`workbench.models`). Fast; a different estimand (note section 5).
    Both go through :func:`coalition_values`, which a batched implementation can replace.

Shapley values
    Exact over all ``2^M`` coalitions (``M <= max_exact``, default 12):
    ``phi_ij = sum_{S not containing j} |S|!(M-|S|-1)!/M! [val_i(S+j) - val_i(S)]``,
    computed as one matrix product ``phi = V W``. Beyond that, permutation sampling
    (:func:`permutation_shapley`): ``phi_ij`` is the mean marginal contribution over
    ``K`` random orders, reported with its Monte-Carlo standard error ``sd/sqrt(K)``
    (CLT; the per-sample 95% error bound is ``1.96 * se``).

Intervals (see :mod:`workbench.conformal`)
    Marginal conformal interval per modality from the calibration Shapley values
    (Alg. 1 with the floor fix; optional Bonferroni over modalities); t-interval and
    one-sided t-test for the mean Shapley value; conditional intervals by linear quantile
    regression on ``n_pca`` PCA components of the full model's embeddings (Alg. 2, naive
    fit by default, Gibbs et al.'s augmented fit with ``augmented=True``).

Modality selection (note section 3)
    Per test point, ``S_q(x)`` = the ``q`` modalities with the largest conditional lower
    bound ``L_j(x)``; its prediction is the coalition predictor ``mu_S``. Compared with all
    modalities and with greedy forward selection on the calibration mean values.

Choices where the note is UNCONFIRMED: classification with log loss only; the splits are
the dataset's train/calib/test split (coalition models see only ``train``); the
conditional features are PCA of the concatenated embeddings of the full-coalition model
(fitted on the calibration split); selection ranks by the lower bound (the paper's rule,
not the draft code's upper bound) and always returns exactly ``q`` modalities.

Example
-------
>>> from workbench import load_dataset
>>> from workbench.shapley import conformal_shapley
>>> ds = load_dataset("synthetic-imbalance", n=400)
>>> res = conformal_shapley(ds, ds.split(seed=0), value_method="masked", epochs=3, progress=False)
>>> sorted(res.modalities["modality"])
['strong', 'weak']
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from workbench.conformal import conditional_interval, marginal_interval, mean_interval
from workbench.data import MultimodalDataset, Splits
from workbench.models import MultimodalModel
from workbench.progress import progress_bar
from workbench.results import Result
from workbench.trainer import TrainConfig, Trainer, predict_proba

VALUE_METHODS = ("retrain", "masked")
_EPS = 1e-12


# -- coalitions and exact Shapley ---------------------------------------------------------------
def all_coalitions(m: int) -> np.ndarray:
    """Boolean ``(2^m, m)`` matrix; row ``k`` holds the bits of ``k`` (row 0 = empty set)."""
    k = np.arange(2**m)[:, None]
    return ((k >> np.arange(m)[None, :]) & 1).astype(bool)


def coalition_label(members: np.ndarray, names: list[str]) -> str:
    """``"a+b"`` for a boolean membership row (``"(empty)"`` for none)."""
    chosen = [n for n, b in zip(names, members, strict=True) if b]
    return "+".join(chosen) if chosen else "(empty)"


def shapley_weights(m: int) -> np.ndarray:
    """``W`` of shape ``(2^m, m)`` with ``phi = V @ W`` for coalition values ``V (n, 2^m)``."""
    masks = all_coalitions(m)
    size = masks.sum(1)
    w = np.zeros((2**m, m))
    for j in range(m):
        with_j = masks[:, j]
        s_without = np.where(with_j, size - 1, size)  # |S| of the coalition without j
        weight = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in s_without])
        w[:, j] = np.where(with_j, weight, -weight)
    return w


def shapley_from_values(values: np.ndarray) -> np.ndarray:
    """Exact per-sample Shapley values from coalition values ``(n, 2^M)`` ordered as :func:`all_coalitions`.

    Examples
    --------
    >>> v = np.array([[0.0, 1.0, 2.0, 3.0]])   # additive game: phi = (1, 2)
    >>> shapley_from_values(v).round(12).tolist()
    [[1.0, 2.0]]
    """
    v = np.asarray(values, dtype=float)
    m = int(round(math.log2(v.shape[1])))
    if 2**m != v.shape[1]:
        raise ValueError(f"values need 2^M columns, got {v.shape[1]}")
    return v @ shapley_weights(m)


def sample_permutations(m: int, n_permutations: int, seed: int = 0) -> np.ndarray:
    """``(K, m)`` random orders of the players (antithetic pairs: each order and its reverse)."""
    rng = np.random.default_rng(seed)
    half = rng.permuted(np.tile(np.arange(m), ((n_permutations + 1) // 2, 1)), axis=1)
    return np.vstack([half, half[:, ::-1]])[:n_permutations]


def permutation_coalitions(perms: np.ndarray) -> np.ndarray:
    """The unique coalitions (boolean rows) visited by the prefixes of the orders ``perms``."""
    k, m = perms.shape
    rows = [np.zeros(m, bool)]
    for p in perms:
        cur = np.zeros(m, bool)
        for j in p:
            cur = cur.copy()
            cur[j] = True
            rows.append(cur)
    return np.unique(np.array(rows), axis=0)


def permutation_shapley(values: np.ndarray, coalitions: np.ndarray, perms: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo Shapley values and their standard errors from sampled orders.

    Parameters
    ----------
    values : array (n, K)
        Per-sample values of the coalitions in ``coalitions`` (rows, boolean ``(K, M)``),
        which must contain every prefix of every order (see :func:`permutation_coalitions`).
    perms : array (P, M)

    Returns
    -------
    phi, se : arrays (n, M); ``se`` is the CLT standard error ``sd / sqrt(P)``.
    """
    m = coalitions.shape[1]
    key = {tuple(r): i for i, r in enumerate(coalitions)}
    contrib = np.zeros((len(perms), values.shape[0], m))
    for p_i, p in enumerate(perms):
        cur = np.zeros(m, bool)
        prev = values[:, key[tuple(cur)]]
        for j in p:
            cur[j] = True
            now = values[:, key[tuple(cur)]]
            contrib[p_i, :, j] = now - prev
            prev = now
    se = contrib.std(0, ddof=1) / np.sqrt(len(perms)) if len(perms) > 1 else np.full(contrib.shape[1:], np.inf)
    return contrib.mean(0), se


# -- coalition predictors ---------------------------------------------------------------------
@dataclass
class CoalitionPredictions:
    """True-class log-probabilities and predictions of each coalition's predictor.

    ``logp[i, k]`` and ``pred[i, k]`` for sample ``idx[i]`` and coalition ``coalitions[k]``
    (boolean row over ``modalities``); the empty coalition predicts ``prior``.
    """

    idx: np.ndarray
    coalitions: np.ndarray
    modalities: list[str]
    logp: np.ndarray
    pred: np.ndarray
    prior: np.ndarray
    full_model: MultimodalModel | None = None

    def values(self) -> np.ndarray:
        """Per-sample coalition values ``val_i(S) = log p_S(y_i) - log prior(y_i)``."""
        empty = np.flatnonzero(~self.coalitions.any(1))
        return self.logp - self.logp[:, empty[:1]]


def class_prior(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies of the training labels (the empty coalition's predictor)."""
    counts = np.bincount(np.asarray(y_train), minlength=n_classes).astype(float)
    return np.clip(counts / counts.sum(), _EPS, None)


@torch.no_grad()
def _embeddings(model: MultimodalModel, ds: MultimodalDataset, idx: np.ndarray) -> dict[str, torch.Tensor]:
    """Unmasked per-modality embeddings, computed once and masked per coalition."""
    model.eval()
    device = next(model.parameters()).device
    sl = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    return model.encode({m: ds.modalities[m][sl].to(device) for m in model.modalities})


@torch.no_grad()
def _masked_probs(model: MultimodalModel, emb: dict[str, torch.Tensor], members: np.ndarray,
                  ds: MultimodalDataset, idx: np.ndarray) -> torch.Tensor:
    """Exactly ``model(x, mask)`` for the coalition ``members`` (and the dataset's own mask),
    reusing the encoders' output: masking only zeroes embeddings, so encoders run once."""
    sl = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    mask = {m: (ds.presence(m)[sl] & bool(b)).to(emb[m].device) for m, b in zip(model.modalities, members, strict=True)}
    masked = {m: h * mask[m].to(h.dtype).unsqueeze(1) for m, h in emb.items()}
    uni = {m: model.unimodal_heads[m](h) for m, h in masked.items()}
    return model.fuse(masked, uni, mask).float().softmax(1).cpu()


def _record(probs: torch.Tensor, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = probs.numpy()
    return np.log(np.clip(p[np.arange(len(y)), y], _EPS, None)), p.argmax(1)


def coalition_values(
    ds: MultimodalDataset, splits: Splits, coalitions: np.ndarray, *, method: str = "masked",
    model: MultimodalModel | None = None, config: TrainConfig | None = None,
    idx: np.ndarray | None = None, progress: bool = True, batched: bool = True,
) -> CoalitionPredictions:
    """Evaluate the predictor of every coalition on ``idx`` (default: calibration + test).

    Parameters
    ----------
    ds, splits : the dataset and its split; predictors are trained on ``splits.train`` only.
    coalitions : bool array (K, M) over ``ds.modality_names``.
    method : {"retrain", "masked"}
        ``retrain`` trains one model per non-empty coalition with ``config``; ``masked``
        evaluates ``model`` (trained with modality dropout when ``None``) under masks.
    model : MultimodalModel, optional
        The one model for ``masked``.
    config : TrainConfig, optional
        Training settings of the coalition models / the dropout model.
    batched : bool
        ``retrain`` only: train all coalition models at once as one stacked model
        (:func:`workbench.batched.train_coalitions`, the default) or one by one with the
        :class:`Trainer` (the same models up to float rounding; slower).

    Returns
    -------
    CoalitionPredictions

    Examples
    --------
    >>> from workbench import load_dataset
    >>> ds = load_dataset("synthetic-imbalance", n=300); sp = ds.split(seed=0)
    >>> cp = coalition_values(ds, sp, all_coalitions(2), method="retrain",
    ...                       config=TrainConfig(epochs=2, progress=False), progress=False)
    >>> cp.logp.shape
    (120, 4)
    """
    if method not in VALUE_METHODS:
        raise ValueError(f"unknown value_method {method!r}; choose one of {VALUE_METHODS}")
    names = ds.modality_names
    coalitions = np.asarray(coalitions, dtype=bool)
    if coalitions.ndim != 2 or coalitions.shape[1] != len(names):
        raise ValueError(f"coalitions must be a boolean (K, {len(names)}) matrix over modalities {names}")
    idx = np.concatenate([splits.calib, splits.test]) if idx is None else np.asarray(idx)
    y = ds.y.numpy()[idx]
    prior = class_prior(ds.y.numpy()[splits.train], ds.n_classes)
    config = config or TrainConfig(epochs=10, progress=False)
    logp = np.zeros((len(idx), len(coalitions)))
    pred = np.zeros((len(idx), len(coalitions)), dtype=int)
    if method == "masked" and model is None:
        model = train_dropout_model(ds, splits, config)
    emb = None
    if method == "retrain" and batched:
        return _retrain_batched(ds, splits, coalitions, idx, y, prior, config, progress)
    for k in progress_bar(range(len(coalitions)), enabled=progress, desc=f"coalitions ({method})"):
        members = coalitions[k]
        if not members.any():
            logp[:, k], pred[:, k] = np.log(prior[y]), int(prior.argmax())
            continue
        if method == "masked":
            emb = emb if emb is not None else _embeddings(model, ds, idx)
            logp[:, k], pred[:, k] = _record(_masked_probs(model, emb, members, ds, idx), y)
        else:
            sub = ds.select_modalities([n for n, b in zip(names, members, strict=True) if b])
            fitted = Trainer(dataclasses.replace(config, progress=False)).fit(sub, splits).model_
            logp[:, k], pred[:, k] = _record(predict_proba(fitted, sub, idx)[0], y)
            if members.all():
                model = fitted
    # the full-coalition model's embeddings feed the conditional features
    return CoalitionPredictions(idx, coalitions, names, logp, pred, prior, model)


def _retrain_batched(ds, splits, coalitions, idx, y, prior, config: TrainConfig, progress: bool) -> CoalitionPredictions:
    """All non-empty coalition models trained at once; absent modalities are masked."""
    from workbench.batched import train_coalitions

    names = ds.modality_names
    nonempty = [k for k in range(len(coalitions)) if coalitions[k].any()]
    members = [tuple(n for n, b in zip(names, coalitions[k], strict=True) if b) for k in nonempty]
    settings = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                if f.name not in ("epochs", "seed", "progress", "strategy", "strategy_params")}
    fit = train_coalitions(ds, splits, members, epochs=config.epochs, seed=config.seed, progress=progress, **settings)
    logp = np.zeros((len(idx), len(coalitions)))
    pred = np.zeros((len(idx), len(coalitions)), dtype=int)
    logp[:, :], pred[:, :] = np.log(prior[y])[:, None], int(prior.argmax())
    full_model = None
    for k, model, present in zip(nonempty, fit.models, fit.masks, strict=True):
        mask = {m: present[j].expand(len(idx)) for j, m in enumerate(names)}
        logp[:, k], pred[:, k] = _record(predict_proba(model, ds, idx, mask=mask)[0], y)
        if coalitions[k].all():
            full_model = model
    return CoalitionPredictions(idx, coalitions, names, logp, pred, prior, full_model)


def train_dropout_model(ds: MultimodalDataset, splits: Splits, config: TrainConfig | None = None,
                        **strategy_params) -> MultimodalModel:
    """One model trained with the ``modality_dropout`` strategy on ``splits.train``."""
    cfg = dataclasses.replace(config or TrainConfig(epochs=10, progress=False), strategy="modality_dropout",
                              strategy_params=dict(strategy_params))
    return Trainer(cfg).fit(ds, splits).model_


@torch.no_grad()
def embedding_features(model: MultimodalModel, ds: MultimodalDataset, idx: np.ndarray) -> np.ndarray:
    """Concatenated per-modality embeddings of the samples ``idx`` (the conditional features' input)."""
    emb = _embeddings(model, ds, idx)
    return torch.cat([emb[m].float() for m in model.modalities], 1).cpu().numpy()


def pca_features(train_features: np.ndarray, *others: np.ndarray, n_components: int = 4) -> list[np.ndarray]:
    """PCA components fitted on ``train_features`` and applied to it and to ``others``."""
    from sklearn.decomposition import PCA

    k = max(1, min(n_components, train_features.shape[1], train_features.shape[0] - 1))
    pca = PCA(n_components=k, random_state=0).fit(train_features)
    return [pca.transform(f) for f in (train_features, *others)]


# -- the result ---------------------------------------------------------------------------------
@dataclass
class ShapleyResult(Result):
    """Per-sample Shapley values with intervals, coalition values and modality selections.

    Tables
    ------
    values      one row per (sample, modality): ``sample, split, y, modality, phi, phi_se``
                and for test rows the marginal ``lower/upper`` and conditional
                ``cond_lower/cond_upper`` intervals with ``covered``/``cond_covered``.
    modalities  one row per modality: mean Shapley value with ``mean_lower/mean_upper``
                (t-interval), ``p_value`` (one-sided t-test), marginal ``lower/upper``,
                test ``coverage`` and ``coverage_lower/coverage_upper`` (Wilson).
    coalitions  one row per (coalition, split): ``value`` (mean log-loss reduction) with
                ``value_lower/value_upper``, ``accuracy``, ``log_loss``.
    selection   one row per (rule, q): test ``accuracy`` with ``accuracy_lower/upper``,
                ``log_loss``, mean ``n_used``.
    selected    one row per (test sample, q): the subset chosen by the conformal rule, whether
                its prediction is correct, and ``n_positive_lower`` = how many modalities
                have ``L_j(x) > 0`` (a significant contribution at this point).
    """

    values: pd.DataFrame
    modalities: pd.DataFrame
    coalitions: pd.DataFrame
    selection: pd.DataFrame
    selected: pd.DataFrame
    alpha: float = 0.1
    value_method: str = "masked"
    modality_names: list = field(default_factory=list)
    bonferroni: bool = False
    augmented: bool = False
    estimator: str = "exact"
    efficiency_max_error: float = 0.0
    dataset: str = ""
    n_calib: int = 0

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a notebook front end
        from IPython.display import display

        from widgets.panels.shapley import shapley_panel

        display(shapley_panel(self))

    def calib_values(self) -> pd.DataFrame:
        """Wide ``(calibration sample x modality)`` table of Shapley values."""
        part = self.values[self.values["split"] == "calib"]
        return part.pivot(index="sample", columns="modality", values="phi")[list(self.modality_names)]


def intervals_for_alpha(result: ShapleyResult, alpha: float, *, bonferroni: bool | None = None) -> pd.DataFrame:
    """Marginal intervals, mean intervals and test coverage of every modality at another ``alpha``.

    A pure function of the stored calibration/test Shapley values (what the panel's alpha
    control calls); same columns as ``result.modalities``.

    Examples
    --------
    >>> # intervals_for_alpha(res, 0.2)  -> narrower intervals than at alpha=0.05
    """
    bonf = result.bonferroni if bonferroni is None else bonferroni
    cal = result.calib_values()
    test = result.values[result.values["split"] == "test"]
    test_wide = test.pivot(index="sample", columns="modality", values="phi")[list(result.modality_names)]
    return modality_table(cal.to_numpy(), test_wide.to_numpy(), list(result.modality_names), alpha, bonf)


def _wilson(k: np.ndarray, n: int, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import norm

    z = norm.ppf(1 - alpha / 2)
    p = np.asarray(k, float) / max(n, 1)
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def modality_table(phi_cal: np.ndarray, phi_test: np.ndarray, names: list[str], alpha: float,
                   bonferroni: bool = False) -> pd.DataFrame:
    """Dataset-level table: mean interval, t-test, marginal interval and its test coverage."""
    lower, upper = marginal_interval(phi_cal, alpha, bonferroni=bonferroni)
    mi = mean_interval(phi_cal, alpha)
    covered = ((phi_test >= lower) & (phi_test <= upper)).sum(0)
    cov_lo, cov_hi = _wilson(covered, len(phi_test))
    return pd.DataFrame({
        "modality": names, "mean": mi["mean"], "mean_se": mi["se"], "mean_lower": mi["mean_lower"],
        "mean_upper": mi["mean_upper"], "p_value": mi["p_value"], "lower": lower, "upper": upper,
        "width": upper - lower, "coverage": covered / max(len(phi_test), 1),
        "coverage_lower": cov_lo, "coverage_upper": cov_hi, "alpha": alpha, "bonferroni": bonferroni,
        "n_calib": len(phi_cal),
    })


def _coalition_table(cp: CoalitionPredictions, split_of: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    vals = cp.values()
    rows = []
    for split in ("calib", "test"):
        sel = split_of == split
        mi = mean_interval(vals[sel], 0.05)
        for k, members in enumerate(cp.coalitions):
            rows.append({
                "coalition": coalition_label(members, cp.modalities), "size": int(members.sum()),
                "split": split, "value": mi["mean"][k], "value_lower": mi["mean_lower"][k],
                "value_upper": mi["mean_upper"][k], "accuracy": float((cp.pred[sel, k] == y[sel]).mean()),
                "log_loss": float(-cp.logp[sel, k].mean()),
                **{f"has_{m}": bool(b) for m, b in zip(cp.modalities, members, strict=True)},
            })
    return pd.DataFrame(rows)


# -- selection ------------------------------------------------------------------------------------
def select_top_q(lower_bounds: np.ndarray, q: int) -> np.ndarray:
    """Boolean ``(t, M)``: per row the ``q`` modalities with the largest lower bound ``L_j(x)``.

    Examples
    --------
    >>> select_top_q(np.array([[0.1, 0.5, -0.2]]), 2).tolist()
    [[True, True, False]]
    """
    order = np.argsort(-np.asarray(lower_bounds), axis=1, kind="stable")[:, :q]
    out = np.zeros(np.shape(lower_bounds), bool)
    np.put_along_axis(out, order, True, axis=1)
    return out


def greedy_forward(mean_values: dict[tuple, float], m: int, q: int) -> np.ndarray:
    """Greedy forward selection of ``q`` modalities maximising a dataset-level coalition value."""
    cur = np.zeros(m, bool)
    for _ in range(q):
        best = max((j for j in range(m) if not cur[j]),
                   key=lambda j: mean_values[tuple(np.where(np.arange(m) == j, True, cur))])
        cur[best] = True
    return cur


def _evaluate_subsets(cp: CoalitionPredictions, rows: np.ndarray, subsets: np.ndarray, y: np.ndarray):
    key = {tuple(r): k for k, r in enumerate(cp.coalitions)}
    cols = np.array([key[tuple(s)] for s in subsets])
    correct = cp.pred[rows, cols] == y
    return correct, -cp.logp[rows, cols]


def selection_tables(cp: CoalitionPredictions, split_of: np.ndarray, y: np.ndarray,
                     cond_lower: np.ndarray, test_ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy of the conformal rule, greedy forward selection and all modalities for each ``q``."""
    m = len(cp.modalities)
    test_rows = np.flatnonzero(split_of == "test")
    cal_mean = {tuple(r): v for r, v in zip(cp.coalitions, cp.values()[split_of == "calib"].mean(0), strict=True)}
    rows, chosen = [], []
    for q in range(1, m + 1):
        rules = {"conformal": select_top_q(cond_lower, q),
                 "greedy": np.tile(greedy_forward(cal_mean, m, q), (len(test_rows), 1)),
                 "all": np.ones((len(test_rows), m), bool)}
        for rule, subsets in rules.items():
            correct, loss = _evaluate_subsets(cp, test_rows, subsets, y[test_rows])
            lo, hi = _wilson(np.array([correct.sum()]), len(correct))
            rows.append({"rule": rule, "q": q, "accuracy": correct.mean(), "accuracy_lower": lo[0],
                         "accuracy_upper": hi[0], "log_loss": loss.mean(), "n_used": subsets.sum(1).mean(),
                         "n_test": len(correct)})
        correct, _ = _evaluate_subsets(cp, test_rows, rules["conformal"], y[test_rows])
        for i, s in enumerate(rules["conformal"]):
            chosen.append({"sample": test_ids[i], "q": q, "subset": coalition_label(s, cp.modalities),
                           "n_used": int(s.sum()), "correct": bool(correct[i]),
                           "n_positive_lower": int((cond_lower[i] > 0).sum())})
    return pd.DataFrame(rows), pd.DataFrame(chosen)


# -- the analysis -----------------------------------------------------------------------------------
def shapley_values(cp: CoalitionPredictions, perms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample Shapley values and Monte-Carlo standard errors (zero when exact)."""
    if perms is None:
        return shapley_from_values(cp.values()), np.zeros((len(cp.idx), len(cp.modalities)))
    return permutation_shapley(cp.values(), cp.coalitions, perms)


def conformal_shapley(
    ds: MultimodalDataset, splits: Splits, *, value_method: str = "masked", alpha: float = 0.1,
    model: MultimodalModel | None = None, config: TrainConfig | None = None, epochs: int = 10,
    seed: int = 0, bonferroni: bool = False, n_pca: int = 4, augmented: bool = False,
    max_exact: int = 12, n_permutations: int = 200, progress: bool = True,
) -> ShapleyResult:
    """Shapley values per modality with conformal intervals and modality selection.

    Parameters
    ----------
    ds, splits : dataset and its train / calibration / test split.
    value_method : {"masked", "retrain"}
        How coalition predictors are obtained (see the module docstring).
    alpha : float
        Miscoverage of the intervals.
    model : MultimodalModel, optional
        For ``masked``: evaluate this model under masks instead of training one with
        modality dropout.
    config : TrainConfig, optional
        Training settings (default: ``epochs``, ``seed``, no progress bars).
    bonferroni : bool
        Simultaneous marginal intervals over modalities (``alpha / M`` each).
    n_pca : int
        Number of PCA components of the embeddings used as conditional features.
    augmented : bool
        Gibbs et al.'s augmented conditional fit (slow; guarantee) instead of the naive fit.
    max_exact, n_permutations : int
        Exact enumeration up to ``max_exact`` modalities, else permutation sampling.

    Returns
    -------
    ShapleyResult
    """
    names = ds.modality_names
    m = len(names)
    config = config or TrainConfig(epochs=epochs, seed=seed, progress=False)
    perms = None if m <= max_exact else sample_permutations(m, n_permutations, seed)
    coalitions = all_coalitions(m) if perms is None else permutation_coalitions(perms)
    if len(splits.calib) < 2 or len(splits.test) < 1:
        raise ValueError(f"dataset {ds.name!r}: need >= 2 calibration and >= 1 test samples")
    cp = coalition_values(ds, splits, coalitions, method=value_method, model=model, config=config,
                          progress=progress)
    phi, se = shapley_values(cp, perms)
    split_of = np.r_[np.full(len(splits.calib), "calib"), np.full(len(splits.test), "test")].astype(object)
    y = ds.y.numpy()[cp.idx]
    cal, test = split_of == "calib", split_of == "test"
    full = np.flatnonzero(cp.coalitions.all(1))
    eff_err = float(np.abs(phi.sum(1) - cp.values()[:, full[0]]).max()) if len(full) and perms is None else float("nan")
    feats = embedding_features(cp.full_model, ds, cp.idx) if cp.full_model is not None else ds_features(ds, cp.idx)
    f_cal, f_test = pca_features(feats[cal], feats[test], n_components=n_pca)
    a_cond = alpha / m if bonferroni else alpha
    cond = [conditional_interval(f_cal, phi[cal, j], f_test, a_cond, augmented=augmented) for j in range(m)]
    cond_lo, cond_hi = np.column_stack([c[0] for c in cond]), np.column_stack([c[1] for c in cond])
    mods = modality_table(phi[cal], phi[test], names, alpha, bonferroni)
    values = _values_table(cp.idx, split_of, y, names, phi, se, mods, cond_lo, cond_hi)
    selection, selected = selection_tables(cp, split_of, y, cond_lo, cp.idx[test])
    return ShapleyResult(
        values=values, modalities=mods, coalitions=_coalition_table(cp, split_of, y), selection=selection,
        selected=selected, alpha=alpha, value_method=value_method, modality_names=names,
        bonferroni=bonferroni, augmented=augmented, estimator="exact" if perms is None else f"permutation({len(perms)})",
        efficiency_max_error=eff_err, dataset=ds.name, n_calib=int(cal.sum()),
    )


def ds_features(ds: MultimodalDataset, idx: np.ndarray) -> np.ndarray:
    """Flattened, concatenated raw inputs (fallback conditional features without a full model)."""
    sl = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    return torch.cat([ds.modalities[m][sl].reshape(len(sl), -1) for m in ds.modality_names], 1).numpy()


def _values_table(idx, split_of, y, names, phi, se, mods, cond_lo, cond_hi) -> pd.DataFrame:
    n, m = phi.shape
    test = split_of == "test"
    lower = np.tile(mods["lower"].to_numpy(), (n, 1))
    upper = np.tile(mods["upper"].to_numpy(), (n, 1))
    c_lo, c_hi = np.full((n, m), np.nan), np.full((n, m), np.nan)
    c_lo[test], c_hi[test] = cond_lo, cond_hi
    lower[~test], upper[~test] = np.nan, np.nan
    frame = pd.DataFrame({
        "sample": np.repeat(idx, m), "split": np.repeat(split_of, m).astype(str), "y": np.repeat(y, m),
        "modality": np.tile(names, n), "phi": phi.ravel(), "phi_se": se.ravel(),
        "lower": lower.ravel(), "upper": upper.ravel(), "cond_lower": c_lo.ravel(), "cond_upper": c_hi.ravel(),
    })
    frame["covered"] = (frame["phi"] >= frame["lower"]) & (frame["phi"] <= frame["upper"])
    frame["cond_covered"] = (frame["phi"] >= frame["cond_lower"]) & (frame["phi"] <= frame["cond_upper"])
    return frame


def demo_analysis(run) -> tuple[str, ShapleyResult]:
    """Masked-value Shapley intervals of the demo run's own model (no retraining; a few seconds)."""
    splits = run.splits
    if splits is None:  # a run loaded from disk: its splits are recorded in the predictions
        from workbench.runs import split_indices

        splits = Splits(**split_indices(run))
    if run.dataset is None:
        raise ValueError(f"run {run.run_id}: the Shapley demo needs run.dataset (train in this session)")
    return "shapley", conformal_shapley(run.dataset, splits, value_method="masked", model=run.load_model(),
                                        alpha=0.1, progress=False)
