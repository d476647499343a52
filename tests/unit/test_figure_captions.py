"""Every figure of a run, gap, fairness and comparison result says under its plot what it shows
(sign convention, intervals, which way is good, the base rate); captions are escaped line by line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from widgets.figures import figures_for_result
from widgets.figures.fairness import direction
from widgets.figures.run import accuracy_figure, history_figure, runs_accuracy_figure
from widgets.text import CAPTION_NAME, add_caption, caption_text, escape_figure
from workbench.store.results import load_result

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout_run" / "results"


def _caption(fig) -> dict:
    found = [a for a in fig.layout.annotations if a.name == CAPTION_NAME]
    assert len(found) == 1, fig.layout.title.text
    return found[0]


def _below_plot(fig) -> None:
    ann = _caption(fig)
    assert (ann.yref, ann.y, ann.yanchor) == ("paper", 0, "top") and ann.yshift < 0
    lines = ann.text.count("<br>") + 1
    assert fig.layout.margin.b >= -ann.yshift + 15 * lines  # the margin holds every line


def test_gap_figures_state_the_sign_convention() -> None:
    gap = load_result(FIXTURE / "gap")
    figs = figures_for_result("gap", gap)
    assert len(figs) == 3
    for fig in figs:
        _below_plot(fig)
    hist, gmm, uni = (caption_text(f) for f in figs)
    assert "Gap = p_true of records minus p_true of imaging" in hist and "> 0: records is surer" in hist
    assert "π: share of samples" in hist and "μ: its mean gap" in hist
    assert "95% interval (" in gmm and "under-covers when the components overlap" in gmm
    assert "95% Wilson intervals" in uni and "higher is better" in uni


def test_fairness_figures_say_which_way_is_good() -> None:
    fair = load_result(FIXTURE / "fairness")
    figs = figures_for_result("fairness", fair)
    for fig in figs:
        _below_plot(fig)
    disparity = caption_text(figs[1])
    for metric, way in (("demographic_parity_difference", "lower"), ("worst_group_accuracy", "higher"),
                        ("es_auc", "higher"), ("accuracy_gap", "lower")):
        assert f"{metric}: {way}" in disparity
    assert "higher is better" in caption_text(figs[0]) and "95% percentile bootstrap" in caption_text(figs[0])
    assert [direction(m) for m in ("fpr_1", "selection_rate")] == ["lower is better",
                                                                   "neither direction is better by itself"]


def test_run_figures_quote_the_base_rate() -> None:
    acc = pd.DataFrame({"split": ["test"] * 3, "model": ["fused", "a", "b"], "accuracy": [0.8, 0.6, 0.5],
                        "n": [40] * 3, "kind": ["fused", "unimodal head", "unimodal head"], "measure": "accuracy"})
    fig = accuracy_figure(acc, base_rate=("healthy", 0.6))
    _below_plot(fig)
    text = caption_text(fig)
    assert "test split's 40 samples" in text and "majority class (healthy) scores 0.600" in text
    assert fig.layout.shapes[0].y0 == 0.6 and fig.layout.shapes[0].line.dash == "dash"
    assert "majority" not in caption_text(accuracy_figure(acc))
    hist = history_figure(pd.DataFrame({"epoch": [1, 2], "train_acc": [0.5, 0.6], "heldout_acc": [0.4, 0.5]}))
    assert "heldout_acc: the fused model on the held-out calibration split" in caption_text(hist)
    assert "higher is better" in caption_text(runs_accuracy_figure({"r1": acc}))


def test_comparison_figure_states_the_difference_direction() -> None:
    from workbench.analyses.compare import compare
    from workbench.store.runs import Run

    runs = []
    for strategy, accs in {"naive": [0.8, 0.9], "better": [0.85, 1.0]}.items():
        for seed, a in enumerate(accs):
            y = np.zeros(20, dtype=int)
            pred = (np.arange(20) >= round(a * 20)).astype(int)
            cfg = {"dataset": "toy", "dataset_params": {}, "train": {"strategy": strategy, "fusion": "concat",
                                                                      "epochs": 3, "seed": seed}}
            runs.append(Run(f"toy-{strategy}-s{seed}", cfg, pd.DataFrame({"epoch": [1]}),
                            pd.DataFrame({"sample": range(20), "y": y, "pred": pred, "split": "test"}),
                            {"test": {"fused": a, "n": 20}}))
    figs = figures_for_result("compare", compare(runs, baseline="naive"))
    for fig in figs:
        _below_plot(fig)
    text = caption_text(next(f for f in figs if f.layout.title.text.startswith("Paired difference")))
    assert "paired difference B − A" in text and "> 0: B scores higher" in text and "95% Student-t interval" in text


@pytest.mark.parametrize("name", ["<img src=x onerror=alert(1)>", "a&b"])
def test_caption_lines_are_escaped_and_keep_their_breaks(name: str) -> None:
    import plotly.graph_objects as go

    fig = escape_figure(add_caption(go.Figure(), f"modality {name} " + "word " * 40))
    text = _caption(fig).text
    assert "<img" not in text and text.count("<br>") >= 1
    assert escape_figure(go.Figure(fig)).layout.annotations[0].text == text  # idempotent
