"""Corruption models against known answers: rates, run lengths, SNR, the shape of each artefact,
true masks, seeding, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.corruptions import check_specs, corrupt, corrupt_batch, make_corruption
from workbench.data import MultimodalDataset


def _seq(n=400, t=1000, fs=100.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, t, generator=g)


def _present(n):
    return torch.ones(n, dtype=torch.bool)


def test_missing_completely_at_random_hits_the_rate_and_zero_fills():
    x = torch.randn(20000, 3)
    xc, present, hit = make_corruption({"kind": "missing", "rate": 0.25}).apply(x, _present(len(x)),
                                                                               np.random.default_rng(0))
    assert float((~present).float().mean()) == pytest.approx(0.25, abs=0.01)
    assert torch.equal(~present, hit) and float(xc[hit].abs().sum()) == 0 and torch.equal(xc[~hit], x[~hit])


@pytest.mark.parametrize("rate, length", [(0.2, 5.0), (0.5, 20.0)])
def test_missing_runs_have_the_rate_and_the_mean_run_length(rate, length):
    c = make_corruption({"kind": "missing_runs", "rate": rate, "mean_length": length})
    _, present, _ = c.apply(torch.randn(200_000, 1), _present(200_000), np.random.default_rng(1))
    miss = (~present).numpy().astype(int)
    assert miss.mean() == pytest.approx(rate, abs=0.02)
    edges = np.diff(np.r_[0, miss, 0])
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    assert runs.mean() == pytest.approx(length, rel=0.05)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_gaussian_noise_has_the_requested_snr(snr):
    x = _seq(200)
    xc, present, hit = make_corruption({"kind": "gaussian", "snr_db": snr}).apply(x, _present(200),
                                                                                 np.random.default_rng(2))
    measured = 10 * np.log10(float(x.pow(2).mean()) / float((xc - x).pow(2).mean()))
    assert measured == pytest.approx(snr, abs=0.1)
    assert bool(present.all()) and bool(hit.all())  # noisy, still present


def test_gaussian_noise_on_vectors_is_relative_to_each_features_spread():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(20000, 3, generator=g) * torch.tensor([0.01, 1.0, 100.0]) + torch.tensor([500.0, 0.0, -3.0])
    xc, _, _ = make_corruption({"kind": "gaussian", "snr_db": 10.0}).apply(x, _present(len(x)), np.random.default_rng(3))
    ratio = (xc - x).var(0) / x.var(0)
    assert np.allclose(ratio.numpy(), 0.1, rtol=0.05)  # 10 dB on every feature, whatever its offset


def test_electrode_pop_is_a_step_with_exponential_decay():
    x = torch.zeros(1, 1, 1000)
    x[0, 0, ::2] = 1.0  # std 0.5
    c = make_corruption({"kind": "electrode_pop", "rate": 1.0, "amplitude": 4.0, "tau": 0.3, "fs": 100.0})
    xc, present, _ = c.apply(x, _present(1), np.random.default_rng(3))
    art = (xc - x)[0, 0].numpy()
    t0 = int(np.flatnonzero(art)[0])
    assert art[t0] == pytest.approx(4.0 * 0.5, rel=0.05)  # amplitude x the sample's std
    t = np.arange(t0, 1000) - t0
    expected = art[t0] * np.exp(-(t / 100.0) / 0.3) / np.exp(-((t0 - t0) / 100.0) / 0.3)
    assert np.allclose(art[t0:], expected * art[t0] / expected[0], rtol=1e-4, atol=1e-6)
    assert np.all(art[:t0] == 0) and bool(present.all())


def test_mains_adds_a_line_at_its_frequency():
    x = _seq(20, t=2000)
    c = make_corruption({"kind": "mains", "rate": 1.0, "freq": 60.0, "amplitude": 3.0, "fs": 200.0})
    xc, _, _ = c.apply(x, _present(20), np.random.default_rng(4))
    spectrum = np.abs(np.fft.rfft((xc - x)[:, 0].numpy(), axis=1)).mean(0)
    freqs = np.fft.rfftfreq(2000, 1 / 200.0)
    assert freqs[spectrum.argmax()] == pytest.approx(60.0)


def test_motion_bursts_are_low_frequency_and_local():
    x = _seq(10, t=3000)
    c = make_corruption({"kind": "motion", "rate": 1.0, "duration": 2.0, "amplitude": 5.0, "fs": 100.0})
    xc, _, _ = c.apply(x, _present(10), np.random.default_rng(5))
    art = (xc - x)[:, 0].numpy()
    assert all(np.count_nonzero(a) <= 200 for a in art)
    power = np.abs(np.fft.rfft(art, axis=1)) ** 2
    freqs = np.fft.rfftfreq(3000, 1 / 100.0)
    assert power[:, freqs <= 6].sum() / power.sum() > 0.95


def test_flat_line_removes_the_information_and_the_true_mask_says_so():
    x = _seq(100)
    xc, present, hit = make_corruption({"kind": "flat_line", "rate": 0.5}).apply(x, _present(100),
                                                                                np.random.default_rng(6))
    assert torch.equal(~present, hit)
    assert float(xc[hit].std(-1).max()) == 0.0


def test_corrupt_dataset_is_seeded_records_its_specs_and_ands_the_existing_mask():
    n = 500
    ds = MultimodalDataset({"eeg": _seq(n, t=200), "v": torch.randn(n, 4)}, torch.zeros(n, dtype=torch.long),
                           mask={"v": torch.arange(n) % 2 == 0}, name="toy")
    specs = [{"kind": "missing", "rate": 0.3, "modalities": ["eeg"]}, {"kind": "gaussian", "snr_db": 5.0}]
    a, hits = corrupt(ds, specs, seed=7)
    b, _ = corrupt(ds, specs, seed=7)
    assert all(torch.equal(a.modalities[m], b.modalities[m]) for m in ds.modality_names)
    assert not bool(a.mask["v"][1::2].any())  # the dataset's own missing samples stay missing
    assert float((~a.mask["eeg"]).float().mean()) == pytest.approx(0.3, abs=0.05)
    assert a.ground_truth["corruptions"]["seed"] == 7 and a.ground_truth["corruptions"]["specs"][0]["rate"] == 0.3
    c, _ = corrupt(ds, specs, seed=7, idx=np.arange(100))
    assert bool(c.mask["eeg"][100:].all()) and torch.equal(c.modalities["eeg"][100:], ds.modalities["eeg"][100:])


def test_corrupt_batch_returns_mask_on_the_batch_device():
    x = {"a": torch.randn(64, 3)}
    out, mask = corrupt_batch(x, None, check_specs([{"kind": "missing", "rate": 0.5}]), np.random.default_rng(0))
    assert mask["a"].dtype == torch.bool and 10 < int((~mask["a"]).sum()) < 54
    assert float(out["a"][~mask["a"]].abs().sum()) == 0


@pytest.mark.parametrize("spec, message", [
    ({"kind": "explode"}, "unknown corruption kind 'explode'"),
    ({"kind": "missing", "rate": 1.5}, "rate must be in"),
    ({"kind": "gaussian", "snr": 3}, "unknown parameter 'snr'"),
    ({"kind": "gaussian", "snr_db": float("nan")}, "snr_db must be a finite number"),
    ({"kind": "mains", "freq": 80.0, "fs": 100.0}, "freq must be in"),
    ({"rate": 0.1}, "expected a dict with a 'kind'"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        make_corruption(spec)


def test_specs_are_checked_against_the_dataset_before_any_work():
    ds = MultimodalDataset({"v": torch.randn(10, 4)}, torch.zeros(10, dtype=torch.long), name="toy")
    with pytest.raises(ValueError, match="modality 'eeg' is not in dataset 'toy'"):
        check_specs([{"kind": "missing", "modalities": ["eeg"]}], ds)
    with pytest.raises(ValueError, match="needs a sequence modality"):
        check_specs([{"kind": "electrode_pop"}], ds)
