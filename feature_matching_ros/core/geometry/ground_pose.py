"""Camera pose over flat ground from image points of known map positions (z = 0 in the map frame).

Frames and rotation conventions are those of ``frames``. The pose is solved as planar PnP (IPPE,
then Levenberg-Marquardt on all given points); its covariance comes from the reprojection
Jacobian at the solution and the residuals themselves, so few, clustered or noisy points give a
large covariance. ``solve_pose_3d`` does the same for ground points of any height (an elevation
model's, ``terrain``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .frames import body_rotation, euler_from_rotation, tilt

MIN_POINTS = 6
# Matching noise below this is not believed, however well a lucky set of points fits.
RESIDUAL_FLOOR_PX = 0.5


@dataclass(frozen=True, eq=False)
class GroundPose:
    """position: camera centre in the map frame, metres (z = height above the ground plane, or above
    the terrain under the camera with an elevation model).

    R_map_camera: camera orientation. covariance: 6x6 over (x, y, z) and small rotations about
    the map's x, y, z axes (radians), as geometry_msgs/PoseWithCovariance orders them.
    ground_elevation: the map-frame z of the ground under the camera (0 over flat ground), so the
    camera's map-frame point is ``map_position``.
    """

    position: np.ndarray
    R_map_camera: np.ndarray
    covariance: np.ndarray
    num_points: int
    residual_rms_px: float
    ground_elevation: float = 0.0

    @property
    def map_position(self) -> np.ndarray:
        """The camera centre in the map frame with z up from the map frame's z = 0."""
        return self.position + np.array([0.0, 0.0, self.ground_elevation])

    @property
    def height(self) -> float:
        return float(self.position[2])

    @property
    def R_map_body(self) -> np.ndarray:
        return body_rotation(self.R_map_camera)

    @property
    def tilt(self) -> float:
        """Angle of the optical axis from straight down, radians."""
        return tilt(self.R_map_camera)

    @property
    def yaw(self) -> float:
        """Body yaw, radians counter-clockwise from east."""
        return euler_from_rotation(self.R_map_body)[2]

    @property
    def horizontal_sigma(self) -> float:
        return horizontal_sigma(self.covariance)


def horizontal_sigma(covariance: np.ndarray) -> float:
    """Square root of the larger eigenvalue of a position covariance's horizontal block, metres."""
    block = np.asarray(covariance, np.float64)[:2, :2]
    return math.sqrt(max(float(np.linalg.eigvalsh(block).max()), 0.0))


def solve_ground_pose(
    map_points: np.ndarray, image_points: np.ndarray, K: np.ndarray, dist: np.ndarray | None = None
) -> GroundPose | None:
    """The camera pose that images ground points ``map_points`` [N x 2] (map metres) at
    ``image_points`` [N x 2] (pixels); None if fewer than MIN_POINTS or no solution above ground."""
    ground = np.asarray(map_points, np.float64).reshape(-1, 2)
    pixels = np.asarray(image_points, np.float64).reshape(-1, 2)
    if len(ground) < MIN_POINTS or len(ground) != len(pixels):
        return None
    centre = ground.mean(axis=0)  # map coordinates can be large (UTM): solve near the origin
    obj = np.hstack([ground - centre, np.zeros((len(ground), 1))])
    # the mirror solution lies below the ground
    pose = _solve(obj, pixels, K, dist, cv2.SOLVEPNP_IPPE, lambda obj, depth, position: not position[2] <= 0)
    return None if pose is None else replace(pose, position=pose.position + [centre[0], centre[1], 0.0])


def solve_pose_3d(
    map_points: np.ndarray, image_points: np.ndarray, K: np.ndarray, dist: np.ndarray | None = None
) -> GroundPose | None:
    """The camera pose that images map points ``map_points`` [N x 3] (x, y, z metres: ground of any
    shape) at ``image_points`` [N x 2] pixels, its z in the map frame (above z = 0); None if fewer than
    MIN_POINTS or no solution with every point in front of the camera and the camera above them.

    SQPnP (planar and non-planar points alike), then Levenberg-Marquardt on all points; the covariance
    as for ``solve_ground_pose``."""
    points = np.asarray(map_points, np.float64).reshape(-1, 3)
    pixels = np.asarray(image_points, np.float64).reshape(-1, 2)
    if len(points) < MIN_POINTS or len(points) != len(pixels) or not np.isfinite(points).all():
        return None
    centre = points.mean(axis=0)  # solve near the origin (UTM-sized coordinates lose precision)
    obj = points - centre

    def plausible(obj: np.ndarray, depth: np.ndarray, position: np.ndarray) -> bool:
        return not (np.any(depth <= 0) or position[2] <= obj[:, 2].max())

    pose = _solve(obj, pixels, K, dist, cv2.SOLVEPNP_SQPNP, plausible)
    return None if pose is None else replace(pose, position=pose.position + centre)


def _solve(
    obj: np.ndarray,
    pixels: np.ndarray,
    K: np.ndarray,
    dist: np.ndarray | None,
    flags: int,
    plausible: Callable[[np.ndarray, np.ndarray, np.ndarray], bool],
) -> GroundPose | None:
    """PnP of ``obj`` [N x 3] (near the origin) by ``flags``, each solution refined by
    Levenberg-Marquardt on all points; the plausible one (given the points, their depths and the
    camera centre; a non-finite pose is left to the caller's checks) with the smallest reprojection
    error, with its covariance."""
    k = np.asarray(K, np.float64)
    d = None if dist is None or len(dist) == 0 else np.asarray(dist, np.float64)
    try:
        count, rvecs, tvecs, _ = cv2.solvePnPGeneric(obj, pixels, k, d, flags=flags)
    except cv2.error:
        return None
    best = None
    for rvec, tvec in zip(rvecs[:count], tvecs[:count], strict=True):
        rvec, tvec = cv2.solvePnPRefineLM(obj, pixels, k, d, rvec.copy(), tvec.copy())
        R_cam_map = cv2.Rodrigues(rvec)[0]
        position = -R_cam_map.T @ tvec.reshape(3)
        depth = obj @ R_cam_map[2] + float(tvec.reshape(3)[2])
        if not plausible(obj, depth, position):
            continue
        residuals = _reprojection(obj, pixels, k, d, R_cam_map.T, position)
        rms = float(np.sqrt(np.mean(residuals**2)))
        if best is None or rms < best[2]:
            best = (R_cam_map.T, position, rms, residuals)
    if best is None:
        return None
    R_map_camera, position, rms, residuals = best
    covariance = _covariance(obj, pixels, k, d, R_map_camera, position, residuals)
    return GroundPose(position, R_map_camera, covariance, len(obj), rms)


def ground_points(
    pixels: np.ndarray, K: np.ndarray, R_camera: np.ndarray, centre: np.ndarray
) -> np.ndarray | None:
    """Where the pixels of a camera at ``centre`` with orientation ``R_camera`` meet the ground
    (z = 0), [N x 2] metres; None if any looks up."""
    rays = (R_camera @ np.linalg.inv(K) @ np.c_[pixels, np.ones(len(pixels))].T).T
    if len(rays) == 0 or np.any(rays[:, 2] >= -1e-6):
        return None
    scale = centre[2] / -rays[:, 2]
    return centre[:2] + scale[:, None] * rays[:, :2]


def _project(
    obj: np.ndarray, k: np.ndarray, d: np.ndarray | None, R_map_camera: np.ndarray, C: np.ndarray
) -> np.ndarray:
    R_cam_map = R_map_camera.T
    rvec = cv2.Rodrigues(R_cam_map)[0]
    tvec = -R_cam_map @ C
    return cv2.projectPoints(obj, rvec, tvec, k, d)[0].reshape(-1, 2)


def _reprojection(
    obj: np.ndarray,
    pixels: np.ndarray,
    k: np.ndarray,
    d: np.ndarray | None,
    R_map_camera: np.ndarray,
    C: np.ndarray,
) -> np.ndarray:
    return (_project(obj, k, d, R_map_camera, C) - pixels).reshape(-1)


def _covariance(
    obj: np.ndarray,
    pixels: np.ndarray,
    k: np.ndarray,
    d: np.ndarray | None,
    R_map_camera: np.ndarray,
    C: np.ndarray,
    residuals: np.ndarray,
) -> np.ndarray:
    """sigma^2 (J^T J)^-1 with J by central differences over position and map-frame rotations."""
    steps = [1e-3] * 3 + [1e-5] * 3
    columns = []
    for i, h in enumerate(steps):
        delta = np.zeros(6)
        delta[i] = h
        plus = _perturbed(obj, k, d, R_map_camera, C, delta)
        minus = _perturbed(obj, k, d, R_map_camera, C, -delta)
        columns.append((plus - minus) / (2 * h))
    J = np.stack(columns, axis=1)
    dof = max(residuals.size - 6, 1)
    sigma2 = max(float(residuals @ residuals) / dof, RESIDUAL_FLOOR_PX**2)
    info = J.T @ J
    try:
        cov = np.linalg.inv(info) * sigma2
    except np.linalg.LinAlgError:
        return np.diag([1e6] * 6)
    cov = 0.5 * (cov + cov.T)
    if not np.isfinite(cov).all() or np.linalg.eigvalsh(cov).min() <= 0:
        return np.diag([1e6] * 6)
    return cov


def _perturbed(
    obj: np.ndarray,
    k: np.ndarray,
    d: np.ndarray | None,
    R_map_camera: np.ndarray,
    C: np.ndarray,
    delta: np.ndarray,
) -> np.ndarray:
    rotation = cv2.Rodrigues(delta[3:].reshape(3, 1))[0]
    return _project(obj, k, d, rotation @ R_map_camera, C + delta[:3]).reshape(-1)
