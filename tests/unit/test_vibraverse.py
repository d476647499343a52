"""Known answers of the VibraVerse generator (method note shared/methods/vibraverse.md, issue 20)."""

from __future__ import annotations

import numpy as np
import pytest

from data_catalog.vibraverse import (
    FS,
    MATERIALS,
    bar_frequencies,
    bar_mode_shape,
    log_mel,
    plate_frequencies,
    plate_mode_shape,
    rayleigh,
    render_modes,
    vibraverse,
)
from workbench import load_dataset

STEEL = {"rho": 7850.0, "E": 2.0e11, "nu": 0.29}


def test_plate_closed_form_and_note_example():
    f, mn = plate_frequencies(0.3, 0.2, 0.003, **STEEL)
    D = 2.0e11 * 0.003**3 / (12 * (1 - 0.29**2))
    f11 = np.pi / 2 * (1 / 0.3**2 + 1 / 0.2**2) * np.sqrt(D / (7850 * 0.003))
    assert f[0] == pytest.approx(f11, rel=1e-14)
    assert f[0] == pytest.approx(259.09, abs=0.01)  # the note: "f_11 ~ 259 Hz"
    # ratios depend on a/b only: f_mn / f_11 = (m^2/a^2 + n^2/b^2) / (1/a^2 + 1/b^2)
    expect = ((mn[:, 0] / 0.3) ** 2 + (mn[:, 1] / 0.2) ** 2) / (1 / 0.3**2 + 1 / 0.2**2)
    np.testing.assert_allclose(f / f[0], expect, rtol=1e-13)


def test_bar_roots_ratios_and_mode_shapes():
    roots = np.sqrt(bar_frequencies(1.0, 1.0, rho=12.0, E=4 * np.pi**2 * 144.0, n_modes=8))
    # with L = h = 1 and sqrt(E / 12 rho) = 2 pi, f_n = (beta_n L)^2, so roots are beta_n L
    assert np.all(np.abs(np.cos(roots[:5]) - 1 / np.cosh(roots[:5])) < 1e-12)  # cos(x) cosh(x) = 1
    f = bar_frequencies(0.3, 0.01, rho=7850, E=2.0e11)
    assert f[0] == pytest.approx(4.7300407**2 / (2 * np.pi * 0.09) * 0.01 * np.sqrt(2.0e11 / (12 * 7850)), rel=1e-7)
    assert f[1] / f[0] == pytest.approx((7.8532046 / 4.7300407) ** 2, rel=1e-7)
    # mass-orthonormal on a fine midpoint grid: int rho b h phi_i phi_j dx = delta_ij
    L, b, h, rho = 0.4, 0.02, 0.01, 2700.0
    x = (np.arange(40000) + 0.5) / 40000 * L
    phi = np.array([bar_mode_shape(x, k, L=L, b=b, h=h, rho=rho) for k in range(1, 9)])
    gram = rho * b * h * phi @ phi.T * (L / len(x))
    np.testing.assert_allclose(gram, np.eye(8), atol=1e-6)
    # free ends: the curvature (second difference) vanishes at x = 0
    e = 1e-5 * L
    curv = bar_mode_shape(np.array([0, e, 2 * e]), 3, L=L, b=b, h=h, rho=rho)
    assert abs(curv[0] - 2 * curv[1] + curv[2]) / e**2 < 1e-3 * abs(curv[0]) * (17.27 / L) ** 2


def test_plate_modes_are_mass_orthonormal():
    a, b, h, rho = 0.3, 0.2, 0.003, 7850.0
    g = (np.arange(300) + 0.5) / 300
    x, y = np.meshgrid(g * a, g * b, indexing="ij")
    p = np.array([plate_mode_shape(x, y, m, n, a=a, b=b, h=h, rho=rho).ravel() for m, n in [(1, 1), (2, 1), (1, 3)]])
    np.testing.assert_allclose(rho * h * p @ p.T * (a * b / x.size), np.eye(3), atol=1e-10)


def test_scaling_laws():
    f, _ = plate_frequencies(0.4, 0.25, 0.004, **STEEL)
    f4, _ = plate_frequencies(0.4, 0.25, 0.004, **{**STEEL, "rho": 4 * STEEL["rho"]})
    np.testing.assert_allclose(f4, f / 2, rtol=1e-14)
    fb = bar_frequencies(0.3, 0.01, rho=2700, E=7e10)
    np.testing.assert_allclose(bar_frequencies(0.3, 0.01, rho=4 * 2700, E=7e10), fb / 2, rtol=1e-14)
    for name, mat in MATERIALS.items():
        fm, _ = plate_frequencies(0.4, 0.25, 0.004, rho=mat.rho, E=mat.E, nu=mat.nu)
        np.testing.assert_allclose(fm / fm[0], f / f[0], rtol=1e-12, atol=0, err_msg=name)
        bm = bar_frequencies(0.3, 0.01, rho=mat.rho, E=mat.E)
        np.testing.assert_allclose(bm / bm[0], fb / fb[0], rtol=1e-12, atol=0, err_msg=name)


def test_hit_on_nodal_line_silences_even_m_modes():
    a, b, h, rho = 0.3, 0.2, 0.003, 7850.0
    _, mn = plate_frequencies(a, b, h, **STEEL)
    phi = plate_mode_shape(a / 2, 0.37 * b, mn[:, 0], mn[:, 1], a=a, b=b, h=h, rho=rho)
    even = mn[:, 0] % 2 == 0
    scale = 2 / np.sqrt(rho * h * a * b)
    assert np.abs(phi[even]).max() < 1e-12 * scale
    assert np.abs(phi[~even]).min() > 1e-3 * scale  # odd-m modes are heard (no other nodal line there)


def test_rayleigh_damping_formulas():
    xi, d, fd = rayleigh(np.array([100.0, 1000.0]), alpha=6.0, beta=1e-7)
    w = 2 * np.pi * np.array([100.0, 1000.0])
    np.testing.assert_allclose(d, 3.0 + 0.5e-7 * w**2, rtol=1e-14)
    np.testing.assert_allclose(xi, d / w, rtol=1e-14)  # xi = d / omega for Rayleigh damping
    np.testing.assert_allclose(fd, w * np.sqrt(1 - xi**2) / (2 * np.pi), rtol=1e-14)


@pytest.fixture(scope="module")
def rendered():
    return vibraverse(n=12, seed=3, keep_waveform=True, materials=["steel", "aluminium", "glass", "ceramic", "wood"])


def _resolvable(gt, i):
    """Modes whose peak and decay can be read off alone: >= 20 Hz from every other mode, >= 5% of
    the largest amplitude and a Lorentzian half-width under ~16 Hz (d < 100 /s)."""
    f = gt["freqs"][i]
    ok = ~np.isnan(f)
    f, d, a = f[ok], gt["decay"][i][ok], np.abs(gt["amps"][i][ok])
    sep = np.min(np.abs(f[:, None] - f[None, :]) + np.eye(len(f)) * 1e9, 1)
    sel = (sep > 20) & (a > 0.05 * a.max()) & (d < 100)
    return f[sel], d[sel]


def test_fft_peaks_at_analytic_frequencies_within_one_bin(rendered):
    gt = rendered.ground_truth
    errors = []
    for i in range(len(rendered.y)):
        if gt["objects"]["material"][i] == "wood":
            continue  # its modes are 10-60 Hz wide; the decay test below covers it
        spec = np.abs(np.fft.rfft(gt["waveform"][i]))  # 1 s at 22.05 kHz: 1 Hz bins
        for fi, _ in zip(*_resolvable(gt, i), strict=True):
            k = int(round(fi))
            errors.append(k - 3 + int(np.argmax(spec[k - 3:k + 4])) - fi)
    assert len(errors) >= 30
    assert np.abs(errors).max() <= 1.0


def test_decay_rates_from_log_envelope_within_5_percent(rendered):
    gt = rendered.ground_truth
    n_fft, hop = 2048, 256
    rel = []
    for i in range(len(rendered.y)):
        w = gt["waveform"][i]
        idx = np.arange(n_fft)[None] + hop * np.arange(1 + (len(w) - n_fft) // hop)[:, None]
        S = np.abs(np.fft.rfft(w[idx] * np.hanning(n_fft), axis=1))
        t = (np.arange(len(idx)) * hop + n_fft / 2) / FS
        for fi, di in zip(*_resolvable(gt, i), strict=True):
            mag = np.log(S[:, int(round(fi * n_fft / FS))])
            use = np.cumprod(mag > mag[0] - np.log(1e3)).astype(bool)  # the first 60 dB of decay
            rel.append(-np.polyfit(t[use], mag[use], 1)[0] / di - 1)
    assert len(rel) >= 30
    assert np.abs(rel).max() < 0.05


def test_single_mode_render_and_log_mel_peak():
    s = render_modes(np.array([1000.0]), np.array([5.0]), np.array([2.0]))
    t = np.arange(FS) / FS
    np.testing.assert_allclose(s, 2.0 * np.exp(-5 * t) * np.sin(2 * np.pi * 1000 * t), atol=1e-12)
    from data_catalog.vibraverse import mel_filterbank

    _, centres = mel_filterbank()
    S = log_mel(s)
    assert abs(centres[int(np.argmax(S[:, 0]))] - 1000) < 60  # mel bands near 1 kHz are ~ 100 Hz apart


def test_dataset_metadata_and_hit_factor():
    ds = vibraverse(n=40, seed=0)
    gt = ds.ground_truth["objects"]
    assert set(gt["family"]) == {"plate", "bar"} and ds.n_classes == 7
    assert (gt["n_audible"] >= 3).all()
    f = ds.ground_truth["freqs"]
    assert np.nanmin(f) > 20 and np.nanmax(f) < FS / 2
    for mat, rows in gt.groupby("material"):
        nominal = MATERIALS[mat]
        assert np.all(np.abs(rows["rho"] / nominal.rho - 1) <= 0.1 + 1e-12)
        assert np.all(np.abs(rows["E"] / nominal.E - 1) <= 0.1 + 1e-12)
    # the stored f1 is the closed form of the stored constants
    plate = gt[gt["family"] == "plate"].iloc[0]
    fp, _ = plate_frequencies(plate["length"], plate["width"], plate["h"], rho=plate["rho"], E=plate["E"], nu=plate["nu"])
    assert plate["f1"] == pytest.approx(fp[fp > 20][0], rel=1e-12)
    fixed = vibraverse(n=40, seed=0, hit_position=False).ground_truth["objects"]
    np.testing.assert_allclose(fixed["hit_x"] / fixed["length"], 0.37, rtol=1e-12)
    assert (gt["hit_x"] / gt["length"]).std() > 0.1


def test_seeding_and_catalog():
    a, b = vibraverse(n=10, seed=5), vibraverse(n=10, seed=5)
    for m in a.modalities:
        assert torch_equal(a.modalities[m], b.modalities[m])
    assert not torch_equal(a.modalities["sound"], vibraverse(n=10, seed=6).modalities["sound"])
    ds = load_dataset("vibraverse", n=10, seed=5)
    assert ds.name == "vibraverse" and torch_equal(ds.modalities["sound"], a.modalities["sound"])
    assert tuple(ds.modalities["sound"].shape) == (10, 64, 42) and tuple(ds.modalities["image"].shape) == (10, 2, 32, 32)


def torch_equal(x, y) -> bool:
    return bool((x == y).all())


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"n": 0}, "n must"), ({"families": ["sphere"]}, "families"), ({"materials": ["gold"]}, "materials"),
    ({"jitter": 0.7}, "jitter"), ({"duration": 0.01}, "duration"), ({"n_modes": 0}, "n_modes"),
])
def test_bad_parameters_one_line_errors(kwargs, word):
    with pytest.raises(ValueError, match=word) as err:
        vibraverse(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_physics_parameters():
    with pytest.raises(ValueError, match="nu must"):
        plate_frequencies(0.3, 0.2, 0.003, rho=7850, E=2e11, nu=0.6)
    with pytest.raises(ValueError, match="fs=256 leaves"):
        vibraverse(n=2, fs=256, duration=4.0, families=["bar"], materials=["steel"])
    with pytest.raises(ValueError, match="rho must"):
        bar_frequencies(0.3, 0.01, rho=-1.0, E=2e11)


# -- the membrane family (fixed rectangular membrane, tension from an equibiaxial pre-strain) -------------
def test_membrane_family_ground_truth_is_the_closed_form():
    from data_catalog.vibraverse import MEMBRANE_STRAIN, membrane_frequencies, membrane_mode_shape

    ds = vibraverse(n=12, seed=4, families=["membrane"])
    gt = ds.ground_truth
    obj = gt["objects"]
    assert (obj["family"] == "membrane").all() and tuple(ds.modalities["shape"].shape) == (12, 6)
    assert bool((ds.modalities["shape"][:, 2] == 1).all())  # plate, bar, membrane one-hot + 3 log dims
    strain = obj["tension"] * (1 - obj["nu"]) / (obj["E"] * obj["h"])  # T = E eps h / (1 - nu)
    assert strain.between(*MEMBRANE_STRAIN).all()
    for i, o in obj.iterrows():
        f, mn = membrane_frequencies(o["length"], o["width"], tension=o["tension"], sigma=o["rho"] * o["h"])
        k = int(o["n_audible"])
        audible = f > 20
        np.testing.assert_allclose(gt["freqs"][i, :k], f[audible][:k], rtol=1e-12)
        phi = membrane_mode_shape(o["hit_x"], o["hit_y"], mn[audible][:k, 0], mn[audible][:k, 1], a=o["length"],
                                  b=o["width"], sigma=o["rho"] * o["h"])
        np.testing.assert_allclose(gt["phi_hit"][i, :k], phi, rtol=1e-10)


def test_membrane_material_scales_frequencies_and_leaves_ratios():
    # same seed, one material each, no jitter: the same geometry and strain, another material
    steel, wood = (vibraverse(n=6, seed=2, families=["membrane"], materials=[m], jitter=0.0).ground_truth
                   for m in ("steel", "wood"))
    fs, fw = steel["freqs"], wood["freqs"]
    np.testing.assert_allclose(steel["objects"]["length"], wood["objects"]["length"], rtol=0)
    np.testing.assert_allclose(fs / fs[:, :1], fw / fw[:, :1], rtol=1e-12)
    s, w = MATERIALS["steel"], MATERIALS["wood"]
    # c = sqrt(E eps / ((1 - nu) rho)): the material enters only through this factor
    expect = np.sqrt(s.E / ((1 - s.nu) * s.rho) / (w.E / ((1 - w.nu) * w.rho)))
    np.testing.assert_allclose(fs[:, 0] / fw[:, 0], expect, rtol=1e-12)
    from data_catalog.vibraverse import membrane_frequencies, plate_frequencies

    o = steel["objects"].iloc[0]
    f1, _ = membrane_frequencies(o["length"], o["width"], tension=o["tension"], sigma=o["rho"] * o["h"])
    f4, _ = membrane_frequencies(o["length"], o["width"], tension=o["tension"], sigma=4 * o["rho"] * o["h"])
    np.testing.assert_allclose(f4, f1 / 2, rtol=1e-14)  # density x 4 halves every frequency
    # the membrane's ratios are the square roots of the plate's of the same a x b
    fp, mnp = plate_frequencies(o["length"], o["width"], 0.003, rho=s.rho, E=s.E, nu=s.nu)
    fm, mnm = membrane_frequencies(o["length"], o["width"], tension=1.0, sigma=1.0)
    assert np.array_equal(mnp, mnm)
    np.testing.assert_allclose((fm / fm[0]) ** 2, fp / fp[0], rtol=1e-12)


def test_membrane_fft_peaks_within_one_bin():
    ds = vibraverse(n=8, seed=6, families=["membrane"], materials=["steel", "aluminium", "glass"], keep_waveform=True)
    gt = ds.ground_truth
    errors = []
    for i in range(len(ds.y)):
        spec = np.abs(np.fft.rfft(gt["waveform"][i]))
        for fi, _ in zip(*_resolvable(gt, i), strict=True):
            k = int(round(fi))
            errors.append(k - 3 + int(np.argmax(spec[k - 3:k + 4])) - fi)
    assert len(errors) >= 20
    assert np.abs(errors).max() <= 1.0
