"""The package's messages over real rclpy publishers and subscribers (Fast DDS, localhost only).

Needs the messages built into the environment (``make setup`` or scripts/build_msgs.sh in a venv,
colcon on a ROS machine). Without them these tests are skipped, except under CI=true where they
fail.

rclpy from the PyPI wheels needs the LD_LIBRARY_PATH that the wheels' ros_wheels_bootstrapper .pth
sets by re-executing the interpreter at startup (guarded by _ROS_WHEELS_BOOTSTRAP_COMPLETE=1), so
pytest started with the venv's python or pytest gets it, and so do subprocesses that inherit the
environment; one that keeps the guard variable but drops LD_LIBRARY_PATH cannot load rclpy.
"""

import os
import random
import time
import uuid

import pytest

pytestmark = pytest.mark.ros

TIMEOUT_S = 10.0
# One domain per test run, so concurrent runs on the same machine do not see each other.
DOMAIN_ID = random.SystemRandom().randint(1, 100)


def _require(import_message: str) -> None:
    reason = (
        f"ROS 2 messages not available ({import_message}); build them with `make setup` "
        "or scripts/build_msgs.sh (venv), or colcon build (ROS machine)"
    )
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def ros():
    """The modules under test; skips (fails under CI) when they are not importable."""
    try:
        import rclpy
        import rclpy.executors
        import rclpy.qos
        from builtin_interfaces.msg import Time
        from feature_matching_ros.msg import GeometryEstimate, MatchArray
    except ImportError as exc:
        missing = str(exc)
    else:
        missing = None
    if missing is not None:
        _require(missing)  # outside the except block: no chained traceback
    return {
        "rclpy": rclpy,
        "Time": Time,
        "MatchArray": MatchArray,
        "GeometryEstimate": GeometryEstimate,
    }


@pytest.fixture
def context(ros, monkeypatch):
    """An initialised rclpy context of its own, discovering on localhost only."""
    rclpy = ros["rclpy"]
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_STATIC_PEERS", raising=False)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    try:
        yield ctx
    finally:
        rclpy.shutdown(context=ctx)


def _round_trip(rclpy, ctx, msg_type, msg):
    """Publish msg from one node and return what a second node receives."""
    suffix = uuid.uuid4().hex[:12]
    topic = f"/fm_test/{msg_type.__name__.lower()}_{suffix}"
    qos = rclpy.qos.QoSProfile(
        depth=10,
        reliability=rclpy.qos.ReliabilityPolicy.RELIABLE,
        durability=rclpy.qos.DurabilityPolicy.TRANSIENT_LOCAL,
    )
    received = []
    pub_node = rclpy.create_node(f"fm_test_pub_{suffix}", context=ctx)
    sub_node = rclpy.create_node(f"fm_test_sub_{suffix}", context=ctx)
    executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
    try:
        sub_node.create_subscription(msg_type, topic, received.append, qos)
        publisher = pub_node.create_publisher(msg_type, topic, qos)
        executor.add_node(pub_node)
        executor.add_node(sub_node)
        published = False
        deadline = time.monotonic() + TIMEOUT_S
        while not received and time.monotonic() < deadline:
            if not published and publisher.get_subscription_count() > 0:
                publisher.publish(msg)
                published = True
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()
    if not received:
        state = "published, never received" if published else "publisher never matched the subscriber"
        pytest.fail(f"no {msg_type.__name__} on {topic} within {TIMEOUT_S} s ({state})")
    assert len(received) == 1
    return received[0]


def test_match_array_round_trip(ros, context):
    MatchArray, Time = ros["MatchArray"], ros["Time"]
    msg = MatchArray()
    msg.header.stamp = Time(sec=1_700_000_000, nanosec=123_456_789)
    msg.header.frame_id = "camera_optical"
    msg.reference_id = "tile_17_42"
    msg.reference_stamp = Time(sec=1_699_999_000, nanosec=5)
    msg.reference_frame_id = "map_tile"
    msg.matcher = "xfeat+lightglue"
    msg.query_width, msg.query_height = 640, 480
    msg.reference_width, msg.reference_height = 1024, 768
    # 3 matches; values exactly representable in float32
    msg.query_points = [10.5, 20.25, 100.0, 200.0, 639.0, 479.5]
    msg.reference_points = [512.125, 384.0, 0.0, 767.75, 1023.0, 1.5]
    msg.confidence = [0.9375, 0.5, 0.125]
    msg.num_keypoints_query = 512
    msg.num_keypoints_reference = 498
    msg.extract_ms, msg.match_ms, msg.total_ms = 12.5, 3.25, 17.0

    got = _round_trip(ros["rclpy"], context, MatchArray, msg)

    assert got.header.stamp.sec == 1_700_000_000 and got.header.stamp.nanosec == 123_456_789
    assert got.header.frame_id == "camera_optical"
    assert got.reference_id == "tile_17_42"
    assert (got.reference_stamp.sec, got.reference_stamp.nanosec) == (1_699_999_000, 5)
    assert got.reference_frame_id == "map_tile"
    assert got.matcher == "xfeat+lightglue"
    assert (got.query_width, got.query_height) == (640, 480)
    assert (got.reference_width, got.reference_height) == (1024, 768)
    assert list(got.query_points) == [10.5, 20.25, 100.0, 200.0, 639.0, 479.5]
    assert list(got.reference_points) == [512.125, 384.0, 0.0, 767.75, 1023.0, 1.5]
    assert list(got.confidence) == [0.9375, 0.5, 0.125]
    assert (got.num_keypoints_query, got.num_keypoints_reference) == (512, 498)
    assert (got.extract_ms, got.match_ms, got.total_ms) == (12.5, 3.25, 17.0)
    assert got == msg


def test_geometry_estimate_round_trip(ros, context):
    GeometryEstimate, Time = ros["GeometryEstimate"], ros["Time"]
    homography = [1.25, 0.0, -3.5, 0.125, 0.75, 12.0, 1e-4, -2e-5, 1.0]
    msg = GeometryEstimate()
    msg.header.stamp = Time(sec=42, nanosec=999_999_999)
    msg.header.frame_id = "camera_optical"
    msg.model_type = GeometryEstimate.MODEL_HOMOGRAPHY
    msg.model = homography
    msg.inlier_mask = [1, 0, 1, 1]
    msg.num_matches, msg.num_inliers = 4, 3
    msg.inlier_ratio = 0.75
    msg.residual_mean_px, msg.residual_median_px, msg.residual_max_px = 0.75, 0.5, 1.25
    msg.success = True
    msg.failure_reason = ""
    msg.pose_published = False
    msg.pose_status = "jump of 40.0 m in 0.20 s exceeds the motion bound 22.0 m"

    got = _round_trip(ros["rclpy"], context, GeometryEstimate, msg)

    assert (got.header.stamp.sec, got.header.stamp.nanosec) == (42, 999_999_999)
    assert got.header.frame_id == "camera_optical"
    assert got.model_type == "Homography"
    assert list(got.model) == homography  # float64: exact
    assert list(got.inlier_mask) == [1, 0, 1, 1]
    assert (got.num_matches, got.num_inliers) == (4, 3)
    assert got.inlier_ratio == 0.75
    assert (got.residual_mean_px, got.residual_median_px, got.residual_max_px) == (0.75, 0.5, 1.25)
    assert got.success is True
    assert got.failure_reason == ""
    assert got.pose_published is False
    assert got.pose_status.startswith("jump of 40.0 m")
    assert got == msg


def test_geometry_estimate_failure_round_trip(ros, context):
    GeometryEstimate = ros["GeometryEstimate"]
    msg = GeometryEstimate(
        model_type=GeometryEstimate.MODEL_FUNDAMENTAL,
        num_matches=5,
        success=False,
        failure_reason="too few matches: 5 < 8",
    )
    msg.inlier_mask = [0] * 5

    got = _round_trip(ros["rclpy"], context, GeometryEstimate, msg)

    assert got.success is False
    assert got.failure_reason == "too few matches: 5 < 8"
    assert got.model_type == "Fundamental"
    assert list(got.model) == [0.0] * 9
    assert list(got.inlier_mask) == [0] * 5
    assert got.num_inliers == 0


def test_interfaces(ros):
    """The message definitions other code relies on (catches unintended edits of msg/)."""
    assert ros["MatchArray"].get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "reference_id": "string",
        "reference_stamp": "builtin_interfaces/Time",
        "reference_frame_id": "string",
        "matcher": "string",
        "query_width": "uint32",
        "query_height": "uint32",
        "reference_width": "uint32",
        "reference_height": "uint32",
        "query_points": "sequence<float>",
        "reference_points": "sequence<float>",
        "confidence": "sequence<float>",
        "num_keypoints_query": "uint32",
        "num_keypoints_reference": "uint32",
        "extract_ms": "float",
        "match_ms": "float",
        "total_ms": "float",
    }
    GeometryEstimate = ros["GeometryEstimate"]
    assert GeometryEstimate.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "model_type": "string",
        "model": "double[9]",
        "inlier_mask": "sequence<uint8>",
        "num_matches": "uint32",
        "num_inliers": "uint32",
        "inlier_ratio": "float",
        "residual_mean_px": "float",
        "residual_median_px": "float",
        "residual_max_px": "float",
        "success": "boolean",
        "failure_reason": "string",
        "pose_published": "boolean",
        "pose_status": "string",
    }
    assert (
        GeometryEstimate.MODEL_HOMOGRAPHY,
        GeometryEstimate.MODEL_FUNDAMENTAL,
        GeometryEstimate.MODEL_ESSENTIAL,
    ) == ("Homography", "Fundamental", "Essential")
