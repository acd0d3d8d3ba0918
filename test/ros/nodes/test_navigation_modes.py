"""The geometry node on exact correspondences of a simulated flight: odometry and the map -> odom
correction in odometry mode; bad aids refused in map mode while fixes go on."""

import math

import numpy as np
import pytest

from feature_matching_ros.core.geometry import warp_points
from feature_matching_ros.core.geometry.frames import euler_from_rotation
from feature_matching_ros.core.geometry.pose import matrix_from_quaternion, quaternion_from_matrix
from feature_matching_ros.core.simulation.aerial_texture import procedural_map
from feature_matching_ros.core.simulation.flight_sim import CameraSpec, FlightPlan, fly, map_to_image

from ..conftest import spin_until
from ..harness import camera_info, stamp

pytestmark = pytest.mark.ros
CAMERA = CameraSpec(640, 480, 60.0)


def _match_array(georef, states, i_key, i_frame, rng):
    from feature_matching_ros.msg import MatchArray

    from feature_matching_ros.ros.conversions.messages import float32_array

    grid = rng.uniform([100, 100], [540, 380], (300, 2))  # keyframe pixels
    H_key = map_to_image(georef, CAMERA.K, states[i_key])
    H_frame = map_to_image(georef, CAMERA.K, states[i_frame])
    on_map = warp_points(np.linalg.inv(H_key), grid)
    frame_points = warp_points(H_frame, on_map) + rng.normal(0, 0.3, grid.shape)
    msg = MatchArray(reference_id="keyframe", reference_stamp=stamp(100 + states[i_key].t))
    msg.header.stamp = stamp(100 + states[i_frame].t)
    msg.header.frame_id = msg.reference_frame_id = "camera_optical"
    msg.matcher = "exact"
    msg.query_width = msg.reference_width = CAMERA.width
    msg.query_height = msg.reference_height = CAMERA.height
    msg.query_points = float32_array(frame_points)
    msg.reference_points = float32_array(grid)
    msg.confidence = float32_array(np.ones(len(grid)))
    return msg


def test_odometry_and_map_to_odom_correction(running):
    from geometry_msgs.msg import PoseWithCovarianceStamped, TransformStamped
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    geomap = procedural_map(512, 512, 0.5, seed=2)
    plan = FlightPlan(
        np.array([[-30.0, -20.0], [40.0, 30.0]]), speed=10.0, altitude=100.0, tilt_deg=0.0, yaw=35.0
    )
    states = fly(plan, 4)
    height = states[0].position[2]
    harness, executor, nodes = running(geometry={"mode": "odometry", "default_height": height})
    reliable = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    odometry, corrections = [], []
    harness.node.create_subscription(Odometry, "odometry", odometry.append, reliable)
    harness.node.create_subscription(TransformStamped, "map_to_odom", corrections.append, reliable)
    fix_pub = harness.node.create_publisher(PoseWithCovarianceStamped, "map_fix", reliable)
    spin_until(executor, lambda: fix_pub.get_subscription_count() > 0, what="the map_fix subscription")
    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        harness.info_pub.publish(
            camera_info(CAMERA.width, CAMERA.height, stamp(100 + states[k].t), CAMERA.K[0, 0])
        )
    spin_until(executor, lambda: nodes["geometry"]._camera is not None, what="camera_info")
    for k in (1, 2, 3):
        harness.matches_pub.publish(_match_array(geomap.georef, states, k - 1, k, rng))
        spin_until(executor, lambda k=k: len(odometry) >= k, what=f"odometry of frame {k}")

    for k, msg in zip((1, 2, 3), odometry, strict=True):
        p = msg.pose.pose.position
        assert msg.header.frame_id == "odom" and msg.child_frame_id == "base_link"
        travelled = np.linalg.norm(states[k].position[:2] - states[0].position[:2])
        assert np.hypot(p.x, p.y) == pytest.approx(travelled, rel=0.02)  # odom starts at the first keyframe
        assert p.z == pytest.approx(height, abs=0.5)

    # an absolute fix for frame 3 (here: its ground truth) gives the map -> odom correction
    truth = states[3]
    fix = PoseWithCovarianceStamped()
    fix.header.stamp = odometry[-1].header.stamp
    fix.header.frame_id = "map"
    fix.pose.pose.position.x, fix.pose.pose.position.y, fix.pose.pose.position.z = (
        float(v) for v in truth.position
    )
    q = fix.pose.pose.orientation
    q.x, q.y, q.z, q.w = (float(v) for v in quaternion_from_matrix(truth.R_map_body))
    fix_pub.publish(fix)
    spin_until(executor, lambda: corrections, what="map_to_odom")
    correction = corrections[-1]
    assert correction.header.frame_id == "map" and correction.child_frame_id == "odom"
    r = correction.transform.rotation
    R_map_odom = matrix_from_quaternion(np.array([r.x, r.y, r.z, r.w]))
    t = correction.transform.translation
    # the odom origin (the first keyframe, level and heading east by convention) lands on the
    # first keyframe's true position, and odom is turned by that keyframe's heading
    origin = R_map_odom @ np.array([0.0, 0.0, height]) + [t.x, t.y, t.z]
    assert np.linalg.norm(origin[:2] - states[0].position[:2]) < 0.5
    yaw = euler_from_rotation(R_map_odom)[2]
    assert math.degrees(yaw) == pytest.approx(35.0, abs=1.0)


def test_map_mode_refuses_bad_aids_and_keeps_fixing(running, tmp_path):
    """A broken attitude and altitude message each give a diagnostics ERROR naming the problem; the
    next frame's matches still give a fix."""
    from sensor_msgs.msg import Imu, Range

    from feature_matching_ros.core.simulation.aerial_texture import save_map

    geomap = procedural_map(1024, 1024, 0.5, seed=4)
    map_path = save_map(geomap, tmp_path / "map.png")
    harness, executor, nodes = running(geometry={"mode": "map", "map_image": str(map_path)})
    imu_pub = harness.node.create_publisher(Imu, "imu/data", 10)
    range_pub = harness.node.create_publisher(Range, "altitude", 10)
    spin_until(
        executor,
        lambda: imu_pub.get_subscription_count() > 0 and range_pub.get_subscription_count() > 0,
        what="the aid subscriptions",
    )
    bad_imu = Imu()
    bad_imu.header.stamp = stamp(100.0)
    bad_imu.orientation.w = 0.0  # all-zero quaternion (the default is the identity)
    imu_pub.publish(bad_imu)
    harness.wait_for_error(executor, "geometry", "not a unit quaternion")
    range_pub.publish(Range(header=bad_imu.header, range=float("nan"), min_range=0.5, max_range=500.0))
    harness.wait_for_error(executor, "geometry", "positive finite height")

    plan = FlightPlan(np.array([[0.0, 0.0], [30.0, 10.0]]), altitude=110.0, tilt_deg=3.0, yaw=-60.0)
    state = fly(plan, 1)[0]
    harness.info_pub.publish(camera_info(CAMERA.width, CAMERA.height, stamp(100.0), CAMERA.K[0, 0]))
    spin_until(executor, lambda: nodes["geometry"]._camera is not None, what="camera_info")
    rng = np.random.default_rng(3)
    frame_points = rng.uniform([20, 20], [620, 460], (200, 2))
    map_points = warp_points(np.linalg.inv(map_to_image(geomap.georef, CAMERA.K, state)), frame_points)
    from feature_matching_ros.msg import MatchArray

    from feature_matching_ros.ros.conversions.messages import float32_array

    msg = MatchArray(reference_id="map", matcher="exact")
    msg.header.stamp = stamp(100.0)
    msg.query_width, msg.query_height = CAMERA.width, CAMERA.height
    msg.reference_width, msg.reference_height = geomap.size
    msg.query_points = float32_array(frame_points + rng.normal(0, 0.3, frame_points.shape))
    msg.reference_points = float32_array(map_points)
    msg.confidence = float32_array(np.ones(200))
    harness.matches_pub.publish(msg)
    estimate = harness.wait_for(executor, "geometry", 1)
    assert estimate.pose_published, estimate.pose_status
    pose = harness.wait_for(executor, "pose", 1).pose.pose.position
    assert np.hypot(pose.x - state.position[0], pose.y - state.position[1]) < 0.3
