"""The frontend's debug/matches picture: reference and frame side by side, matches drawn.

A frame's matches are kept until the geometry node's estimate for that frame arrives, so the
picture can colour inliers green and outliers red and outline the reference by the homography;
without a geometry node the picture is published at once, uncoloured. Pictures are drawn only
while somebody subscribes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time

from feature_matching_ros.core.image import as_rgb
from feature_matching_ros.core.matching.visualize import draw_matches
from feature_matching_ros.msg import GeometryEstimate

from ..conversions.images import array_to_image
from ..infrastructure import topics

KEPT = 4  # frames waiting for their geometry


def _key(stamp: Time) -> tuple[int, int]:
    return int(stamp.sec), int(stamp.nanosec)


class DebugMatches:
    def __init__(self, node: Any, publisher: Any) -> None:
        self.node = node
        self.publisher = publisher
        self._lock = threading.Lock()
        self._waiting: OrderedDict[tuple[int, int], tuple] = OrderedDict()

    @property
    def wanted(self) -> bool:
        return self.node.get_parameter("publish_debug").value and self.publisher.get_subscription_count() > 0

    def remember(
        self,
        stamp: Time,
        frame: np.ndarray,
        reference_image: np.ndarray,
        frame_id: str,
        p0: np.ndarray,
        p1: np.ndarray,
    ) -> None:
        """Matches of the frame at ``stamp``: reference points ``p0``, frame points ``p1``."""
        if self.node.count_publishers(topics.GEOMETRY) == 0:
            self._publish(frame, reference_image, frame_id, p0, p1, None, None, stamp)
            return
        with self._lock:
            self._waiting[_key(stamp)] = (frame, reference_image, frame_id, p0, p1)
            while len(self._waiting) > KEPT:
                self._waiting.popitem(last=False)

    def on_geometry(self, msg: GeometryEstimate) -> None:
        with self._lock:
            entry = self._waiting.pop(_key(msg.header.stamp), None)
        if entry is None:
            return
        frame, reference_image, frame_id, p0, p1 = entry
        mask = np.asarray(msg.inlier_mask, bool)
        if mask.size != len(p0):
            mask = None
        homography = msg.success and msg.model_type == msg.MODEL_HOMOGRAPHY
        H = np.asarray(msg.model).reshape(3, 3) if homography else None
        self._publish(frame, reference_image, frame_id, p0, p1, mask, H, msg.header.stamp)

    def _publish(
        self,
        frame: np.ndarray,
        reference_image: np.ndarray,
        frame_id: str,
        p0: np.ndarray,
        p1: np.ndarray,
        mask: np.ndarray | None,
        H: np.ndarray | None,
        stamp: Time,
    ) -> None:
        out = array_to_image(draw_matches(reference_image, as_rgb(frame), p0, p1, mask, H), "rgb8")
        out.header.stamp = stamp
        out.header.frame_id = frame_id
        self.publisher.publish(out)
