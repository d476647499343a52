"""Plain, UI-toolkit-free pieces shared by the JupyterLab panels and the served dashboard.

A run's one-line summary (as escaped HTML), a few sentences of what the run says (read off its
stored scores and results, :func:`run_takeaways`), its splits and epoch range, and its saved
results loaded without letting one bad result folder stop the others.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from widgets.registry import load_extensions
from widgets.text import escape
from workbench.store.results import Result, load_result
from workbench.store.runs import Run

SPLIT_ORDER = ("test", "calib", "train")


def run_summary_html(run: Run) -> str:
    """The run's dataset, fusion, strategy, seed, epochs and modalities as escaped HTML.

    Examples
    --------
    >>> from workbench.store.runs import Run
    >>> import pandas as pd
    >>> cfg = {"dataset": "d<x>", "train": {"fusion": "late", "strategy": "naive", "seed": 0},
    ...        "epochs_run": 2, "modalities": ["a", "b"], "created": "now"}
    >>> "d&lt;x&gt;" in run_summary_html(Run("r", cfg, pd.DataFrame(), pd.DataFrame(), {}))
    True
    """
    cfg = run.config
    train = cfg.get("train", {})
    items = [("run", run.run_id), ("dataset", cfg.get("dataset")), ("fusion", train.get("fusion")),
             ("strategy", train.get("strategy")), ("seed", train.get("seed")), ("epochs", cfg.get("epochs_run")),
             ("modalities", ", ".join(map(str, cfg.get("modalities", [])))), ("created", cfg.get("created"))]
    return " &middot; ".join(f"<b>{escape(k)}</b> {escape(v)}" for k, v in items)


RANKING_SETTINGS = {"transductive": "users trained on", "inductive": "new users folded in"}


def _ranking_sentence(part: pd.DataFrame, measure: str, split: str) -> str:
    """``NDCG@20 ... : A 0.300 for users trained on, 0.281 for new users folded in; B ...`` (ranking runs)."""
    by_domain: dict[str, list[str]] = {}
    for model, kind, value, n in zip(part["model"], part["kind"], part["accuracy"], part["n"], strict=True):
        domain = str(model).rsplit(" (", 1)[0]
        by_domain.setdefault(domain, []).append(f"{float(value):.3f} for {RANKING_SETTINGS[kind]} (n = {int(n)})")
    body = "; ".join(f"{d} {', '.join(v)}" for d, v in by_domain.items())
    return f"{measure} on the {split} split by domain: {body}."


def _modality_sentence(run: Run, split: str) -> str | None:
    acc = run.accuracy()
    part = acc[acc["split"] == split] if "split" in acc else acc.iloc[:0]
    if part.empty:
        return None
    measure = str(part["measure"].iloc[0]) if "measure" in part else "accuracy"
    if "kind" in part and set(part["kind"]) <= set(RANKING_SETTINGS):
        return _ranking_sentence(part, measure, split)
    fused = part[part["model"] == "fused"]
    uni = part[part["model"] != "fused"].sort_values("accuracy", ascending=False)
    text = (f"Fused {measure} on the {split} split: {float(fused['accuracy'].iloc[0]):.3f}" if len(fused)
            else f"{measure} on the {split} split")
    if len(uni):
        best, worst = uni.iloc[0], uni.iloc[-1]
        text += f"; best unimodal head {best['model']} {float(best['accuracy']):.3f}"
        if len(uni) > 1:
            text += f", worst {worst['model']} {float(worst['accuracy']):.3f}"
    base = base_rate(run, split)
    if base is not None and measure == "accuracy":
        label, rate = base
        text += f". Always predicting the majority class ({label}) scores {rate:.3f}"
        at_base = [str(m) for m, a in zip(part["model"], part["accuracy"], strict=True) if abs(float(a) - rate) < 1e-9]
        if at_base:
            text += f"; {', '.join(at_base)} score exactly that (no better than the base rate)"
    return text + "."


def score_heading(accuracy: pd.DataFrame) -> str:
    """A heading for a run's headline scores (``Run.accuracy()``): what is measured and over which models,
    as the task's score table names them.

    Examples
    --------
    >>> import pandas as pd
    >>> acc = pd.DataFrame({"model": ["A (transductive)", "A (inductive)"], "kind": ["transductive", "inductive"],
    ...                     "measure": ["NDCG@20 (mean over users)"] * 2})
    >>> score_heading(acc)
    'NDCG@20 (mean over users) by model: transductive, inductive'
    >>> score_heading(pd.DataFrame({"model": ["fused", "a"], "kind": ["fused", "unimodal head"]}))
    'Accuracy by model: fused, unimodal head'
    """
    measure = str(accuracy["measure"].iloc[0]) if "measure" in accuracy and len(accuracy) else "accuracy"
    kinds = list(dict.fromkeys(map(str, accuracy["kind"]))) if "kind" in accuracy else []
    label = measure[0].upper() + measure[1:]
    return f"{label} by model: {', '.join(kinds)}" if kinds else label


def base_rate(run: Run, split: str) -> tuple[str, float] | None:
    """The majority class of ``split`` and its share (what always predicting it scores); ``None``
    when the run has no class labels (alignment runs).

    Examples
    --------
    >>> import pandas as pd
    >>> from workbench.store.runs import Run
    >>> pred = pd.DataFrame({"split": ["test"] * 4, "y": [1, 1, 1, 0]})
    >>> base_rate(Run("r", {"classes": ["no", "yes"]}, pd.DataFrame(), pred, {}), "test")
    ('yes', 0.75)
    """
    pred = run.predictions
    if "y" not in pred or "split" not in pred:
        return None
    y = pred.loc[pred["split"] == split, "y"]
    if y.empty:
        return None
    counts = y.value_counts()
    classes = run.config.get("classes") or []
    label = counts.index[0]
    # predictions store class indices; the config names them
    name = classes[int(label)] if str(label).isdigit() and int(label) < len(classes) else label
    return str(name), float(counts.iloc[0] / len(y))


def _result_sentences(results: dict[str, Result | str]) -> list[str]:
    out = []
    for name, res in results.items():
        if isinstance(res, str):
            continue
        table = getattr(res, "modalities", None)
        if isinstance(table, pd.DataFrame) and {"modality", "mean", "mean_ci_lower", "mean_ci_upper"} <= set(table):
            out.extend(_shapley_sentences(name, res, table))
        summary = getattr(res, "summary", None)
        if isinstance(summary, pd.DataFrame) and {"pair", "epoch", "share_imbalanced"} <= set(summary) and len(summary):
            last = summary[summary["epoch"] == summary["epoch"].max()]
            parts = [f"{p} {s:.0%}" for p, s in zip(last["pair"], last["share_imbalanced"], strict=True)][:3]
            more = f" (and {len(last) - 3} more pairs)" if len(last) > 3 else ""
            out.append(f"{name}: share of samples in the imbalanced GMM component at epoch "
                       f"{int(last['epoch'].iloc[0])}: {', '.join(parts)}{more}.")
        disparities = getattr(res, "disparities", None)
        if isinstance(disparities, pd.DataFrame) and {"disparity", "domain", "k", "value_ci_lower"} <= set(disparities):
            out.extend(_ranking_gap_sentence(name, disparities))
        elif isinstance(disparities, pd.DataFrame) and {"attribute", "metric", "value"} <= set(disparities):
            gaps = disparities[disparities["metric"].astype(str).str.contains("gap|difference", regex=True)]
            if len(gaps):
                worst = gaps.loc[gaps["value"].abs().idxmax()]
                out.append(f"{name}: largest disparity {worst['metric']} over {worst['attribute']} = "
                           f"{float(worst['value']):.3f}.")
    return out


def _shapley_sentences(name: str, res: Result, table: pd.DataFrame) -> list[str]:
    """Which modalities' mean Shapley value is surely above 0, per domain when the table has domains
    (ranking: values in NDCG@K; classification: log-loss reduction in nats)."""
    level = float(table["level"].iloc[0]) if "level" in table and len(table) else 1 - float(res.alpha)
    ranking = "domain" in table and isinstance(getattr(res, "k", None), int)
    gain = f"raise NDCG@{res.k}" if ranking else "reduce the log-loss"
    out = []
    for domain, part in (table.groupby("domain", sort=True) if "domain" in table else [(None, table)]):
        ranked = part.sort_values("mean", ascending=False)
        sure = [str(m) for m, lo in zip(ranked["modality"], ranked["mean_ci_lower"], strict=True) if lo > 0]
        unsure = [str(m) for m, lo, hi in zip(ranked["modality"], ranked["mean_ci_lower"], ranked["mean_ci_upper"],
                                              strict=True) if lo <= 0 <= hi]
        where = f" in domain {domain}" if domain is not None else ""
        text = f"{name}: mean Shapley value{where} highest for {ranked['modality'].iloc[0]}"
        if sure:
            text += f"; {', '.join(sure)} {gain} (their {level:.0%} interval is above 0)"
        if unsure:
            text += f"; the interval of {', '.join(unsure)} includes 0"
        below = [str(m) for m, hi in zip(ranked["modality"], ranked["mean_ci_upper"], strict=True) if hi < 0]
        if below:
            text += f"; {', '.join(below)} do the opposite (interval below 0)"
        out.append(text + ".")
    return out


def _ranking_gap_sentence(name: str, disparities: pd.DataFrame) -> list[str]:
    """The largest max-min gap between user groups of a recommendation analysis, with its interval."""
    gaps = disparities[(disparities["disparity"] == "max_min_gap") & disparities["value"].notna()]
    if gaps.empty:
        return []
    g = gaps.loc[gaps["value"].idxmax()]
    metric = f"{'NDCG' if g['metric'] == 'ndcg' else 'Recall'}@{int(g['k'])}"
    level = float(g["level"]) if "level" in g else 0.95
    text = (f"{name}: largest gap between user groups: {metric} over {g['attribute']} in domain {g['domain']} "
            f"({g['setting']}) = {float(g['value']):.3f}, {level:.0%} interval [{float(g['value_ci_lower']):.3f}, "
            f"{float(g['value_ci_upper']):.3f}], worst group {g['worst_group']}")
    if pd.notna(g.get("p_value")):
        text += f", permutation p = {float(g['p_value']):.2f}"
    return [text + "."]


def run_takeaways(run: Run, results: dict[str, Result | str] | None = None, *, split: str = "test") -> list[str]:
    """A few sentences of what ``run`` says, read off its stored scores and results.

    Parameters
    ----------
    run : Run
    results : dict, optional
        The run's loaded results (:func:`load_run_results`); loaded when not given.
    split : str
        The split whose scores are quoted.

    Examples
    --------
    >>> import pandas as pd
    >>> from workbench.store.runs import Run
    >>> pred = pd.DataFrame({"split": ["test"] * 4, "y": [0, 0, 0, 1], "pred": [0, 0, 0, 0],
    ...                      "pred_a": [0, 0, 0, 0], "pred_b": [1, 1, 0, 1]})
    >>> run = Run("r", {"classes": ["no", "yes"], "modalities": ["a", "b"]}, pd.DataFrame(), pred, {})
    >>> print(run_takeaways(run, {})[0])
    Fused accuracy on the test split: 0.750; best unimodal head a 0.750, worst b 0.500. Always predicting the majority class (no) scores 0.750; fused, a score exactly that (no better than the base rate).
    """
    results = load_run_results(run) if results is None else results
    first = _modality_sentence(run, split)
    return ([first] if first else []) + _result_sentences(results)


def run_takeaways_html(run: Run, results: dict[str, Result | str] | None = None, *, split: str = "test") -> str:
    """:func:`run_takeaways` as an escaped HTML list under a "What this run says" heading ('' when none).

    Examples
    --------
    >>> import pandas as pd
    >>> from workbench.store.runs import Run
    >>> pred = pd.DataFrame({"split": ["test"], "y": [0], "pred": [0], "pred_<b>": [0]})
    >>> "&lt;b&gt;" in run_takeaways_html(Run("r", {"modalities": ["<b>"]}, pd.DataFrame(), pred, {}), {})
    True
    """
    items = "".join(f"<li>{escape(t)}</li>" for t in run_takeaways(run, results, split=split))
    return f"<div><b>What this run says</b><ul>{items}</ul></div>" if items else ""


def run_splits(run: Run) -> list[str]:
    """Splits present in the run's predictions, test first."""
    present = set(run.predictions["split"].unique()) if "split" in run.predictions else set()
    return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def epoch_bounds(run: Run) -> tuple[int, int]:
    """First and last epoch recorded in the run's history (``(0, 0)`` when empty)."""
    epochs = run.history["epoch"] if "epoch" in run.history else []
    return (int(min(epochs)), int(max(epochs))) if len(epochs) else (0, 0)


def load_run_results(run: Run, accept: Callable[[Path], bool] | None = None) -> dict[str, Result | str]:
    """Each saved result of ``run`` by name, or a one-line error message where it cannot be loaded.

    ``accept(folder)`` may refuse a result folder (e.g. one that resolves outside the runs folder).
    Extension modules (:func:`widgets.registry.load_extensions`) are imported first, so their
    results load.
    """
    load_extensions()
    out: dict[str, Result | str] = {}
    for name in run.result_names():
        folder = run.path / "results" / name
        if accept is not None and not accept(folder):
            out[name] = f"result {name!r} refused: {folder} resolves outside the runs folder"
            continue
        try:
            out[name] = load_result(folder)
        except (OSError, ValueError, TypeError, KeyError, ImportError) as exc:
            out[name] = f"result {name!r} cannot be loaded: {exc}"
    return out
