import math

import numpy as np
import pytest

from feature_matching_ros.core.geometry.frames import (
    R_BODY_CAMERA,
    body_rotation,
    camera_rotation,
    euler_from_rotation,
    rotation_from_euler,
    tilt,
    wrap_angle,
    yaw_from_heading,
)


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (0.1, -0.2, 2.5), (-0.3, 0.4, -3.0)])
def test_euler_round_trip(angles):
    R = rotation_from_euler(*angles)
    assert np.allclose(R @ R.T, np.eye(3))
    assert np.isclose(np.linalg.det(R), 1.0)
    assert np.allclose(euler_from_rotation(R), angles)


def test_level_nadir_camera_looks_down_with_image_top_forward():
    yaw = math.radians(30)
    R_map_camera = camera_rotation(rotation_from_euler(0.0, 0.0, yaw))
    assert np.allclose(R_map_camera[:, 2], [0, 0, -1])  # optical axis straight down
    forward = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    assert np.allclose(-R_map_camera[:, 1], forward)  # image up = the nose
    assert tilt(R_map_camera) == pytest.approx(0.0, abs=1e-9)
    assert np.isclose(np.linalg.det(R_BODY_CAMERA), 1.0)


def test_roll_tilts_the_camera_by_the_roll_angle():
    R_map_body = rotation_from_euler(math.radians(7), 0.0, 1.0)
    assert math.degrees(tilt(camera_rotation(R_map_body))) == pytest.approx(7.0)
    assert np.allclose(body_rotation(camera_rotation(R_map_body)), R_map_body)


def test_heading_and_angle_wrapping():
    assert yaw_from_heading(0.0) == pytest.approx(math.pi / 2)  # north
    assert yaw_from_heading(90.0) == pytest.approx(0.0)  # east
    assert wrap_angle(3 * math.pi) == pytest.approx(math.pi)
    assert wrap_angle(-math.pi / 2 - 2 * math.pi) == pytest.approx(-math.pi / 2)
