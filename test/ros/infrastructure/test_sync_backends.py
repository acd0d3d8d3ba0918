"""Image + camera_info pairing over real DDS by both synchronisers: message_filters'
ApproximateTimeSynchronizer, which the nodes use where it is installed (scripts/test_tools.sh
installs it for the tests), and the package's own ApproximateSync, the fallback without it."""

from __future__ import annotations

import pytest

from ...launch.ros2_tools import in_ci
from ..conftest import spin_until

pytestmark = pytest.mark.ros


def _require_message_filters():
    from feature_matching_ros.ros.infrastructure import sync

    if sync.message_filters is None:
        reason = "message_filters not installed: run scripts/test_tools.sh (make test does)"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return sync.message_filters


@pytest.mark.parametrize("backend", ["message_filters", "builtin"])
def test_pairs_by_stamp_over_dds(backend, ros_context, monkeypatch):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from feature_matching_ros.ros.infrastructure import sync

    from ..harness import stamp

    if backend == "message_filters":
        expected_type = _require_message_filters().ApproximateTimeSynchronizer
    else:
        monkeypatch.setattr(sync, "message_filters", None)
        expected_type = sync.ApproximateSync
    node = rclpy.create_node("fm_sync_test", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        pairs: list[tuple[float, float]] = []
        seen: list[int] = []
        kept = sync.subscribe_synchronised(
            node,
            [(Image, "sync_test/image"), (CameraInfo, "sync_test/info")],
            qos,
            0.01,
            10,
            lambda image, info: pairs.append((sync.stamp_seconds(image), sync.stamp_seconds(info))),
            lambda index, msg: seen.append(index),
        )
        assert isinstance(kept[-1], expected_type)
        image_pub = node.create_publisher(Image, "sync_test/image", qos)
        info_pub = node.create_publisher(CameraInfo, "sync_test/info", qos)
        spin_until(
            executor,
            lambda: image_pub.get_subscription_count() and info_pub.get_subscription_count(),
            what="the synchroniser's subscriptions",
        )
        # Infos 2 ms after their images pair with them; the image at 3.0 s has no info.
        for t in (1.0, 2.0, 3.0, 4.0):
            image = Image(encoding="mono8")
            image.header.stamp = stamp(t)
            image_pub.publish(image)
            if t != 3.0:
                info = CameraInfo()
                info.header.stamp = stamp(t + 0.002)
                info_pub.publish(info)
        spin_until(executor, lambda: len(pairs) >= 3 and len(seen) >= 7, what="three pairs")
        assert [(round(a, 3), round(b, 3)) for a, b in pairs] == [(1.0, 1.002), (2.0, 2.002), (4.0, 4.002)]
        assert sorted(seen) == [0, 0, 0, 0, 1, 1, 1]
    finally:
        executor.shutdown()
        node.destroy_node()


def test_nodes_pair_camera_input_with_message_filters(running):
    message_filters = _require_message_filters()
    _, _, nodes = running(matcher={"reference_mode": "keyframe", "matcher": "sift"})
    assert any(
        isinstance(s, message_filters.ApproximateTimeSynchronizer) for s in nodes["matcher"]._camera_subs
    )
