"""Record topics into a rosbag2 bag (sqlite3 or mcap) through rclpy, without ``ros2 bag``.

The recorder stores the serialized CDR bytes its raw subscriptions receive (written by rosbags),
subscribing with the QoS profiles of the publishers it finds in the graph, and stores those
profiles in the bag metadata.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Connection,
    Qos,
    QosDurability,
    QosReliability,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from .bag import BagError, import_message_class, offer_from_profile

RECORD_DEPTH = 100  # subscriber queue of the recorder: a burst must not overflow before the write
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}


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
