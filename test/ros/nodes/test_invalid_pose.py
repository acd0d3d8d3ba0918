"""The geometry node over real DDS never publishes a NaN or absurd pose as valid.

A camera_info with an impossible focal length (1e-300, 1e300, 1e-6 px for a 640x480 camera) is
refused with a diagnostics ERROR; and should a broken calibration get past that check, the pose it
yields (NaN, or 1e12 plane distances away) is not published: GeometryEstimate.pose_published is
false, pose_status and /diagnostics say why.
"""

import numpy as np
import pytest

from feature_matching_ros.core.geometry import warp_points
from feature_matching_ros.core.simulation.aerial_texture import procedural_map
from feature_matching_ros.core.simulation.flight_sim import CameraSpec, FlightPlan, fly, map_to_image

from ..conftest import spin_until
from ..harness import camera_info, stamp

pytestmark = pytest.mark.ros
CAMERA = CameraSpec(640, 480, 60.0)
ABSURD_FOCAL_LENGTHS = [1e-300, 1e300, 1e-6]


def _keyframe_matches(t: float):
    """Matches of a frame to its keyframe (same camera) over textured ground, 2 m apart at 100 m."""
    from feature_matching_ros.msg import MatchArray

    from feature_matching_ros.ros.conversions.messages import float32_array

    geomap = procedural_map(512, 512, 0.5, seed=2)
    plan = FlightPlan(np.array([[-30.0, -20.0], [40.0, 30.0]]), speed=10.0, altitude=100.0, tilt_deg=0.0)
    key, frame = fly(plan, 2)
    rng = np.random.default_rng(0)
    grid = rng.uniform([100, 100], [540, 380], (300, 2))
    on_map = warp_points(np.linalg.inv(map_to_image(geomap.georef, CAMERA.K, key)), grid)
    frame_points = warp_points(map_to_image(geomap.georef, CAMERA.K, frame), on_map)
    msg = MatchArray(reference_id="keyframe", reference_stamp=stamp(t - 0.2), matcher="exact")
    msg.header.stamp = stamp(t)
    msg.header.frame_id = msg.reference_frame_id = "camera_optical"
    msg.query_width = msg.reference_width = CAMERA.width
    msg.query_height = msg.reference_height = CAMERA.height
    msg.query_points = float32_array(frame_points + rng.normal(0, 0.3, grid.shape))
    msg.reference_points = float32_array(grid)
    msg.confidence = float32_array(np.ones(len(grid)))
    return msg


def _bad_camera(fx: float):
    from feature_matching_ros.ros.conversions.camera import CameraModel

    K = [[fx, 0.0, CAMERA.width / 2], [0.0, fx, CAMERA.height / 2], [0.0, 0.0, 1.0]]
    return CameraModel(K=K, D=[], width=CAMERA.width, height=CAMERA.height, frame_id="camera_optical")


@pytest.mark.parametrize("fx", ABSURD_FOCAL_LENGTHS)
def test_camera_info_with_an_impossible_focal_length_is_refused(running, fx):
    harness, executor, nodes = running(geometry={})
    harness.info_pub.publish(camera_info(CAMERA.width, CAMERA.height, stamp(100.0), fx))
    status = harness.wait_for_error(executor, "geometry", "implausible")
    assert "bad camera_info" in status.message and "0.05-1000 x the larger image side" in status.message
    assert nodes["geometry"]._camera is None
    harness.matches_pub.publish(_keyframe_matches(100.0))
    estimate = harness.wait_for(executor, "geometry", 1)
    assert not estimate.pose_published and estimate.pose_status == "no camera_info received yet"
    executor.spin_once(timeout_sec=0.2)
    assert not harness.received["pose"]


def test_a_good_camera_still_gives_a_pose(running):
    harness, executor, nodes = running(geometry={})
    harness.info_pub.publish(camera_info(CAMERA.width, CAMERA.height, stamp(100.0), CAMERA.K[0, 0]))
    spin_until(executor, lambda: nodes["geometry"]._camera is not None, what="camera_info")
    harness.matches_pub.publish(_keyframe_matches(100.0))
    estimate = harness.wait_for(executor, "geometry", 1)
    assert estimate.pose_published, estimate.pose_status
    p = harness.wait_for(executor, "pose", 1).pose.pose.position
    assert np.isfinite([p.x, p.y, p.z]).all()


@pytest.mark.parametrize(
    ("fx", "why"), [(1e-300, "non-finite"), (1e300, "non-finite"), (1e-6, "not a rotation")]
)
def test_a_nan_or_absurd_relative_pose_is_not_published(running, fx, why):
    harness, executor, nodes = running(geometry={})
    nodes["geometry"]._camera = _bad_camera(fx)  # as if a broken calibration had passed the checks
    harness.matches_pub.publish(_keyframe_matches(100.0))
    estimate = harness.wait_for(executor, "geometry", 1)
    assert not estimate.pose_published
    assert estimate.pose_status.startswith("pose not published: ") and why in estimate.pose_status
    status = harness.wait_for_error(executor, "geometry", "pose not published")
    assert "invalid pose" in status.message
    executor.spin_once(timeout_sec=0.2)
    assert not harness.received["pose"]


def test_a_nan_odometry_pose_is_not_published(running):
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    harness, executor, nodes = running(geometry={"mode": "odometry", "default_height": 100.0})
    odometry = []
    harness.node.create_subscription(
        Odometry, "odometry", odometry.append, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    nodes["geometry"]._camera = _bad_camera(1e-300)
    harness.matches_pub.publish(_keyframe_matches(100.0))
    estimate = harness.wait_for(executor, "geometry", 1)
    assert not estimate.pose_published
    assert estimate.pose_status.startswith("pose not published: non-finite position"), estimate.pose_status
    harness.wait_for_error(executor, "geometry", "pose not published")
    executor.spin_once(timeout_sec=0.2)
    assert not odometry


@pytest.mark.parametrize(
    ("position", "why"),
    [((np.nan, 0.0, 100.0), "non-finite position"), ((10.0, 20.0, 2.0e14), "physically absurd")],
)
def test_a_nan_or_absurd_map_fix_is_not_published(running, tmp_path, monkeypatch, position, why):
    """Map mode: should the core ever accept a fix whose pose is NaN or 2e14 m high (its gates catch
    those today), the node still publishes no pose, NavSatFix or path for it."""
    import dataclasses

    from feature_matching_ros.msg import MatchArray
    from nav_msgs.msg import Path
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from feature_matching_ros.core.simulation.aerial_texture import save_map
    from feature_matching_ros.ros.conversions.messages import float32_array
    from feature_matching_ros.ros.nodes import geometry_node

    real = geometry_node.estimate_fix

    def broken(*args, **kwargs):
        fix = real(*args, **kwargs)
        assert fix.accepted, fix.reason  # the exact matches below give a good fix
        pose = dataclasses.replace(fix.pose, position=np.array(position))
        return dataclasses.replace(fix, pose=pose)

    monkeypatch.setattr(geometry_node, "estimate_fix", broken)
    geomap = procedural_map(1024, 1024, 0.5, seed=4)
    map_path = save_map(geomap, tmp_path / "map.png")
    harness, executor, nodes = running(geometry={"mode": "map", "map_image": str(map_path)})
    paths = []
    harness.node.create_subscription(
        Path, "path", paths.append, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    plan = FlightPlan(np.array([[0.0, 0.0], [30.0, 10.0]]), altitude=110.0, tilt_deg=3.0, yaw=-60.0)
    state = fly(plan, 1)[0]
    harness.info_pub.publish(camera_info(CAMERA.width, CAMERA.height, stamp(100.0), CAMERA.K[0, 0]))
    spin_until(executor, lambda: nodes["geometry"]._camera is not None, what="camera_info")
    rng = np.random.default_rng(3)
    frame_points = rng.uniform([20, 20], [620, 460], (200, 2))
    map_points = warp_points(np.linalg.inv(map_to_image(geomap.georef, CAMERA.K, state)), frame_points)
    msg = MatchArray(reference_id="map", matcher="exact")
    msg.header.stamp = stamp(100.0)
    msg.query_width, msg.query_height = CAMERA.width, CAMERA.height
    msg.reference_width, msg.reference_height = geomap.size
    msg.query_points = float32_array(frame_points + rng.normal(0, 0.3, frame_points.shape))
    msg.reference_points = float32_array(map_points)
    msg.confidence = float32_array(np.ones(200))
    harness.matches_pub.publish(msg)
    estimate = harness.wait_for(executor, "geometry", 1)
    assert not estimate.pose_published
    assert estimate.pose_status.startswith(f"pose not published: {why}"), estimate.pose_status
    harness.wait_for_error(executor, "geometry", "pose not published")
    executor.spin_once(timeout_sec=0.2)
    assert not harness.received["pose"] and not paths
    assert nodes["geometry"]._last_fix is None  # the next fix is not checked against it
