"""The geometry node's last check before publishing a pose: every way a pose can be broken."""

import numpy as np
import pytest

from feature_matching_ros.ros.conversions.pose_check import pose_problem

NAN, INF = float("nan"), float("inf")
GOOD = (np.array([10.0, -20.0, 120.0]), np.eye(3), np.eye(6) * 0.01)


def test_a_good_pose_passes():
    assert pose_problem(*GOOD, 1e3, (0.0, 1e5)) is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({0: np.array([NAN, 0.0, 100.0])}, "non-finite position"),
        ({0: np.array([0.0, 0.0, INF])}, "non-finite position"),
        ({1: np.full((3, 3), NAN)}, "non-finite orientation"),
        ({1: np.diag([1.0, 1.0, 2.0])}, "the orientation is not a rotation"),
        ({1: np.diag([1.0, 1.0, -1.0])}, "the orientation is not a rotation"),  # a reflection
        ({2: np.full((6, 6), NAN)}, "non-finite covariance"),
        ({2: np.eye(6) * INF}, "non-finite covariance"),
        ({2: -np.eye(6)}, "negative variance"),
        ({0: np.array([-8.2e4, -1.1e7, 9.7e11])}, "physically absurd position"),
        ({0: np.array([0.0, 0.0, -5.0])}, "physically absurd height -5 m"),
        ({0: np.array([0.0, 0.0, 2e5])}, "physically absurd"),
    ],
)
def test_broken_poses_are_named(change, why):
    parts = list(GOOD)
    for index, value in change.items():
        parts[index] = value
    problem = pose_problem(*parts, 1e6 if why != "physically absurd position" else 1e3, (0.0, 1e5))
    assert problem is not None and why in problem, problem
