"""nmea_output: the navigator's solution as NMEA 0183 sentences over UDP or a serial port.

Subscribes to the navigator's ``fix`` (NavSatFix: position and its ENU covariance) and ``odometry``
(nav_msgs/Odometry in the map frame, east-north-up: velocity and heading), both reliable as the
navigator publishes them. A steady timer sends, ``rate`` times a second, one group of sentences
(``core.autopilot.nmea``: GGA, RMC, VTG, GST, and HDT when a heading is known) to ``udp_host:udp_port``
(one datagram per group) or ``serial_device``.

- The last fix is sent for ``max_age`` seconds after it arrived (steady clock), carrying its own
  stamp as the UTC time; after that, or at once when the navigator says the solution is lost
  (STATUS_NO_FIX), the sentences say no fix (GGA quality 0, RMC status V) at the node's clock time.
- Velocity: the navigator's, from its Odometry twist (covariance[0] >= 0), rotated from the child
  frame into the map; until it has one (or from an odometry source without a twist) fitted here
  from the odometry positions and their stamps with the same estimator (``core.navigation.velocity``).
  Speed and course are sent only while the velocity is fresh and its standard error is at most
  ``velocity_max_sigma``.
- Heading: the odometry's orientation when its yaw standard deviation is at most
  ``heading_max_sigma`` (the navigator reports its heading as measured on frames that are map
  fixes and as unknown, variance 1e3, otherwise).
- The map frame is east-north-up at the map's geodetic origin, taken as true north: the meridian
  convergence across a local map (under 0.1 degree at 5 km) is neglected.

Bad input (NaN, out-of-range values) and output errors (unreachable host, unplugged serial device,
reopened once a second) are diagnostics ERRORs; the node keeps running.
"""

from __future__ import annotations

import math
import socket
import sys
import time
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
from nav_msgs.msg import Odometry
from sensor_msgs.msg import NavSatFix, NavSatStatus

from feature_matching_ros.core.autopilot.nmea import NmeaConfig, NmeaError, NmeaSolution, encode, sentences
from feature_matching_ros.core.errors import ConfigError
from feature_matching_ros.core.navigation.velocity import SolutionVelocity, VelocityConfig

from .. import params
from ..conversions.aids import stamp_seconds
from ..infrastructure.diagnostics import steady_timer
from .output_node import REOPEN_PERIOD_S, Held, OutputNode, fix_state, horizontal_sigma, odometry_twist


class Link(Protocol):
    name: str

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class UdpLink:
    """Datagrams to host:port (one per sentence group)."""

    def __init__(self, host: str, port: int) -> None:
        self.name = f"udp://{host}:{port}"
        try:
            self._address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except OSError as exc:
            raise ConfigError(f"udp_host {host!r}: {exc}") from None
        family, kind, proto, _, self._target = self._address
        self._socket = socket.socket(family, kind, proto)

    def write(self, data: bytes) -> None:
        self._socket.sendto(data, self._target)

    def close(self) -> None:
        self._socket.close()


class SerialLink:
    """A serial device (pyserial), opened on first use and reopened after an error."""

    def __init__(self, device: str, baud: int) -> None:
        self.name = f"serial://{device}@{baud}"
        self._device, self._baud = device, baud
        self._port: Any = None
        self._opened_at = -math.inf

    def write(self, data: bytes) -> None:
        import serial  # pyserial

        if self._port is None:
            now = time.monotonic()
            if now - self._opened_at < REOPEN_PERIOD_S:
                raise OSError(f"{self._device} not open (retried every {REOPEN_PERIOD_S:g} s)")
            self._opened_at = now
            try:
                self._port = serial.Serial(self._device, self._baud, timeout=0, write_timeout=0.1)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise OSError(f"cannot open {self._device}: {exc}") from None
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise OSError(f"writing to {self._device}: {exc}") from None

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            finally:
                self._port = None


def fix_solution(msg: NavSatFix) -> NmeaSolution:
    """The position of a NavSatFix with STATUS_FIX or better; NmeaError when it is not usable."""
    covariance = None
    if msg.position_covariance_type != NavSatFix.COVARIANCE_TYPE_UNKNOWN:
        covariance = np.asarray(msg.position_covariance, np.float64).reshape(3, 3)
    solution = NmeaSolution(
        stamp_seconds(msg.header.stamp), msg.latitude, msg.longitude, msg.altitude, covariance
    )
    problem = solution.problem()
    if problem is not None:
        raise NmeaError(problem)
    return solution


def heading_of(msg: Odometry, max_sigma_deg: float) -> float | None:
    """True heading (degrees clockwise from north) of an ENU-map odometry's body x axis, or None when
    its yaw standard deviation exceeds ``max_sigma_deg`` or the nose points straight up or down."""
    yaw_variance = msg.pose.covariance[35]
    if not (math.isfinite(yaw_variance) and 0.0 <= yaw_variance <= math.radians(max_sigma_deg) ** 2):
        return None
    q = msg.pose.pose.orientation
    x, y, z, w = q.x, q.y, q.z, q.w
    norm = x * x + y * y + z * z + w * w
    if not (math.isfinite(norm) and norm > 1e-12):
        return None
    east = 1.0 - 2.0 * (y * y + z * z) / norm  # body x axis in the map: column 0 of R_map_body
    north = 2.0 * (x * y + z * w) / norm
    if math.hypot(east, north) < 1e-3:
        return None
    return math.degrees(math.atan2(east, north)) % 360.0


def twist_velocity(msg: Odometry) -> tuple[float, float, float] | None:
    """(east, north, horizontal standard error) of an Odometry that carries a twist, else None."""
    twist = odometry_twist(msg)
    if twist is None:
        return None
    velocity, covariance = twist
    return float(velocity[0]), float(velocity[1]), horizontal_sigma(covariance)


class NmeaOutputNode(OutputNode):
    TITLE = "nmea output"

    def __init__(self, node_name: str = "nmea_output", **kwargs: Any) -> None:
        super().__init__(node_name, params.NMEA_OUTPUT_NODE, **kwargs)
        value = lambda name: self.get_parameter(name).value  # noqa: E731
        try:
            self.config = NmeaConfig(
                talker=value("talker"),
                fix_quality=value("fix_quality"),
                satellites=value("satellites"),
                uere_m=value("uere_m"),
                geoid_separation_m=value("geoid_separation"),
            )
        except NmeaError as exc:
            raise ConfigError(f"{self.get_name()}: {exc}") from None
        self.max_age = float(value("max_age"))
        self.heading_max_sigma = float(value("heading_max_sigma"))
        self.velocity_max_sigma = float(value("velocity_max_sigma"))
        self._fix: Held | None = None
        self._lost = False
        self._heading: Held | None = None
        self._twist: Held | None = None
        self._fitted_at = -math.inf
        self._velocity = SolutionVelocity(
            VelocityConfig(window_s=value("velocity_window"), max_sigma=math.inf)
        )
        self.sent = 0
        if value("output") == "serial":
            self.link: Link = SerialLink(value("serial_device"), value("serial_baud"))
        else:
            self.link = UdpLink(value("udp_host"), value("udp_port"))
        self.start()
        steady_timer(self, 1.0 / value("rate"), self._send)
        self.get_logger().info(
            f"NMEA 0183 ({self.config.talker}) to {self.link.name} at {value('rate'):g} Hz"
        )

    # ---- input -------------------------------------------------------------------------------
    def _on_fix(self, msg: NavSatFix) -> None:
        self.monitor.input()
        now = time.monotonic()
        if msg.status.status < NavSatStatus.STATUS_FIX:
            with self._lock:
                self._fix, self._lost = None, True
            self.monitor.done(0.0)
            return
        try:
            solution = fix_solution(msg)
        except NmeaError as exc:
            self.monitor.drop()
            self._error("bad fix", str(exc))
            return
        with self._lock:
            self._fix, self._lost = Held(solution, now), False
        self.monitor.done(0.0)

    def _on_odometry(self, msg: Odometry) -> None:
        now = time.monotonic()
        p = msg.pose.pose.position
        stamp = stamp_seconds(msg.header.stamp)
        if not all(math.isfinite(v) for v in (p.x, p.y, p.z)):
            self._error("bad odometry", "position is not finite")
            return
        heading = heading_of(msg, self.heading_max_sigma)
        twist = twist_velocity(msg)
        with self._lock:
            self._velocity.add(stamp, p.x, p.y)
            self._fitted_at = now
            self._heading = None if heading is None else Held(heading, now)
            self._twist = None if twist is None else Held(twist, now)

    # ---- output ------------------------------------------------------------------------------
    def current(self) -> NmeaSolution | None:
        """The solution to send now: the held fix with velocity and heading if fresh enough."""
        now = time.monotonic()
        with self._lock:
            fix, heading, twist = self._fix, self._heading, self._twist
            fitted = self._velocity.velocity() if now - self._fitted_at <= self.max_age else None
        if fix is None or now - fix.received > self.max_age:
            return None
        velocity = None
        if twist is not None and now - twist.received <= self.max_age:
            east, north, sigma = twist.value
            velocity = (east, north) if sigma <= self.velocity_max_sigma else None
        elif fitted is not None and fitted.sigma <= self.velocity_max_sigma:
            velocity = (fitted.east, fitted.north)
        fresh_heading = (
            heading.value if heading is not None and now - heading.received <= self.max_age else None
        )
        return replace(fix.value, velocity=velocity, heading=fresh_heading)

    def _send(self) -> None:
        try:
            solution = self.current()
            now = self.get_clock().now().nanoseconds * 1e-9
            data = encode(sentences(solution, self.config, stamp=now))
        except NmeaError as exc:
            self._error("sentence", str(exc))
            return
        except Exception as exc:  # a fault here must not stop the executor: the timer runs on
            self._error("internal", f"{type(exc).__name__}: {exc}")
            return
        try:
            self.link.write(data)
        except OSError as exc:
            self._error("output", f"{self.link.name}: {exc}")
            return
        self.sent += 1

    # ---- diagnostics -------------------------------------------------------------------------
    def diagnostic_values(self, values: dict[str, str]) -> str:
        solution = self.current()
        with self._lock:
            lost = self._lost
        values["output"] = self.link.name
        values["groups_sent"] = str(self.sent)
        values["fix"] = fix_state(solution is not None, lost)
        values["velocity"] = "no" if solution is None or solution.velocity is None else "yes"
        values["heading"] = "no" if solution is None or solution.heading is None else "yes"
        return self.link.name

    def destroy_node(self) -> None:
        self.link.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    from ..infrastructure.spin import run_nodes

    sys.exit(run_nodes([NmeaOutputNode], args))
