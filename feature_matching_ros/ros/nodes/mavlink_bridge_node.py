"""mavlink_bridge: the navigator's solution to ArduPilot or PX4 over MAVLink 2 (pymavlink).

Subscribes to the navigator's ``fix`` (NavSatFix, WGS84 with its ENU covariance) and ``odometry``
(nav_msgs/Odometry in the map frame, ENU, body FLU), both reliable as the navigator publishes them,
and sends over ``connection`` (a pymavlink connection string: UDP, TCP or a serial device):

- GPS_INPUT ``rate`` times a second (steady timer): the last fix while it is at most ``max_age``
  seconds old, with the velocity when known; otherwise, and at once when the navigator says the
  solution is lost (STATUS_NO_FIX), fix_type 0 with every field flagged ignored.
- ODOMETRY for every odometry message: pose in MAV_FRAME_LOCAL_FRD (NED axes at the map origin),
  velocity in MAV_FRAME_BODY_FRD, covariances in those frames, ``reset_counter`` stepped after a
  loss or a jump of more than ``reset_sigma`` sigma (``core.autopilot.mavlink``).
- SET_GPS_GLOBAL_ORIGIN: the map origin, derived from the first fix and odometry with the same
  stamp; sent with the next three heartbeats (UDP may lose one; an autopilot keeps the first).
- HEARTBEAT at 1 Hz as an onboard controller (MAV_TYPE_ONBOARD_CONTROLLER, MAV_AUTOPILOT_INVALID).

Velocity: the navigator's, from the odometry's twist (body frame, rotated into the map with its
covariance); until the navigator has one, or from an odometry source without a twist, fitted here
from the odometry positions and stamps with the same estimator (``core.navigation.velocity``). Sent
while its horizontal standard error is at most ``velocity_max_sigma``. Bad input (NaN, out of range)
and link errors (a connection that cannot be opened is retried once a second) are diagnostics
ERRORs; the node keeps running. pymavlink picks MAVLink 1 or 2 from the MAVLINK20 environment
variable when it loads a dialect: this module sets MAVLINK20=1 (ODOMETRY exists only in MAVLink 2).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Any

import numpy as np
from nav_msgs.msg import Odometry
from sensor_msgs.msg import NavSatFix, NavSatStatus

from feature_matching_ros.core.autopilot import mavlink as mo
from feature_matching_ros.core.errors import ConfigError
from feature_matching_ros.core.navigation.velocity import SolutionVelocity, VelocityConfig

from .. import params
from ..conversions.aids import stamp_seconds
from ..infrastructure.diagnostics import steady_timer
from .nmea_output_node import heading_of
from .output_node import REOPEN_PERIOD_S, Held, OutputNode, fix_state, horizontal_sigma, odometry_twist

HEADING_MAX_SIGMA_DEG = 10.0
ORIGIN_REPEATS = 3
ESTIMATORS = {"vision": mo.MAV_ESTIMATOR_TYPE_VISION, "vio": mo.MAV_ESTIMATOR_TYPE_VIO}


def connect(connection: str, baud: int, system_id: int, component_id: int) -> Any:
    """A pymavlink connection speaking MAVLink 2 (common dialect)."""
    os.environ["MAVLINK20"] = "1"
    from pymavlink import mavutil

    try:
        link = mavutil.mavlink_connection(
            connection,
            baud=baud,
            source_system=system_id,
            source_component=component_id,
            dialect="common",
            autoreconnect=True,
        )
    except Exception as exc:  # pymavlink raises OSError, SerialException, ValueError...
        raise ConfigError(f"connection {connection!r}: {type(exc).__name__}: {exc}") from None
    if link.WIRE_PROTOCOL_VERSION != "2.0":
        raise ConfigError("pymavlink loaded MAVLink 1 (MAVLINK20 was unset when it was first imported)")
    return link


def fix_of(msg: NavSatFix) -> mo.Fix:
    covariance = np.asarray(msg.position_covariance, np.float64).reshape(3, 3)
    if msg.position_covariance_type == NavSatFix.COVARIANCE_TYPE_UNKNOWN:
        raise mo.MavlinkOutError("the fix has no covariance: its accuracy is unknown")
    fix = mo.Fix(stamp_seconds(msg.header.stamp), msg.latitude, msg.longitude, msg.altitude, covariance)
    problem = fix.problem()
    if problem is not None:
        raise mo.MavlinkOutError(problem)
    return fix


def pose_of(msg: Odometry) -> mo.Pose:
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    pose = mo.Pose(
        stamp_seconds(msg.header.stamp),
        np.array([p.x, p.y, p.z], np.float64),
        np.array([q.x, q.y, q.z, q.w], np.float64),
        np.asarray(msg.pose.covariance, np.float64).reshape(6, 6),
    )
    problem = pose.problem()
    if problem is not None:
        raise mo.MavlinkOutError(problem)
    return pose


class MavlinkBridgeNode(OutputNode):
    TITLE = "mavlink bridge"

    def __init__(self, node_name: str = "mavlink_bridge", **kwargs: Any) -> None:
        super().__init__(node_name, params.MAVLINK_BRIDGE_NODE, **kwargs)
        value = lambda name: self.get_parameter(name).value  # noqa: E731
        self.config = mo.GpsConfig(
            gps_id=value("gps_id"),
            satellites=value("satellites"),
            uere_m=value("uere_m"),
            geoid_separation_m=value("geoid_separation"),
        )
        self.max_age = float(value("max_age"))
        self.velocity_max_sigma = float(value("velocity_max_sigma"))
        self.send_gps, self.send_odometry = bool(value("gps_input")), bool(value("odometry"))
        self.set_origin = bool(value("set_origin"))
        self.target_system = int(value("target_system"))
        self.estimator = ESTIMATORS[value("estimator_type")]
        self._send_lock = threading.Lock()
        self._fix: Held | None = None
        self._lost = False
        self._heading: Held | None = None
        self._fitted_at = -math.inf
        self._fit = SolutionVelocity(VelocityConfig(window_s=value("velocity_window"), max_sigma=math.inf))
        self._twist: tuple[np.ndarray, np.ndarray] | None = None  # the navigator's velocity, if it sent one
        self._resets = mo.ResetCounter(n_sigma=value("reset_sigma"))
        self._fixes_by_stamp: dict[float, mo.Fix] = {}
        self._origin: tuple[float, float, float] | None = None
        self._origin_left = 0
        self.sent = {"GPS_INPUT": 0, "ODOMETRY": 0, "HEARTBEAT": 0, "SET_GPS_GLOBAL_ORIGIN": 0}
        self.connection_name = value("connection")
        self._link_args = (self.connection_name, value("baud"), value("system_id"), value("component_id"))
        self.link: Any = None
        self._connected_at = -math.inf
        self._open_link()
        self.start()
        if self.send_gps:
            steady_timer(self, 1.0 / value("rate"), self._send_gps_input)
        steady_timer(self, 1.0, self._heartbeat)
        outputs = [n for n, on in (("GPS_INPUT", self.send_gps), ("ODOMETRY", self.send_odometry)) if on]
        self.get_logger().info(
            f"MAVLink 2 {', '.join(outputs) or 'heartbeat only'} to {self.connection_name}"
            + (f", GPS_INPUT at {value('rate'):g} Hz" if self.send_gps else "")
        )

    # ---- input -------------------------------------------------------------------------------
    def _on_fix(self, msg: NavSatFix) -> None:
        self.monitor.input()
        now = time.monotonic()
        if msg.status.status < NavSatStatus.STATUS_FIX:
            with self._lock:
                self._fix, self._lost = None, True
                self._resets.lost()
                self._fit.reset()
                self._twist = None
            self.monitor.done(0.0)
            return
        try:
            fix = fix_of(msg)
        except mo.MavlinkOutError as exc:
            self.monitor.drop()
            self._error("bad fix", str(exc))
            return
        with self._lock:
            self._fix, self._lost = Held(fix, now), False
            if self.set_origin and self._origin is None:
                self._fixes_by_stamp = {fix.stamp: fix}
        self.monitor.done(0.0)

    def _on_odometry(self, msg: Odometry) -> None:
        now = time.monotonic()
        try:
            pose = pose_of(msg)
        except mo.MavlinkOutError as exc:
            self._error("bad odometry", str(exc))
            return
        heading = heading_of(msg, HEADING_MAX_SIGMA_DEG)
        twist = odometry_twist(msg)
        east, north, up = (float(v) for v in pose.position)
        with self._lock:
            self._fit.add(pose.stamp, east, north, up)
            self._twist = twist
            self._fitted_at = now
            self._heading = None if heading is None else Held(heading, now)
            counter = self._resets.update(pose.stamp, pose.position, pose.covariance)
            paired = self._fixes_by_stamp.pop(pose.stamp, None)
        if paired is not None:
            self._find_origin(paired, pose.position)
        if self.send_odometry:
            try:
                fields = mo.odometry_fields(pose, self.velocity(), counter, self.estimator)
            except mo.MavlinkOutError as exc:
                self._error("bad odometry", str(exc))
                return
            self._send("ODOMETRY", "odometry_send", fields)

    def _find_origin(self, fix: mo.Fix, position: np.ndarray) -> None:
        try:
            lat, lon, height = mo.map_origin(fix, position)
        except Exception as exc:  # a georef error must not stop the odometry
            self._error("origin", f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            self._origin = (lat, lon, height - self.config.geoid_separation_m)
            self._origin_left = ORIGIN_REPEATS

    # ---- solution ----------------------------------------------------------------------------
    def velocity(self) -> mo.Velocity | None:
        """The ENU velocity while fresh and certain enough: the navigator's (the latest odometry's
        twist), else fitted here from the odometry positions; the vertical only where known."""
        with self._lock:
            if time.monotonic() - self._fitted_at > self.max_age:
                return None
            twist = self._twist
            fit = self._fit.fit() if twist is None else None
        if twist is not None:
            enu, covariance = (np.array(a, np.float64) for a in twist)
        elif fit is not None:
            enu, covariance = fit.velocity.copy(), fit.covariance.copy()
        else:
            return None
        sigma = horizontal_sigma(covariance)
        if not sigma <= self.velocity_max_sigma:
            return None
        vertical_known = bool(math.isfinite(enu[2]) and covariance[2, 2] <= self.velocity_max_sigma**2)
        if not vertical_known:
            enu[2] = 0.0
            covariance[2, :] = covariance[:, 2] = math.nan
        return mo.Velocity(enu, covariance, vertical_known, sigma)

    def current_fix(self) -> tuple[mo.Fix, float] | None:
        """The held fix and its age (s since it arrived), while at most ``max_age``."""
        with self._lock:
            fix = self._fix
        age = math.inf if fix is None else time.monotonic() - fix.received
        if fix is None or age > self.max_age:
            return None
        return fix.value, age

    def current_heading(self) -> float | None:
        with self._lock:
            heading = self._heading
        if heading is None or time.monotonic() - heading.received > self.max_age:
            return None
        return heading.value

    # ---- output ------------------------------------------------------------------------------
    def _send_gps_input(self) -> None:
        try:
            held = self.current_fix()
            fix, age = held if held is not None else (None, 0.0)
            velocity = self.velocity() if fix is not None else None
            now = self.get_clock().now().nanoseconds * 1e-9
            fields = mo.gps_input_fields(fix, velocity, self.current_heading(), self.config, now, age)
        except Exception as exc:  # a fault here must not stop the executor: the timer runs on
            self._error("internal", f"{type(exc).__name__}: {exc}")
            return
        self._send("GPS_INPUT", "gps_input_send", fields)

    def _heartbeat(self) -> None:
        from pymavlink.dialects.v20 import common as mavlink

        self._send(
            "HEARTBEAT",
            "heartbeat_send",
            dict(
                type=mavlink.MAV_TYPE_ONBOARD_CONTROLLER,
                autopilot=mavlink.MAV_AUTOPILOT_INVALID,
                base_mode=0,
                custom_mode=0,
                system_status=mavlink.MAV_STATE_ACTIVE,
            ),
        )
        with self._lock:
            origin, left = self._origin, self._origin_left
            self._origin_left = max(left - 1, 0)
        if origin is not None and left > 0:
            try:
                fields = mo.global_origin_fields(*origin, target_system=self.target_system)
            except mo.MavlinkOutError as exc:
                self._error("origin", str(exc))
            else:
                self._send("SET_GPS_GLOBAL_ORIGIN", "set_gps_global_origin_send", fields)
        try:  # drain what the autopilot sends (nothing is read from it), so buffers do not fill
            with self._send_lock:
                while self.link is not None and self.link.recv_msg() is not None:
                    pass
        except Exception:  # reading is best effort; writing reports the link's errors
            pass

    def _open_link(self) -> bool:
        """Open the connection (at most once a second); False, reported, while it cannot be."""
        now = time.monotonic()
        if self.link is not None:
            return True
        if now - self._connected_at < REOPEN_PERIOD_S:
            return False
        self._connected_at = now
        try:
            self.link = connect(*self._link_args)
        except ConfigError as exc:  # a missing serial device, an unknown host: retried
            self._error("output", f"{exc} (retried every {REOPEN_PERIOD_S:g} s)")
            return False
        return True

    def _send(self, name: str, method: str, fields: dict) -> None:
        try:
            with self._send_lock:
                if not self._open_link():
                    return
                getattr(self.link.mav, method)(**fields)
        except Exception as exc:  # OSError, SerialException, struct.error: the node keeps running
            self._error("output", f"{name} to {self.connection_name}: {type(exc).__name__}: {exc}")
            return
        self.sent[name] += 1

    # ---- diagnostics -------------------------------------------------------------------------
    def diagnostic_values(self, values: dict[str, str]) -> str:
        fix = self.current_fix()
        with self._lock:
            lost, origin = self._lost, self._origin
        values["connection"] = self.connection_name
        for name, count in self.sent.items():
            values[f"sent {name}"] = str(count)
        values["fix"] = fix_state(fix is not None, lost)
        values["velocity"] = "no" if self.velocity() is None else "yes"
        values["reset_counter"] = str(self._resets.value)
        values["origin"] = (
            "unknown" if origin is None else f"{origin[0]:.7f}, {origin[1]:.7f}, {origin[2]:.2f}"
        )
        return self.connection_name

    def destroy_node(self) -> None:
        try:
            if self.link is not None:
                self.link.close()
        finally:
            super().destroy_node()


def main(args: list[str] | None = None) -> None:
    from ..infrastructure.spin import run_nodes

    sys.exit(run_nodes([MavlinkBridgeNode], args))
