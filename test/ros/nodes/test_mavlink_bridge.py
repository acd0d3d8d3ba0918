"""The MAVLink bridge over real DDS: the navigator's fix and odometry in, MAVLink 2 out on loopback
UDP, decoded by a pymavlink receiver (mavutil 'udpin:'), as an autopilot would."""

from __future__ import annotations

import math
import os
import socket
import time
from datetime import datetime, timezone

import numpy as np
import pytest

from ..autopilot import NavigatorSide, output_node_starter
from ..autopilot import fly as fly_solutions
from ..conftest import spin_until
from ..harness import stamp

pytestmark = pytest.mark.ros

from ...conftest import require_module  # noqa: E402

os.environ["MAVLINK20"] = "1"  # before pymavlink loads a dialect: ODOMETRY is MAVLink 2 only
mavutil = require_module("pymavlink.mavutil", " (install_requires has it)")

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc).timestamp()
ORIGIN = (47.397742, 8.545594, 488.0)  # the map's geodetic origin (ellipsoidal height)
COVARIANCE = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 9.0]])  # east, north, up, m^2
VELOCITY = (3.0, -4.0, 0.5)  # east, north, up, m/s
HEADING = 30.0  # degrees from true north


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def georef():
    from feature_matching_ros.core.maps.georef import GeoReference

    return GeoReference(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), ORIGIN)


def position(t: float) -> np.ndarray:
    return np.array([100.0, -50.0, 120.0]) + np.array(VELOCITY) * (t - T0)


class Autopilot(NavigatorSide):
    """The test side: the navigator's publishers, a pymavlink receiver, diagnostics."""

    def __init__(self, context) -> None:
        super().__init__(context, "fm_test_mavlink_autopilot")
        self.port = free_port()
        self.mav = mavutil.mavlink_connection(f"udpin:127.0.0.1:{self.port}", dialect="common")
        self.messages: list = []

    def read(self) -> None:
        while True:
            msg = self.mav.recv_match(blocking=False)
            if msg is None:
                return
            if msg.get_type() != "BAD_DATA":
                self.messages.append(msg)

    def wait_for(
        self, executor, kind: str, done=lambda m: True, what: str = "", timeout: float = 10.0, old=False
    ):
        """Spin until a ``kind`` message received after now (or ever, ``old``) satisfies ``done``;
        the first such message."""
        start = 0 if old else len(self.messages)
        found: list = []

        def check() -> bool:
            self.read()
            found[:] = [m for m in self.messages[start:] if m.get_type() == kind and done(m)]
            return bool(found)

        spin_until(executor, check, timeout, what or kind)
        return found[0]

    def destroy(self) -> None:
        self.mav.close()
        super().destroy()


def fix_message(t: float, status: int = 0, lat: float | None = None):
    from sensor_msgs.msg import NavSatFix

    latitude, longitude, altitude = georef().to_geodetic(*position(t))
    msg = NavSatFix(latitude=latitude if lat is None else lat, longitude=longitude, altitude=altitude)
    msg.header.stamp, msg.header.frame_id = stamp(t), "base_link"
    msg.status.status = status
    msg.position_covariance = COVARIANCE.reshape(9).tolist()
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_KNOWN
    return msg


def odometry_message(t: float, offset=(0.0, 0.0, 0.0), twist=None):
    """The navigator's Odometry: ENU pose, nose at HEADING, twist not estimated unless ``twist``
    = (body-frame velocity [3], its 3 x 3 covariance) is given."""
    from nav_msgs.msg import Odometry

    msg = Odometry(child_frame_id="base_link")
    msg.header.stamp, msg.header.frame_id = stamp(t), "map"
    p = msg.pose.pose.position
    p.x, p.y, p.z = (float(v) for v in position(t) + np.array(offset))
    yaw = math.radians(90.0 - HEADING)
    q = msg.pose.pose.orientation
    q.z, q.w = math.sin(yaw / 2), math.cos(yaw / 2)
    covariance = np.zeros((6, 6))
    covariance[:3, :3] = COVARIANCE
    covariance[3:, 3:] = np.eye(3) * math.radians(2.0) ** 2
    msg.pose.covariance = covariance.reshape(36).tolist()
    if twist is None:
        msg.twist.covariance[0] = -1.0
    else:
        v = msg.twist.twist.linear
        v.x, v.y, v.z = (float(x) for x in twist[0])
        full = np.eye(6) * 1e3
        full[:3, :3] = twist[1]
        msg.twist.covariance = full.reshape(36).tolist()
    return msg


@pytest.fixture
def bridge(ros_context):
    """Start the node: ``bridge(**parameters)`` -> (autopilot, executor, node)."""
    from feature_matching_ros.ros.nodes.mavlink_bridge_node import MavlinkBridgeNode

    def defaults(autopilot):
        return {"connection": f"udpout:127.0.0.1:{autopilot.port}", "rate": 20.0, "diagnostics_period": 0.2}

    yield from output_node_starter(ros_context, MavlinkBridgeNode, Autopilot, defaults)


def fly(autopilot, executor, frames: int = 10, t0: float = T0) -> float:
    """Publish ``frames`` solutions 0.1 s apart (stamps and wall clock); the last stamp."""
    return fly_solutions(autopilot, executor, lambda t: (fix_message(t), odometry_message(t)), frames, t0)


def test_gps_input_odometry_origin_and_heartbeat(bridge):
    autopilot, executor, node = bridge(satellites=12, gps_id=1)
    beat = autopilot.wait_for(executor, "HEARTBEAT")
    assert beat.type == mavutil.mavlink.MAV_TYPE_ONBOARD_CONTROLLER
    assert beat.autopilot == mavutil.mavlink.MAV_AUTOPILOT_INVALID
    assert (beat.get_srcSystem(), beat.get_srcComponent()) == (1, 191)
    first = autopilot.wait_for(executor, "GPS_INPUT", what="GPS_INPUT before any solution")
    assert first.fix_type == 0 and first.ignore_flags == 0xFF
    last = fly(autopilot, executor)
    gps = autopilot.wait_for(
        executor,
        "GPS_INPUT",
        lambda m: m.time_usec == round(last * 1e6) and not m.ignore_flags & 8,
        "GPS_INPUT of the last fix, with a velocity",
    )
    lat, lon, alt = georef().to_geodetic(*position(last))
    assert gps.fix_type == 3 and gps.satellites_visible == 12 and gps.gps_id == 1
    assert (gps.lat, gps.lon) == (round(lat * 1e7), round(lon * 1e7))
    assert gps.alt == pytest.approx(alt, abs=1e-3)
    assert (gps.vn, gps.ve, gps.vd) == pytest.approx((-4.0, 3.0, -0.5), abs=1e-3)
    # worst-axis 1 sigma of the covariance, grown by speed * the fix's age when sent (< 0.5 s here)
    base = math.sqrt(2.5 + math.sqrt(3.25))
    assert base - 1e-4 <= gps.horiz_accuracy <= math.hypot(base, 5.0 * 0.5)
    assert gps.vert_accuracy == pytest.approx(3.0)
    assert 0.0 <= gps.speed_accuracy < 1e-3  # a straight flight: the fit's residuals vanish
    assert gps.ignore_flags == 0 and gps.yaw == round(HEADING * 100)
    odometry = autopilot.wait_for(executor, "ODOMETRY", what="ODOMETRY", old=True)
    t = odometry.time_usec * 1e-6
    east, north, up = position(t)
    assert (odometry.x, odometry.y, odometry.z) == pytest.approx((north, east, -up), abs=1e-3)
    assert (odometry.frame_id, odometry.child_frame_id) == (20, 12)
    w, x, y, z = odometry.q
    assert math.degrees(math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))) == pytest.approx(HEADING)
    assert odometry.pose_covariance[0] == pytest.approx(1.0) and odometry.pose_covariance[6] == 4.0
    assert odometry.reset_counter == 0
    origin = autopilot.wait_for(executor, "SET_GPS_GLOBAL_ORIGIN", what="the map origin", old=True)
    assert (origin.latitude, origin.longitude) == (round(ORIGIN[0] * 1e7), round(ORIGIN[1] * 1e7))
    assert origin.altitude == round(ORIGIN[2] * 1000) and origin.target_system == 1
    status = autopilot.statuses("mavlink_bridge")
    assert status and {kv.key for kv in status[-1].values} >= {"connection", "sent GPS_INPUT", "fix"}


def test_body_velocity_in_odometry(bridge):
    autopilot, executor, node = bridge(gps_input=False)
    fly(autopilot, executor)
    odometry = autopilot.wait_for(executor, "ODOMETRY", lambda m: math.isfinite(m.vx), "a velocity", old=True)
    # nose at 30 degrees: forward = north cos30 + east sin30, right = east cos30 - north sin30
    h = math.radians(HEADING)
    forward = VELOCITY[1] * math.cos(h) + VELOCITY[0] * math.sin(h)
    right = VELOCITY[0] * math.cos(h) - VELOCITY[1] * math.sin(h)
    assert (odometry.vx, odometry.vy, odometry.vz) == pytest.approx((forward, right, -0.5), abs=1e-3)
    autopilot.read()
    assert not any(m.get_type() == "GPS_INPUT" for m in autopilot.messages)


def test_the_navigators_velocity_when_its_odometry_carries_one(bridge):
    """An odometry twist (the navigator's velocity, body FLU) is sent instead of a fit of the positions:
    here it says 10 m/s nose-forward and 1 m/s left, with its covariance, while the positions move at
    VELOCITY."""
    autopilot, executor, node = bridge()
    body = np.array([10.0, 1.0, 0.0])
    body_covariance = np.diag([0.04, 0.01, 0.09])
    fly_solutions(
        autopilot,
        executor,
        lambda t: (fix_message(t), odometry_message(t, twist=(body, body_covariance))),
        6,
        T0,
    )
    yaw = math.radians(90.0 - HEADING)  # body x in ENU
    R = np.array([[math.cos(yaw), -math.sin(yaw), 0.0], [math.sin(yaw), math.cos(yaw), 0.0], [0, 0, 1.0]])
    east, north, up = R @ body
    gps = autopilot.wait_for(
        executor, "GPS_INPUT", lambda m: not m.ignore_flags & 8, "a GPS_INPUT velocity", old=True
    )
    assert (gps.vn, gps.ve, gps.vd) == pytest.approx((north, east, -up), abs=1e-4)
    assert gps.speed_accuracy == pytest.approx(math.sqrt(0.04 + 0.01), abs=1e-4)
    odometry = autopilot.wait_for(executor, "ODOMETRY", lambda m: math.isfinite(m.vx), "a velocity", old=True)
    assert (odometry.vx, odometry.vy, odometry.vz) == pytest.approx((10.0, -1.0, 0.0), abs=1e-4)  # FRD
    assert odometry.velocity_covariance[0] == pytest.approx(0.04, abs=1e-6)  # forward variance


def test_lost_stale_and_jumps(bridge):
    from sensor_msgs.msg import NavSatStatus

    autopilot, executor, node = bridge(max_age=0.4)
    last = fly(autopilot, executor, frames=3)
    autopilot.wait_for(executor, "GPS_INPUT", lambda m: m.fix_type == 3, "a fix")
    # the navigator lost the solution: NO_FIX with NaN, at once no valid fix
    autopilot.fix_pub.publish(fix_message(last + 0.1, NavSatStatus.STATUS_NO_FIX, lat=math.nan))
    lost = autopilot.wait_for(executor, "GPS_INPUT", lambda m: m.fix_type == 0, "no fix once lost", 3.0)
    assert lost.lat == 0 and lost.satellites_visible == 0
    # back, after the loss: reset_counter steps
    autopilot.odometry_pub.publish(odometry_message(last + 0.2))
    back = autopilot.wait_for(executor, "ODOMETRY", what="odometry after the loss")
    assert back.reset_counter == 1
    # a jump far beyond the covariance: steps again
    autopilot.odometry_pub.publish(odometry_message(last + 0.3, offset=(80.0, 0.0, 0.0)))
    jumped = autopilot.wait_for(executor, "ODOMETRY", what="odometry after a jump")
    assert jumped.reset_counter == 2
    # a fix, then nothing: held for max_age, then fix_type 0
    autopilot.fix_pub.publish(fix_message(last + 0.4))
    autopilot.wait_for(executor, "GPS_INPUT", lambda m: m.fix_type == 3, "the fix again", 3.0)
    started = time.monotonic()
    autopilot.wait_for(executor, "GPS_INPUT", lambda m: m.fix_type == 0, "no fix once stale", 3.0)
    assert time.monotonic() - started < 2.0


def test_bad_input_is_reported_and_the_node_keeps_sending(bridge):
    autopilot, executor, node = bridge()
    autopilot.fix_pub.publish(fix_message(T0, lat=math.nan))  # STATUS_FIX with NaN: not a position
    autopilot.fix_pub.publish(fix_message(T0, lat=95.0))
    bad = odometry_message(T0)
    bad.pose.pose.position.x = math.inf
    autopilot.odometry_pub.publish(bad)

    wanted = {"error: bad fix", "error: bad odometry"}
    spin_until(executor, lambda: wanted <= autopilot.error_keys("mavlink_bridge"), what="the errors")
    assert autopilot.wait_for(executor, "GPS_INPUT").fix_type == 0  # nothing usable arrived
    autopilot.fix_pub.publish(fix_message(T0 + 1.0))
    autopilot.wait_for(executor, "GPS_INPUT", lambda m: m.fix_type == 3, "the next good fix")


def test_a_missing_serial_device_is_an_error_the_node_survives(bridge):
    autopilot, executor, node = bridge(connection="/nonexistent/ttyMAVLINK", baud=57600)

    spin_until(
        executor,
        lambda: autopilot.has_error("mavlink_bridge", "output", "/nonexistent/ttyMAVLINK"),
        what="a diagnostics ERROR for the serial device",
    )
    autopilot.fix_pub.publish(fix_message(T0))  # input still handled
    seen = len(autopilot.diagnostics)
    spin_until(executor, lambda: len(autopilot.diagnostics) > seen + 2, what="diagnostics going on")
    assert node.link is None and sum(node.sent.values()) == 0


def test_serial_output_to_a_pseudo_terminal(bridge):
    from pymavlink.dialects.v20 import common as mavlink

    master, slave = os.openpty()
    try:
        os.set_blocking(master, False)
        autopilot, executor, node = bridge(connection=os.ttyname(slave), baud=115200)
        fly(autopilot, executor, frames=4)
        parser = mavlink.MAVLink(None)
        received: list = []

        def fix_seen() -> bool:
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                data = b""
            received.extend(parser.parse_buffer(data) or [])
            fixes = [m for m in received if m.get_type() == "GPS_INPUT" and m.fix_type == 3]
            return bool(fixes) and any(m.get_type() == "HEARTBEAT" for m in received)

        spin_until(executor, fix_seen, what="GPS_INPUT with a fix and a HEARTBEAT on the serial port")
        assert {m.get_type() for m in received} >= {"GPS_INPUT", "HEARTBEAT", "ODOMETRY"}
    finally:
        os.close(master)
        os.close(slave)
