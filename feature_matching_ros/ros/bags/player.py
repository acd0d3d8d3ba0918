"""Replay a rosbag2 bag (sqlite3 or mcap) through rclpy, without ``ros2 bag``.

The player publishes the stored serialized CDR bytes as they are, with the QoS profiles adapted
from those the bag's publishers offered (as rosbag2 does), optionally with /clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builtin_interfaces.msg import Time
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Connection,
    Qos,
)
from rosbags.rosbag2 import Reader
from rosgraph_msgs.msg import Clock

from ..infrastructure.qos import SENSOR_DATA
from ..infrastructure.topics import CLOCK
from .bag import DEFAULT_DEPTH, BagError, absolute_topic, import_message_class, open_bag, qos_from_offers

QOS_MODES = ("recorded", "reliable", "best-effort")


@dataclass
class PlaybackStats:
    published: dict[str, int] = field(default_factory=dict)  # messages per published topic
    clock_messages: int = 0
    wall_s: float = 0.0
    bag_s: float = 0.0  # bag time covered, summed over loops
    loops: int = 0  # complete passes through the bag
    interrupted: bool = False

    @property
    def total(self) -> int:
        return sum(self.published.values())

    @property
    def achieved_rate(self) -> float:
        return self.bag_s / self.wall_s if self.wall_s > 0 else 0.0


class BagPlayer:
    """Publishes a bag's messages at their recorded timing through ``node``, with /clock.

    Topics whose type is not importable (or not unique) are left out and listed in ``skipped``
    (topic -> reason); BagError when no topic is left. ``qos``: "recorded" (the recorded offers,
    else reliable depth 10), "reliable" (reliable depth 10) or "best-effort" (sensor-data QoS).
    A /clock recorded in the bag and played replaces the generated one.
    """

    def __init__(
        self,
        node: Node,
        bag: str | Path | Reader,
        *,
        topics: Iterable[str] | None = None,
        remap: Mapping[str, str] | None = None,
        qos: str = "recorded",
        clock: bool = True,
    ) -> None:
        if qos not in QOS_MODES:
            raise ValueError(f"qos must be one of {QOS_MODES}, not {qos!r}")
        self.node = node
        self._owns_reader = not isinstance(bag, Reader)
        self.reader = open_bag(bag) if self._owns_reader else bag
        remap = {absolute_topic(k): absolute_topic(v) for k, v in (remap or {}).items()}
        wanted = None if topics is None else {absolute_topic(t) for t in topics}
        missing = sorted((wanted or set()) - set(self.reader.topics))
        self.skipped: dict[str, str] = dict.fromkeys(missing, "not in the bag")
        self._connections: list[Connection] = []
        self._publishers = {}
        for topic, info in sorted(self.reader.topics.items()):
            if wanted is not None and topic not in wanted:
                continue
            if info.msgtype is None:
                self.skipped[topic] = "recorded with more than one message type"
                continue
            try:
                msg_class = import_message_class(info.msgtype)
            except BagError as exc:
                self.skipped[topic] = str(exc)
                continue
            offers = [o for c in info.connections for o in getattr(c.ext, "offered_qos_profiles", [])]
            profile = self._profile(qos, offers)
            self._publishers[topic] = node.create_publisher(msg_class, remap.get(topic, topic), profile)
            self._connections.extend(info.connections)
        if not self._publishers:
            if self._owns_reader:
                self.reader.close()
            raise BagError(f"no playable topic in bag {self.reader.path}")
        clock = clock and CLOCK not in {p.topic_name for p in self._publishers.values()}
        self._clock = node.create_publisher(Clock, CLOCK, DEFAULT_DEPTH) if clock else None
        self._last_clock = 0

    @staticmethod
    def _profile(qos: str, offers: Sequence[Qos]) -> QoSProfile:
        if qos == "best-effort":
            return SENSOR_DATA
        recorded = qos_from_offers(offers) if qos == "recorded" else None
        return recorded or QoSProfile(depth=DEFAULT_DEPTH, reliability=ReliabilityPolicy.RELIABLE)

    @property
    def publishers(self) -> dict[str, object]:
        """Bag topic -> publisher (whose ``topic_name`` is the remapped name)."""
        return dict(self._publishers)

    def wait_for_subscribers(self, timeout: float, stop: threading.Event | None = None) -> list[str]:
        """Wait until every publisher has a subscriber; the bag topics still without one."""
        stop = stop or threading.Event()
        deadline = time.monotonic() + timeout
        while True:
            lonely = [t for t, p in self._publishers.items() if p.get_subscription_count() == 0]
            if not lonely or time.monotonic() >= deadline or stop.wait(0.02):
                return lonely

    def wait_for_acked(self, timeout: float) -> list[str]:
        """Wait until reliable subscribers acknowledged all that was published, so that the process can end
        without losing the last messages; the topics still unacknowledged after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        pending = []
        for publisher in [*self._publishers.values(), self._clock]:
            left = Duration(nanoseconds=int(max(0.0, deadline - time.monotonic()) * 1e9))
            if publisher is not None and not publisher.wait_for_all_acked(left):
                pending.append(publisher.topic_name)
        return pending

    def play(
        self,
        *,
        rate: float = 1.0,
        start_offset: float = 0.0,
        loop: bool = False,
        clock_hz: float = 100.0,
        stop: threading.Event | None = None,
    ) -> PlaybackStats:
        """Play the bag (again and again with ``loop``) until its end or until ``stop`` is set."""
        if rate <= 0 or clock_hz <= 0 or start_offset < 0:
            raise ValueError("rate and clock_hz must be positive, start_offset not negative")
        stop = stop or threading.Event()
        stats = PlaybackStats(published=dict.fromkeys((p.topic_name for p in self._publishers.values()), 0))
        start_ns = self.reader.start_time + int(start_offset * 1e9)
        began = time.perf_counter()
        try:
            while self._play_pass(start_ns, rate, 1.0 / clock_hz, stop, stats):
                stats.loops += 1
                if not loop or stats.total == 0:
                    break
        finally:
            stats.wall_s = time.perf_counter() - began
        stats.interrupted = stop.is_set()
        return stats

    def _play_pass(
        self, start_ns: int, rate: float, period: float, stop: threading.Event, stats: PlaybackStats
    ) -> bool:
        """One pass from ``start_ns`` to the end; False when stopped."""
        wall0 = next_clock = time.perf_counter()
        self._last_clock = start_ns
        self._publish_clock(start_ns, stats)
        last = start_ns
        for connection, stamp, data in self.reader.messages(self._connections, start=start_ns):
            due = wall0 + (stamp - start_ns) / 1e9 / rate
            while True:
                now = time.perf_counter()
                if self._clock is not None and now >= next_clock:
                    self._publish_clock(min(stamp, start_ns + int((now - wall0) * rate * 1e9)), stats)
                    next_clock = max(next_clock + period, now)
                if now >= due:
                    break
                if stop.wait(min(due, next_clock) - now if self._clock is not None else due - now):
                    return False
            if stop.is_set():
                return False
            publisher = self._publishers[connection.topic]
            publisher.publish(data if isinstance(data, bytes) else bytes(data))
            stats.published[publisher.topic_name] += 1
            last = stamp
        self._publish_clock(last, stats)
        stats.bag_s += (last - start_ns) / 1e9
        return True

    def _publish_clock(self, stamp_ns: int, stats: PlaybackStats) -> None:
        if self._clock is None:
            return
        self._last_clock = max(self._last_clock, stamp_ns)
        sec, nanosec = divmod(self._last_clock, 10**9)
        self._clock.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))
        stats.clock_messages += 1

    def close(self) -> None:
        for publisher in [*self._publishers.values(), self._clock]:
            if publisher is not None:
                self.node.destroy_publisher(publisher)
        self._publishers.clear()
        self._clock = None
        if self._owns_reader and self.reader.is_open:
            self.reader.close()

    def __enter__(self) -> BagPlayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
