"""Evaluation of homographies: ``warp_points`` and ``corner_error``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from feature_matching_ros.core.geometry import corner_error, warp_points

WIDTH, HEIGHT = 640, 480


def test_corner_error_of_a_known_shift() -> None:
    shift = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 4.0], [0.0, 0.0, 1.0]])
    assert corner_error(np.eye(3), shift, WIDTH, HEIGHT) == pytest.approx(5.0)
    assert corner_error(shift, shift, WIDTH, HEIGHT) == 0.0
    # Scaling by 2 about the origin moves the corners (0,0), (639,0), (639,479), (0,479) by their own length.
    scale = np.diag([2.0, 2.0, 1.0])
    expected = (0.0 + 639.0 + math.hypot(639.0, 479.0) + 479.0) / 4.0
    assert corner_error(scale, np.eye(3), WIDTH, HEIGHT) == pytest.approx(expected)


def test_corner_error_is_infinite_when_a_corner_goes_to_infinity() -> None:
    to_infinity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert corner_error(to_infinity, np.eye(3), WIDTH, HEIGHT) == math.inf


def test_warp_points() -> None:
    H = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(warp_points(H, np.array([[1.0, 1.0], [0.0, 2.0]])), [[3.0, 2.0], [1.0, 5.0]])
    perspective = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 1.0]])
    np.testing.assert_allclose(warp_points(perspective, np.array([[2.0, 4.0]])), [[1.0, 2.0]])
    assert warp_points(np.eye(3), np.zeros((0, 2))).shape == (0, 2)
