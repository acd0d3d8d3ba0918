"""A test-side node: publishes camera frames and collects everything the pipeline publishes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from .conftest import spin_until

FRAME_ID = "camera_optical"


def compressed_map_mode(map_image: str) -> dict[str, Any]:
    """Frontend parameters: map mode on ``map_image`` with ORB, compressed input, no camera_info."""
    return {
        "reference_mode": "map",
        "map_image": map_image,
        "matcher": "orb",
        "image_transport": "compressed",
        "use_camera_info": False,
    }


def camera_info(width: int, height: int, stamp: Any, fx: float = 600.0) -> Any:
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.header.stamp = stamp
    info.header.frame_id = FRAME_ID
    info.k = [fx, 0.0, width / 2, 0.0, fx, height / 2, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, width / 2, 0.0, 0.0, fx, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def stamp(seconds: float) -> Any:
    from builtin_interfaces.msg import Time

    return Time(sec=int(seconds), nanosec=int(round((seconds % 1) * 1e9)))


class Harness:
    """Publishers for camera input, subscribers on every output; messages collected per topic."""

    def __init__(self, context: Any, name: str = "fm_test_harness") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from feature_matching_ros.msg import GeometryEstimate, MatchArray
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        from feature_matching_ros.ros.infrastructure import topics

        self.node = rclpy.create_node(name, context=context)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.received: dict[str, list[Any]] = defaultdict(list)
        outputs = {
            topics.MATCHES: MatchArray,
            topics.GEOMETRY: GeometryEstimate,
            topics.POSE: PoseWithCovarianceStamped,
            topics.DEBUG_MATCHES: Image,
            topics.DEBUG_OVERLAY: Image,
            topics.DIAGNOSTICS: DiagnosticArray,
        }
        self.outputs = tuple(outputs)
        for topic, msg_type in outputs.items():
            self.node.create_subscription(msg_type, topic, self.received[topic].append, reliable)
        self.image_pub = self.node.create_publisher(Image, topics.CAMERA_IMAGE, qos_profile_sensor_data)
        self.info_pub = self.node.create_publisher(CameraInfo, topics.CAMERA_INFO, qos_profile_sensor_data)
        self.compressed_pub = self.node.create_publisher(
            CompressedImage, topics.CAMERA_IMAGE_COMPRESSED, qos_profile_sensor_data
        )
        self.matches_pub = self.node.create_publisher(MatchArray, topics.MATCHES, reliable)

    def publish_frame(self, image: np.ndarray, t: float, fx: float = 600.0) -> None:
        from feature_matching_ros.ros.conversions.images import array_to_image

        msg = array_to_image(np.ascontiguousarray(image), "rgb8" if image.ndim == 3 else "mono8")
        msg.header.stamp = stamp(t)
        msg.header.frame_id = FRAME_ID
        self.info_pub.publish(camera_info(image.shape[1], image.shape[0], msg.header.stamp, fx))
        self.image_pub.publish(msg)

    def publish_raw(self, image: Any, info: Any | None) -> None:
        """Publish messages as given (bad input tests); the image goes to the topic of its type."""
        if info is not None:
            self.info_pub.publish(info)
        (self.image_pub if type(image).__name__ == "Image" else self.compressed_pub).publish(image)

    def wait_for_subscribers(self, executor: Any, compressed: bool = False, info: bool = True) -> None:
        """Wait until the nodes' camera subscriptions are matched (best-effort messages sent before
        discovery completes are lost)."""
        pubs = [self.compressed_pub if compressed else self.image_pub] + ([self.info_pub] if info else [])
        spin_until(
            executor,
            lambda: all(p.get_subscription_count() > 0 for p in pubs),
            what="the nodes to subscribe to the camera topics",
        )

    def wait_for_error(self, executor: Any, node_name: str, text: str) -> Any:
        """Spin until ``node_name`` reports a diagnostics ERROR whose message contains ``text``."""
        found: list[Any] = []

        def seen() -> bool:
            found[:] = [s for s in self.diagnostics(node_name) if s.level == b"\x02" and text in s.message]
            return bool(found)

        spin_until(executor, seen, what=f"a diagnostics ERROR from {node_name} with {text!r}")
        return found[0]

    def wait_for(self, executor: Any, topic: str, count: int, what: str = "") -> Any:
        """Spin until ``count`` messages arrived on ``topic``; the last one."""
        spin_until(executor, lambda: len(self.received[topic]) >= count, what=what or f"{count} on {topic}")
        return self.received[topic][-1]

    def diagnostics(self, node_name: str) -> list[Any]:
        """Every DiagnosticStatus received from ``node_name``."""
        return [
            s
            for array in self.received["/diagnostics"]
            for s in array.status
            if s.name.startswith(f"{node_name}:")
        ]

    def destroy(self) -> None:
        self.node.destroy_node()
