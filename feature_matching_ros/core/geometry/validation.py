"""Checks of the estimators' inputs: point sets, camera matrices and distortion coefficients.

A failed check raises ``Reject``; the estimators return its message as the failure reason.
"""

from __future__ import annotations

import math

import numpy as np

from .robust import MIN_MATCHES, NOUNS, RobustParams

# Points whose spread across their best-fit line is below this fraction of the spread along it
# are treated as collinear.
_COLLINEAR_RATIO = 1e-6


class Reject(Exception):
    """Internal: the data cannot give a model; the message is the failure reason."""


def rows(points: object) -> int:
    """N of an input, for the length of a failure's inlier mask; 0 if it has no rows."""
    shape = getattr(points, "shape", None)
    if shape is None:
        try:
            shape = np.shape(points)
        except (TypeError, ValueError):
            return 0
    return int(shape[0]) if len(shape) >= 1 else 0


def point_array(points: object, name: str, dims: int) -> np.ndarray:
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise Reject(f"{name} is not a numeric array") from None
    if array.ndim != 2 or array.shape[1] != dims:
        raise Reject(f"{name} must be an [N x {dims}] array, got shape {array.shape}")
    return np.ascontiguousarray(array)


def check_pair(model_type: str, a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise Reject(f"{name_a} has {len(a)} points but {name_b} has {len(b)}")
    if len(a) < MIN_MATCHES[model_type]:
        raise Reject(f"{NOUNS[model_type]} needs at least {MIN_MATCHES[model_type]} matches, got {len(a)}")
    bad = int((~np.isfinite(a)).sum() + (~np.isfinite(b)).sum())
    if bad:
        raise Reject(f"points contain {bad} non-finite values")


def point_pairs(
    model_type: str, pts0: object, pts1: object, params: RobustParams
) -> tuple[np.ndarray, np.ndarray]:
    p0 = point_array(pts0, "pts0", 2)
    p1 = point_array(pts1, "pts1", 2)
    check_pair(model_type, p0, p1, "pts0", "pts1")
    check_spread(p0, "the points of image 0", params.reproj_threshold)
    check_spread(p1, "the points of image 1", params.reproj_threshold)
    return p0, p1


def check_spread(points: np.ndarray, what: str, threshold_px: float | None) -> None:
    """Reject points that are identical or collinear, exactly or (for pixels) within the inlier threshold.

    Points closer together, or closer to a line, than the inlier threshold fit a whole family of
    models equally well, so no model they support is determined.
    """
    if len(points) == 0:
        return
    # RMS extent of the points along their principal axes.
    extent = np.linalg.svd(points - points.mean(axis=0), compute_uv=False) / math.sqrt(len(points))
    if extent[0] <= 1e-9 * max(1.0, float(np.abs(points).max())):
        raise Reject(f"all {len(points)} of {what} are identical")
    if threshold_px is not None and extent[0] < threshold_px:
        raise Reject(
            f"{what} spread only {extent[0]:.3g} px (RMS), "
            f"less than the inlier threshold of {threshold_px:g} px"
        )
    if len(extent) < 2 or extent[1] <= _COLLINEAR_RATIO * extent[0]:
        raise Reject(f"{what} are collinear (degenerate configuration)")
    if threshold_px is not None and extent[1] < threshold_px:
        raise Reject(
            f"{what} are nearly collinear: {extent[1]:.3g} px (RMS) off a line, less than the inlier "
            f"threshold of {threshold_px:g} px"
        )


def camera_matrix(K: object, name: str) -> np.ndarray:
    try:
        k = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError):
        raise Reject(f"{name} is not a numeric array") from None
    if k.shape != (3, 3):
        raise Reject(f"{name} must be 3x3, got shape {k.shape}")
    if not np.isfinite(k).all():
        raise Reject(f"{name} contains non-finite values")
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise Reject(f"{name} focal lengths must be positive, got fx={k[0, 0]:g}, fy={k[1, 1]:g}")
    if k[0, 1] != 0 or k[1, 0] != 0 or not np.allclose(k[2], (0.0, 0.0, 1.0)):
        raise Reject(f"{name} must have the form [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {k.tolist()}")
    return k


def distortion(dist: object) -> np.ndarray | None:
    if dist is None:
        return None
    try:
        d = np.asarray(dist, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise Reject("dist is not a numeric array") from None
    if d.size not in (4, 5, 8, 12, 14):
        raise Reject(f"dist must have 4, 5, 8, 12 or 14 coefficients, got {d.size}")
    if not np.isfinite(d).all():
        raise Reject("dist contains non-finite values")
    return d
