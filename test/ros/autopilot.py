"""The test side of the autopilot output nodes (nmea_output, mavlink_bridge): the navigator's ``fix``
and ``odometry`` publishers, the node's ``/diagnostics``, the fixture that starts a node with it, and a
stream of solutions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from .conftest import spin_until


class NavigatorSide:
    """Publishes what the navigator would (reliable, as it does) and collects /diagnostics; a test's
    subclass adds the receiver of the node's output (a UDP socket, a MAVLink connection)."""

    def __init__(self, context: Any, name: str = "fm_test_autopilot") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import NavSatFix

        from feature_matching_ros.ros.infrastructure import topics

        self.node = rclpy.create_node(name, context=context)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.fix_pub = self.node.create_publisher(NavSatFix, topics.FIX, reliable)
        self.odometry_pub = self.node.create_publisher(Odometry, topics.ODOMETRY, reliable)
        self.diagnostics: list = []
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self.diagnostics.append, reliable)

    def statuses(self, node_name: str) -> list:
        """Every DiagnosticStatus received from ``node_name``, oldest first."""
        return [s for array in self.diagnostics for s in array.status if s.name.startswith(f"{node_name}:")]

    def error_keys(self, node_name: str) -> set[str]:
        """The ``error: <category>`` values of the ERROR statuses received from ``node_name``."""
        return {
            kv.key
            for s in self.statuses(node_name)
            if s.level == b"\x02"
            for kv in s.values
            if kv.key.startswith("error: ")
        }

    def has_error(self, node_name: str, *texts: str) -> bool:
        """Whether ``node_name`` reported an ERROR whose message contains every one of ``texts``."""
        return any(
            s.level == b"\x02" and all(t in s.message for t in texts) for s in self.statuses(node_name)
        )

    def read(self) -> None:
        """Collect what the node sent so far (a subclass's receiver)."""

    def destroy(self) -> None:
        self.node.destroy_node()


def output_node_starter(
    context: Any, node_class: type, side_class: type, defaults: Callable[[Any], dict[str, Any]]
) -> Iterator[Callable[..., tuple[Any, Any, Any]]]:
    """The body of a fixture: yields ``start(**parameters) -> (side, executor, node)``, which makes a
    ``side_class(context)`` and a ``node_class`` with ``defaults(side)`` and ``parameters``, and waits
    until the node subscribes to fix and odometry; everything made is destroyed afterwards."""
    from rclpy.parameter import Parameter

    from feature_matching_ros.ros.infrastructure.spin import make_executor

    made: list = []
    executor = make_executor(context)

    def start(**parameters: Any) -> tuple[Any, Any, Any]:
        side = side_class(context)
        made.append(side)
        values = {**defaults(side), **parameters}
        node = node_class(
            context=context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]
        )
        made.append(node)
        executor.add_node(node)
        executor.add_node(side.node)
        spin_until(
            executor,
            lambda: (
                side.fix_pub.get_subscription_count() > 0 and side.odometry_pub.get_subscription_count() > 0
            ),
            what="the node to subscribe to fix and odometry",
        )
        return side, executor, node

    yield start
    executor.shutdown()
    for item in made:
        (item.destroy_node if hasattr(item, "destroy_node") else item.destroy)()


def fly(
    side: NavigatorSide, executor: Any, messages: Callable[[float], tuple[Any, Any]], frames: int, t0: float
) -> float:
    """Publish ``frames`` solutions 0.1 s apart (stamps and wall clock), each the (fix, odometry) of
    ``messages(t)``, the fix first; the last stamp."""
    t = t0
    for i in range(frames):
        t = t0 + 0.1 * i
        fix, odometry = messages(t)
        side.fix_pub.publish(fix)
        side.odometry_pub.publish(odometry)
        deadline = time.monotonic() + 0.1
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.01)
            side.read()
    return t
