"""The last check before the geometry node publishes a pose: finite and physically possible.

The core's gates decide whether a pose is good enough; this decides whether it is a pose at all.
A broken input that slipped past every other check (a calibration with fx = 1e-300, say) gives NaN
or astronomically large positions, and those must never reach a navigation filter as a valid pose.
"""

from __future__ import annotations

import numpy as np

# Map mode: no map fix lies farther from the map origin than the Earth's circumference (map frames
# may have UTM-sized origins), nor higher than this above the ground.
MAX_MAP_DISTANCE_M = 4.0e7
MAX_HEIGHT_M = 1.0e5
# Relative mode: the translation is unit length (essential matrix) or in units of the distance to
# the plane (homography); two views that still overlap are never this many plane distances apart.
MAX_RELATIVE_TRANSLATION = 1.0e3
# Odometry mode: metres from the odometry origin.
MAX_ODOMETRY_DISTANCE_M = 1.0e7
# Rotation matrices: |R^T R - I| and |det R - 1| below this.
ROTATION_TOLERANCE = 1e-3


def pose_problem(
    position: np.ndarray,
    rotation: np.ndarray,
    covariance: np.ndarray,
    max_distance: float,
    height_range: tuple[float, float] | None = None,
) -> str | None:
    """Why ``position`` (3), ``rotation`` (3x3) and ``covariance`` (6x6) are not a pose to publish,
    or None. ``max_distance``: the largest plausible |position|; ``height_range``: (min, max) of
    position z, if it is a height above ground."""
    p = np.asarray(position, np.float64).reshape(-1)
    R = np.asarray(rotation, np.float64)
    C = np.asarray(covariance, np.float64)
    if p.shape != (3,) or not np.isfinite(p).all():
        return f"non-finite position {p.tolist()}"
    if R.shape != (3, 3) or not np.isfinite(R).all():
        return "non-finite orientation"
    if (
        np.abs(R.T @ R - np.eye(3)).max() > ROTATION_TOLERANCE
        or abs(np.linalg.det(R) - 1.0) > ROTATION_TOLERANCE
    ):
        return "the orientation is not a rotation"
    if C.size != 36 or not np.isfinite(C).all():
        return "non-finite covariance"
    C = C.reshape(6, 6)
    if (np.diag(C) < 0.0).any():
        return f"negative variance on the covariance diagonal {np.diag(C).tolist()}"
    distance = float(np.linalg.norm(p))
    if distance > max_distance:
        return f"physically absurd position {p.tolist()} ({distance:.3g} from the origin > {max_distance:g})"
    if height_range is not None and not height_range[0] <= p[2] <= height_range[1]:
        return f"physically absurd height {p[2]:.6g} m (allowed {height_range[0]:g}..{height_range[1]:g} m)"
    return None
