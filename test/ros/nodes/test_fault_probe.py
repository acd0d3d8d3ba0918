"""What a fault and fuzz probe found, over real DDS: each bad input gets a specific diagnostics ERROR
(never "internal"), the node keeps what it had, and the next good input is still answered."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from ...conftest import require_file
from ..conftest import spin_until
from ..harness import camera_info, compressed_map_mode, stamp

pytestmark = pytest.mark.ros

MATCHER = "feature_matcher"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def graf_map(shared_data):
    return str(require_file(shared_data / "pairs" / "graf1.png"))


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` RGB px (its data covers 8 rows)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(bytes(1 + 3 * width) * 8)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def jpeg_declaring(image: np.ndarray, width: int, height: int) -> bytes:
    """A real JPEG of ``image`` whose frame header (SOF0) is changed to declare ``width`` x ``height``."""
    data = bytearray(cv2.imencode(".jpg", image)[1].tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def compressed(data: bytes, fmt: str, t: float):
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage(format=fmt)
    msg.data = data
    msg.header.stamp = stamp(t)
    msg.header.frame_id = "camera_optical"
    return msg


def jpeg_frame(image: np.ndarray, t: float):
    return compressed(cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes(), "jpeg", t)


def _answered(harness, executor, t: float, topic: str = "matches"):
    """Spin until ``topic`` carries a message stamped ``t``; that message."""
    key = stamp(t)
    spin_until(
        executor,
        lambda: any(m.header.stamp == key for m in harness.received[topic]),
        what=f"the answer on {topic} to the good input at t={t}",
    )
    return next(m for m in harness.received[topic] if m.header.stamp == key)


def _no_internal_errors(harness, node_name: str) -> None:
    internal = [s.message for s in harness.diagnostics(node_name) if s.message.startswith("internal")]
    assert internal == []


def test_header_sizes_are_read_without_decoding(graf):
    from feature_matching_ros.ros.conversions.frame_size import compressed_size, jpeg_size, png_size

    bgr = cv2.cvtColor(graf[0], cv2.COLOR_RGB2BGR)
    for ext in (".png", ".jpg"):
        data = cv2.imencode(ext, bgr)[1].tobytes()
        assert compressed_size(data) == (800, 640), ext
    progressive = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert jpeg_size(progressive) == (800, 640)
    assert png_size(png_declaring(30000, 30000)) == (30000, 30000)
    assert jpeg_size(jpeg_declaring(bgr[:64, :64], 30000, 30000)) == (30000, 30000)
    assert compressed_size(b"\xff\xd8\xff\xe0 this is not a jpeg") is None


def test_compressed_frames_declaring_huge_sizes_are_refused_before_decoding(running, graf, graf_map):
    harness, executor, nodes = running(matcher=compressed_map_mode(graf_map))
    assert nodes["matcher"].get_parameter("max_frame_pixels").value == 50_000_000
    bombs = [
        compressed(png_declaring(30000, 30000), "png", 1.0),
        compressed(jpeg_declaring(graf[0][:64, :64], 30000, 30000), "jpeg", 3.0),
    ]
    for count, (t, bomb) in enumerate(zip((1.0, 3.0), bombs, strict=True), start=1):
        harness.publish_raw(bomb, None)
        spin_until(executor, lambda count=count: nodes["matcher"].monitor.errors["bad image"] == count)
        status = harness.wait_for_error(executor, MATCHER, "30000x30000")
        assert status.message.startswith("bad image: the CompressedImage header declares 30000x30000 px")
        assert "max_frame_pixels 50000000: refused before decoding" in status.message
        harness.publish_raw(jpeg_frame(graf[1], t + 1.0), None)
        assert len(_answered(harness, executor, t + 1.0).confidence) > 50
    assert nodes["matcher"].monitor.errors["bad image"] == 2


def test_default_max_image_edge_bounds_large_frames(running, graf):
    from feature_matching_ros.ros.nodes.navigator_node import NavigatorNode
    from feature_matching_ros.ros.params import MAX_IMAGE_EDGE

    assert MAX_IMAGE_EDGE.default == 1024 and "4000x3000" in MAX_IMAGE_EDGE.description
    harness, executor, nodes = running(matcher={"reference_mode": "keyframe", "matcher": "sift"})
    matcher = nodes["matcher"]
    navigator = NavigatorNode(context=matcher.context)
    try:
        for node in (matcher, navigator):
            assert node.get_parameter("max_image_edge").value == 1024
            described = node.describe_parameter("max_image_edge").description
            assert "default 1024" in described and "0 = full size" in described
    finally:
        navigator.destroy_node()
    large = [cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_LINEAR) for image in graf[:2]]
    harness.publish_frame(large[0], 1.0)
    spin_until(executor, lambda: matcher.reference is not None, what="the 4000x3000 keyframe")
    harness.publish_frame(large[1], 2.0)
    matches = _answered(harness, executor, 2.0)
    # matched at 1024 px, reported in the frame's own pixels
    assert (matches.query_width, matches.query_height) == (4000, 3000)
    points = np.asarray(matches.query_points).reshape(-1, 2)
    assert len(points) > 50 and points[:, 0].max() > 2000
    assert matches.total_ms < 20000


def test_images_without_paired_camera_info_are_reported(running, graf):
    from feature_matching_ros.ros.conversions.images import array_to_image

    harness, executor, nodes = running(matcher={"reference_mode": "keyframe", "matcher": "orb"})

    def image(t):
        msg = array_to_image(graf[0], "rgb8")
        msg.header.stamp, msg.header.frame_id = stamp(t), "camera_optical"
        return msg

    for i in range(4):
        harness.publish_raw(image(1.0 + 0.1 * i), None)
        executor.spin_once(timeout_sec=0.1)
    status = harness.wait_for_error(executor, MATCHER, "no camera_info received on camera/camera_info")
    assert status.message.startswith("camera_info: 4 image(s) on camera/image_raw not processed")
    for i in range(4):
        t = 3.0 + 0.1 * i
        harness.publish_raw(image(t), camera_info(800, 640, stamp(t + 1.0)))
        executor.spin_once(timeout_sec=0.1)
    status = harness.wait_for_error(executor, MATCHER, "never pair")
    assert "differ by 1.000 s" in status.message and "sync_slop 0.02 s" in status.message
    assert harness.received["matches"] == []
    harness.publish_frame(graf[0], 10.0)
    spin_until(executor, lambda: nodes["matcher"].reference is not None, what="the keyframe")
    harness.publish_frame(graf[1], 11.0)
    assert len(_answered(harness, executor, 11.0).confidence) > 50


def test_geometry_says_why_no_pose_without_camera_info(running, graf):
    from feature_matching_ros.ros.conversions.images import array_to_image

    harness, executor, nodes = running(
        matcher={"reference_mode": "keyframe", "matcher": "orb", "use_camera_info": False},
        geometry={"publish_debug": False},
    )
    for i in range(6):
        msg = array_to_image(graf[i % 2], "rgb8")
        msg.header.stamp = stamp(1.0 + i)
        harness.publish_raw(msg, None)
        if i == 0:
            spin_until(executor, lambda: nodes["matcher"].reference is not None, what="the keyframe")
        else:
            _answered(harness, executor, 1.0 + i, "geometry")
    status = harness.wait_for_error(executor, "geometry", "no camera_info received")
    assert status.message.startswith("no camera_info: no pose published")
    assert harness.received["pose"] == []
    assert all(g.pose_status == "no camera_info received yet" for g in harness.received["geometry"])


def _georeferenced_map(tmp_path):
    from feature_matching_ros.core.simulation.aerial_texture import procedural_map, save_map

    geomap = procedural_map(1024, 1024, 0.5, seed=5)
    return geomap, str(save_map(geomap, tmp_path / "map.png"))


def test_tiny_frames_and_implausible_heights_get_specific_errors(running, tmp_path):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, Range

    from feature_matching_ros.core.simulation.flight_sim import (
        Appearance,
        CameraSpec,
        FlightPlan,
        fly,
        render,
    )
    from feature_matching_ros.ros.infrastructure import topics

    camera = CameraSpec(640, 480, 60.0)
    geomap, map_path = _georeferenced_map(tmp_path)
    harness, executor, nodes = running(
        matcher={"reference_mode": "map", "map_image": map_path, "matcher": "sift", "attitude_input": "none"}
    )
    matcher = nodes["matcher"]
    spin_until(executor, lambda: matcher.ready, timeout=120.0, what="the map's features")
    range_pub = harness.node.create_publisher(Range, topics.ALTITUDE, qos_profile_sensor_data)
    spin_until(executor, lambda: range_pub.get_subscription_count() > 0, what="the altitude subscription")

    for t, (width, height) in enumerate(((1, 1), (2, 2), (65535, 1)), start=1):
        tiny = Image(width=width, height=height, encoding="mono8", step=width)
        tiny.data = bytes(width * height)
        tiny.header.stamp = stamp(float(t))
        harness.publish_raw(tiny, camera_info(width, height, tiny.header.stamp, fx=float(max(width, 32))))
        status = harness.wait_for_error(executor, MATCHER, f"{width}x{height} px: too small to match")
        assert status.message.startswith("bad image: image is")

    plan = FlightPlan(np.array([[10.0, -20.0], [40.0, 10.0]]), altitude=120.0, tilt_deg=0.0, yaw=30.0)
    state = fly(plan, 1)[0]
    frame, _ = render(geomap, camera, state, Appearance(), np.random.default_rng(1))
    fx = float(camera.K[0, 0])

    def altitude(value, t):
        msg = Range(range=value, min_range=0.0, max_range=0.0)
        msg.header.stamp = stamp(t)
        range_pub.publish(msg)

    altitude(1e-30, 5.0)
    status = harness.wait_for_error(executor, MATCHER, "implausible")
    assert status.message.startswith("bad altitude: altitude range 1e-30 m is implausible")
    altitude(2.0, 6.0)
    harness.publish_frame(frame, 6.0, fx=fx)
    low = _answered(harness, executor, 6.0)
    assert len(low.confidence) == 0

    def failure_reported():
        values = [{kv.key: kv.value for kv in s.values} for s in harness.diagnostics(MATCHER)]
        return any(
            "rectified frame would be" in key and "at 2 m above ground" in key for v in values for key in v
        )

    spin_until(executor, failure_reported, what="the failure of a frame seen from 2 m")
    altitude(float(state.position[2]), 7.0)
    harness.publish_frame(frame, 7.0, fx=fx)
    assert len(_answered(harness, executor, 7.0).confidence) > 30
    _no_internal_errors(harness, MATCHER)


def test_parameter_changes_are_validated_before_they_are_accepted(running, graf, graf_map, tmp_path):
    import torch
    from rclpy.parameter import Parameter

    from feature_matching_ros.ros.nodes.navigator_node import NavigatorNode

    harness, executor, nodes = running(
        matcher={"reference_mode": "map", "map_image": graf_map, "matcher": "orb"},
        geometry={"mode": "map", "map_image": str(tmp_path / "missing.png"), "publish_debug": False},
    )
    matcher = nodes["matcher"]
    navigator = NavigatorNode(context=matcher.context)
    unreadable = tmp_path / "garbage.png"
    unreadable.write_bytes(b"not a png at all")
    try:
        for node in (matcher, navigator):
            if not torch.cuda.is_available():
                refused = node.set_parameters([Parameter("device", value="cuda")])[0]
                assert not refused.successful and "CUDA is not available" in refused.reason
            refused = node.set_parameters([Parameter("max_image_edge", value=1)])[0]
            assert not refused.successful
            assert refused.reason == "max_image_edge must be 0 (off) or at least 64; got 1"
            for path, why in ((tmp_path / "missing.png", "no such file"), (unreadable, "OpenCV")):
                refused = node.set_parameters([Parameter("map_image", value=str(path))])[0]
                assert not refused.successful and why in refused.reason
            refused = node.set_parameters([Parameter("map_georef", value=str(tmp_path / "none.yaml"))])[0]
            assert not refused.successful and refused.reason.endswith("none.yaml: no such file")
    finally:
        navigator.destroy_node()
    assert matcher.get_parameter("device").value == "cpu"
    assert matcher.get_parameter("map_image").value == graf_map
    # the working map is kept, and a matcher change takes effect
    assert matcher.set_parameters([Parameter("matcher", value="akaze")])[0].successful
    harness.publish_frame(graf[1], 1.0)
    matches = _answered(harness, executor, 1.0)
    assert matches.matcher == "akaze" and len(matches.confidence) > 50
    # the geometry node: a missing map image is named as such, and a readable one is taken
    status = harness.wait_for_error(executor, "geometry", "map image missing or unreadable")
    assert "missing.png: no such file" in status.message and "georeference" not in status.message
    geometry = nodes["geometry"]
    refused = geometry.set_parameters([Parameter("map_image", value=str(unreadable))])[0]
    assert not refused.successful and "OpenCV" in refused.reason
    refused = geometry.set_parameters([Parameter("map_image", value=graf_map)])[0]
    assert not refused.successful and "has no georeference" in refused.reason
    geomap, map_path = _georeferenced_map(tmp_path)
    assert geometry.set_parameters([Parameter("map_image", value=map_path)])[0].successful
    assert geometry.monitor.persistent_error is None


def test_corrupt_explicit_weights_are_an_error_naming_the_checksum(running, graf_map, tmp_path):
    from feature_matching_ros.core.matching import weights

    spec = weights.MANIFEST["xfeat"]
    explicit = tmp_path / "weights"
    explicit.mkdir()
    (explicit / spec.file_name).write_bytes(b"\x42" * spec.size)
    harness, executor, nodes = running(
        matcher={
            "reference_mode": "map",
            "map_image": graf_map,
            "matcher": "xfeat(sparse)",
            "weights_dir": str(explicit),
        }
    )
    status = harness.wait_for_error(executor, MATCHER, "failed verification")
    assert f"{explicit / spec.file_name}: sha256 mismatch" in status.message
    assert "weights missing" not in status.message
    assert nodes["matcher"]._pipeline is None  # the cache's copy, if any, was not used instead


def test_match_arrays_beyond_max_matches_are_refused(running):
    from feature_matching_ros.msg import MatchArray

    from feature_matching_ros.ros.conversions.messages import float32_array

    harness, executor, nodes = running(geometry={})
    assert nodes["geometry"].get_parameter("max_matches").value == 100000
    rng = np.random.default_rng(0)

    def matches(n: int, t: float) -> MatchArray:
        msg = MatchArray(query_width=640, query_height=480, reference_width=640, reference_height=480)
        msg.header.stamp = stamp(t)
        reference = rng.uniform(0, 600, (n, 2))
        msg.reference_points = float32_array(reference.ravel())
        msg.query_points = float32_array((reference + [5.0, -3.0]).ravel())
        msg.confidence = float32_array(np.ones(n))
        return msg

    harness.matches_pub.publish(matches(1_000_000, 1.0))
    status = harness.wait_for_error(executor, "geometry", "max_matches")
    assert (
        status.message == "bad matches: MatchArray has 1000000 matches, more than max_matches 100000: refused"
    )
    assert harness.received["geometry"] == []
    harness.matches_pub.publish(matches(200, 2.0))
    estimate = _answered(harness, executor, 2.0, "geometry")
    assert estimate.success and estimate.num_inliers == 200


def test_shutdown_mid_frame_is_not_an_error(ros_context, graf):
    import rclpy
    from rclpy.parameter import Parameter

    from feature_matching_ros.ros.infrastructure.spin import make_executor
    from feature_matching_ros.ros.nodes.matcher_node import FeatureMatcherNode

    from ..harness import Harness

    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=ros_context.get_domain_id())
    overrides = {"reference_mode": "keyframe", "matcher": "sift", "max_image_edge": 0, "publish_debug": False}
    node = FeatureMatcherNode(
        context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    harness = Harness(context)
    executor = make_executor(context)
    executor.add_node(node)
    executor.add_node(harness.node)
    try:
        harness.wait_for_subscribers(executor)
        large = [cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_LINEAR) for image in graf[:2]]
        harness.publish_frame(large[0], 1.0)
        spin_until(executor, lambda: node.reference is not None, what="the keyframe")
        harness.publish_frame(large[1], 2.0)
        spin_until(executor, lambda: node.worker.busy(), what="the worker to take the frame")
        # What rclpy's SIGINT handler does while the frame is being matched: the rcl context is shut
        # down at once; the nodes are destroyed later, by the interrupted spin's cleanup.
        context.handle.shutdown()
        assert node.worker.wait_idle(60.0)
        assert node.worker.processed == 3  # warm-up, keyframe, and the frame cut short
        assert node.monitor.errors == {}
    finally:
        executor.shutdown()
        node.destroy_node()
        harness.destroy()
        if context.ok():
            rclpy.shutdown(context=context)


def test_map_mode_matches_a_large_frame_downscaled_and_reports_its_own_pixels(running, tmp_path):
    from feature_matching_ros.core.simulation.flight_sim import (
        Appearance,
        CameraSpec,
        FlightPlan,
        fly,
        render,
    )

    camera = CameraSpec(640, 480, 60.0)
    geomap, map_path = _georeferenced_map(tmp_path)
    harness, executor, nodes = running(
        matcher={"reference_mode": "map", "map_image": map_path, "matcher": "sift", "attitude_input": "none"},
        geometry={"mode": "map", "map_image": map_path, "publish_debug": False, "attitude_input": "none"},
    )
    spin_until(executor, lambda: nodes["matcher"].ready, timeout=120.0, what="the map's features")
    plan = FlightPlan(np.array([[10.0, -20.0], [40.0, 10.0]]), altitude=120.0, tilt_deg=0.0, yaw=30.0)
    state = fly(plan, 1)[0]
    frame, _ = render(geomap, camera, state, Appearance(), np.random.default_rng(1))
    large = cv2.resize(frame, (4000, 3000), interpolation=cv2.INTER_LINEAR)
    harness.publish_frame(large, 1.0, fx=float(camera.K[0, 0]) * 4000 / 640)
    estimate = _answered(harness, executor, 1.0, "geometry")
    matches = _answered(harness, executor, 1.0)
    assert (matches.query_width, matches.query_height) == (4000, 3000)
    assert np.asarray(matches.query_points).reshape(-1, 2)[:, 0].max() > 2000
    assert estimate.pose_published, estimate.pose_status
    p = _answered(harness, executor, 1.0, "pose").pose.pose.position
    assert np.hypot(p.x - state.position[0], p.y - state.position[1]) < 2.0
