"""Coordinate frames of a nadir camera on an aircraft, per REP 103.

- map: east-north-up metres (x east, y north, z up); the ground is the plane z = 0.
- body (base_link): x forward, y left, z up; attitude R_map_body = Rz(yaw) @ Ry(pitch) @ Rx(roll),
  yaw counter-clockwise from east (REP 103), so a compass heading h is yaw = 90° - h.
- camera (optical): x right, y down, z forward (along the optical axis).

The camera looks straight down with the top of its image towards the nose: image right is the
aircraft's right wing, image down is its tail. Level flight therefore gives a camera z axis of
(0, 0, -1) in the map frame. The camera sits at the body origin.
"""

from __future__ import annotations

import math

import numpy as np

# Columns: the camera's x, y, z axes expressed in the body frame.
R_BODY_CAMERA = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
R_BODY_CAMERA.setflags(write=False)


def rotation_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R_map_body from roll, pitch, yaw in radians (intrinsic Z-Y-X, as REP 103)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def euler_from_rotation(R: np.ndarray) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in radians of R_map_body; yaw in (-pi, pi]."""
    m = np.asarray(R, np.float64)
    pitch = math.asin(float(np.clip(-m[2, 0], -1.0, 1.0)))
    roll = math.atan2(m[2, 1], m[2, 2])
    yaw = math.atan2(m[1, 0], m[0, 0])
    return roll, pitch, yaw


def camera_rotation(R_map_body: np.ndarray) -> np.ndarray:
    """R_map_camera of the nadir camera for a body attitude."""
    return np.asarray(R_map_body, np.float64) @ R_BODY_CAMERA


def body_rotation(R_map_camera: np.ndarray) -> np.ndarray:
    """R_map_body for a nadir-camera attitude (inverse of ``camera_rotation``)."""
    return np.asarray(R_map_camera, np.float64) @ R_BODY_CAMERA.T


def tilt(R_map_camera: np.ndarray) -> float:
    """Angle in radians between the optical axis and straight down."""
    down = -float(np.asarray(R_map_camera, np.float64)[2, 2])
    return math.acos(float(np.clip(down, -1.0, 1.0)))


def yaw_from_heading(heading_deg: float) -> float:
    """REP 103 yaw (radians, counter-clockwise from east) of a compass heading (degrees from north)."""
    return math.radians(90.0 - heading_deg)


def wrap_angle(angle: float) -> float:
    """The same angle in (-pi, pi]."""
    wrapped = math.fmod(angle + math.pi, 2.0 * math.pi)
    if wrapped <= 0.0:
        wrapped += 2.0 * math.pi
    return wrapped - math.pi
