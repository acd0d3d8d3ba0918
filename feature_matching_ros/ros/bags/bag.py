"""What the bag player and recorder share: opening a bag, message classes and topic names, QoS
profiles from and to the offers a bag stores (as rosbag2 does), and the bag tools' error."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader

DEFAULT_DEPTH = 10


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
