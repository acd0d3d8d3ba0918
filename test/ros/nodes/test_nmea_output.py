"""The NMEA output node over real DDS: the navigator's fix and odometry in, NMEA 0183 out on a UDP
socket (and a pseudo-terminal standing in for a serial port), decoded with pynmea2."""

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

pynmea2 = require_module("pynmea2", " (requirements/dev.txt installs it)")

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc).timestamp()
LAT, LON, ALT = -33.86882, -151.209295, 512.25  # southern and western hemispheres
COVARIANCE = [4.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 9.0]  # east, north, up, m^2
VELOCITY = (3.0, -4.0)  # east, north, m/s: 5 m/s towards 143.13 degrees
HEADING = 271.5  # degrees from true north


class Autopilot(NavigatorSide):
    """The test side: the navigator's publishers, a UDP port receiving the sentences, diagnostics."""

    def __init__(self, context) -> None:
        super().__init__(context)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.port = self.udp.getsockname()[1]
        self.groups: list[dict[str, object]] = []

    def read_udp(self) -> None:
        """The groups received so far (not read while flying: wait_for_group sees them as new)."""
        while True:
            try:
                data = self.udp.recv(4096)
            except BlockingIOError:
                return
            self.groups.append(decode(data))

    def wait_for_group(self, executor, done, what: str, timeout: float = 10.0) -> dict[str, object]:
        """Spin until a sentence group received after now satisfies ``done``; that group."""
        start = len(self.groups)
        found: list = []

        def check() -> bool:
            self.read_udp()
            found[:] = [g for g in self.groups[start:] if done(g)]
            return bool(found)

        spin_until(executor, check, timeout, what)
        return found[0]

    def destroy(self) -> None:
        self.udp.close()
        super().destroy()


def decode(data: bytes) -> dict[str, object]:
    """One group of sentences: every line ends with CR LF and parses with a valid checksum."""
    text = data.decode("ascii")
    assert text.endswith("\r\n")
    group = {}
    for line in text[:-2].split("\r\n"):
        assert len(line) + 2 <= 82
        message = pynmea2.parse(line, check=True)
        group[message.sentence_type] = message
    return group


def fix_message(t: float, lat: float = LAT, lon: float = LON, status: int = 0):
    from sensor_msgs.msg import NavSatFix

    msg = NavSatFix(latitude=lat, longitude=lon, altitude=ALT)
    msg.header.stamp, msg.header.frame_id = stamp(t), "base_link"
    msg.status.status = status
    msg.position_covariance = COVARIANCE
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_KNOWN
    return msg


def odometry_message(t: float, heading: float = HEADING, yaw_sigma_deg: float = 2.0, twist=None):
    """The navigator's Odometry: map-frame (ENU) pose moving at VELOCITY, heading as given; the
    twist not estimated (covariance[0] = -1) unless ``twist`` (body-frame linear velocity) is given."""
    from nav_msgs.msg import Odometry

    msg = Odometry(child_frame_id="base_link")
    msg.header.stamp, msg.header.frame_id = stamp(t), "map"
    p = msg.pose.pose.position
    p.x, p.y, p.z = VELOCITY[0] * (t - T0) + 100.0, VELOCITY[1] * (t - T0) - 50.0, 120.0
    yaw = math.radians(90.0 - heading)
    q = msg.pose.pose.orientation
    q.z, q.w = math.sin(yaw / 2), math.cos(yaw / 2)
    covariance = np.zeros(36)
    covariance[[0, 7, 14]] = 4.0
    covariance[[21, 28, 35]] = math.radians(yaw_sigma_deg) ** 2
    msg.pose.covariance = covariance.tolist()
    if twist is None:
        msg.twist.covariance[0] = -1.0
    else:
        msg.twist.twist.linear.x, msg.twist.twist.linear.y = twist
    return msg


@pytest.fixture
def nmea(ros_context):
    """Start the node: ``nmea(**parameters)`` -> (autopilot, executor, node)."""
    from feature_matching_ros.ros.nodes.nmea_output_node import NmeaOutputNode

    def defaults(autopilot):
        return {"udp_port": autopilot.port, "rate": 20.0, "diagnostics_period": 0.2}

    yield from output_node_starter(ros_context, NmeaOutputNode, Autopilot, defaults)


def fly(autopilot, executor, frames: int = 8, t0: float = T0, **odometry) -> float:
    """Publish ``frames`` solutions 0.1 s apart (stamps and wall clock); the last stamp."""
    return fly_solutions(
        autopilot, executor, lambda t: (fix_message(t), odometry_message(t, **odometry)), frames, t0
    )


def test_sends_position_velocity_heading_and_accuracy_over_udp(nmea):
    autopilot, executor, node = nmea(talker="GP", satellites=12, geoid_separation=22.5)
    # before any solution: no-fix sentences at the rate
    first = autopilot.wait_for_group(executor, lambda g: "GGA" in g, "a first sentence group")
    assert first["GGA"].gps_qual == 0 and first["RMC"].status == "V" and "GST" not in first
    last = fly(autopilot, executor)
    when = datetime.fromtimestamp(round(last, 2), timezone.utc)
    group = autopilot.wait_for_group(
        executor,
        lambda g: g["GGA"].timestamp == when.timetz() and g["RMC"].spd_over_grnd is not None and "HDT" in g,
        "the last fix, with speed and heading",
    )
    gga, rmc, vtg, gst, hdt = (group[k] for k in ("GGA", "RMC", "VTG", "GST", "HDT"))
    assert gga.talker == "GP" and int(gga.num_sats) == 12
    assert gga.latitude == pytest.approx(LAT, abs=1e-6) and gga.lat_dir == "S"
    assert gga.longitude == pytest.approx(LON, abs=1e-6) and gga.lon_dir == "W"
    assert gga.altitude == pytest.approx(ALT - 22.5) and float(gga.geo_sep) == 22.5
    assert float(gga.horizontal_dil) == pytest.approx(math.sqrt(5.0), abs=0.05)
    assert gga.gps_qual == 1
    assert rmc.status == "A" and rmc.datestamp == when.date()
    assert (rmc.latitude, rmc.longitude) == (gga.latitude, gga.longitude)
    knots = 5.0 * 3600.0 / 1852.0
    course = math.degrees(math.atan2(*VELOCITY)) % 360.0
    assert rmc.spd_over_grnd == pytest.approx(knots, abs=0.01)
    assert rmc.true_course == pytest.approx(course, abs=0.1)
    assert vtg.spd_over_grnd_kmph == pytest.approx(18.0, abs=0.02) and vtg.true_track == rmc.true_course
    assert (gst.std_dev_latitude, gst.std_dev_longitude, gst.std_dev_altitude) == (1.0, 2.0, 3.0)
    assert gst.std_dev_major == pytest.approx(math.sqrt(2.5 + math.sqrt(3.25)), abs=0.005)
    assert float(hdt.heading) == pytest.approx(HEADING, abs=0.01)
    status = autopilot.statuses("nmea_output")
    assert status and {kv.key for kv in status[-1].values} >= {"output", "groups_sent", "fix"}


def test_heading_only_where_known_and_twist_velocity_when_given(nmea):
    autopilot, executor, node = nmea()
    # an odometry whose yaw is not measured (the navigator's variance 1e3 between fixes): no HDT;
    # a body-frame twist (forward 5 m/s, nose to 90 degrees = east) gives the velocity directly
    fly(autopilot, executor, heading=90.0, yaw_sigma_deg=math.degrees(math.sqrt(1e3)), twist=(5.0, 0.0))
    group = autopilot.wait_for_group(
        executor, lambda g: g["GGA"].gps_qual == 1 and g["RMC"].spd_over_grnd is not None, "a fix"
    )
    assert "HDT" not in group
    assert group["RMC"].spd_over_grnd == pytest.approx(5.0 * 3600.0 / 1852.0, abs=0.01)
    assert group["RMC"].true_course == pytest.approx(90.0, abs=0.1)


def test_lost_and_stale_solutions_are_no_fix(nmea):
    from sensor_msgs.msg import NavSatStatus

    autopilot, executor, node = nmea(max_age=0.4)
    last = fly(autopilot, executor, frames=3)
    autopilot.wait_for_group(executor, lambda g: g["GGA"].gps_qual == 1, "a fix")
    # the navigator lost the solution: NO_FIX with NaN, at once
    autopilot.fix_pub.publish(fix_message(last + 0.1, math.nan, math.nan, NavSatStatus.STATUS_NO_FIX))
    lost = autopilot.wait_for_group(executor, lambda g: g["GGA"].gps_qual == 0, "no fix once lost", 3.0)
    assert lost["RMC"].status == "V" and lost["GGA"].lat == "" and "GST" not in lost and "HDT" not in lost
    spin_until(executor, lambda: fix_state(autopilot) == "lost", what="diagnostics fix: lost (not stale)")
    # a fix, then nothing: held for max_age, then no fix
    autopilot.fix_pub.publish(fix_message(last + 0.2))
    autopilot.wait_for_group(executor, lambda g: g["GGA"].gps_qual == 1, "the fix again", 3.0)
    started = time.monotonic()
    stale = autopilot.wait_for_group(executor, lambda g: g["GGA"].gps_qual == 0, "no fix once stale", 3.0)
    assert time.monotonic() - started < 2.0 and stale["RMC"].status == "V"
    spin_until(executor, lambda: fix_state(autopilot) == "no (none or too old)", what="diagnostics: stale")


def fix_state(autopilot) -> str | None:
    """The ``fix`` value of the node's last diagnostics."""
    for status in reversed(autopilot.statuses("nmea_output")):
        return {kv.key: kv.value for kv in status.values}.get("fix")
    return None


def test_bad_input_is_reported_and_the_node_keeps_sending(nmea):
    autopilot, executor, node = nmea()
    autopilot.fix_pub.publish(fix_message(T0, lat=math.nan))  # STATUS_FIX with NaN: not a position
    autopilot.fix_pub.publish(fix_message(T0, lat=95.0))
    bad = odometry_message(T0)
    bad.pose.pose.position.x = math.inf
    autopilot.odometry_pub.publish(bad)

    wanted = {"error: bad fix", "error: bad odometry"}
    spin_until(executor, lambda: wanted <= autopilot.error_keys("nmea_output"), what="the errors")
    group = autopilot.wait_for_group(executor, lambda g: True, "sentences after bad input")
    assert group["GGA"].gps_qual == 0  # nothing usable arrived
    autopilot.fix_pub.publish(fix_message(T0 + 1.0))
    autopilot.wait_for_group(executor, lambda g: g["GGA"].gps_qual == 1, "the next good fix")


def test_serial_output_to_a_pseudo_terminal(nmea):
    master, slave = os.openpty()
    try:
        os.set_blocking(master, False)
        autopilot, executor, node = nmea(output="serial", serial_device=os.ttyname(slave), serial_baud=115200)
        fly(autopilot, executor, frames=4)
        buffer = b""

        def complete_fix() -> bool:
            nonlocal buffer
            try:
                buffer += os.read(master, 4096)
            except BlockingIOError:
                pass
            lines = buffer.split(b"\r\n")[:-1]
            return any(line.startswith(b"$GNGGA") and b",1,10," in line for line in lines)

        spin_until(executor, complete_fix, what="GGA with a fix on the serial port")
        lines = [line.decode("ascii") for line in buffer.split(b"\r\n")[:-1] if line.startswith(b"$")]
        parsed = [pynmea2.parse(line, check=True) for line in lines[1:]]  # the first may be cut
        fixes = [m for m in parsed if m.sentence_type == "GGA" and m.gps_qual == 1]
        assert fixes and fixes[-1].latitude == pytest.approx(LAT, abs=1e-6)
    finally:
        os.close(master)
        os.close(slave)


def test_a_missing_serial_device_is_an_error_the_node_survives(nmea):
    autopilot, executor, node = nmea(output="serial", serial_device="/nonexistent/ttyNMEA")

    spin_until(
        executor,
        lambda: autopilot.has_error("nmea_output", "output", "/nonexistent/ttyNMEA"),
        what="a diagnostics ERROR for the serial device",
    )
    seen = len(autopilot.diagnostics)
    spin_until(executor, lambda: len(autopilot.diagnostics) > seen + 2, what="diagnostics going on")
    assert node.sent == 0
