import numpy as np
import pytest

from feature_matching_ros.core.errors import ConfigError
from feature_matching_ros.core.geometry import estimate
from feature_matching_ros.core.odometry.keyframe import KeyframePolicy, KeyframeTrack, overlap_fraction


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


SIZES = ((640, 480), (640, 480))


def test_track_keeps_its_keyframe_counts_frames_and_renews_it_by_the_policy():
    track = KeyframeTrack(KeyframePolicy(min_inliers=50, min_overlap=0.6, max_frames=3))
    track.restart(0.0, "frame 0")
    assert track.keyframe.frame == track.previous.frame == "frame 0"
    assert track.fallback() is None  # the last registered frame is the keyframe
    for i in (1, 2):
        decision = track.registered(float(i), f"frame {i}", track.keyframe, _geometry(10), SIZES)
        assert not decision.replace
        assert (track.keyframe.frame, track.keyframe.matched) == ("frame 0", i)
        assert track.previous.frame == f"frame {i}"
    decision = track.registered(3.0, "frame 3", track.keyframe, _geometry(10), SIZES)
    assert decision.replace and "3 frames" in decision.reason
    assert (track.keyframe.stamp, track.keyframe.frame, track.keyframe.matched) == (3.0, "frame 3", 0)
    lost = track.registered(4.0, "frame 4", track.keyframe, _geometry(320), SIZES)
    assert lost.replace and track.keyframe.frame == "frame 4"


def test_the_last_frame_stands_in_for_a_keyframe_that_slipped_away():
    track = KeyframeTrack(KeyframePolicy(min_inliers=50, min_overlap=0.6))
    track.restart(0.0, "keyframe")
    track.registered(1.0, "frame 1", track.keyframe, _geometry(10), SIZES)
    fallback = track.fallback()
    assert (fallback.stamp, fallback.frame, fallback.matched) == (1.0, "frame 1", 0)
    assert track.keyframe.frame == "keyframe"  # offering the fallback changes nothing
    decision = track.registered(2.0, "frame 2", fallback, _geometry(10), SIZES)
    assert not decision.replace
    assert (track.keyframe.frame, track.keyframe.matched, track.previous.frame) == ("frame 1", 1, "frame 2")


def test_a_registration_against_another_key_need_not_adopt_it():
    """The optical flow's keyframe: a frame registered against it moves the last frame on and renews
    the keyframe by the policy, but does not make the flow's keyframe the track's keyframe."""
    track = KeyframeTrack(KeyframePolicy(min_inliers=50, min_overlap=0.6))
    track.restart(0.0, "keyframe")
    track.registered(1.0, "frame 1", track.keyframe, _geometry(10), SIZES)
    flow_key = track.fallback()
    decision = track.registered(2.0, "frame 2", flow_key, _geometry(10), SIZES, adopt=False)
    assert not decision.replace and flow_key.matched == 1
    assert track.keyframe.frame == "keyframe" and track.previous.frame == "frame 2"
    assert track.registered(3.0, "frame 3", flow_key, _geometry(320), SIZES, adopt=False).replace
    assert track.keyframe.frame == "frame 3"
    track.clear()
    assert track.keyframe is None and track.previous is None and track.fallback() is None
