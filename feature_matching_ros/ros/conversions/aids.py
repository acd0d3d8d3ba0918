"""Navigation aids for a camera frame: attitude and height above ground at the frame's stamp.

Attitude comes from sensor_msgs/Imu (orientation, ENU per REP 103) or
geometry_msgs/QuaternionStamped; height above ground from sensor_msgs/Range. Each input keeps a
short history and answers with the sample nearest to a frame's stamp, if it is recent enough.
A message that cannot be an attitude or a height is rejected with a reason.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from geometry_msgs.msg import QuaternionStamped
from sensor_msgs.msg import Imu, Range

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.geometry.pose import matrix_from_quaternion

from ..infrastructure import topics
from ..infrastructure.qos import SENSOR_DATA

ATTITUDE_INPUTS = ("imu", "quaternion", "none")
HISTORY = 200
# Heights above ground a navigating aircraft can have, m: below a rangefinder's shortest reading,
# above any aircraft's ceiling, the value is a fault (1e-30 m would make a frame's ground footprint
# zero pixels wide).
PLAUSIBLE_HEIGHT_M = (0.05, 1.0e5)


class AidError(FeatureMatchingError):
    """An attitude or altitude message that cannot be used."""


def stamp_seconds(stamp: Any) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


class StampedHistory:
    """The last ``HISTORY`` (stamp, value) samples, in stamp order; thread-safe."""

    def __init__(self) -> None:
        self._stamps: list[float] = []
        self._values: list[Any] = []
        self._lock = threading.Lock()

    def add(self, stamp: float, value: Any) -> None:
        with self._lock:
            i = bisect.bisect(self._stamps, stamp)
            self._stamps.insert(i, stamp)
            self._values.insert(i, value)
            if len(self._stamps) > HISTORY:
                del self._stamps[0], self._values[0]

    def nearest(self, stamp: float, max_age: float) -> Any | None:
        """The value whose stamp is closest to ``stamp``, if within ``max_age`` seconds."""
        with self._lock:
            if not self._stamps:
                return None
            i = bisect.bisect(self._stamps, stamp)
            best = min(
                (j for j in (i - 1, i) if 0 <= j < len(self._stamps)),
                key=lambda j: abs(self._stamps[j] - stamp),
            )
            return self._values[best] if abs(self._stamps[best] - stamp) <= max_age else None


def attitude_of(msg: Imu | QuaternionStamped) -> np.ndarray:
    """R_map_body of an attitude message, or AidError."""
    q = msg.orientation if isinstance(msg, Imu) else msg.quaternion
    values = np.array([q.x, q.y, q.z, q.w], np.float64)
    if isinstance(msg, Imu) and msg.orientation_covariance[0] == -1.0:
        raise AidError("Imu carries no orientation (orientation_covariance[0] = -1)")
    norm = float(np.linalg.norm(values))
    if not np.isfinite(values).all() or not 0.9 < norm < 1.1:
        raise AidError(f"attitude quaternion is not a unit quaternion: {values.tolist()}")
    return matrix_from_quaternion(values / norm)


def height_problem(value: float) -> str | None:
    """Why ``value`` (m) cannot be a height above ground, or None."""
    low, high = PLAUSIBLE_HEIGHT_M
    if not math.isfinite(value) or value <= 0.0:
        return f"{value:g} m is not a positive finite height"
    if not low <= value <= high:
        return f"{value:g} m is implausible (a height above ground lies within {low:g}..{high:g} m)"
    return None


def height_of(msg: Range) -> float:
    """Height above ground of a Range message in metres, or AidError."""
    value = float(msg.range)
    problem = height_problem(value)
    if problem is not None:
        raise AidError(f"altitude range {problem}")
    if msg.max_range > msg.min_range and not msg.min_range <= value <= msg.max_range:
        raise AidError(f"altitude {value} m is outside the sensor's [{msg.min_range}, {msg.max_range}] m")
    return value


class NavigationAids:
    """Subscribes the attitude and altitude inputs of ``node``; ``on_error(category, text)`` hears
    about bad messages."""

    def __init__(
        self,
        node: Any,
        attitude_input: str,
        use_altitude: bool,
        max_age: float,
        on_error: Callable[[str, str], None],
    ) -> None:
        self.max_age = max_age
        self._on_error = on_error
        self.attitudes = StampedHistory()
        self.heights = StampedHistory()
        if attitude_input == "imu":
            node.create_subscription(Imu, topics.ATTITUDE, self._on_attitude, SENSOR_DATA)
        elif attitude_input == "quaternion":
            node.create_subscription(QuaternionStamped, topics.ATTITUDE, self._on_attitude, SENSOR_DATA)
        if use_altitude:
            node.create_subscription(Range, topics.ALTITUDE, self._on_height, SENSOR_DATA)

    def _on_attitude(self, msg: Imu | QuaternionStamped) -> None:
        try:
            self.attitudes.add(stamp_seconds(msg.header.stamp), attitude_of(msg))
        except AidError as exc:
            self._on_error("bad attitude", str(exc))

    def _on_height(self, msg: Range) -> None:
        try:
            self.heights.add(stamp_seconds(msg.header.stamp), height_of(msg))
        except AidError as exc:
            self._on_error("bad altitude", str(exc))

    def attitude_at(self, stamp: float) -> np.ndarray | None:
        return self.attitudes.nearest(stamp, self.max_age)

    def height_at(self, stamp: float) -> float | None:
        return self.heights.nearest(stamp, self.max_age)
