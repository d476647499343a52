"""VibraVerse-style impact sounds from exact modal analysis (VibraVerse / CLASP, arXiv 2511.20422).

The causal chain geometry -> material (rho, E, nu) -> modes (omega_i, phi_i) -> impact sound is
solved in closed form for two shape families (method note ``shared/methods/vibraverse.md``):

* simply supported rectangular Kirchhoff plate ``a x b x h``:
  ``omega_mn = pi^2 [(m/a)^2 + (n/b)^2] sqrt(D / (rho h))``, ``D = E h^3 / (12 (1 - nu^2))``,
  ``phi_mn = 2 / sqrt(rho h a b) sin(m pi x / a) sin(n pi y / b)`` (mass-normalized);
* free-free Euler-Bernoulli bar ``L`` with cross-section ``b x h`` (bending in ``h``):
  ``f_n = (beta_n L)^2 / (2 pi L^2) h sqrt(E / (12 rho))``,
  ``phi_n = [cosh bx + cos bx - sigma_n (sinh bx + sin bx)] / sqrt(rho b h L)``.

and, as the family ``"membrane"``, a fixed (clamped-edge) rectangular membrane ``a x b``, a sheet of the
material of thickness ``h`` pre-stretched equibiaxially by a strain ``eps`` (log-uniform in 1e-4..1e-3):
tension per unit edge length ``T = E eps h / (1 - nu)`` (N/m), areal density ``sigma = rho h``,
``f_mn = (c / 2) sqrt((m/a)^2 + (n/b)^2)`` with ``c = sqrt(T / sigma)``,
``phi_mn = 2 / sqrt(sigma a b) sin(m pi x / a) sin(n pi y / b)``. Its ratios ``f_mn / f_11`` depend
only on ``a / b`` (they are the square roots of the plate's), and it is damped by the material's
Rayleigh constants like the solids (an assumption: a real membrane loses most to the air).

Rayleigh damping ``C = alpha M + beta K`` gives the decay rate ``d_i = alpha/2 + beta omega_i^2/2``,
the ratio ``xi_i = alpha/(2 omega_i) + beta omega_i / 2`` and ``omega_d = omega_i sqrt(1 - xi_i^2)``.
An impulse ``J`` at ``p`` heard with listener gain ``g`` is
``s(t) = sum_i g J phi_i(p) omega_i exp(-d_i t) sin(omega_d,i t)`` over the modes with
``20 Hz < f_i < min(20 kHz, fs/2)`` and ``xi_i < 1``, rendered at 22.05 kHz and peak-normalized
(the peak is kept in ``ground_truth``). Hit position is a switchable factor (``hit_position``):
on, the hit point is uniform on the object (away from the edges); off, every object is struck
at the same relative point.

General solids by finite elements (``families`` ``"box"``, ``"lshape"``, ``"holed_plate"``,
``"ball"``; :mod:`data_catalog.fem`, quadratic hexahedra, free objects): each family has a few
fixed shape templates (:data:`FEM_TEMPLATES`: aspect, thickness ratio, cut or hole share, coarse
cell counts) drawn uniformly and scaled by a continuous length. The eigen-solve is done once per
(template, material) at the reference length and nominal rho, E and cached; an object of length
``L`` and jittered ``rho, E`` gets ``f = f_ref (L_ref / L) sqrt((E / E_0) / (rho / rho_0))`` and
``phi = phi_ref / sqrt((rho / rho_0) (L / L_ref)^3)``, which is exact for linear elasticity at fixed
``nu`` (``K`` scales with ``E L``, ``M`` with ``rho L^3``). Poisson's ratio does not scale out (it
changes ``K`` non-proportionally), so **FEM objects keep the material's nominal nu** (the jitter is
drawn and discarded, so the random stream is that of the analytic objects); the stored ``nu`` is the
one used. The ground truth of a FEM object is the modes of its coarse discrete model (not of the
continuum: the coarse meshes are a few percent stiff). Degenerate modes (the ball's) have an
arbitrary basis inside their eigenspace, so their individual ``phi_i(p)`` are those of the cached
solve. The hit is on the top face (the nearest top vertex to the drawn point, stored as the hit).

Modalities of :func:`vibraverse`: ``shape`` (parameter vector: family one-hot and the log
dimensions), ``image`` (2 x 32 x 32: a top-view height map in a fixed 0.6 m window and a
Gaussian marker at the hit point), ``sound`` (log-mel spectrogram, mels x frames). Label:
material. Metadata (``ground_truth``): per-object material constants, dimensions, hit point,
gain, and the modal frequencies, decay rates and ``phi_i(p)`` of every rendered mode.

Example
-------
>>> ds = vibraverse(n=8, seed=0)
>>> ds.modality_names, tuple(ds.modalities["sound"].shape[1:]), ds.classes[0]
(['shape', 'image', 'sound'], (64, 42), 'ceramic')
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.data import MultimodalDataset

__all__ = ["FAMILIES", "FEM_TEMPLATES", "FS", "MATERIALS", "Material", "bar_frequencies", "bar_mode_shape", "log_mel",
           "membrane_frequencies", "membrane_mode_shape", "membrane_tension", "mel_filterbank", "plate_frequencies",
           "plate_mode_shape", "rayleigh", "render_modes", "vibraverse"]

FS = 22050  # Hz, the note's sampling rate
AUDIBLE = (20.0, 20000.0)


@dataclass(frozen=True)
class Material:
    """Nominal material constants: density (kg/m^3), Young's modulus (Pa), Poisson's ratio and
    Rayleigh damping ``alpha`` (1/s) and ``beta`` (s)."""

    rho: float
    E: float
    nu: float
    alpha: float
    beta: float


# KleinPAT Table 4 (ceramic, glass, wood, plastic); steel, aluminium and polycarbonate with the
# note's damping values, which are UNCONFIRMED (no source gives them)
MATERIALS: dict[str, Material] = {
    "ceramic": Material(2700, 7.2e10, 0.19, 6.0, 1e-7),
    "glass": Material(2600, 6.2e10, 0.20, 1.0, 1e-7),
    "wood": Material(750, 1.1e10, 0.25, 60.0, 2e-6),
    "plastic": Material(1070, 1.4e9, 0.35, 30.0, 1e-6),
    "steel": Material(7850, 2.0e11, 0.29, 5.0, 3e-8),
    "aluminium": Material(2700, 6.9e10, 0.33, 5.0, 3e-8),
    "polycarbonate": Material(1190, 2.4e9, 0.37, 0.5, 4e-7),
}

# free-free beta_n L: the first five roots of cos(x) cosh(x) = 1, then (2n + 1) pi / 2
_BAR_ROOTS = (4.730040744862704, 7.853204624095838, 10.995607838001671, 14.137165491257464, 17.27875965739948)

# sampling ranges (m), chosen so every material leaves >= 3 bending modes in the audible band
PLATE_A, PLATE_ASPECT, PLATE_H = (0.2, 0.6), (0.5, 1.0), (1.5e-3, 6e-3)
BAR_L, BAR_B, BAR_H = (0.2, 0.6), (0.01, 0.04), (4e-3, 15e-3)
WINDOW = 0.6  # m, side of the fixed top-view window of the image modality

# finite-element families: templates (width / length, thickness / length, cut or hole share, cells)
# at the reference length FEM_L_REF; the drawn length scales the template uniformly
FEM_TEMPLATES: dict[str, tuple[tuple[float, float, float, tuple[int, int, int]], ...]] = {
    "box": ((0.5, 0.03, 0.0, (6, 3, 1)), (0.75, 0.03, 0.0, (6, 4, 1)), (1.0, 0.04, 0.0, (6, 6, 1))),
    "lshape": ((1.0, 0.03, 1 / 3, (6, 6, 1)), (1.0, 0.03, 0.5, (6, 6, 1))),
    "holed_plate": ((0.67, 0.03, 1 / 3, (6, 6, 1)), (1.0, 0.03, 1 / 3, (6, 6, 1))),
    "ball": ((1.0, 1.0, 0.0, (5, 5, 5)),),
}
FEM_L = {"box": (0.2, 0.5), "lshape": (0.2, 0.5), "holed_plate": (0.2, 0.5), "ball": (0.3, 0.6)}
FEM_L_REF = 0.3
# fixed rectangular membrane: a sheet of the material (thickness MEMBRANE_H), pre-stretched equibiaxially
# by the strain MEMBRANE_STRAIN (log-uniform), so T = E eps h / (1 - nu) and sigma = rho h
MEMBRANE_A, MEMBRANE_ASPECT, MEMBRANE_H, MEMBRANE_STRAIN = (0.2, 0.6), (0.5, 1.0), (2e-4, 1e-3), (1e-4, 1e-3)
FAMILIES = ("plate", "bar", "membrane", *FEM_TEMPLATES)


@functools.cache
def _fem_cells(family: str, template: int) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Occupancy grid and size (m, at the reference length) of a FEM template (cached: the ball's
    voxelization queries scikit-fem's element finder per cell)."""
    from data_catalog.fem import ball_cells, holed_plate_cells, lshape_cells

    ratio_w, ratio_h, share, cells = FEM_TEMPLATES[family][template]
    size = (FEM_L_REF, ratio_w * FEM_L_REF, ratio_h * FEM_L_REF)
    if family == "box":
        occ = np.ones(cells, dtype=bool)
    elif family == "lshape":
        occ = lshape_cells(cells[0], cells[2], cut=share)
    elif family == "holed_plate":
        occ = holed_plate_cells(*cells, hole=share)
    else:
        occ = ball_cells(cells[0])
    return occ, size


_FEM_CACHE: dict[tuple, object] = {}


def _fem_reference(family: str, template: int, material: str, n_modes: int):
    """Cached FEM modes of a template at the reference length and the material's nominal constants."""
    key = (family, template, material, n_modes)
    if key not in _FEM_CACHE:
        from data_catalog.fem import fem_modes, voxel_mesh

        occ, size = _fem_cells(family, template)
        mat = MATERIALS[material]
        _FEM_CACHE[key] = fem_modes(voxel_mesh(occ, size=size), rho=mat.rho, E=mat.E, nu=mat.nu, n_modes=n_modes)
    return _FEM_CACHE[key]


def fem_object_modes(family: str, template: int, material: str, *, length: float, rho: float, E: float,
                     hit: tuple[float, float], n_modes: int = 24) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Modes of a FEM template scaled to ``length`` and material ``rho, E`` (nominal nu), hit on the top face.

    Returns the frequencies (Hz), ``n . phi_i(p)`` (mass-normalized for the scaled object) and the
    struck vertex ``(x, y)`` (m).

    Examples
    --------
    >>> f, phi, p = fem_object_modes("box", 0, "steel", length=0.6, rho=7850, E=2e11, hit=(0.3, 0.15), n_modes=4)
    >>> g, _, _ = fem_object_modes("box", 0, "steel", length=0.3, rho=7850, E=2e11, hit=(0.15, 0.075), n_modes=4)
    >>> bool(np.allclose(f, g / 2, rtol=1e-12))
    True
    """
    from data_catalog.fem import fem_sound_modes

    mat = MATERIALS[material]
    ref = _fem_reference(family, template, material, n_modes)
    s = length / FEM_L_REF
    _, phi, vertex = fem_sound_modes(ref, hit=(hit[0] / s, hit[1] / s))
    freqs = ref.freqs / s * np.sqrt((E / mat.E) / (rho / mat.rho))
    phi = phi / np.sqrt((rho / mat.rho) * s**3)
    return freqs, phi, (float(ref.mesh.p[0, vertex] * s), float(ref.mesh.p[1, vertex] * s))


def _positive(**values: float) -> None:
    for name, v in values.items():
        if not (np.all(np.isfinite(v)) and np.all(np.asarray(v) > 0)):
            raise ValueError(f"vibraverse: {name} must be finite and > 0, got {v!r}")


def plate_frequencies(a: float, b: float, h: float, *, rho: float, E: float, nu: float, m_max: int = 12,
                      n_max: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Exact modal frequencies (Hz) of a simply supported Kirchhoff plate, sorted, with their (m, n).

    Parameters
    ----------
    a, b, h : float
        Side lengths and thickness (m).
    rho, E, nu : float
        Density (kg/m^3), Young's modulus (Pa), Poisson's ratio (in [0, 0.5)).
    m_max, n_max : int
        Mode numbers computed, ``1..m_max`` by ``1..n_max``.

    Returns
    -------
    freqs : ndarray, shape (m_max * n_max,)
        ``f_mn = omega_mn / (2 pi)`` in ascending order.
    mn : ndarray of int, shape (m_max * n_max, 2)

    Examples
    --------
    >>> f, mn = plate_frequencies(0.3, 0.2, 0.003, rho=7850, E=2.0e11, nu=0.29)
    >>> round(float(f[0]), 1), mn[0].tolist()
    (259.1, [1, 1])
    """
    _positive(a=a, b=b, h=h, rho=rho, E=E)
    if not 0 <= nu < 0.5:
        raise ValueError(f"vibraverse: nu must be in [0, 0.5), got {nu!r}")
    if m_max < 1 or n_max < 1:
        raise ValueError(f"vibraverse: m_max and n_max must be >= 1, got {m_max!r}, {n_max!r}")
    m, n = np.meshgrid(np.arange(1, m_max + 1), np.arange(1, n_max + 1), indexing="ij")
    D = E * h**3 / (12 * (1 - nu**2))
    omega = np.pi**2 * ((m / a) ** 2 + (n / b) ** 2) * np.sqrt(D / (rho * h))
    order = np.argsort(omega.ravel(), kind="stable")
    return omega.ravel()[order] / (2 * np.pi), np.c_[m.ravel(), n.ravel()][order]


def plate_mode_shape(x: np.ndarray | float, y: np.ndarray | float, m: int, n: int, *, a: float, b: float,
                     h: float, rho: float) -> np.ndarray:
    """Mass-normalized plate mode ``phi_mn(x, y) = 2/sqrt(rho h a b) sin(m pi x/a) sin(n pi y/b)``.

    Examples
    --------
    >>> abs(float(plate_mode_shape(0.15, 0.05, 2, 1, a=0.3, b=0.2, h=0.003, rho=7850))) < 1e-15
    True
    """
    return 2 / np.sqrt(rho * h * a * b) * np.sin(m * np.pi * np.asarray(x) / a) * np.sin(n * np.pi * np.asarray(y) / b)


def membrane_frequencies(a: float, b: float, *, tension: float, sigma: float, m_max: int = 12,
                         n_max: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Exact modal frequencies (Hz) of a fixed (clamped-edge) rectangular membrane, sorted, with their (m, n).

    ``f_mn = (c / 2) sqrt((m/a)^2 + (n/b)^2)``, ``c = sqrt(T / sigma)``, as the method note writes it
    (``omega_mn = pi c sqrt(...)``): ``tension`` T is the tension per unit length of edge (N/m),
    ``sigma`` the areal density (kg/m^2). Neither E nor nu enters the formula (the note calls it optional
    for that reason); the generator's ``"membrane"`` family makes the tension a pre-strain of the
    material, ``T = E eps h / (1 - nu)`` (see :func:`membrane_tension`).

    Examples
    --------
    >>> f, mn = membrane_frequencies(0.4, 0.2, tension=800.0, sigma=0.5)
    >>> round(float(f[0]), 3), mn[0].tolist()
    (111.803, [1, 1])
    """
    _positive(a=a, b=b, tension=tension, sigma=sigma)
    if m_max < 1 or n_max < 1:
        raise ValueError(f"vibraverse: m_max and n_max must be >= 1, got {m_max!r}, {n_max!r}")
    m, n = np.meshgrid(np.arange(1, m_max + 1), np.arange(1, n_max + 1), indexing="ij")
    f = np.sqrt(tension / sigma) / 2 * np.sqrt((m / a) ** 2 + (n / b) ** 2)
    order = np.argsort(f.ravel(), kind="stable")
    return f.ravel()[order], np.c_[m.ravel(), n.ravel()][order]


def membrane_tension(*, E: float, nu: float, h: float, strain: float) -> float:
    """Tension per unit edge length (N/m) of a sheet of thickness ``h`` stretched equibiaxially by ``strain``.

    Plane stress with ``eps_x = eps_y = strain`` gives the stress ``E strain / (1 - nu)`` in every
    in-plane direction, so ``T = E strain h / (1 - nu)`` and the wave speed of the membrane is
    ``c = sqrt(T / (rho h)) = sqrt(E strain / ((1 - nu) rho))``: density x 4 halves every frequency, as
    for the plate and the bar.

    Examples
    --------
    >>> round(membrane_tension(E=2.0e11, nu=0.29, h=5e-4, strain=1e-3), 1)
    140845.1
    """
    _positive(E=E, h=h, strain=strain)
    if not 0 <= nu < 0.5:
        raise ValueError(f"vibraverse: nu must be in [0, 0.5), got {nu!r}")
    return float(E * strain * h / (1 - nu))


def membrane_mode_shape(x: np.ndarray | float, y: np.ndarray | float, m: int, n: int, *, a: float, b: float,
                        sigma: float) -> np.ndarray:
    """Mass-normalized membrane mode ``2 / sqrt(sigma a b) sin(m pi x / a) sin(n pi y / b)``.

    Examples
    --------
    >>> abs(float(membrane_mode_shape(0.2, 0.05, 2, 1, a=0.4, b=0.2, sigma=0.5))) < 1e-15
    True
    """
    return (2 / np.sqrt(sigma * a * b) * np.sin(m * np.pi * np.asarray(x) / a)
            * np.sin(n * np.pi * np.asarray(y) / b))


def _bar_roots(n_modes: int) -> np.ndarray:
    k = np.arange(1, n_modes + 1)
    beyond = (2 * k + 1) * np.pi / 2
    return np.where(k <= len(_BAR_ROOTS), np.r_[_BAR_ROOTS, beyond[len(_BAR_ROOTS):]][:n_modes], beyond)


def bar_frequencies(L: float, h: float, *, rho: float, E: float, n_modes: int = 12) -> np.ndarray:
    """Exact bending frequencies (Hz) of a free-free Euler-Bernoulli bar of thickness ``h``.

    ``f_n = (beta_n L)^2 / (2 pi L^2) h sqrt(E / (12 rho))``; the width does not enter.

    Examples
    --------
    >>> f = bar_frequencies(0.3, 0.01, rho=7850, E=2.0e11)
    >>> round(float(f[0]), 1), round(float(f[1] / f[0]), 4)
    (576.5, 2.7565)
    """
    _positive(L=L, h=h, rho=rho, E=E)
    if n_modes < 1:
        raise ValueError(f"vibraverse: n_modes must be >= 1, got {n_modes!r}")
    return _bar_roots(n_modes) ** 2 / (2 * np.pi * L**2) * h * np.sqrt(E / (12 * rho))


def bar_mode_shape(x: np.ndarray | float, k: int, *, L: float, b: float, h: float, rho: float) -> np.ndarray:
    """Mass-normalized free-free bending mode ``k`` (1-based) at ``x`` in ``[0, L]``.

    The unnormalized ``cosh bx + cos bx - sigma (sinh bx + sin bx)`` has mean square 1 over the
    bar, so dividing by ``sqrt(rho b h L)`` gives ``int rho A phi^2 dx = 1``. The hyperbolic terms
    are combined so no ``cosh`` of a large argument is subtracted from another (cancellation).

    Examples
    --------
    >>> round(float(bar_mode_shape(0.0, 1, L=1.0, b=1.0, h=1.0, rho=1.0)), 6)
    2.0
    """
    bl = float(_bar_roots(k)[k - 1])
    s = np.asarray(x, dtype=np.float64) / L * bl
    sigma = (np.cosh(bl) - np.cos(bl)) / (np.sinh(bl) - np.sin(bl))
    # cosh s - sigma sinh s = e^s (1 - sigma)/2 + e^-s (1 + sigma)/2, with 1 - sigma ~ 2 e^-bl
    one_minus = (np.cos(bl) - np.sin(bl) - np.exp(-bl)) / (np.sinh(bl) - np.sin(bl))
    hyper = 0.5 * np.exp(s) * one_minus + 0.5 * np.exp(-s) * (1 + sigma)
    return (hyper + np.cos(s) - sigma * np.sin(s)) / np.sqrt(rho * b * h * L)


def rayleigh(freqs: np.ndarray, *, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rayleigh damping of modes at ``freqs`` (Hz): ratio ``xi``, decay rate ``d`` (1/s), damped ``f_d`` (Hz).

    Examples
    --------
    >>> xi, d, fd = rayleigh(np.array([100.0]), alpha=2.0, beta=0.0)
    >>> float(d[0]), round(float(xi[0] * 2 * np.pi * 100), 6)
    (1.0, 1.0)
    """
    omega = 2 * np.pi * np.asarray(freqs, dtype=np.float64)
    xi = alpha / (2 * omega) + beta * omega / 2
    d = alpha / 2 + beta * omega**2 / 2
    fd = omega * np.sqrt(np.clip(1 - xi**2, 0, None)) / (2 * np.pi)
    return xi, d, fd


def render_modes(freqs: np.ndarray, decay: np.ndarray, amps: np.ndarray, *, fs: int = FS,
                 duration: float = 1.0, damped_freqs: np.ndarray | None = None) -> np.ndarray:
    """Sum of damped sinusoids ``sum_i amps_i exp(-decay_i t) sin(2 pi f_d,i t)`` (float64).

    ``amps`` already holds ``g J phi_i(p) omega_i``; ``damped_freqs`` defaults to ``freqs``.

    Examples
    --------
    >>> s = render_modes(np.array([1000.0]), np.array([0.0]), np.array([1.0]), duration=0.01)
    >>> s.shape, float(s[0]), round(float(np.abs(s).max()), 2)
    ((220,), 0.0, 1.0)
    """
    if fs <= 0 or duration <= 0:
        raise ValueError(f"vibraverse: fs and duration must be > 0, got fs={fs!r}, duration={duration!r}")
    t = np.arange(int(round(fs * duration))) / fs
    fd = np.asarray(freqs if damped_freqs is None else damped_freqs, dtype=np.float64)
    phase = 2 * np.pi * fd[:, None] * t[None, :]
    return np.asarray(amps, dtype=np.float64) @ (np.exp(-np.asarray(decay)[:, None] * t[None, :]) * np.sin(phase))


def mel_filterbank(*, n_mels: int = 64, n_fft: int = 1024, fs: int = FS, fmin: float = 20.0,
                   fmax: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Triangular mel filters (HTK mel scale) on the ``n_fft // 2 + 1`` rFFT bins, and their centres (Hz).

    Examples
    --------
    >>> fb, centres = mel_filterbank(n_mels=8, n_fft=256)
    >>> fb.shape, bool(np.all(np.diff(centres) > 0))
    ((8, 129), True)
    """
    fmax = fs / 2 if fmax is None else fmax
    mel = lambda f: 2595 * np.log10(1 + np.asarray(f) / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (np.asarray(m) / 2595) - 1)  # noqa: E731
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1 / fs)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None)
    return fb, edges[1:-1]


def log_mel(wave: np.ndarray, *, fs: int = FS, n_mels: int = 64, n_fft: int = 1024, hop: int = 512,
            floor_db: float = -80.0) -> np.ndarray:
    """Log-mel spectrogram (dB re the peak of each signal, floored at ``floor_db``), ``(..., n_mels, frames)``.

    Hann-windowed frames without padding; power spectrum through :func:`mel_filterbank`.

    Examples
    --------
    >>> t = np.arange(FS) / FS
    >>> S = log_mel(np.sin(2 * np.pi * 440 * t))
    >>> S.shape, float(S.max())
    ((64, 42), 0.0)
    """
    wave = np.asarray(wave, dtype=np.float64)
    n_frames = 1 + (wave.shape[-1] - n_fft) // hop
    if n_frames < 1:
        raise ValueError(f"vibraverse: the signal ({wave.shape[-1]} samples) is shorter than n_fft={n_fft}")
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = wave[..., idx] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    fb, _ = mel_filterbank(n_mels=n_mels, n_fft=n_fft, fs=fs)
    melspec = np.einsum("...tf,mf->...mt", power, fb)
    ref = melspec.max(axis=(-2, -1), keepdims=True)
    db = 10 * np.log10(np.maximum(melspec, 1e-30) / np.maximum(ref, 1e-30))
    return np.maximum(db, floor_db)


def _marker(hit: tuple[float, float], *, size: int = 32) -> np.ndarray:
    c = (np.arange(size) + 0.5) / size * WINDOW
    x, y = np.meshgrid(c, c, indexing="ij")
    return np.exp(-((x - hit[0]) ** 2 + (y - hit[1]) ** 2) / (2 * (1.5 * WINDOW / size) ** 2))


def _image(family: str, dims: tuple[float, float, float], hit: tuple[float, float], *, size: int = 32) -> np.ndarray:
    """Top-view height map (thickness / 15 mm inside the footprint) and a Gaussian hit marker."""
    c = (np.arange(size) + 0.5) / size * WINDOW
    x, y = np.meshgrid(c, c, indexing="ij")
    length, width, h = dims
    # a footprint narrower than one pixel (a bar's width) still marks the pixel row it falls in
    inside = (x <= length) & (y <= max(width, WINDOW / size / 2))
    height = inside * (h / BAR_H[1])
    marker = np.exp(-((x - hit[0]) ** 2 + (y - hit[1]) ** 2) / (2 * (1.5 * WINDOW / size) ** 2))
    return np.stack([height, marker]).astype(np.float32)


def vibraverse(*, n: int = 2000, seed: int = 0, families: tuple[str, ...] | list[str] = ("plate", "bar"),
               materials: tuple[str, ...] | list[str] | None = None, hit_position: bool = True,
               jitter: float = 0.1, duration: float = 1.0, n_modes: int = 24, n_mels: int = 64,
               keep_waveform: bool = False, fs: int = FS) -> MultimodalDataset:
    """Impact sounds of plates and bars from exact modal synthesis, with shape, image and sound views.

    Parameters
    ----------
    n : int
        Number of objects.
    seed : int
        Seed of every random draw (same seed, same dataset).
    families : sequence of str
        Shape families, drawn uniformly: ``"plate"`` (simply supported) and ``"bar"`` (free-free),
        analytic; ``"box"``, ``"lshape"``, ``"holed_plate"``, ``"ball"`` (free solids) by finite
        elements (scikit-fem; see the module docstring for the cached solve and the nominal nu);
        ``"membrane"`` (fixed, analytic, tension from a pre-strain; the module docstring).
    materials : sequence of str, optional
        Names from :data:`MATERIALS` (default all seven); the label is the material.
    hit_position : bool
        True: the hit point is uniform on the object (10%-90% of each side). False: every object is
        struck at the same relative point (0.37, 0.29) (bars at 0.37 L), so the hit is no factor.
    jitter : float
        Relative uniform jitter of rho, E (and nu) around the nominal material (0.1 = +-10%).
    duration : float
        Seconds rendered at ``fs``.
    n_modes : int
        At most this many lowest audible modes are rendered.
    n_mels : int
        Mel bands of the sound modality (n_fft 1024, hop 512).
    keep_waveform : bool
        Keep the peak-normalized waveforms, ``ground_truth["waveform"]`` (n, samples) float32.
    fs : int
        Sampling rate (Hz).

    Returns
    -------
    MultimodalDataset
        Modalities ``shape`` (5 + one per membrane or FEM family requested: family one-hot, plate and
        bar always, then the log dimensions), ``image`` (2, 32, 32), ``sound`` (n_mels, frames); ``y`` the
        material index; groups ``family`` and ``material``; ``ground_truth`` with ``objects``
        (a DataFrame: family, template (-1 for analytic), material, rho, E, nu, alpha, beta, length, width, h, hit_x, hit_y,
        gain, peak, f1, n_audible, and ``tension`` (N/m, NaN but for membranes) when ``"membrane"`` is
        requested) and padded ``(n, n_modes)`` arrays ``freqs`` (undamped, Hz), ``decay``
        (1/s), ``phi_hit`` and ``amps`` (NaN beyond an object's audible modes).

    Examples
    --------
    >>> ds = vibraverse(n=20, seed=1, families=["bar"], hit_position=False)
    >>> gt = ds.ground_truth["objects"]
    >>> bool((gt["hit_x"] / gt["length"]).round(12).eq(0.37).all()), ds.n_classes
    (True, 7)
    """
    families = list(families)
    names = list(MATERIALS) if materials is None else list(materials)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"vibraverse: n must be an integer >= 1, got {n!r}")
    if not families or any(f not in FAMILIES for f in families):
        raise ValueError(f"vibraverse: families must be a non-empty subset of {list(FAMILIES)}, got {families!r}")
    fem_columns = [f for f in FAMILIES[2:] if f in families]  # one-hot columns beyond plate and bar
    if not names or any(m not in MATERIALS for m in names):
        raise ValueError(f"vibraverse: materials must be a non-empty subset of {list(MATERIALS)}, got {names!r}")
    if not 0 <= jitter < 0.5:
        raise ValueError(f"vibraverse: jitter must be in [0, 0.5), got {jitter!r}")
    if not (np.isfinite(duration) and duration * fs >= 1024):
        raise ValueError(f"vibraverse: duration must give at least 1024 samples at fs={fs}, got {duration!r}")
    if n_modes < 1 or n_mels < 1:
        raise ValueError(f"vibraverse: n_modes and n_mels must be >= 1, got {n_modes!r}, {n_mels!r}")
    rng = np.random.default_rng(seed)
    f_hi = min(AUDIBLE[1], fs / 2)
    shape_vec, images, waves, rows = [], [], [], []
    freqs_out, decay_out, phi_out, amp_out = (np.full((n, n_modes), np.nan) for _ in range(4))
    for i in range(n):
        # rejection loop: the rare geometry-material draw with < 3 audible modes is redrawn (a
        # bounded number of times: an fs that leaves almost no audible band would loop forever)
        for _attempt in range(1000):
            family = families[rng.integers(len(families))]
            mat_name = names[rng.integers(len(names))]
            mat = MATERIALS[mat_name]
            rho, E = (v * (1 + jitter * rng.uniform(-1, 1)) for v in (mat.rho, mat.E))
            nu = mat.nu * (1 + jitter * rng.uniform(-1, 1))
            u = rng.uniform(0.1, 0.9, 2) if hit_position else np.array([0.37, 0.29])
            template, tension = -1, np.nan
            if family in FEM_TEMPLATES:
                from data_catalog.vibraverse_views import boxes_from_cells

                nu = mat.nu  # nu does not scale out of the cached solve (module docstring)
                template = int(rng.integers(len(FEM_TEMPLATES[family])))
                a = rng.uniform(*FEM_L[family])
                occ, ref_size = _fem_cells(family, template)
                dims = tuple(float(d * a / FEM_L_REF) for d in ref_size)
                f, phi, (px, py) = fem_object_modes(family, template, mat_name, length=a, rho=rho, E=E,
                                                    hit=(u[0] * dims[0], u[1] * dims[1]), n_modes=n_modes)
                boxes = boxes_from_cells(occ, dims)
            elif family == "membrane":
                a = rng.uniform(*MEMBRANE_A)
                b = a * rng.uniform(*MEMBRANE_ASPECT)
                h = np.exp(rng.uniform(*np.log(MEMBRANE_H)))
                tension = membrane_tension(E=E, nu=nu, h=h, strain=np.exp(rng.uniform(*np.log(MEMBRANE_STRAIN))))
                f, mn = membrane_frequencies(a, b, tension=tension, sigma=rho * h)
                px, py = u[0] * a, u[1] * b
                phi = membrane_mode_shape(px, py, mn[:, 0], mn[:, 1], a=a, b=b, sigma=rho * h)
                dims = (a, b, h)
            elif family == "plate":
                a = rng.uniform(*PLATE_A)
                b = a * rng.uniform(*PLATE_ASPECT)
                h = np.exp(rng.uniform(*np.log(PLATE_H)))
                f, mn = plate_frequencies(a, b, h, rho=rho, E=E, nu=nu)
                px, py = u[0] * a, u[1] * b
                phi = plate_mode_shape(px, py, mn[:, 0], mn[:, 1], a=a, b=b, h=h, rho=rho)
                dims = (a, b, h)
            else:
                a = rng.uniform(*BAR_L)
                b = rng.uniform(*BAR_B)
                h = np.exp(rng.uniform(*np.log(BAR_H)))
                f = bar_frequencies(a, h, rho=rho, E=E, n_modes=n_modes)
                px, py = u[0] * a, b / 2  # struck on the centre line of its top face
                phi = np.array([bar_mode_shape(px, k + 1, L=a, b=b, h=h, rho=rho) for k in range(len(f))])
                dims = (a, b, h)
            xi, d, fd = rayleigh(f, alpha=mat.alpha, beta=mat.beta)
            keep = (f > AUDIBLE[0]) & (f < f_hi) & (xi < 1)
            if keep.sum() >= 3:
                break
        else:
            raise ValueError(f"vibraverse: fs={fs} leaves fewer than 3 audible modes in 1000 draws; raise fs")
        f, d, fd, phi = f[keep][:n_modes], d[keep][:n_modes], fd[keep][:n_modes], phi[keep][:n_modes]
        gain = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        amps = gain * phi * 2 * np.pi * f  # J = 1 N s
        wave = render_modes(f, d, amps, fs=fs, duration=duration, damped_freqs=fd)
        peak = float(np.abs(wave).max())
        waves.append((wave / peak).astype(np.float32))
        k = len(f)
        freqs_out[i, :k], decay_out[i, :k], phi_out[i, :k], amp_out[i, :k] = f, d, phi, amps
        shape_vec.append([family == "plate", family == "bar", *(family == c for c in fem_columns),
                          np.log(dims[0]), np.log(dims[1]), np.log(dims[2])])
        if template >= 0:
            from data_catalog.vibraverse_views import height_map

            images.append(np.stack([height_map(boxes), _marker((px, py))]).astype(np.float32))
        else:
            images.append(_image(family, dims, (px, py)))
        rows.append({"family": family, "template": template, "material": mat_name, "rho": rho, "E": E, "nu": nu, "alpha": mat.alpha,
                     "beta": mat.beta, "length": dims[0], "width": dims[1], "h": dims[2], "hit_x": px, "hit_y": py,
                     "gain": gain, "peak": peak, "f1": float(f[0]), "n_audible": k,
                     **({"tension": tension} if "membrane" in families else {})})
    wave_arr = np.stack(waves)
    sound = log_mel(wave_arr, fs=fs, n_mels=n_mels).astype(np.float32)
    # standardized so the default encoders see O(1) inputs; the raw values are in ground_truth
    shape_arr = np.asarray(shape_vec, dtype=np.float64)
    shape_arr[:, -3:] = (shape_arr[:, -3:] - np.log([0.35, 0.1, 0.006])) / 0.8
    objects = pd.DataFrame(rows)
    y = np.array([names.index(m) for m in objects["material"]], dtype=np.int64)
    truth = {"objects": objects, "freqs": freqs_out, "decay": decay_out, "phi_hit": phi_out, "amps": amp_out,
             "fs": fs, "duration": duration, "hit_position": hit_position,
             "mel_centres": mel_filterbank(n_mels=n_mels, n_fft=1024, fs=fs)[1]}
    if keep_waveform:
        truth["waveform"] = wave_arr
    return MultimodalDataset(
        {"shape": shape_arr.astype(np.float32), "image": np.stack(images), "sound": sound / 40.0 + 1.0},
        y, groups=objects[["family", "material"]].copy(), classes=names, name="vibraverse",
        kinds={"shape": "vector", "image": "image", "sound": "sequence"}, ground_truth=truth)
