"""reference/image is subscribed only in reference_mode topic, also after a run-time mode switch,
and the frames are then matched against the latched reference it carries."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ..conftest import spin_until

pytestmark = pytest.mark.ros


def _spin_for(executor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)


def test_reference_image_subscribed_in_topic_mode_only(running, graf):
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from feature_matching_ros.ros.conversions.images import array_to_image
    from feature_matching_ros.ros.infrastructure import topics

    image0, image1, _ = graf
    harness, executor, nodes = running(matcher={"reference_mode": "keyframe", "matcher": "sift"})
    matcher = nodes["matcher"]
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    reference_pub = harness.node.create_publisher(Image, topics.REFERENCE_IMAGE, latched)
    _spin_for(executor, 1.0)
    assert reference_pub.get_subscription_count() == 0, "keyframe mode subscribes reference/image"

    reference = array_to_image(np.ascontiguousarray(image0), "rgb8")
    reference.header.frame_id = "reference_camera"
    reference_pub.publish(reference)  # latched: the subscription made on the switch receives it
    assert all(r.successful for r in matcher.set_parameters([Parameter("reference_mode", value="topic")]))
    spin_until(
        executor, lambda: reference_pub.get_subscription_count() == 1, what="reference/image subscribed"
    )
    t = 10.0
    while not harness.received[topics.MATCHES]:
        harness.publish_frame(image1, t)
        _spin_for(executor, 0.5)
        t += 0.5
        assert t < 60, "no matches against the topic's reference"
    matches = harness.received[topics.MATCHES][-1]
    assert (matches.reference_id, matches.reference_frame_id) == ("topic", "reference_camera")
    assert len(matches.query_points) > 100

    assert all(r.successful for r in matcher.set_parameters([Parameter("reference_mode", value="keyframe")]))
    spin_until(executor, lambda: reference_pub.get_subscription_count() == 0, what="reference/image dropped")
