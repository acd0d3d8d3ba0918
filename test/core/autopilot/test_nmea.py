"""NMEA 0183 sentences of a navigation solution, decoded by an independent parser (pynmea2)."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timezone

import numpy as np
import pytest

from feature_matching_ros.core.autopilot.nmea import (
    NmeaConfig,
    NmeaError,
    NmeaSolution,
    checksum,
    encode,
    error_ellipse,
    sentences,
)
from feature_matching_ros.core.navigation.velocity import SolutionVelocity, VelocityConfig

from ...conftest import require_module

pynmea2 = require_module("pynmea2", " (requirements/dev.txt installs it)")

STAMP = datetime(2026, 11, 28, 10, 30, 15, 250000, tzinfo=timezone.utc).timestamp()
COVARIANCE = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 9.0]])  # east, north, up, m^2


def parsed(lines: list[str]) -> dict[str, object]:
    """Each sentence parsed with its checksum checked, by sentence type."""
    out = {}
    for line in lines:
        assert line.startswith("$") and len(line) + 2 <= 82, line
        message = pynmea2.parse(line, check=True)
        out[message.sentence_type] = message
    return out


def degrees(field: str, hemisphere: str) -> float:
    """A ddmm.mmmmm / dddmm.mmmmm field decoded independently of the encoder's arithmetic."""
    head, minutes = field[: field.index(".") - 2], field[field.index(".") - 2 :]
    value = int(head) + float(minutes) / 60.0
    return -value if hemisphere in "SW" else value


@pytest.mark.parametrize(
    "lat, lon",
    [
        (47.397742, 8.545594),  # north-east
        (-33.868820, -151.209295),  # south-west
        (-0.000001, 0.000001),  # at the equator and Greenwich
        (0.5, -179.9999999),  # next to the antimeridian
        (-89.99, 179.99999999),  # rounds to 180 degrees exactly
        (12.9999999999, -0.0000001),  # minutes round up to 60: the carry goes into the degrees
    ],
)
def test_position_fields_round_trip(lat, lon):
    solution = NmeaSolution(STAMP, lat, lon, 512.25, COVARIANCE, (3.0, -4.0), 271.5)
    lines = sentences(solution, NmeaConfig(talker="GP"))
    msgs = parsed(lines)
    assert [line[1:6] for line in lines] == ["GPGGA", "GPRMC", "GPVTG", "GPGST", "GPHDT"]
    gga, rmc = msgs["GGA"], msgs["RMC"]
    tolerance = 1e-5 / 60.0 + 1e-12  # 1e-5 minutes
    for message in (gga, rmc):
        assert degrees(message.lat, message.lat_dir) == pytest.approx(lat, abs=tolerance)
        assert abs(degrees(message.lon, message.lon_dir) - lon) <= tolerance or abs(lon) > 179.99999
        assert abs(message.latitude - lat) <= tolerance
        assert float(message.lat.split(".")[0][-2:]) < 60 and float(message.lon.split(".")[0][-2:]) < 60
        assert len(message.lat.split(".")[0]) == 4 and len(message.lon.split(".")[0]) == 5
    if abs(lon) > 179.99999:
        assert abs(abs(degrees(gga.lon, gga.lon_dir)) - 180.0) <= tolerance
    if lat < 0 and round(abs(lat) * 6e6):
        assert gga.lat_dir == "S"
    assert gga.lon_dir == ("W" if lon < 0 and round(abs(lon) * 6e6) else "E")


def test_fields_of_a_solution():
    solution = NmeaSolution(STAMP, -33.86882, -151.209295, 512.25, COVARIANCE, (3.0, -4.0), 271.5)
    config = NmeaConfig(talker="GN", fix_quality=1, satellites=12, uere_m=1.0, geoid_separation_m=22.5)
    msgs = parsed(sentences(solution, config))
    gga, rmc, vtg, gst, hdt = (msgs[k] for k in ("GGA", "RMC", "VTG", "GST", "HDT"))
    assert gga.talker == "GN" and gga.timestamp == time(10, 30, 15, 250000, tzinfo=timezone.utc)
    assert gga.gps_qual == 1 and int(gga.num_sats) == 12
    assert float(gga.horizontal_dil) == pytest.approx(math.sqrt(5.0), abs=0.05)  # DRMS / 1 m
    assert gga.altitude == pytest.approx(512.25 - 22.5) and float(gga.geo_sep) == 22.5
    assert rmc.status == "A" and rmc.mode_indicator == "A"
    assert rmc.datestamp == date(2026, 11, 28) and rmc.timestamp == gga.timestamp
    speed_knots = 5.0 * 3600.0 / 1852.0
    course = math.degrees(math.atan2(3.0, -4.0)) % 360.0  # 143.13: south-east
    assert rmc.spd_over_grnd == pytest.approx(speed_knots, abs=0.005)
    assert rmc.true_course == pytest.approx(course, abs=0.05)
    assert float(vtg.spd_over_grnd_kts) == pytest.approx(speed_knots, abs=0.005)
    assert vtg.spd_over_grnd_kmph == pytest.approx(18.0, abs=0.005)
    assert vtg.true_track == pytest.approx(course, abs=0.05) and vtg.faa_mode == "A"
    # GST: latitude is north (1 m), longitude east (2 m), altitude up (3 m); the ellipse of
    # [[4, 1], [1, 1]] has eigenvalues 2.5 +- sqrt(3.25) with the major axis 73.15 deg from north.
    assert gst.timestamp == gga.timestamp and gst.rms is None
    assert (gst.std_dev_latitude, gst.std_dev_longitude, gst.std_dev_altitude) == (1.0, 2.0, 3.0)
    assert gst.std_dev_major == pytest.approx(math.sqrt(2.5 + math.sqrt(3.25)), abs=0.005)
    assert gst.std_dev_minor == pytest.approx(math.sqrt(2.5 - math.sqrt(3.25)), abs=0.005)
    assert gst.orientation == pytest.approx(90.0 - math.degrees(0.5 * math.atan2(2.0, 3.0)), abs=0.005)
    assert float(hdt.heading) == 271.5 and hdt.hdg_true == "T"


def test_checksums_are_the_xor_of_the_body():
    for line in sentences(NmeaSolution(STAMP, 1.0, 2.0, 3.0, COVARIANCE), NmeaConfig()):
        body, digits = line[1:].split("*")
        value = 0
        for char in body:
            value ^= ord(char)
        assert digits == f"{value:02X}" == checksum(body)
    assert encode(["$A*41", "$B*42"]) == b"$A*41\r\n$B*42\r\n"


def test_no_solution_says_no_fix():
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()
    msgs = parsed(sentences(None, NmeaConfig(talker="GP"), stamp=stamp))
    assert set(msgs) == {"GGA", "RMC", "VTG"}  # no GST, no HDT without a solution
    gga, rmc, vtg = msgs["GGA"], msgs["RMC"], msgs["VTG"]
    assert gga.gps_qual == 0 and int(gga.num_sats) == 0 and gga.lat == "" and gga.altitude is None
    assert gga.horizontal_dil == ""
    assert rmc.status == "V" and rmc.mode_indicator == "N" and rmc.lat == "" and rmc.spd_over_grnd is None
    assert rmc.datestamp == date(2026, 1, 2) and rmc.timestamp == time(3, 4, 5, tzinfo=timezone.utc)
    assert vtg.faa_mode == "N" and vtg.true_track is None and vtg.spd_over_grnd_kmph is None
    with pytest.raises(NmeaError):
        sentences(None, NmeaConfig())  # no time at all


def test_time_rolls_over_into_the_next_day_and_year():
    last = datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp() + 0.996
    msgs = parsed(sentences(NmeaSolution(last, 1.0, 2.0, 3.0), NmeaConfig()))
    assert msgs["GGA"].timestamp == time(0, 0, 0, tzinfo=timezone.utc)
    assert msgs["RMC"].datestamp == date(2027, 1, 1)
    msgs = parsed(sentences(NmeaSolution(last - 0.01, 1.0, 2.0, 3.0), NmeaConfig()))
    assert msgs["GGA"].timestamp == time(23, 59, 59, 990000, tzinfo=timezone.utc)
    assert msgs["RMC"].datestamp == date(2026, 12, 31)


def test_unknown_covariance_velocity_and_heading_leave_their_fields_empty():
    msgs = parsed(sentences(NmeaSolution(STAMP, 10.0, 20.0, 30.0), NmeaConfig()))
    assert set(msgs) == {"GGA", "RMC", "VTG"}  # GST needs a covariance, HDT a heading
    assert msgs["GGA"].horizontal_dil == "" and msgs["GGA"].gps_qual == 1
    assert msgs["RMC"].spd_over_grnd is None and msgs["RMC"].true_course is None
    assert msgs["VTG"].true_track is None and msgs["VTG"].spd_over_grnd_kts is None
    # at a standstill the speed is known but there is no course
    msgs = parsed(sentences(NmeaSolution(STAMP, 10.0, 20.0, 30.0, velocity=(0.01, 0.0)), NmeaConfig()))
    assert msgs["RMC"].spd_over_grnd == pytest.approx(0.02, abs=0.005) and msgs["RMC"].true_course is None


def test_config_and_solution_are_checked():
    bad_settings = ({"talker": "gp"}, {"talker": "GPS"}, {"fix_quality": 0}, {"satellites": 100})
    for bad in (*bad_settings, {"uere_m": 0.0}):
        with pytest.raises(NmeaError):
            NmeaConfig(**bad)
    for solution in (
        NmeaSolution(STAMP, float("nan"), 0.0, 0.0),
        NmeaSolution(STAMP, 91.0, 0.0, 0.0),
        NmeaSolution(STAMP, 0.0, float("inf"), 0.0),
        NmeaSolution(STAMP, 0.0, 0.0, 1e9),
        NmeaSolution(STAMP, 0.0, 0.0, 0.0, np.full((3, 3), np.nan)),
        NmeaSolution(STAMP, 0.0, 0.0, 0.0, -np.eye(3)),
        NmeaSolution(STAMP, 0.0, 0.0, 0.0, velocity=(float("nan"), 0.0)),
        NmeaSolution(-1.0, 0.0, 0.0, 0.0),
    ):
        with pytest.raises(NmeaError):
            sentences(solution, NmeaConfig())
    # an enormous covariance is capped so the sentence stays within 82 characters
    msgs = parsed(sentences(NmeaSolution(STAMP, 0.0, 0.0, 0.0, np.eye(3) * 1e14), NmeaConfig()))
    assert msgs["GST"].std_dev_major == 99999.99 and float(msgs["GGA"].horizontal_dil) == 99.9


def test_error_ellipse_orientation():
    assert error_ellipse(np.diag([1.0, 4.0])).orientation == pytest.approx(0.0)  # along north
    assert error_ellipse(np.diag([4.0, 1.0])).orientation == pytest.approx(90.0)  # along east
    ellipse = error_ellipse(np.array([[2.5, -1.5], [-1.5, 2.5]]))  # along north-west / south-east
    assert ellipse.orientation == pytest.approx(135.0)
    assert (ellipse.semi_major, ellipse.semi_minor) == pytest.approx((2.0, 1.0))


def test_velocity_fit_of_solutions():
    estimator = SolutionVelocity(VelocityConfig(window_s=2.0))
    assert estimator.velocity() is None
    for i in range(30):
        t = 100.0 + 0.1 * i
        estimator.add(t, 5.0 + 3.0 * t, -2.0 - 4.0 * t)
    v = estimator.velocity()
    assert (v.east, v.north) == pytest.approx((3.0, -4.0)) and v.sigma == pytest.approx(0.0, abs=1e-6)
    assert v.speed == pytest.approx(5.0) and v.stamp == pytest.approx(102.9)
    # a 3 m correction (a map fix) inside the window: the slope moves less than a single difference
    # would (30 m/s), and the scatter shows in the sigma
    estimator.add(103.0, 5.0 + 3.0 * 103.0 + 3.0, -2.0 - 4.0 * 103.0)
    v = estimator.velocity()
    assert abs(v.east - 3.0) < 1.0 and v.sigma > 0.05
    # a gap (the solution was lost) or a stamp going back restarts the window
    estimator.add(110.0, 0.0, 0.0)
    assert estimator.velocity() is None
    estimator.add(109.0, 0.0, 0.0)
    estimator.add(109.1, 0.0, 0.0)
    assert estimator.velocity() is None  # two samples spanning 0.1 s: too few, too short
    estimator.add(109.4, 0.0, float("nan"))
    assert estimator.velocity() is None
