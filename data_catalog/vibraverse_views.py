"""Geometry views of VibraVerse objects (arXiv 2511.20422): voxel grid, surface point cloud, height map.

Every object of :mod:`data_catalog.vibraverse` is a union of disjoint axis-aligned boxes
``(x0, x1, y0, y1, z0, z1)`` in metres: one box for a plate, bar or solid box, the occupied
cells of the finite-element grid for L-shapes and plates with holes
(:mod:`data_catalog.fem`). From that one description:

* :func:`voxel_grid`: occupied volume fraction of each voxel of a fixed window (exact: the
  overlap of boxes and voxels is a product of 1-D overlaps), shape ``(nz, nx, ny)`` so it
  reads as a ``(channels, height, width)`` image whose channels are the z slices;
* :func:`surface_points`: points uniform on the exposed surface (box faces not shared with a
  neighbouring box), ``(3, n_points)`` sorted by ``(x, y, z)``;
* :func:`height_map`: top-view thickness per pixel (the summed z extent of the boxes over it).

Example
-------
>>> boxes = np.array([[0.0, 0.3, 0.0, 0.2, 0.0, 0.003]])
>>> vox = voxel_grid(boxes)
>>> vox.shape, round(float(vox.sum() * (0.6 / 16) ** 2 * 0.015), 6) == round(0.3 * 0.2 * 0.003, 6)
((4, 16, 16), True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["VOXEL_WINDOW", "boxes_from_cells", "height_map", "surface_points", "voxel_grid"]

VOXEL_WINDOW = (0.6, 0.6, 0.06)  # m: x, y, z extent of the voxel window (objects sit at the origin)


def boxes_from_cells(occupied: np.ndarray, size: tuple[float, float, float]) -> np.ndarray:
    """Boxes ``(n, 6)`` of the occupied cells of a ``(nx, ny, nz)`` grid spanning ``size`` (m).

    Examples
    --------
    >>> boxes_from_cells(np.ones((2, 1, 1), bool), (0.2, 0.1, 0.01)).round(3).tolist()
    [[0.0, 0.1, 0.0, 0.1, 0.0, 0.01], [0.1, 0.2, 0.0, 0.1, 0.0, 0.01]]
    """
    occupied = np.asarray(occupied, dtype=bool)
    idx = np.argwhere(occupied)
    step = np.asarray(size, dtype=np.float64) / occupied.shape
    lo = idx * step
    return np.stack([lo[:, 0], lo[:, 0] + step[0], lo[:, 1], lo[:, 1] + step[1], lo[:, 2], lo[:, 2] + step[2]], 1)


def _overlap(lo: np.ndarray, hi: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Overlap length of each interval ``[lo_b, hi_b]`` with each bin of ``edges``: ``(n_boxes, n_bins)``."""
    return np.clip(np.minimum(hi[:, None], edges[None, 1:]) - np.maximum(lo[:, None], edges[None, :-1]), 0, None)


def voxel_grid(boxes: np.ndarray, *, size: tuple[int, int, int] = (16, 16, 4),
               window: tuple[float, float, float] = VOXEL_WINDOW) -> np.ndarray:
    """Occupied volume fraction per voxel, ``(nz, nx, ny)`` float32 in ``[0, 1]`` (exact for boxes).

    Examples
    --------
    >>> v = voxel_grid(np.array([[0.0, 0.6, 0.0, 0.6, 0.0, 0.06]]), size=(4, 4, 2))
    >>> float(v.min()), float(v.max())
    (1.0, 1.0)
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    ov = [_overlap(boxes[:, 2 * d], boxes[:, 2 * d + 1], np.linspace(0, window[d], size[d] + 1)) / (window[d] / size[d])
          for d in range(3)]
    return np.clip(np.einsum("bx,by,bz->zxy", *ov), 0, 1).astype(np.float32)


def height_map(boxes: np.ndarray, *, size: int = 32, window: float = 0.6, scale: float = 0.015) -> np.ndarray:
    """Top-view thickness at each pixel centre divided by ``scale`` (m), ``(size, size)``.

    A footprint narrower than one pixel (a bar's width) still marks the pixel row it falls in.

    Examples
    --------
    >>> hm = height_map(np.array([[0.0, 0.3, 0.0, 0.01, 0.0, 0.015]]), size=4)
    >>> hm[:, 0].tolist(), float(hm[:, 1:].max())
    ([1.0, 1.0, 0.0, 0.0], 0.0)
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    c = (np.arange(size) + 0.5) / size * window
    half = window / size / 2
    # a box thinner than a pixel is widened to reach the nearest pixel centre
    def cover(lo, hi):
        widen = np.maximum(0, half - (hi - lo) / 2)[:, None]
        return (c[None, :] >= lo[:, None] - widen * (lo[:, None] == 0)) & (c[None, :] <= hi[:, None] + widen)
    inx, iny = cover(boxes[:, 0], boxes[:, 1]), cover(boxes[:, 2], boxes[:, 3])
    return np.einsum("bx,by,b->xy", inx.astype(float), iny.astype(float), boxes[:, 5] - boxes[:, 4]) / scale


def _faces(boxes: np.ndarray) -> list[tuple[int, float, tuple[float, float], tuple[float, float], int]]:
    """Exposed faces: (normal axis, coordinate, range of the 1st other axis, of the 2nd, sign)."""
    faces = []
    for b in boxes:
        for axis in range(3):
            others = [d for d in range(3) if d != axis]
            for sign, coord in ((-1, b[2 * axis]), (1, b[2 * axis + 1])):
                r1, r2 = (b[2 * others[0]], b[2 * others[0] + 1]), (b[2 * others[1]], b[2 * others[1] + 1])
                # shared with a neighbour when another box has the opposite face at the same place and range
                opp = boxes[:, 2 * axis + (0 if sign == 1 else 1)]
                shared = (np.isclose(opp, coord) & np.isclose(boxes[:, 2 * others[0]], r1[0])
                          & np.isclose(boxes[:, 2 * others[1]], r2[0]) & np.isclose(boxes[:, 2 * others[0] + 1], r1[1])
                          & np.isclose(boxes[:, 2 * others[1] + 1], r2[1]))
                if not shared.any():
                    faces.append((axis, coord, r1, r2, sign))
    return faces


def surface_points(boxes: np.ndarray, *, n: int = 256, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform on the exposed surface of the boxes, ``(3, n)`` float32 sorted by x, y, z.

    Faces shared by two cells of a grid are interior and get no points; a face is chosen with
    probability proportional to its area.

    Examples
    --------
    >>> pts = surface_points(np.array([[0, 1, 0, 1, 0, 1.0]]), n=100, rng=np.random.default_rng(0))
    >>> pts.shape, bool(np.all(np.min(np.minimum(pts, 1 - pts), axis=0) < 1e-6))
    ((3, 100), True)
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    faces = _faces(boxes)
    areas = np.array([(f[2][1] - f[2][0]) * (f[3][1] - f[3][0]) for f in faces])
    pick = rng.choice(len(faces), size=n, p=areas / areas.sum())
    u = rng.uniform(size=(n, 2))
    pts = np.empty((n, 3))
    for k, fi in enumerate(pick):
        axis, coord, r1, r2, _ = faces[fi]
        others = [d for d in range(3) if d != axis]
        pts[k, axis] = coord
        pts[k, others[0]] = r1[0] + u[k, 0] * (r1[1] - r1[0])
        pts[k, others[1]] = r2[0] + u[k, 1] * (r2[1] - r2[0])
    order = np.lexsort((pts[:, 2], pts[:, 1], pts[:, 0]))
    return pts[order].T.astype(np.float32)
