import numpy as np
import pytest

from feature_matching_ros.core.geometry.estimation import estimate
from feature_matching_ros.core.geometry.pose import (
    matrix_from_quaternion,
    pose_covariance,
    pose_from_geometry,
    pose_from_homography,
    quaternion_from_matrix,
)

K = np.array([[557.5, 0, 400], [0, 557.5, 300], [0, 0, 1]])


def rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(np.array([rx, ry, rz], np.float64))[0]


def plane_scene(R: np.ndarray, t: np.ndarray, n: np.ndarray, d: float, count: int = 200, seed: int = 0):
    """Pixels of points on the plane n.X = d (reference frame) in both cameras, and the true H."""
    rng = np.random.default_rng(seed)
    pixels = np.column_stack([rng.uniform(50, 750, count), rng.uniform(50, 550, count), np.ones(count)])
    rays = pixels @ np.linalg.inv(K).T
    X = rays * (d / (rays @ n))[:, None]
    Xq = X @ R.T + t
    q = Xq @ K.T
    H = K @ (R + np.outer(t, n) / d) @ np.linalg.inv(K)
    return pixels[:, :2], q[:, :2] / q[:, 2:], H / H[2, 2]


@pytest.mark.parametrize("seed", range(5))
def test_homography_decomposition_recovers_pose(seed):
    rng = np.random.default_rng(seed)
    R = rotation(*rng.uniform(-0.15, 0.15, 3))
    t = rng.uniform(-0.3, 0.3, 3)
    n = np.array([0.05, -0.1, 1.0])
    n /= np.linalg.norm(n)
    d = 100.0
    p_ref, p_query, H = plane_scene(R, t, n, d, seed=seed)
    pose = pose_from_homography(H, K, K, p_ref, p_query)
    assert pose is not None
    np.testing.assert_allclose(pose.rotation, R, atol=1e-6)
    np.testing.assert_allclose(pose.translation, t / d, atol=1e-6)
    np.testing.assert_allclose(pose.normal, n, atol=1e-6)
    position, orientation = pose.query_in_reference()
    np.testing.assert_allclose(orientation @ np.zeros(3) + position, -R.T @ t / d, atol=1e-9)


def test_pose_from_estimated_homography_and_essential():
    R = rotation(0.05, -0.08, 0.2)
    t = np.array([0.3, -0.1, 0.05])
    n = np.array([0.0, 0.0, 1.0])
    p_ref, p_query, _ = plane_scene(R, t, n, 50.0)
    geometry = estimate("Homography", p_ref, p_query)
    pose = pose_from_geometry(geometry, K, K, p_ref, p_query)
    np.testing.assert_allclose(pose.rotation, R, atol=1e-5)
    np.testing.assert_allclose(pose.translation, t / 50.0, atol=1e-5)

    rng = np.random.default_rng(3)
    X = np.column_stack([rng.uniform(-20, 20, 300), rng.uniform(-15, 15, 300), rng.uniform(40, 80, 300)])
    a = X @ K.T
    b = (X @ R.T + t) @ K.T
    essential = estimate("Essential", a[:, :2] / a[:, 2:], b[:, :2] / b[:, 2:], K0=K, K1=K)
    pose = pose_from_geometry(essential, K, K, a[:, :2] / a[:, 2:], b[:, :2] / b[:, 2:])
    np.testing.assert_allclose(pose.rotation, R, atol=1e-4)
    np.testing.assert_allclose(pose.translation, t / np.linalg.norm(t), atol=5e-3)  # MAGSAC polish: ~1e-3


def test_failed_or_fundamental_geometry_gives_no_pose():
    p = np.random.default_rng(0).uniform(0, 100, (5, 2))
    failed = estimate("Homography", p[:3], p[:3])
    assert not failed.success
    assert pose_from_geometry(failed, K, K, p[:3], p[:3]) is None
    R = rotation(0.05, -0.08, 0.2)
    p_ref, p_query, _ = plane_scene(R, np.array([0.3, 0, 0]), np.array([0.0, 0.0, 1.0]), 50.0)
    fundamental = estimate(
        "Fundamental", p_ref + np.random.default_rng(1).normal(0, 0.1, p_ref.shape), p_query
    )
    assert pose_from_geometry(fundamental, K, K, p_ref, p_query) is None


@pytest.mark.parametrize("seed", range(20))
def test_quaternion_round_trip(seed):
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-np.pi, np.pi, 3) if seed else np.array([np.pi, 0, 0])  # 180 deg: trace -1
    R = rotation(*angles)
    q = quaternion_from_matrix(R)
    assert abs(np.linalg.norm(q) - 1) < 1e-12 and q[3] >= 0
    np.testing.assert_allclose(matrix_from_quaternion(q), R, atol=1e-12)


def test_covariance_shrinks_with_inliers():
    R = rotation(0.05, -0.08, 0.2)
    p_ref, p_query, _ = plane_scene(R, np.array([0.3, 0, 0]), np.array([0.0, 0.0, 1.0]), 50.0, count=400)
    noise = np.random.default_rng(2).normal(0, 1.0, p_query.shape)
    many = estimate("Homography", p_ref, p_query + noise)
    few = estimate("Homography", p_ref[:40], p_query[:40] + noise[:40])
    c_many, c_few = pose_covariance(many, 557.5), pose_covariance(few, 557.5)
    assert c_many.shape == (6, 6) and np.all(np.diag(c_many) > 0)
    assert c_many[3, 3] < c_few[3, 3]
