"""Play a bag through the running pipeline one camera frame at a time, for evaluation.

Real-time playback drops frames when the matcher is slower than the camera; an evaluation wants
an answer for every frame. So: publish everything the bag recorded up to and including a camera
frame (attitude, altitude, camera_info, the image), then wait for the geometry node's answer to
that frame (its GeometryEstimate, and the pose or odometry it published) before the next one.
The latency of a frame is the wall time from publishing its image to its GeometryEstimate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node

from feature_matching_ros.msg import GeometryEstimate

from ..infrastructure import topics
from ..infrastructure.qos import RELIABLE
from .bag import BagError, absolute_topic, import_message_class, open_bag

FIRST_FRAME_WAIT = 2.0  # s


@dataclass
class FrameOutcome:
    """What the pipeline answered for the camera frame stamped ``stamp_ns``."""

    stamp_ns: int
    published: float  # time.monotonic() of the image publication
    geometry: GeometryEstimate | None = None
    pose: PoseWithCovarianceStamped | None = None
    odometry: Odometry | None = None
    answered: float | None = None

    @property
    def latency_ms(self) -> float | None:
        return None if self.answered is None else (self.answered - self.published) * 1e3


def _key(stamp: object) -> int:
    return int(stamp.sec) * 10**9 + int(stamp.nanosec)


class LockstepPlayer:
    """Plays ``bag`` through ``node``'s publishers; ``exclude`` topics (e.g. ground truth) stay
    unplayed. ``first_answered``: False when the first frame gets no answer (it becomes the
    keyframe); the player then gives the matcher FIRST_FRAME_WAIT seconds to take it, not the
    whole ``answer_timeout``."""

    def __init__(
        self,
        node: Node,
        bag: str | Path,
        *,
        camera_topic: str = topics.CAMERA_IMAGE,
        exclude: Iterable[str] = (),
        answer_timeout: float = 30.0,
        pose_grace: float = 1.0,
        first_answered: bool = True,
    ) -> None:
        self.node = node
        self.reader = open_bag(bag)
        self.camera_topic = absolute_topic(camera_topic)
        self.answer_timeout = answer_timeout
        # In keyframe mode the first frame only becomes the keyframe: nothing answers it.
        self._unanswered = 0 if first_answered else 1
        self.pose_grace = pose_grace
        excluded = {absolute_topic(t) for t in exclude} | {absolute_topic(topics.CLOCK)}
        if self.camera_topic not in self.reader.topics:
            raise BagError(f"bag {bag} has no {self.camera_topic} topic; it has {sorted(self.reader.topics)}")
        self._publishers = {}
        self._connections = []
        for topic, info in sorted(self.reader.topics.items()):
            if topic in excluded or info.msgtype is None:
                continue
            self._publishers[topic] = node.create_publisher(
                import_message_class(info.msgtype), topic, RELIABLE
            )
            self._connections.extend(info.connections)
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._outcomes: dict[int, FrameOutcome] = {}
        node.create_subscription(GeometryEstimate, topics.GEOMETRY, self._on_geometry, RELIABLE)
        node.create_subscription(PoseWithCovarianceStamped, topics.POSE, self._on_pose, RELIABLE)
        node.create_subscription(Odometry, topics.ODOMETRY, self._on_odometry, RELIABLE)

    @property
    def frame_count(self) -> int:
        return sum(c.msgcount for c in self.reader.topics[self.camera_topic].connections)

    def wait_for_subscribers(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            lonely = [t for t, p in self._publishers.items() if p.get_subscription_count() == 0]
            if not lonely or time.monotonic() > deadline:
                return lonely
            time.sleep(0.05)

    def play(
        self, on_frame: Callable[[FrameOutcome], None] | None = None, stop: threading.Event | None = None
    ) -> list[FrameOutcome]:
        """Every camera frame's outcome, in bag order."""
        stop = stop or threading.Event()
        results: list[FrameOutcome] = []
        pending_image: tuple[int, bytes] | None = None
        for connection, timestamp, data in self.reader.messages(self._connections):
            if stop.is_set():
                break
            if pending_image is not None and timestamp > pending_image[0]:
                results.append(self._frame(pending_image[1], on_frame))
                pending_image = None
            if connection.topic == self.camera_topic:
                if pending_image is not None:
                    results.append(self._frame(pending_image[1], on_frame))
                pending_image = (timestamp, bytes(data))
            else:
                self._publishers[connection.topic].publish(bytes(data))
        if pending_image is not None and not stop.is_set():
            results.append(self._frame(pending_image[1], on_frame))
        return results

    def _frame(self, data: bytes, on_frame: Callable[[FrameOutcome], None] | None) -> FrameOutcome:
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import Image

        stamp = _key(deserialize_message(data, Image).header.stamp)
        outcome = FrameOutcome(stamp, time.monotonic())
        with self._lock:
            self._outcomes[stamp] = outcome
        self._publishers[self.camera_topic].publish(data)
        # an unanswered first frame still needs the matcher to take it before the next one comes
        deadline = outcome.published + (self.answer_timeout if self._unanswered == 0 else FIRST_FRAME_WAIT)
        self._unanswered = max(self._unanswered - 1, 0)
        with self._answered:
            while outcome.geometry is None and time.monotonic() < deadline:
                self._answered.wait(0.05)
            want_pose = outcome.geometry is not None and outcome.geometry.pose_published
            grace = time.monotonic() + self.pose_grace
            while (
                want_pose and outcome.pose is None and outcome.odometry is None and time.monotonic() < grace
            ):
                self._answered.wait(0.01)
            del self._outcomes[stamp]
        if on_frame is not None:
            on_frame(outcome)
        return outcome

    def _on_geometry(self, msg: GeometryEstimate) -> None:
        with self._answered:
            outcome = self._outcomes.get(_key(msg.header.stamp))
            if outcome is not None and outcome.geometry is None:
                outcome.geometry, outcome.answered = msg, time.monotonic()
                self._answered.notify_all()

    def _on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        with self._answered:
            outcome = self._outcomes.get(_key(msg.header.stamp))
            if outcome is not None:
                outcome.pose = msg
                self._answered.notify_all()

    def _on_odometry(self, msg: Odometry) -> None:
        with self._answered:
            outcome = self._outcomes.get(_key(msg.header.stamp))
            if outcome is not None:
                outcome.odometry = msg
                self._answered.notify_all()

    def close(self) -> None:
        for publisher in self._publishers.values():
            self.node.destroy_publisher(publisher)
        self._publishers.clear()
        if self.reader.is_open:
            self.reader.close()
