"""Known answers of the finite-element modes (data_catalog.fem) against the analytic families of
data_catalog.vibraverse: Euler-Bernoulli bar, Kirchhoff plate, density scaling, rigid-body modes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skfem", reason="scikit-fem is not installed (pip install scikit-fem)")

from data_catalog.fem import (  # noqa: E402
    _assemble,
    _assemble_skfem,
    box_mesh,
    fem_modes,
    lshape_cells,
    voxel_mesh,
)
from data_catalog.vibraverse import MATERIALS, bar_frequencies, plate_frequencies  # noqa: E402

STEEL = MATERIALS["steel"]


def _steel(mesh, **kw):
    return fem_modes(mesh, rho=STEEL.rho, E=STEEL.E, nu=STEEL.nu, **kw)


def test_free_bar_first_bending_within_one_percent_of_euler_bernoulli_with_quadratic_hexahedra():
    # 0.2 m x 1 cm x 1 cm steel bar (L/h = 20), 16 x 1 x 1 cells
    mesh = box_mesh((0.2, 0.01, 0.01), (16, 1, 1))
    eb = bar_frequencies(0.2, 0.01, rho=STEEL.rho, E=STEEL.E, n_modes=1)[0]
    quad = _steel(mesh, n_modes=2, order=2)
    lin = _steel(mesh, n_modes=2, order=1)
    assert quad.n_rigid == 6 and np.all(np.abs(quad.rigid_freqs) < 1e-2 * quad.freqs[0])
    assert abs(quad.freqs[0] / eb - 1) < 0.01
    assert quad.freqs[1] == pytest.approx(quad.freqs[0], rel=1e-6)  # square section: two bending planes
    assert lin.freqs[0] / eb - 1 > 0.15  # trilinear hexahedra lock in bending (measured +32% here)


def test_simply_supported_plate_first_ten_ratios_within_two_percent():
    a, b, h = 0.3, 0.2, 0.006
    f, _ = plate_frequencies(a, b, h, rho=STEEL.rho, E=STEEL.E, nu=STEEL.nu)

    def sides(x):
        return np.isclose(x[0], 0) | np.isclose(x[0], a) | np.isclose(x[1], 0) | np.isclose(x[1], b)

    modes = _steel(box_mesh((a, b, h), (15, 10, 1)), n_modes=10, supported=sides)
    assert modes.n_rigid == 3  # w = 0 on the sides leaves the in-plane rigid motions
    assert np.max(np.abs((modes.freqs / modes.freqs[0]) / (f[:10] / f[0]) - 1)) < 0.02
    assert abs(modes.freqs[0] / f[0] - 1) < 0.02


def test_density_times_four_halves_every_frequency_and_modes_are_mass_normalized():
    mesh = voxel_mesh(lshape_cells(4, 1, cut=0.5), size=(0.2, 0.2, 0.02))
    m1 = fem_modes(mesh, rho=2700, E=7e10, nu=0.33, n_modes=5)
    m4 = fem_modes(mesh, rho=4 * 2700, E=7e10, nu=0.33, n_modes=5)
    np.testing.assert_allclose(m4.freqs, m1.freqs / 2, rtol=1e-8)
    _, _, M = _assemble(mesh, rho=2700, E=7e10, nu=0.33, order=2)
    np.testing.assert_allclose(np.einsum("ik,ik->k", m1.vectors, M @ m1.vectors), 1, rtol=1e-8)


def test_fast_assembly_equals_scikit_fem_assembly():
    mesh = voxel_mesh(lshape_cells(3, 1, cut=0.34), size=(0.09, 0.09, 0.01))
    for order in (1, 2):
        _, K, M = _assemble(mesh, rho=7850, E=2e11, nu=0.29, order=order)
        _, Kr, Mr = _assemble_skfem(mesh, rho=7850, E=2e11, nu=0.29, order=order)
        assert abs(K - Kr).max() < 1e-10 * abs(Kr).max()
        assert abs(M - Mr).max() < 1e-10 * abs(Mr).max()


def test_bad_input_is_refused_with_one_line_errors():
    mesh = box_mesh((0.1, 0.02, 0.02), (4, 1, 1))
    with pytest.raises(ValueError, match="nu"):
        fem_modes(mesh, rho=1000, E=1e9, nu=0.5)
    with pytest.raises(ValueError, match="rho"):
        fem_modes(mesh, rho=-1, E=1e9, nu=0.3)
    with pytest.raises(ValueError, match="n_modes"):
        fem_modes(mesh, rho=1000, E=1e9, nu=0.3, n_modes=0)
    with pytest.raises(ValueError, match="occupied"):
        voxel_mesh(np.zeros((2, 2, 1), bool), size=(0.1, 0.1, 0.01))
    disconnected = np.zeros((3, 1, 1), bool)
    disconnected[[0, 2]] = True
    with pytest.raises(ValueError, match="rigid-body"):
        fem_modes(voxel_mesh(disconnected, size=(0.3, 0.1, 0.1)), rho=1000, E=1e9, nu=0.3, n_modes=2)
