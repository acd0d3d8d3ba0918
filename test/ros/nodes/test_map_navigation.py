"""Map navigation over real DDS: both nodes in one process, a simulated flight played frame by frame."""

import numpy as np
import pytest

from feature_matching_ros.cli import simulate
from feature_matching_ros.ros.bags.flight_bag import read_truth

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    out = tmp_path_factory.mktemp("ros-sim") / "flight"
    args = ["--out", str(out), "--frames", "8", "--map-size", "1024", "--seed", "7", "--tilt", "10"]
    assert simulate.main([*args, "--altitude-variation", "0.3", "--appearance", "strong"]) == 0
    (out / "map.yaml").write_text(
        (out / "map.yaml").read_text() + "geodetic_origin: [41.27, -81.75, 250.0]\n"
    )
    return out


def test_both_nodes_localise_a_simulated_flight(ros_context, flight):
    from feature_matching_ros.ros.bags.pipeline_run import run_on_bag

    map_image = str(flight / "map.png")
    parameters = {
        "feature_matcher": {"reference_mode": "map", "map_image": map_image, "matcher": "sift"},
        "geometry": {"mode": "map", "map_image": map_image},
    }
    outcomes = run_on_bag(flight / "bag", parameters, exclude=["ground_truth/pose"])
    truth = read_truth(flight / "bag")
    assert len(outcomes) == 8
    for outcome in outcomes:
        assert outcome.geometry is not None, "every frame gets an answer"
        assert outcome.geometry.pose_published, outcome.geometry.pose_status
        pose = outcome.pose.pose
        position = np.array([pose.pose.position.x, pose.pose.position.y, pose.pose.position.z])
        expected = truth.at(outcome.stamp_ns)[0]
        assert np.linalg.norm(position[:2] - expected[:2]) < 0.5
        assert abs(position[2] - expected[2]) < 1.0
        covariance = np.array(pose.covariance).reshape(6, 6)
        assert np.all(np.linalg.eigvalsh(covariance) > 0)
        assert outcome.pose.header.frame_id == "map"


def test_a_map_without_georeference_reports_the_error(ros_context, flight, tmp_path):
    import cv2

    from feature_matching_ros.core.errors import FeatureMatchingError
    from feature_matching_ros.ros.bags.pipeline_run import run_on_bag

    bare = tmp_path / "bare.png"
    cv2.imwrite(str(bare), cv2.imread(str(flight / "map.png")))
    parameters = {
        "feature_matcher": {"reference_mode": "map", "map_image": str(bare), "matcher": "sift"},
        "geometry": {"mode": "map", "map_image": str(bare)},
    }
    with pytest.raises(FeatureMatchingError, match="georeference"):
        run_on_bag(flight / "bag", parameters, exclude=["ground_truth/pose"], answer_timeout=2.0)


def test_keyframe_odometry_through_both_nodes(ros_context, flight):
    from feature_matching_ros.ros.bags.pipeline_run import run_on_bag

    parameters = {
        "feature_matcher": {"reference_mode": "keyframe", "matcher": "sift", "max_keypoints": 4000},
        "geometry": {"mode": "odometry"},
    }
    # the first frame becomes the keyframe and gets no answer
    outcomes = run_on_bag(flight / "bag", parameters, exclude=["ground_truth/pose"], first_answered=False)
    truth = read_truth(flight / "bag")
    assert outcomes[0].odometry is None  # the first frame is the keyframe: no motion to report
    registered = [o for o in outcomes[1:] if o.odometry is not None]
    assert len(registered) == len(outcomes) - 1, [o.geometry.pose_status for o in outcomes if o.geometry]
    first, last = registered[0], registered[-1]
    assert first.odometry.header.frame_id == "odom" and first.odometry.child_frame_id == "base_link"

    def xy(o):
        p = o.odometry.pose.pose.position
        return np.array([p.x, p.y])

    moved = np.linalg.norm(xy(last) - xy(first))
    expected = np.linalg.norm(truth.at(last.stamp_ns)[0][:2] - truth.at(first.stamp_ns)[0][:2])
    assert moved == pytest.approx(expected, rel=0.05)
    heights = [o.odometry.pose.pose.position.z for o in registered]
    assert np.allclose(heights, [truth.at(o.stamp_ns)[0][2] for o in registered], rtol=0.01)
