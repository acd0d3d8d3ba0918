"""Epipolar geometry helpers: the frame OpenCV's essential solvers need, normalised coordinates,
Sampson distance and chirality."""

from __future__ import annotations

import numpy as np

from .robust import RobustParams


def essential_frame(
    p0: np.ndarray, p1: np.ndarray, k0: np.ndarray, k1: np.ndarray, params: RobustParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Points of both images, one camera matrix and the threshold, as OpenCV's essential solvers need them.

    OpenCV takes a single camera matrix. Measured with OpenCV 5.0: USAC_FM_8PTS ignores it and
    only gives an essential matrix on normalised coordinates, while USAC_MAGSAC on normalised
    coordinates goes wrong above ~1 px thresholds (translation directions tens of degrees off).
    So FM_8PTS gets normalised coordinates and the others pixels, image 1 re-imaged through K0.
    """
    if params.method == "CV2_USAC_FM_8PTS":
        focal = (k0[0, 0] + k0[1, 1] + k1[0, 0] + k1[1, 1]) / 4.0
        return normalise(p0, k0), normalise(p1, k1), np.eye(3), params.reproj_threshold / focal
    return p0, _reimage(p1, k1, k0), k0, params.reproj_threshold


def normalise(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((points - k[:2, 2]) / (k[0, 0], k[1, 1]))


def _reimage(points: np.ndarray, k_from: np.ndarray, k_to: np.ndarray) -> np.ndarray:
    """Pixels [N x 2] of camera ``k_from`` as seen by camera ``k_to`` from the same centre and pose."""
    if np.array_equal(k_from, k_to):
        return points
    return np.ascontiguousarray(normalise(points, k_from) * (k_to[0, 0], k_to[1, 1]) + k_to[:2, 2])


def sampson_px(F: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Sampson distance [N] in pixels of each pair (p0, p1) to the epipolar geometry F."""
    x0 = np.hstack([p0, np.ones((len(p0), 1))])
    x1 = np.hstack([p1, np.ones((len(p1), 1))])
    Fx0 = x0 @ F.T
    Ftx1 = x1 @ F
    algebraic = np.sum(x1 * Fx0, axis=1)
    gradient = np.sqrt(Fx0[:, 0] ** 2 + Fx0[:, 1] ** 2 + Ftx1[:, 0] ** 2 + Ftx1[:, 1] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(algebraic) / gradient


def in_front(R: np.ndarray, t: np.ndarray, n0: np.ndarray, n1: np.ndarray) -> np.ndarray:
    """[N] bool: the point triangulated from normalised n0, n1 [N x 2] has positive depth in both cameras.

    Depths d0, d1 solve d1 f1 = d0 R f0 + t in the least-squares sense for the rays f = (n, 1).
    """
    f0 = np.hstack([n0, np.ones((len(n0), 1))]) @ R.T
    f1 = np.hstack([n1, np.ones((len(n1), 1))])
    aa, ab, bb = np.sum(f0 * f0, axis=1), np.sum(f0 * f1, axis=1), np.sum(f1 * f1, axis=1)
    at, bt = f0 @ t, f1 @ t
    det = aa * bb - ab * ab
    # Cramer's rule on the normal equations; det >= 0, and det = 0 means parallel rays (no depth).
    d0 = ab * bt - bb * at
    d1 = aa * bt - ab * at
    return (det > 0) & (d0 > 0) & (d1 > 0)


def skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
