"""The outcome of an estimation, ``GeometryResult``, and the evaluation of homographies."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GeometryResult:
    """Outcome of one robust estimation.

    model: 3x3 for Homography / Fundamental / Essential (H scaled so H[2, 2] = 1 where possible,
    F and E to unit Frobenius norm), 3x4 [R | t] for PnP, None on failure. inlier_mask: [N] bool
    with N the number of input correspondences (all False on failure). Residuals are in pixels
    over the inliers (NaN without a model). rotation (3x3) and translation (3,) are set for
    Essential (relative pose, unit translation) and PnP (world to camera), else None.

    ``success`` means the checks here passed and at least MIN_INLIERS points support the model;
    among few matches that much support can arise by chance, so judge ``num_inliers`` and
    ``inlier_ratio`` before trusting a model.
    """

    model_type: str
    method: str
    success: bool
    reason: str
    model: np.ndarray | None
    inlier_mask: np.ndarray
    num_matches: int
    num_inliers: int
    inlier_ratio: float
    residual_mean_px: float
    residual_median_px: float
    residual_max_px: float
    rotation: np.ndarray | None = None
    translation: np.ndarray | None = None

    @classmethod
    def failure(cls, model_type: str, method: str, reason: str, num_matches: int) -> GeometryResult:
        """A result without a model; ``reason`` says why, for the operator."""
        nan = float("nan")
        return cls(
            model_type,
            method,
            False,
            reason,
            None,
            np.zeros(num_matches, bool),
            num_matches,
            0,
            0.0,
            nan,
            nan,
            nan,
        )


def warp_points(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points [N x 2] mapped by the 3x3 homography H, as [N x 2] float64.

    Points that H sends to infinity come back non-finite.
    """
    h = np.asarray(H, np.float64).reshape(3, 3)
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    q = p @ h[:, :2].T + h[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return q[:, :2] / q[:, 2:]


def corner_error(H_est: np.ndarray, H_true: np.ndarray, width: int, height: int) -> float:
    """Mean distance in pixels between the four image corners mapped by ``H_est`` and by ``H_true``.

    The corners are the centres of the corner pixels, (0, 0), (w-1, 0), (w-1, h-1), (0, h-1).
    Returns inf if either homography sends a corner to infinity.
    """
    w, h = width - 1.0, height - 1.0
    corners = np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
    error = np.linalg.norm(warp_points(H_est, corners) - warp_points(H_true, corners), axis=1).mean()
    return float(error) if np.isfinite(error) else math.inf
