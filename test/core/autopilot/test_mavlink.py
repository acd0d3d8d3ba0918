"""core.autopilot.mavlink: every GPS_INPUT / ODOMETRY / SET_GPS_GLOBAL_ORIGIN field, packed and unpacked
with pymavlink's MAVLink 2 message classes."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import numpy as np
import pytest

from feature_matching_ros.core.autopilot import mavlink as mo

from ...conftest import require_module

mavlink = require_module("pymavlink.dialects.v20.common", " (install_requires has it)")

T = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc).timestamp()
COV_ENU = np.array([[4.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 9.0]])


def roundtrip(name: str, fields: dict):
    """Encode with pymavlink, pack to bytes, decode them again."""
    mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=191)
    data = getattr(mav, f"{name}_encode")(**fields).pack(mav)
    return mavlink.MAVLink(None).decode(bytearray(data))


def fix(**kw) -> mo.Fix:
    values = dict(stamp=T, latitude=-33.86882, longitude=-151.209295, altitude=512.25, covariance=COV_ENU)
    return mo.Fix(**{**values, **kw})


def velocity(vertical_known: bool = True) -> mo.Velocity:
    cov = np.diag([0.04, 0.09, 0.16])
    return mo.Velocity(np.array([3.0, -4.0, 0.5]), cov, vertical_known, horizontal_sigma=0.25)


def test_gps_time_from_utc_with_leap_seconds():
    # 2026-11-28 10:00:00 UTC is a Saturday: 2446 weeks + 6 days after 1980-01-06 (date arithmetic),
    # and GPS time is 18 s ahead
    assert (date(2026, 11, 28) - date(1980, 1, 6)).days == 2446 * 7 + 6
    assert mo.gps_time(T, 18) == (2446, (6 * 86400 + 10 * 3600 + 18) * 1000)
    assert mo.gps_time(mo.GPS_EPOCH_UNIX_S, 0) == (0, 0)
    assert mo.gps_time(mo.GPS_EPOCH_UNIX_S + mo.WEEK_S - 18.0004, 18) == (1, 0)  # rounds to the ms


def test_gps_input_position_time_accuracy_and_flags():
    config = mo.GpsConfig(gps_id=1, satellites=12, uere_m=2.0, geoid_separation_m=22.5)
    m = roundtrip("gps_input", mo.gps_input_fields(fix(), velocity(), 271.5, config, now=0.0))
    assert m.get_type() == "GPS_INPUT"
    assert (m.lat, m.lon) == (-338688200, -1512092950)  # 1e7 degrees
    assert m.alt == pytest.approx(512.25 - 22.5)  # above MSL
    assert m.fix_type == 3 and m.satellites_visible == 12 and m.gps_id == 1
    assert m.time_usec == int(T * 1e6)
    assert (m.time_week, m.time_week_ms) == mo.gps_time(T, 18)
    h = math.sqrt(2.5 + math.sqrt(2.25 + 1.0))  # worst-axis 1 sigma of [[4, 1], [1, 1]]
    assert m.horiz_accuracy == pytest.approx(h, rel=1e-6) and m.vert_accuracy == pytest.approx(3.0)
    assert m.hdop == pytest.approx(h / 2.0, rel=1e-6) and m.vdop == pytest.approx(1.5)
    assert (m.vn, m.ve, m.vd) == pytest.approx((-4.0, 3.0, -0.5))  # NED from ENU
    assert m.speed_accuracy == pytest.approx(0.25)
    assert m.ignore_flags == 0
    assert m.yaw == 27150  # centidegrees


def test_a_held_fix_grows_its_horizontal_accuracy_with_its_age():
    fresh = mo.gps_input_fields(fix(), velocity(), None, mo.GpsConfig(), now=0.0)
    held = mo.gps_input_fields(fix(), velocity(), None, mo.GpsConfig(), now=0.0, age_s=0.4)
    grown = (5.0 + 0.25) * 0.4  # (speed + speed accuracy) * age
    assert held["horiz_accuracy"] == pytest.approx(math.hypot(fresh["horiz_accuracy"], grown))
    assert held["hdop"] == pytest.approx(held["horiz_accuracy"]) and held["lat"] == fresh["lat"]


def test_gps_input_ignores_what_is_not_known():
    m = roundtrip("gps_input", mo.gps_input_fields(fix(), None, None, mo.GpsConfig(), now=0.0))
    expected = mavlink.GPS_INPUT_IGNORE_FLAG_VEL_HORIZ | mavlink.GPS_INPUT_IGNORE_FLAG_VEL_VERT
    assert m.ignore_flags == expected | mavlink.GPS_INPUT_IGNORE_FLAG_SPEED_ACCURACY
    assert m.yaw == 0  # unknown
    m = roundtrip("gps_input", mo.gps_input_fields(fix(), velocity(False), 0.0, mo.GpsConfig(), now=0.0))
    assert m.ignore_flags == mavlink.GPS_INPUT_IGNORE_FLAG_VEL_VERT and m.vd == 0.0
    assert m.yaw == 36000  # north is 36000: 0 means unknown


def test_gps_input_without_a_fix():
    m = roundtrip("gps_input", mo.gps_input_fields(None, velocity(), 10.0, mo.GpsConfig(), now=T + 5))
    assert m.fix_type == 0 and m.satellites_visible == 0 and (m.lat, m.lon) == (0, 0)
    assert m.ignore_flags == 0xFF and m.time_usec == int((T + 5) * 1e6)


def test_gps_input_rejects_bad_fixes():
    for bad in (fix(latitude=math.nan), fix(longitude=181.0), fix(covariance=np.full((3, 3), np.inf))):
        with pytest.raises(mo.MavlinkOutError):
            mo.gps_input_fields(bad, None, None, mo.GpsConfig(), now=0.0)


def pose(yaw_deg: float = 0.0, roll_deg: float = 0.0, pitch_deg: float = 0.0) -> mo.Pose:
    """ENU position (east 10, north 20, up 30), FLU attitude: yaw from east counter-clockwise,
    then roll about the body x axis, then pitch about the body y (left) axis."""
    y, r = math.radians(yaw_deg) / 2, math.radians(roll_deg) / 2
    qz = np.array([0.0, 0.0, math.sin(y), math.cos(y)])
    qx = np.array([math.sin(r), 0.0, 0.0, math.cos(r)])
    p = math.radians(pitch_deg) / 2
    q = _multiply(_multiply(qz, qx), np.array([0.0, math.sin(p), 0.0, math.cos(p)]))
    cov = np.diag([1.0, 4.0, 9.0, 0.01, 0.02, 0.03])
    cov[0, 1] = cov[1, 0] = 0.5  # east-north
    cov[0, 5] = cov[5, 0] = 0.05  # east-yaw(about up)
    return mo.Pose(T, np.array([10.0, 20.0, 30.0]), q, cov)


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def test_odometry_frames_position_and_ids():
    m = roundtrip("odometry", mo.odometry_fields(pose(), None, reset_counter=257))
    assert m.get_type() == "ODOMETRY"
    assert (m.frame_id, m.child_frame_id) == (mavlink.MAV_FRAME_LOCAL_FRD, mavlink.MAV_FRAME_BODY_FRD)
    assert (m.x, m.y, m.z) == pytest.approx((20.0, 10.0, -30.0))  # north, east, down
    assert m.time_usec == int(T * 1e6) and m.reset_counter == 1
    assert m.estimator_type == mavlink.MAV_ESTIMATOR_TYPE_VISION


@pytest.mark.parametrize(
    ("yaw_enu", "roll_flu", "heading_ned", "roll_frd"),
    [(90.0, 0.0, 0.0, 0.0), (0.0, 0.0, 90.0, 0.0), (180.0, 0.0, 270.0, 0.0), (45.0, 20.0, 45.0, 20.0)],
)
def test_odometry_quaternion_enu_flu_to_ned_frd(yaw_enu, roll_flu, heading_ned, roll_frd):
    """Nose north in ENU (yaw 90) is heading 0 in NED, nose east (yaw 0) heading 90; a positive
    roll about FLU x lifts the left wing, which is the right wing down: a positive FRD roll too."""
    m = roundtrip("odometry", mo.odometry_fields(pose(yaw_enu, roll_flu), None, 0))
    w, x, y, z = m.q
    roll = math.degrees(math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y)))
    yaw = math.degrees(math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))) % 360.0
    assert abs(((yaw - heading_ned + 180.0) % 360.0) - 180.0) < 1e-4
    assert roll == pytest.approx(roll_frd, abs=1e-4)
    assert w * w + x * x + y * y + z * z == pytest.approx(1.0, abs=1e-6)


def test_odometry_pitch_changes_sign_between_flu_and_frd():
    """A positive rotation about FLU y (left) tips the nose down; about FRD y (right), up."""
    m = roundtrip("odometry", mo.odometry_fields(pose(90.0, 0.0, 15.0), None, 0))
    w, x, y, z = m.q
    pitch = math.degrees(math.asin(2 * (w * y - z * x)))
    assert pitch == pytest.approx(-15.0, abs=1e-4)


def test_odometry_pose_covariance_reordered_to_ned():
    m = roundtrip("odometry", mo.odometry_fields(pose(), None, 0))
    c = np.zeros((6, 6))
    c[np.triu_indices(6)] = m.pose_covariance
    assert np.diag(c) == pytest.approx([4.0, 1.0, 9.0, 0.02, 0.01, 0.03])  # N E D, about N E D
    assert c[0, 1] == pytest.approx(0.5)  # north-east
    assert c[1, 5] == pytest.approx(-0.05)  # east with about-down = -(east with about-up)
    assert len(m.pose_covariance) == 21 and c[0, 2] == 0.0


def test_odometry_velocity_in_the_body_frame_and_unknowns_nan():
    # nose east (ENU yaw 0): body forward = east, right = south, down = down
    m = roundtrip("odometry", mo.odometry_fields(pose(0.0), velocity(), 0))
    assert (m.vx, m.vy, m.vz) == pytest.approx((3.0, 4.0, -0.5), abs=1e-6)
    v = np.zeros((6, 6))
    v[np.triu_indices(6)] = m.velocity_covariance
    assert np.diag(v)[:3] == pytest.approx([0.04, 0.09, 0.16], abs=1e-7)  # east, south, down variances
    assert all(math.isnan(x) for x in np.diag(v)[3:]) and math.isnan(m.yawspeed)
    m = roundtrip("odometry", mo.odometry_fields(pose(0.0), velocity(vertical_known=False), 0))
    assert math.isnan(m.vx) and math.isnan(m.velocity_covariance[0])  # unknown: NaN first element
    m = roundtrip("odometry", mo.odometry_fields(pose(0.0), None, 0))
    assert all(math.isnan(x) for x in m.velocity_covariance)


def test_odometry_rejects_bad_poses():
    bad = mo.Pose(T, np.array([math.inf, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]), np.eye(6))
    with pytest.raises(mo.MavlinkOutError):
        mo.odometry_fields(bad, None, 0)
    zero = mo.Pose(T, np.zeros(3), np.zeros(4), np.eye(6))
    with pytest.raises(mo.MavlinkOutError):
        mo.odometry_fields(zero, None, 0)


def test_reset_counter_on_loss_and_jumps():
    counter = mo.ResetCounter(n_sigma=5.0, max_speed=10.0)
    cov = np.eye(3)  # 1 m sigma per position; combined worst axis sqrt(2)
    assert counter.update(0.0, np.array([0.0, 0.0, 0.0]), cov) == 0
    assert counter.update(1.0, np.array([10.0, 0.0, 0.0]), cov) == 0  # 10 m/s: flying
    assert counter.update(1.1, np.array([11.0 + 7.0, 0.0, 0.0]), cov) == 0  # within 1 m + 5*1.41 m
    assert counter.update(1.2, np.array([40.0, 0.0, 0.0]), cov) == 1  # 22 m in 0.1 s: a jump
    counter.lost()
    assert counter.update(5.0, np.array([40.0, 0.0, 0.0]), cov) == 2  # back after a loss
    counter.value = 255
    counter.lost()
    assert counter.update(6.0, np.zeros(3), cov) == 0  # wraps as a uint8


def test_set_gps_global_origin():
    fields = mo.global_origin_fields(47.397742, 8.545594, 488.0, target_system=1)
    m = roundtrip("set_gps_global_origin", fields)
    assert m.get_type() == "SET_GPS_GLOBAL_ORIGIN" and m.target_system == 1
    assert (m.latitude, m.longitude, m.altitude) == (473977420, 85455940, 488000)  # 1e7 deg, mm
    with pytest.raises(mo.MavlinkOutError):
        mo.global_origin_fields(91.0, 0.0, 0.0)


def test_map_origin_from_a_fix_and_its_map_position():
    from feature_matching_ros.core.maps.georef import GeoReference

    origin = (47.397742, 8.545594, 488.0)
    georef = GeoReference(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), origin)
    position = np.array([2500.0, -1800.0, 120.0])  # far enough for a flat-earth shortcut to miss
    lat, lon, alt = georef.to_geodetic(*position)
    found = mo.map_origin(fix(latitude=lat, longitude=lon, altitude=alt), position)
    assert found[:2] == pytest.approx(origin[:2], abs=1e-8) and found[2] == pytest.approx(origin[2], abs=1e-3)
