"""What the autopilot output nodes (``nmea_output``, ``mavlink_bridge``) share: their parameters
declared, the navigator's ``fix`` (NavSatFix) and ``odometry`` (nav_msgs/Odometry) subscribed reliable
as the navigator publishes them, errors counted, logged (throttled) and reported, and one
``/diagnostics`` status a ``diagnostics_period``: ``"<node>: <TITLE>"`` with the values and the link
name of :meth:`OutputNode.diagnostic_values`.

A subclass sets ``TITLE``, defines ``_on_fix``, ``_on_odometry`` and ``diagnostic_values``, and calls
:meth:`OutputNode.start` once it is set up.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import NavSatFix

from feature_matching_ros.core.geometry.pose import matrix_from_quaternion

from .. import params
from ..infrastructure import topics
from ..infrastructure.diagnostics import Monitor, ThrottledLog, steady_timer, to_status
from ..infrastructure.qos import RELIABLE

# A link that cannot be opened (an unplugged serial device, an unknown host) is retried this often, s.
REOPEN_PERIOD_S = 1.0


@dataclass(frozen=True)
class Held:
    """A value and the steady-clock time it arrived."""

    value: Any
    received: float


def fix_state(held: bool, lost: bool) -> str:
    """The diagnostics ``fix`` value: a fix held, the solution lost, or none (never, or too old)."""
    return "yes" if held else ("lost" if lost else "no (none or too old)")


def odometry_twist(msg: Odometry) -> tuple[np.ndarray, np.ndarray] | None:
    """The ENU map velocity [3] and its 3 x 3 covariance of an Odometry that carries a twist
    (covariance[0] >= 0, as the navigator's once it has a velocity), else None. The twist is in the
    child frame (the body, REP 105): rotated into the map by the pose's own orientation."""
    if not (msg.twist.covariance[0] >= 0.0):
        return None
    q = msg.pose.pose.orientation
    quaternion = np.array([q.x, q.y, q.z, q.w], np.float64)
    if not (np.isfinite(quaternion).all() and quaternion @ quaternion > 1e-12):
        return None
    R = matrix_from_quaternion(quaternion)
    v = msg.twist.twist.linear
    velocity = R @ np.array([v.x, v.y, v.z], np.float64)
    covariance = R @ np.asarray(msg.twist.covariance, np.float64).reshape(6, 6)[:3, :3] @ R.T
    if not (np.isfinite(velocity).all() and np.isfinite(covariance).all()):
        return None
    return velocity, covariance


def horizontal_sigma(covariance: np.ndarray) -> float:
    """sqrt(var east + var north) of a 3 x 3 ENU covariance: a velocity's horizontal standard error."""
    return math.sqrt(max(float(covariance[0, 0] + covariance[1, 1]), 0.0))


class OutputNode(Node):
    TITLE = "output"

    def __init__(self, node_name: str, specs: tuple[params.ParamSpec, ...], **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        params.declare(self, specs)
        self.monitor = Monitor()
        self._log = ThrottledLog(self.get_logger().error)
        self._lock = threading.Lock()
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, RELIABLE)

    def start(self) -> None:
        """Subscribe to the navigator's solution and start reporting: once the node is set up."""
        self.create_subscription(NavSatFix, topics.FIX, self._on_fix, RELIABLE)
        self.create_subscription(Odometry, topics.ODOMETRY, self._on_odometry, RELIABLE)
        steady_timer(self, self.get_parameter("diagnostics_period").value, self._publish_diagnostics)

    def _on_fix(self, msg: NavSatFix) -> None:
        raise NotImplementedError

    def _on_odometry(self, msg: Odometry) -> None:
        raise NotImplementedError

    def diagnostic_values(self, values: dict[str, str]) -> str:
        """Add the node's diagnostics values to ``values``; the name of its link (hardware id)."""
        raise NotImplementedError

    def _error(self, category: str, message: str) -> None:
        self.monitor.error(category, message)
        self._log(category, message)

    def _publish_diagnostics(self) -> None:
        report = self.monitor.report()
        link = self.diagnostic_values(report.values)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [to_status(report, f"{self.get_name()}: {self.TITLE}", link)]
        self.diagnostics_pub.publish(msg)
