"""FEM objects in the VibraVerse generator (issue 20): equal to a direct finite-element solve of the
drawn object, exact rescaling by material and length, seeded generation, modality shapes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skfem", reason="scikit-fem is not installed (pip install scikit-fem)")

from data_catalog.fem import box_mesh, fem_modes, fem_sound_modes  # noqa: E402
from data_catalog.vibraverse import FEM_TEMPLATES, fem_object_modes, vibraverse  # noqa: E402


@pytest.fixture(scope="module")
def boxes():
    return vibraverse(n=8, seed=2, families=["box"], materials=["steel", "aluminium"])


def test_fem_box_in_generator_equals_direct_solve(boxes):
    gt = boxes.ground_truth
    objects = gt["objects"]
    for i in range(3):
        o = objects.iloc[i]
        cells = FEM_TEMPLATES["box"][o["template"]][3]
        direct = fem_modes(box_mesh((o["length"], o["width"], o["h"]), cells), rho=o["rho"], E=o["E"], nu=o["nu"],
                           n_modes=24)
        k = int(o["n_audible"])
        audible = direct.freqs[(direct.freqs > 20) & (direct.freqs < 11025)][:k]
        np.testing.assert_allclose(gt["freqs"][i, :k], audible, rtol=1e-7)
        _, phi, vertex = fem_sound_modes(direct, hit=(o["hit_x"], o["hit_y"]))
        assert direct.mesh.p[0, vertex] == pytest.approx(o["hit_x"], rel=1e-9)
        sel = (direct.freqs > 20) & (direct.freqs < 11025)
        # eigenvector signs are arbitrary, and so is the basis of a degenerate eigenspace (square
        # templates); the magnitude at the struck vertex of a simple mode is not
        f = gt["freqs"][i, :k]
        simple = np.min(np.abs(f[:, None] / f[None, :] - 1) + np.eye(k), 1) > 1e-6
        np.testing.assert_allclose(np.abs(gt["phi_hit"][i, :k])[simple], np.abs(phi[sel][:k])[simple], rtol=1e-5,
                                   atol=1e-7 * np.abs(phi).max())  # modes with a node there: ~0
        assert o["f1"] == pytest.approx(audible[0], rel=1e-7)


def test_material_and_length_rescaling_is_exact():
    ref, _, _ = fem_object_modes("lshape", 0, "glass", length=0.3, rho=2600, E=6.2e10, hit=(0.1, 0.1), n_modes=8)
    f, _, _ = fem_object_modes("lshape", 0, "glass", length=0.45, rho=2600 * 1.08, E=6.2e10 * 0.93, hit=(0.1, 0.1),
                               n_modes=8)
    np.testing.assert_allclose(f / f[0], ref / ref[0], rtol=1e-12, atol=0)  # ratios unchanged
    np.testing.assert_allclose(f, ref * (0.3 / 0.45) * np.sqrt(0.93 / 1.08), rtol=1e-12)
    f4, _, _ = fem_object_modes("lshape", 0, "glass", length=0.3, rho=4 * 2600, E=6.2e10, hit=(0.1, 0.1), n_modes=8)
    np.testing.assert_allclose(f4, ref / 2, rtol=1e-12)  # density x 4 halves every frequency


def test_fem_generation_is_seeded_and_keeps_modality_shapes(boxes):
    again = vibraverse(n=8, seed=2, families=["box"], materials=["steel", "aluminium"])
    for m in boxes.modalities:
        assert bool((boxes.modalities[m] == again.modalities[m]).all())
    other = vibraverse(n=8, seed=3, families=["box"], materials=["steel", "aluminium"])
    assert not bool((boxes.modalities["sound"] == other.modalities["sound"]).all())
    assert tuple(boxes.modalities["image"].shape) == (8, 2, 32, 32)
    assert tuple(boxes.modalities["sound"].shape) == (8, 64, 42)
    assert tuple(boxes.modalities["shape"].shape) == (8, 6)  # plate, bar, box one-hot + 3 log dims
    assert bool((boxes.modalities["shape"][:, 2] == 1).all())
    objects = boxes.ground_truth["objects"]
    assert (objects["family"] == "box").all() and objects["template"].between(0, 2).all()
    # FEM objects keep the nominal Poisson ratio (it does not scale out of the cached solve)
    assert np.allclose(objects["nu"], np.where(objects["material"] == "steel", 0.29, 0.33))
    # the height map shows thickness / 15 mm inside the footprint, the marker peaks at the hit
    img = boxes.modalities["image"][0].numpy()
    assert img[0].max() == pytest.approx(objects["h"][0] / 0.015, rel=1e-6)
    assert img[1].max() > 0.5


def test_membrane_ratios_mass_normalization_and_nodal_line():
    from data_catalog.vibraverse import membrane_frequencies, membrane_mode_shape

    a, b, T, sigma = 0.4, 0.25, 900.0, 0.3
    f, mn = membrane_frequencies(a, b, tension=T, sigma=sigma)
    c = np.sqrt(T / sigma)
    assert f[0] == pytest.approx(c / 2 * np.sqrt(1 / a**2 + 1 / b**2), rel=1e-14)
    # ratios depend on a/b only, not on the tension or the density; T x 4 doubles every frequency
    f2, _ = membrane_frequencies(a, b, tension=4 * T, sigma=7 * sigma)
    np.testing.assert_allclose(f2 / f2[0], f / f[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(membrane_frequencies(a, b, tension=4 * T, sigma=sigma)[0], 2 * f, rtol=1e-14)
    np.testing.assert_allclose(f / f[0], np.sqrt((mn[:, 0] / a) ** 2 + (mn[:, 1] / b) ** 2)
                               / np.sqrt(1 / a**2 + 1 / b**2), rtol=1e-13)
    g = (np.arange(200) + 0.5) / 200
    x, y = np.meshgrid(g * a, g * b, indexing="ij")
    p = np.array([membrane_mode_shape(x, y, m, n, a=a, b=b, sigma=sigma).ravel() for m, n in [(1, 1), (2, 1), (1, 2)]])
    np.testing.assert_allclose(sigma * p @ p.T * (a * b / x.size), np.eye(3), atol=1e-10)
    phi = membrane_mode_shape(a / 2, 0.37 * b, mn[:, 0], mn[:, 1], a=a, b=b, sigma=sigma)
    even = mn[:, 0] % 2 == 0
    assert np.abs(phi[even]).max() < 1e-12 * 2 / np.sqrt(sigma * a * b)  # hit on x = a/2: even m silent
    assert np.abs(phi[~even]).min() > 1e-3 * 2 / np.sqrt(sigma * a * b)
