import numpy as np
import pytest

from feature_matching_ros.core.errors import ConfigError
from feature_matching_ros.core.geometry import estimate
from feature_matching_ros.core.odometry.keyframe import KeyframePolicy, overlap_fraction


def test_overlap_of_simple_warps():
    assert overlap_fraction(np.eye(3), (640, 480), (640, 480)) == pytest.approx(1.0)
    shift = np.array([[1, 0, 320], [0, 1, 0], [0, 0, 1.0]])
    assert overlap_fraction(shift, (640, 480), (640, 480)) == pytest.approx(0.5)
    half = np.diag([0.5, 0.5, 1.0])
    assert overlap_fraction(half, (640, 480), (640, 480)) == pytest.approx(0.25)
    assert overlap_fraction(np.array([[1, 0, 1000], [0, 1, 0], [0, 0, 1.0]]), (640, 480), (640, 480)) == 0.0
    folding = np.array([[1, 0, 0], [0, 1, 0], [-0.004, 0, 1.0]])  # sends x = 250 to infinity
    assert overlap_fraction(folding, (640, 480), (640, 480)) == 0.0


def _geometry(shift_px: float, count: int = 200):
    rng = np.random.default_rng(0)
    p0 = rng.uniform(0, 640, (count, 2))
    return estimate("Homography", p0, p0 + [shift_px, 0.0])


def test_policy_keeps_a_good_keyframe_and_renews_on_each_condition():
    policy = KeyframePolicy(min_inliers=50, min_overlap=0.6, max_frames=10)
    size = (640, 480)
    assert not policy.decide(_geometry(10), size, size, 1).replace
    low_overlap = policy.decide(_geometry(320), size, size, 1)
    assert low_overlap.replace and "overlap 0.50 < 0.60" in low_overlap.reason
    few = policy.decide(_geometry(10, count=30), size, size, 1)
    assert few.replace and "inliers 30 < 50" in few.reason
    assert "10 frames" in policy.decide(_geometry(10), size, size, 10).reason
    lost = policy.decide(estimate("Homography", np.zeros((3, 2)), np.zeros((3, 2))), size, size, 1)
    assert lost.replace and lost.reason.startswith("lost the keyframe")
    assert policy.decide(None, size, size, 1).replace


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_inliers": -1}, "min_inliers"),
        ({"min_overlap": 1.5}, "min_overlap"),
        ({"max_frames": -2}, "max_frames"),
    ],
)
def test_policy_rejects_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        KeyframePolicy(**kwargs)
