import math

import numpy as np
import pytest

from feature_matching_ros.core.geometry.frames import (
    camera_rotation,
    euler_from_rotation,
    rotation_from_euler,
)
from feature_matching_ros.core.geometry.ground_pose import solve_ground_pose

K = np.array([[554.3, 0.0, 320.0], [0.0, 554.3, 240.0], [0.0, 0.0, 1.0]])
POSITION = np.array([350_000.0, 4_500_000.0, 120.0])  # UTM-sized coordinates on purpose
ATTITUDE = (math.radians(4), math.radians(-3), math.radians(130))


def _observations(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pixels spread over the frame and the ground points they see (z = 0)."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform([0, 0], [640, 480], (n, 2))
    rays = (
        camera_rotation(rotation_from_euler(*ATTITUDE)) @ np.linalg.inv(K) @ np.c_[pixels, np.ones(n)].T
    ).T
    ground = POSITION[:2] + (POSITION[2] / -rays[:, 2])[:, None] * rays[:, :2]
    return ground, pixels


def test_exact_observations_give_the_exact_pose():
    ground, pixels = _observations(100)
    pose = solve_ground_pose(ground, pixels, K)
    assert np.allclose(pose.position, POSITION, atol=1e-4)
    assert np.allclose(euler_from_rotation(pose.R_map_body), ATTITUDE, atol=1e-7)
    assert pose.height == pytest.approx(120.0)
    assert math.degrees(pose.tilt) == pytest.approx(5.0, abs=0.01)
    assert pose.residual_rms_px < 1e-3


def test_noise_stays_within_the_reported_uncertainty():
    ground, pixels = _observations(300, seed=1)
    rng = np.random.default_rng(2)
    errors, sigmas = [], []
    for _ in range(20):
        pose = solve_ground_pose(ground, pixels + rng.normal(0, 1.0, pixels.shape), K)
        errors.append(np.linalg.norm(pose.position[:2] - POSITION[:2]))
        sigmas.append(pose.horizontal_sigma)
        assert np.all(np.linalg.eigvalsh(pose.covariance) > 0)
        assert 0.8 < pose.residual_rms_px < 1.2
    # the covariance comes from the data: errors are of the size it states, not far beyond it
    assert np.median(errors) < 2.0 * np.median(sigmas)
    assert np.median(sigmas) < 1.0


def test_fewer_points_give_a_larger_covariance():
    ground, pixels = _observations(300, seed=3)
    noisy = pixels + np.random.default_rng(4).normal(0, 1.0, pixels.shape)
    many = solve_ground_pose(ground, noisy, K)
    few = solve_ground_pose(ground[:12], noisy[:12], K)
    assert few.horizontal_sigma > 2.0 * many.horizontal_sigma


def test_too_few_or_inconsistent_points_give_no_pose():
    ground, pixels = _observations(10)
    assert solve_ground_pose(ground[:5], pixels[:5], K) is None
    assert solve_ground_pose(ground, pixels[:9], K) is None
