"""Read a recorded flight from a rosbag2 with rosbags: frames with their aids and ground truth.

For evaluating the core directly (no DDS) and for scoring the pipeline's answers against the
ground truth. Attitude and altitude are paired with each frame by nearest stamp.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.typesys import Stores, get_typestore

from feature_matching_ros.core.geometry.pose import matrix_from_quaternion

from ..conversions.images import image_to_core
from ..infrastructure import topics
from .bag import BagError, absolute_topic, open_bag

# Aids further than this from a frame's stamp are not paired with it, s.
MAX_AID_OFFSET = 0.1


@dataclass(frozen=True, eq=False)
class FlightFrame:
    """A camera frame at ``stamp`` (s) with K, distortion and, when recorded, the attitude
    (R_map_body), height above ground (m) and ground-truth pose (map frame) at that moment."""

    stamp: float
    stamp_ns: int
    image: np.ndarray
    K: np.ndarray
    D: np.ndarray
    R_map_body: np.ndarray | None
    height: float | None
    truth_position: np.ndarray | None
    truth_R_map_body: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Truth:
    """Ground-truth poses: stamps_ns [N], positions [N x 3], rotations [N x 3 x 3]."""

    stamps_ns: np.ndarray
    positions: np.ndarray
    rotations: np.ndarray

    def at(self, stamp_ns: int, tolerance_ns: int = 1_000_000) -> tuple[np.ndarray, np.ndarray] | None:
        if len(self.stamps_ns) == 0:
            return None
        i = int(np.argmin(np.abs(self.stamps_ns - stamp_ns)))
        if abs(int(self.stamps_ns[i]) - stamp_ns) > tolerance_ns:
            return None
        return self.positions[i], self.rotations[i]


def _store():
    ros2 = [s for s in Stores if s.value.startswith("ros2_")]
    return get_typestore(ros2[-1])


def _stamp_ns(header: object) -> int:
    return int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec)


def _quaternion(q: object) -> np.ndarray:
    return matrix_from_quaternion(np.array([q.x, q.y, q.z, q.w], np.float64))


def read_truth(bag: str | Path, topic: str = topics.GROUND_TRUTH_POSE) -> Truth:
    """Every ground-truth pose (geometry_msgs/PoseStamped) recorded on ``topic``."""
    store, topic = _store(), absolute_topic(topic)
    stamps, positions, rotations = [], [], []
    reader = open_bag(bag)
    try:
        if topic not in reader.topics:
            raise BagError(f"bag {bag} has no ground truth on {topic}")
        for connection, _, data in reader.messages(reader.topics[topic].connections):
            msg = store.deserialize_cdr(data, connection.msgtype)
            p = msg.pose.position
            stamps.append(_stamp_ns(msg.header))
            positions.append([p.x, p.y, p.z])
            rotations.append(_quaternion(msg.pose.orientation))
    finally:
        reader.close()
    return Truth(
        np.array(stamps, np.int64), np.array(positions).reshape(-1, 3), np.array(rotations).reshape(-1, 3, 3)
    )


def read_flight(bag: str | Path, limit: int | None = None) -> Iterator[FlightFrame]:
    """The frames of a flight bag (camera image + camera_info; attitude, altitude, truth if recorded)."""
    store = _store()
    names = {
        "image": absolute_topic(topics.CAMERA_IMAGE),
        "info": absolute_topic(topics.CAMERA_INFO),
        "attitude": absolute_topic(topics.ATTITUDE),
        "altitude": absolute_topic(topics.ALTITUDE),
    }
    reader = open_bag(bag)
    try:
        truth = read_truth(bag) if absolute_topic(topics.GROUND_TRUTH_POSE) in reader.topics else None
        for needed in ("image", "info"):
            if names[needed] not in reader.topics:
                raise BagError(f"bag {bag} has no {names[needed]} topic")
        aids = {"info": {}, "attitude": {}, "altitude": {}}
        wanted = [c for key, t in names.items() if t in reader.topics for c in reader.topics[t].connections]
        images: list[tuple[int, object]] = []
        for connection, _, data in reader.messages(wanted):
            msg = store.deserialize_cdr(data, connection.msgtype)
            key = next(k for k, t in names.items() if t == connection.topic)
            if key == "image":
                images.append((_stamp_ns(msg.header), msg))
            elif key == "info":
                aids["info"][_stamp_ns(msg.header)] = (
                    np.array(msg.k, np.float64).reshape(3, 3),
                    np.array(msg.d),
                )
            elif key == "attitude":
                q = msg.orientation if hasattr(msg, "orientation") else msg.quaternion
                aids["attitude"][_stamp_ns(msg.header)] = _quaternion(q)
            else:
                aids["altitude"][_stamp_ns(msg.header)] = float(msg.range)
    finally:
        reader.close()
    for count, (stamp_ns, msg) in enumerate(images):
        if limit is not None and count >= limit:
            return
        info = _nearest(aids["info"], stamp_ns)
        if info is None:
            raise BagError(f"no camera_info near the frame at {stamp_ns} ns")
        pose = truth.at(stamp_ns) if truth is not None else None
        yield FlightFrame(
            stamp_ns / 1e9,
            stamp_ns,
            image_to_core(msg),
            info[0],
            info[1],
            _nearest(aids["attitude"], stamp_ns),
            _nearest(aids["altitude"], stamp_ns),
            None if pose is None else pose[0],
            None if pose is None else pose[1],
        )


def _nearest(samples: dict[int, object], stamp_ns: int) -> object | None:
    if not samples:
        return None
    best = min(samples, key=lambda s: abs(s - stamp_ns))
    return samples[best] if abs(best - stamp_ns) <= MAX_AID_OFFSET * 1e9 else None
