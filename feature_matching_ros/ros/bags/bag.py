"""Replay and record rosbag2 bags (sqlite3 or mcap) through rclpy, without ``ros2 bag``.

Messages travel as serialized CDR bytes both ways: the player publishes the stored bytes as they are,
the recorder stores the bytes its raw subscriptions receive. Reading and writing is done by rosbags.
QoS follows rosbag2: the player adapts the profiles the bag's publishers offered, the recorder the
profiles of the publishers it finds in the graph, and stores those in the bag metadata.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builtin_interfaces.msg import Time
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosbags.interfaces import (
    Connection,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore
from rosgraph_msgs.msg import Clock

from ..infrastructure.topics import CLOCK

DEFAULT_DEPTH = 10
RECORD_DEPTH = 100  # subscriber queue of the recorder: a burst must not overflow before the write
QOS_MODES = ("recorded", "reliable", "best-effort")
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}


class BagError(Exception):
    """A bag or a topic that cannot be played or recorded; the message is one line for the user."""


def import_message_class(msgtype: str) -> type:
    """The generated Python class of ``pkg/msg/Name`` (module ``pkg.msg``, attribute ``Name``)."""
    parts = msgtype.split("/")
    if len(parts) != 3 or parts[1] != "msg" or not all(parts):
        raise BagError(f"{msgtype!r} is not a message type name of the form pkg/msg/Name")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.msg"), parts[2])
    except (ImportError, AttributeError) as exc:
        raise BagError(f"message type {msgtype} is not importable here ({exc})") from None


def absolute_topic(name: str) -> str:
    return name if name.startswith("/") else "/" + name


def split_ros_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """A command line split before ``--ros-args`` (rcl's own ``remove_ros_args`` also eats ``FROM:=TO``)."""
    cut = argv.index("--ros-args") if "--ros-args" in argv else len(argv)
    return list(argv[:cut]), list(argv[cut:])


def open_bag(path: str | Path) -> Reader:
    """An opened rosbags reader of a rosbag2 directory, ``.db3`` or ``.mcap`` file."""
    try:
        reader = Reader(Path(path))
        reader.open()
    except Exception as exc:  # rosbags raises FileNotFoundError, ReaderError, yaml and sqlite errors
        raise BagError(f"cannot read bag {path}: {exc}") from None
    return reader


def qos_from_offers(offers: Sequence[Qos]) -> QoSProfile | None:
    """Publisher QoS from the profiles the recorded publishers offered, None when none was recorded.

    Best effort (transient local) only when every recorded publisher offered it, as rosbag2 does;
    the depth is the largest recorded keep-last depth (graph-discovered profiles carry none: 10).
    """
    if not offers:
        return None
    best_effort = all(o.reliability == QosReliability.BEST_EFFORT for o in offers)
    latched = all(o.durability == QosDurability.TRANSIENT_LOCAL for o in offers)
    depths = [o.depth for o in offers if o.history == QosHistory.KEEP_LAST and o.depth > 0]
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=max(depths, default=DEFAULT_DEPTH),
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def offer_from_profile(profile: QoSProfile) -> Qos:
    """The rosbags form of an rclpy QoS profile (as stored in rosbag2 metadata)."""

    def when(duration: Duration) -> QosTime:
        return QosTime(*divmod(duration.nanoseconds, 10**9))

    return Qos(
        QosHistory[profile.history.name],
        profile.depth,
        QosReliability[profile.reliability.name],
        QosDurability[profile.durability.name],
        when(profile.deadline),
        when(profile.lifespan),
        QosLiveliness[profile.liveliness.name],
        when(profile.liveliness_lease_duration),
        profile.avoid_ros_namespace_conventions,
    )


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
            return qos_profile_sensor_data
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


def typestore_for(msgtypes: Iterable[str]) -> Typestore:
    """The rosbags typestore of ``$ROS_DISTRO`` (else the newest ROS 2 one) knowing ``msgtypes``.

    Types the store lacks (the package's own messages, say) are parsed from ``share/<pkg>/msg/*.msg``
    under the ament prefixes, or from this source checkout's ``msg/`` directory.
    """
    ros2 = [s for s in Stores if s.value.startswith("ros2_")]
    distro = os.environ.get("ROS_DISTRO", "")
    store = get_typestore(next((s for s in ros2 if s.value == f"ros2_{distro}"), ros2[-1]))
    for msgtype in msgtypes:
        _register(store, msgtype)
    return store


def _msg_file(msgtype: str) -> Path | None:
    package, _, name = msgtype.split("/")
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    candidates = [Path(p) / "share" / package / "msg" / f"{name}.msg" for p in prefixes]
    if package == "feature_matching_ros":
        candidates.append(Path(__file__).resolve().parents[3] / "msg" / f"{name}.msg")
    return next((c for c in candidates if c.is_file()), None)


def _register(store: Typestore, msgtype: str) -> None:
    if msgtype in store.fielddefs:
        return
    path = _msg_file(msgtype) if msgtype.count("/") == 2 else None
    if path is None:
        raise BagError(f"no message definition of {msgtype}: not in rosbags' typestore, no .msg file found")
    store.register(get_types_from_msg(path.read_text(), msgtype))
    for _, (kind, detail) in store.fielddefs[msgtype][1]:
        element = detail[0] if kind.name in ("ARRAY", "SEQUENCE") else (kind, detail)
        if element[0].name == "NAME":
            _register(store, element[1])


@dataclass
class RecordStats:
    written: dict[str, int] = field(default_factory=dict)  # messages per topic
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def total(self) -> int:
        return sum(self.written.values())


class BagRecorder:
    """Records topics into a new rosbag2 bag at ``out``, each message stamped with the node clock on receipt.

    ``start`` waits for a publisher on every topic, takes the message type and QoS from them and subscribes
    raw (reliable / transient local only when every publisher offers it, as rosbag2). ``record`` writes
    the bag from start to end in its own thread (sqlite3 handles are bound to the thread that made them).
    """

    def __init__(
        self, node: Node, out: str | Path, topic_names: Iterable[str], *, storage: str = "sqlite3"
    ) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {tuple(STORAGES)}, not {storage!r}")
        self.node = node
        self.out = Path(out)
        if self.out.exists():
            raise BagError(f"{self.out} exists already; a bag is only written to a new path")
        self.topics = list(dict.fromkeys(node.resolve_topic_name(t) for t in topic_names))
        if not self.topics:
            raise ValueError("no topic to record")
        self.storage = storage
        self.stats = RecordStats(written=dict.fromkeys(self.topics, 0))
        self._subscriptions: list[object] = []
        self._offers: dict[str, tuple[str, list[Qos]]] = {}  # topic -> (type, offered QoS)
        self._store: Typestore | None = None
        self._writer: Writer | None = None
        self._connections: dict[str, Connection] = {}
        self._limit: int | None = None

    def wait_for_publishers(self, timeout: float, stop: threading.Event | None = None) -> dict[str, list]:
        """Topic -> publisher endpoint infos, once every topic has a publisher; BagError on timeout."""
        stop = stop or threading.Event()
        deadline = time.monotonic() + timeout
        while True:
            found = {t: self.node.get_publishers_info_by_topic(t) for t in self.topics}
            missing = [t for t, endpoints in found.items() if not endpoints]
            if not missing:
                return found
            if time.monotonic() >= deadline or stop.wait(0.05):
                raise BagError(f"no publisher after {timeout:g} s on: {', '.join(missing)}")

    def start(self, timeout: float = 10.0, stop: threading.Event | None = None) -> None:
        """Wait for the topics' publishers, resolve their types and subscribe."""
        endpoints = self.wait_for_publishers(timeout, stop)
        graph = dict(self.node.get_topic_names_and_types())
        for topic in self.topics:
            kinds = sorted(set(graph.get(topic, [])) | {e.topic_type for e in endpoints[topic]})
            if len(kinds) != 1:
                raise BagError(f"topic {topic} has {len(kinds)} message types: {', '.join(kinds)}")
            self._offers[topic] = (kinds[0], [offer_from_profile(e.qos_profile) for e in endpoints[topic]])
        classes = {topic: import_message_class(kind) for topic, (kind, _) in self._offers.items()}
        self._store = typestore_for({kind for kind, _ in self._offers.values()})
        for topic, (_, offers) in self._offers.items():
            reliable = all(o.reliability == QosReliability.RELIABLE for o in offers)
            latched = all(o.durability == QosDurability.TRANSIENT_LOCAL for o in offers)
            qos = QoSProfile(
                depth=RECORD_DEPTH,
                reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
            )
            sub = self.node.create_subscription(classes[topic], topic, self._writer_for(topic), qos, raw=True)
            self._subscriptions.append(sub)

    def _writer_for(self, topic: str) -> Callable[[bytes], None]:
        def write(data: bytes) -> None:
            if self._writer is None or (self._limit is not None and self.stats.total >= self._limit):
                return
            self._writer.write(self._connections[topic], self.node.get_clock().now().nanoseconds, data)
            self.stats.written[topic] += 1

        return write

    def record(
        self,
        *,
        duration: float | None = None,
        max_messages: int | None = None,
        stop: threading.Event | None = None,
    ) -> RecordStats:
        """Write the bag: spin the node until ``duration`` s, ``max_messages`` or ``stop``, then close it."""
        if self._store is None or self.out.exists():
            raise RuntimeError("BagRecorder.start() first, and record() only once")
        stop = stop or threading.Event()
        self._limit = max_messages
        executor = SingleThreadedExecutor(context=self.node.context)
        executor.add_node(self.node)
        began = time.monotonic()
        writer = Writer(self.out, version=Writer.VERSION_LATEST, storage_plugin=STORAGES[self.storage])
        writer.open()
        try:  # the bag is closed with its metadata however recording ends, Ctrl-C included
            for topic, (kind, offers) in self._offers.items():
                self._connections[topic] = writer.add_connection(
                    topic, kind, typestore=self._store, offered_qos_profiles=offers
                )
            self._writer = writer
            while not stop.is_set():
                if duration is not None and time.monotonic() - began >= duration:
                    break
                if max_messages is not None and self.stats.total >= max_messages:
                    break
                executor.spin_once(timeout_sec=0.05)
        finally:
            self._writer = None
            executor.remove_node(self.node)
            executor.shutdown()
            writer.close()
            self.stats.wall_s = time.monotonic() - began
        self.stats.interrupted = stop.is_set()
        return self.stats

    def close(self) -> None:
        """Unsubscribe; safe to call twice."""
        for subscription in self._subscriptions:
            self.node.destroy_subscription(subscription)
        self._subscriptions.clear()

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
