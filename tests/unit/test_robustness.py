"""Robustness analysis: metrics equal scikit-learn's, known answers at the ends of each curve,
presence patterns, training with augmentation (and its exact resume), figures drawing the tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from workbench import load_dataset, train
from workbench.analyses.robustness import robustness_analysis
from workbench.stats.classification import (
    accuracy,
    bootstrap_scores,
    cohen_kappa,
    confusion,
    macro_f1,
)


@pytest.mark.parametrize("seed", range(5))
def test_confusion_metrics_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, 5, 200))  # class 4 only predicted
    c = confusion(y, pred, 5)
    assert float(accuracy(c)) == pytest.approx(accuracy_score(y, pred))
    assert float(macro_f1(c)) == pytest.approx(f1_score(y, pred, average="macro"))
    assert float(cohen_kappa(c)) == pytest.approx(cohen_kappa_score(y, pred))


def test_bootstrap_weights_give_resampled_confusions():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    idx = rng.integers(0, 50, 50)
    w = np.bincount(idx, minlength=50)[None, :].astype(float)
    assert np.array_equal(confusion(y, pred, 3, w)[0], confusion(y[idx], pred[idx], 3))
    scores = bootstrap_scores(y, pred, 3, np.ones((3, 50)))
    assert scores["accuracy"][0] == scores["accuracy"][1] == scores["accuracy"][2]


@pytest.fixture(scope="module")
def fitted():
    run = train(load_dataset("synthetic-imbalance", n=800), epochs=8, save=False, progress=False)
    return run


def test_curves_end_at_the_clean_model_and_at_the_other_modalities_alone(fitted):
    run = fitted
    res = robustness_analysis(run.model, run.dataset, run.splits.test, missing_rates=(0.0, 0.5, 1.0),
                              snr_db=(80.0, -10.0), n_boot=100, progress=False)
    c = res.curves.query("metric == 'accuracy'").set_index(["perturbation", "modality", "severity"])["value"]
    clean = run.metrics["test"]["fused"]
    assert c.loc[("missing", "strong", 0.0)] == pytest.approx(clean)
    assert c.loc[("noise", "strong", 80.0)] == pytest.approx(clean, abs=0.01)
    p = res.patterns.query("metric == 'accuracy'").set_index("pattern")["value"]
    assert p.loc["strong+weak"] == pytest.approx(clean)
    # the strong modality fully missing = the weak modality alone, exactly (the same mask)
    assert c.loc[("missing", "strong", 1.0)] == pytest.approx(p.loc["weak"])
    assert c.loc[("missing", "weak", 1.0)] == pytest.approx(p.loc["strong"])
    # known answer of synthetic-imbalance: losing the strong modality costs far more than losing the weak one
    assert c.loc[("missing", "strong", 1.0)] < c.loc[("missing", "weak", 1.0)] - 0.2
    assert c.loc[("noise", "strong", -10.0)] < c.loc[("noise", "strong", 80.0)] - 0.2
    lo, hi = c.loc[("missing", "strong", 1.0)], c.loc[("missing", "strong", 0.0)]
    assert lo - 0.05 <= c.loc[("missing", "strong", 0.5)] <= hi + 0.05
    row = res.curves.query("metric == 'kappa' and perturbation == 'missing' and severity == 0.0").iloc[0]
    assert row["value_ci_lower"] <= row["value"] <= row["value_ci_upper"]


def test_robustness_refuses_bad_arguments_before_work(fitted):
    run = fitted
    with pytest.raises(ValueError, match="modality 'audio' is not in dataset"):
        robustness_analysis(run.model, run.dataset, run.splits.test, modalities=["audio"])
    with pytest.raises(ValueError, match="missing_rates must be in"):
        robustness_analysis(run.model, run.dataset, run.splits.test, missing_rates=(1.5,))
    with pytest.raises(ValueError, match="snr_db must be finite"):
        robustness_analysis(run.model, run.dataset, run.splits.test, snr_db=(float("inf"),))


def test_training_with_augmentation_is_recorded_and_resumes_exactly(tmp_path, kill_after):
    from workbench.training.config import TrainConfig
    from workbench.training.trainer import Trainer

    ds = load_dataset("synthetic-imbalance", n=400)
    splits = ds.split(seed=0)
    cfg = TrainConfig(epochs=4, progress=False, augment=[{"kind": "missing", "rate": 0.4, "modalities": ["strong"]},
                                                         {"kind": "gaussian", "snr_db": 5.0}])
    full = Trainer(cfg).fit(ds, splits)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, callbacks=[kill_after(1)]).fit(ds, splits, checkpoint_path=tmp_path / "ck.pt")
    resumed = Trainer(cfg).fit(ds, splits, checkpoint_path=tmp_path / "ck.pt", resume=True)
    assert np.allclose(resumed.history["train_loss"], full.history["train_loss"], rtol=1e-6)
    for p, q in zip(full.model_.parameters(), resumed.model_.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
    plain = Trainer(TrainConfig(epochs=4, progress=False)).fit(ds, splits)
    assert not np.allclose(plain.history["train_loss"], full.history["train_loss"])
    run = train(ds, epochs=1, save=False, progress=False, augment=[{"kind": "missing", "rate": 0.3}])
    assert run.config["train"]["augment"][0]["kind"] == "missing"


def test_figures_draw_the_tables(fitted):
    from widgets.figures.robustness import report_figures

    run = fitted
    res = robustness_analysis(run.model, run.dataset, run.splits.test, missing_rates=(0.0, 0.5), snr_db=(10.0, 0.0),
                              n_boot=50, progress=False)
    figs = report_figures(res)
    assert len(figs) == 3 and all(f.layout.annotations for f in figs)
    strong = next(t for t in figs[0].data if t.name == "strong")
    want = res.curves.query("perturbation == 'missing' and modality == 'strong' and metric == 'accuracy'")
    assert list(strong.y) == list(want.sort_values("severity")["value"])
    heat = figs[2].data[0]
    p = res.patterns.query("metric == 'accuracy'").set_index("pattern")["value"]
    col = list(heat.x).index("accuracy")
    assert [row[col] for row in heat.z] == [p.loc[name] for name in heat.y]


def test_bootstrap_accuracy_interval_covers_the_true_accuracy():
    from workbench.stats.classification import bootstrap_weights

    covered = []
    for sim in range(200):
        rng = np.random.default_rng(sim)
        y = rng.integers(0, 3, 300)
        pred = np.where(rng.random(300) < 0.7, y, (y + 1) % 3)  # accuracy 0.7 in truth
        _, lo, hi = bootstrap_scores(y, pred, 3, bootstrap_weights(300, 300, rng))["accuracy"]
        covered.append(lo <= 0.7 <= hi)
    assert 0.91 <= np.mean(covered) <= 0.98


def test_core_sleep_models_are_scored_per_epoch_with_sequences_resampled():
    """A CoRe-Sleep model: clean accuracy equals predict_epochs' staging accuracy, an EEG-only pattern
    equals predicting with EOG hidden, everything missing scores 0 (no prediction counts as an error)."""
    from data_catalog.sleep import synthetic_psg
    from workbench.analyses.robustness import robustness_analysis
    from workbench.models.coresleep import CoReSleepModel
    from workbench.tasks.coresleep import predict_epochs, staging_metrics

    ds = synthetic_psg(n_nights=2, n_epochs=42, seq_len=21, seed=0)
    torch.manual_seed(0)
    model = CoReSleepModel(ds.modality_names, n_bins=128, n_frames=29, seq_len=21, n_classes=5, d_model=8, heads=2,
                           inner_layers=1, outer_layers=1, ff=16).eval()
    idx = np.arange(ds.n_samples)
    res = robustness_analysis(model, ds, idx, missing_rates=(0.0, 1.0), snr_db=(-20.0,), n_boot=50, progress=False)
    curves = res.curves.query("metric == 'accuracy'").set_index(["perturbation", "modality", "severity"])
    clean = staging_metrics(predict_epochs(model, ds, idx), ds.modality_names)
    assert curves.loc[("missing", "all", 0.0), "value"] == pytest.approx(clean["fused"])
    assert curves.loc[("missing", "all", 1.0), "value"] == 0.0
    eeg_only = staging_metrics(predict_epochs(model, ds, idx, mask={"eog": np.zeros(len(idx), bool)}),
                               ds.modality_names)
    pat = res.patterns.query("metric == 'accuracy'").set_index("pattern")
    assert pat.loc["eeg", "value"] == pytest.approx(eeg_only["fused"])
    assert curves.loc[("missing", "eog", 1.0), "value"] == pytest.approx(eeg_only["fused"])
    assert set(res.curves.query("perturbation == 'noise'")["modality"]) == {"eeg", "eog"}
    assert (res.curves["n"] == 4).all()  # sequences, the resampled unit
