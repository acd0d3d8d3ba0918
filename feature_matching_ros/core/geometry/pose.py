"""Relative camera pose from two-view geometry, and rotation conversions.

Convention (as the geometry module): X_query = R @ X_reference + t for a point X in each camera's
optical frame (x right, y down, z forward). Translations from two views are known up to scale:
unit length for the essential matrix, in units of the plane distance for a homography.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .result import GeometryResult


@dataclass(frozen=True)
class RelativePose:
    """Pose of the query camera relative to the reference camera.

    rotation, translation: X_query = rotation @ X_reference + translation.
    normal: the scene plane's unit normal in the reference camera frame (homography only).
    """

    rotation: np.ndarray
    translation: np.ndarray
    normal: np.ndarray | None = None

    def query_in_reference(self) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) and orientation (3x3) of the query camera expressed in the reference frame."""
        R_t = self.rotation.T
        return -R_t @ self.translation, R_t


def pose_from_homography(
    H: np.ndarray,
    K_reference: np.ndarray,
    K_query: np.ndarray,
    points_reference: np.ndarray,
    points_query: np.ndarray,
) -> RelativePose | None:
    """Decompose H (reference -> query, pixels) into a relative pose; None if no solution fits.

    Of OpenCV's up to four solutions, those that keep the inlier points in front of both cameras
    remain; among them the plane facing the reference camera most directly wins (a nadir camera
    over flat ground, or a camera facing a wall). The translation is in units of the distance
    from the reference camera to the plane.
    """
    k0 = np.asarray(K_reference, np.float64)
    k1 = np.asarray(K_query, np.float64)
    # Express H between normalised cameras of the same intrinsics, so one K serves both sides.
    H_n = np.linalg.inv(k1) @ np.asarray(H, np.float64) @ k0
    count, rotations, translations, normals = cv2.decomposeHomographyMat(H_n, np.eye(3))
    if count == 0:
        return None
    p0 = cv2.undistortPoints(np.asarray(points_reference, np.float64).reshape(-1, 1, 2), k0, None)
    p1 = cv2.undistortPoints(np.asarray(points_query, np.float64).reshape(-1, 1, 2), k1, None)
    keep = cv2.filterHomographyDecompByVisibleRefpoints(
        rotations, normals, p0.astype(np.float32), p1.astype(np.float32)
    )
    candidates = range(count) if keep is None else [int(i) for i in np.asarray(keep).ravel()]
    best = max(candidates, key=lambda i: abs(float(normals[i][2, 0])), default=None)
    if best is None:
        return None
    return RelativePose(
        np.asarray(rotations[best], np.float64),
        np.asarray(translations[best], np.float64).reshape(3),
        np.asarray(normals[best], np.float64).reshape(3),
    )


def pose_from_geometry(
    geometry: GeometryResult,
    K_reference: np.ndarray,
    K_query: np.ndarray,
    points_reference: np.ndarray,
    points_query: np.ndarray,
) -> RelativePose | None:
    """The relative pose a successful Homography or Essential result implies, else None."""
    if not geometry.success:
        return None
    if geometry.rotation is not None and geometry.translation is not None:
        return RelativePose(np.asarray(geometry.rotation), np.asarray(geometry.translation).reshape(3))
    if geometry.model_type == "Homography":
        mask = np.asarray(geometry.inlier_mask, bool)
        return pose_from_homography(
            geometry.model, K_reference, K_query, points_reference[mask], points_query[mask]
        )
    return None


def quaternion_from_matrix(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w >= 0, of a 3x3 rotation matrix."""
    m = np.asarray(R, np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4])
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = np.empty(4)
        q[i] = s / 4
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
        q[3] = (m[k, j] - m[j, k]) / s
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_from_quaternion(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (x, y, z, w)."""
    x, y, z, w = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def pose_covariance(geometry: GeometryResult, focal_px: float) -> np.ndarray:
    """A rough 6x6 covariance (x, y, z, roll, pitch, yaw) of a two-view relative pose.

    The angular standard deviation is the median inlier residual over the focal length, shrunk by
    the square root of the inlier count (at least 0.5 px of residual is assumed). The translation
    has no metric scale here: its standard deviation is that angle in units of the translation's
    own scale (the direction uncertainty), which says nothing about the unknown scale itself.
    """
    residual = (
        max(float(geometry.residual_median_px), 0.5) if np.isfinite(geometry.residual_median_px) else 5.0
    )
    sigma_angle = residual / max(focal_px, 1.0) / np.sqrt(max(geometry.num_inliers, 1))
    return np.diag([sigma_angle**2] * 6)
