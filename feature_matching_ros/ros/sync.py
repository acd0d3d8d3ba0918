"""Approximate-time pairing of messages from several topics by header stamp.

message_filters' ApproximateTimeSynchronizer is used where installed (a ROS machine);
``ApproximateSync`` is the package's own equivalent for environments without it.
"""

from __future__ import annotations

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


def subscribe_synchronised(
    node: Any,
    inputs: Sequence[tuple[type, str]],
    qos: Any,
    slop: float,
    queue_size: int,
    callback: Callable[..., None],
) -> list[Any]:
    """Subscribe ``inputs`` ([(msg_type, topic)]) and call ``callback`` with approximately synchronised
    tuples; returns what must be kept alive (subscriptions or filters)."""
    if message_filters is not None:
        subs = [message_filters.Subscriber(node, t, topic, qos_profile=qos) for t, topic in inputs]
        sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size, slop)
        sync.registerCallback(callback)
        return [*subs, sync]
    sync = ApproximateSync(len(inputs), queue_size, slop, callback)
    subs = [
        node.create_subscription(t, topic, lambda msg, i=i: sync.add(i, msg), qos)
        for i, (t, topic) in enumerate(inputs)
    ]
    return [*subs, sync]
