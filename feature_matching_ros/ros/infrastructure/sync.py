"""Approximate-time pairing of messages from several topics by header stamp.

message_filters' ApproximateTimeSynchronizer is used where installed (a ROS machine);
``ApproximateSync`` is the package's own equivalent for environments without it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

try:
    import message_filters
except ImportError:
    message_filters = None


def stamp_seconds(msg: Any) -> float:
    stamp = msg.header.stamp
    return stamp.sec + stamp.nanosec * 1e-9


class ApproximateSync:
    """Calls ``callback(*msgs)`` with one message per input whose stamps lie within ``slop`` seconds.

    A new message is paired with the closest-in-time message of every other input; the matched
    messages and everything older on each input are then discarded. Each input keeps at most
    ``queue_size`` messages, so memory is bounded whatever the rates.
    """

    def __init__(self, num_inputs: int, queue_size: int, slop: float, callback: Callable[..., None]) -> None:
        if num_inputs < 1 or queue_size < 1 or slop < 0:
            raise ValueError("ApproximateSync needs num_inputs >= 1, queue_size >= 1 and slop >= 0")
        self._queues: list[deque[tuple[float, Any]]] = [deque(maxlen=queue_size) for _ in range(num_inputs)]
        self._slop = slop
        self._callback = callback

    def add(self, index: int, msg: Any) -> None:
        t = stamp_seconds(msg)
        self._queues[index].append((t, msg))
        chosen: list[tuple[float, Any]] = []
        for i, queue in enumerate(self._queues):
            if i == index:
                chosen.append((t, msg))
                continue
            best = min(queue, key=lambda item: abs(item[0] - t), default=None)
            if best is None or abs(best[0] - t) > self._slop:
                return
            chosen.append(best)
        for queue, (stamp, _) in zip(self._queues, chosen, strict=True):
            while queue and queue[0][0] <= stamp:
                queue.popleft()
        self._callback(*(m for _, m in chosen))


class PairingWatch:
    """Notices camera images that are never paired with camera_info, and says why.

    ``image``, ``info`` and ``paired`` are called as messages arrive and pairs form; ``problem()``
    names what is wrong once images have gone unpaired for ``patience`` seconds (a single one is
    no problem: best-effort camera_info may be lost), until the images stop for ``5 x patience``.
    """

    def __init__(
        self,
        image_topic: str,
        info_topic: str,
        slop: float,
        patience: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._topics = (image_topic, info_topic)
        self._slop = slop
        self._patience = patience
        self._clock = clock
        self._lock = threading.Lock()
        self._last_image: tuple[float, float] | None = None  # (arrival, stamp)
        self._last_info: tuple[float, float] | None = None
        self._first_unpaired = 0.0  # arrival of the first image since the last pair
        self._unpaired = 0  # images since the last pair

    def image(self, msg: Any) -> None:
        with self._lock:
            self._last_image = (self._clock(), stamp_seconds(msg))
            if self._unpaired == 0:
                self._first_unpaired = self._last_image[0]
            self._unpaired += 1

    def info(self, msg: Any) -> None:
        with self._lock:
            self._last_info = (self._clock(), stamp_seconds(msg))

    def paired(self) -> None:
        with self._lock:
            self._unpaired = 0

    def problem(self) -> str | None:
        """Why images go unprocessed (no camera_info, or stamps too far apart), or None."""
        with self._lock:
            now = self._clock()
            image, info, first, unpaired = (
                self._last_image,
                self._last_info,
                self._first_unpaired,
                self._unpaired,
            )
        if (
            image is None
            or unpaired < 2
            or now - first < self._patience
            or now - image[0] > 5 * self._patience
        ):
            return None
        image_topic, info_topic = self._topics
        lost = f"{unpaired} image(s) on {image_topic} not processed"
        if info is None:
            return f"{lost}: no camera_info received on {info_topic} (each image needs its camera_info)"
        if image[0] - info[0] > self._patience:
            return f"{lost}: no camera_info on {info_topic} for {now - info[0]:.1f} s"
        return (
            f"{lost}: they never pair with camera_info on {info_topic}; the latest stamps differ by "
            f"{abs(image[1] - info[1]):.3f} s (image {image[1]:.3f}, camera_info {info[1]:.3f}), "
            f"more than sync_slop {self._slop:g} s"
        )


def subscribe_synchronised(
    node: Any,
    inputs: Sequence[tuple[type, str]],
    qos: Any,
    slop: float,
    queue_size: int,
    callback: Callable[..., None],
    on_input: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Subscribe ``inputs`` ([(msg_type, topic)]) and call ``callback`` with approximately synchronised
    tuples; ``on_input(index, msg)`` hears every message as it arrives. Returns what must be kept
    alive (subscriptions or filters)."""
    if message_filters is not None:
        subs = [message_filters.Subscriber(node, t, topic, qos_profile=qos) for t, topic in inputs]
        if on_input is not None:
            for i, sub in enumerate(subs):
                sub.registerCallback(lambda msg, i=i: on_input(i, msg))
        sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size, slop)
        sync.registerCallback(callback)
        return [*subs, sync]
    sync = ApproximateSync(len(inputs), queue_size, slop, callback)

    def add(i: int, msg: Any) -> None:
        if on_input is not None:
            on_input(i, msg)
        sync.add(i, msg)

    subs = [
        node.create_subscription(t, topic, lambda msg, i=i: add(i, msg), qos)
        for i, (t, topic) in enumerate(inputs)
    ]
    return [*subs, sync]


def watched_camera(
    node: Any,
    image: tuple[type, str],
    info: tuple[type, str],
    qos: Any,
    slop: float,
    queue_size: int,
    callback: Callable[[Any, Any], None],
) -> tuple[list[Any], PairingWatch]:
    """Camera images paired with camera_info for ``callback``, and a watch on the pairing."""
    watch = PairingWatch(image[1], info[1], slop)
    arrived = (watch.image, watch.info)

    def paired(image_msg: Any, info_msg: Any) -> None:
        watch.paired()
        callback(image_msg, info_msg)

    subs = subscribe_synchronised(
        node, [image, info], qos, slop, queue_size, paired, lambda i, msg: arrived[i](msg)
    )
    return subs, watch
