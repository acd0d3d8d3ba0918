"""Camera frames into a node: the image topic its ``image_transport`` names, paired with camera_info
(approximate time) or alone, and the frame a node's worker receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..infrastructure import topics
from ..infrastructure.qos import SENSOR_DATA
from ..infrastructure.sync import PairingWatch, watched_camera


@dataclass
class Frame:
    image: Image | CompressedImage
    info: CameraInfo | None
    received: float  # time.monotonic() at arrival


def subscribe_camera(
    node: Any, callback: Callable[..., None], with_info: bool = True
) -> tuple[list[Any], PairingWatch | None]:
    """Subscribe ``node`` to its camera: ``callback(image, info)`` with ``with_info`` (the pairing
    watched), else ``callback(image)``. Uses the node's image_transport, sync_slop and
    sync_queue_size parameters."""
    value = node.get_parameter
    compressed = value("image_transport").value == "compressed"
    image_type, image_topic = (
        (CompressedImage, topics.CAMERA_IMAGE_COMPRESSED) if compressed else (Image, topics.CAMERA_IMAGE)
    )
    if not with_info:
        return [node.create_subscription(image_type, image_topic, callback, SENSOR_DATA)], None
    return watched_camera(
        node,
        (image_type, image_topic),
        (CameraInfo, topics.CAMERA_INFO),
        SENSOR_DATA,
        value("sync_slop").value,
        value("sync_queue_size").value,
        callback,
    )
