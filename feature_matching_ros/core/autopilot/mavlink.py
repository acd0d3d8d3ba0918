"""MAVLink fields of a navigation solution: GPS_INPUT, ODOMETRY and SET_GPS_GLOBAL_ORIGIN.

ROS-free: each function returns the keyword arguments of pymavlink's ``<message>_encode``/``_send``
(``mav.gps_input_send(**gps_input_fields(...))``). Frames and units:

- The navigator's map frame is east-north-up (ENU) at the map's geodetic origin, its body frame
  forward-left-up (FLU). MAVLink's local frames are north-east-down (NED) and its body frame
  forward-right-down (FRD): position (x, y, z) = (north, east, -up); a vector v_ned = A v_enu and
  a body vector v_frd = B v_flu with A = [[0,1,0],[1,0,0],[0,0,-1]], B = diag(1, -1, -1); the
  attitude R_ned_frd = A R_enu_flu B (as quaternion w, x, y, z); covariances C' = T C T^T.
- Accuracies are 1-sigma: ``horiz_accuracy`` is the standard deviation along the worst horizontal
  axis (square root of the larger eigenvalue of the east/north covariance block),
  ``vert_accuracy`` the up standard deviation, ``speed_accuracy`` the velocity's horizontal
  standard error (``core.navigation.velocity``). HDOP/VDOP are those deviations over ``uere_m``.
- GPS_INPUT ``alt`` is above mean sea level: the WGS84 ellipsoidal height minus
  ``geoid_separation_m`` (0 by default: the ellipsoidal height is sent).
- GPS time: UTC + ``leap_seconds`` (18 since 2017-01-01) from the GPS epoch 1980-01-06.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry.pose import matrix_from_quaternion, quaternion_from_matrix

# MAVLink enum values (common.xml), so that this module does not import pymavlink.
GPS_FIX_TYPE_NO_GPS = 0
GPS_FIX_TYPE_3D_FIX = 3
IGNORE_ALT = 1
IGNORE_HDOP = 2
IGNORE_VDOP = 4
IGNORE_VEL_HORIZ = 8
IGNORE_VEL_VERT = 16
IGNORE_SPEED_ACCURACY = 32
IGNORE_HORIZONTAL_ACCURACY = 64
IGNORE_VERTICAL_ACCURACY = 128
MAV_FRAME_BODY_FRD = 12
MAV_FRAME_LOCAL_FRD = 20
MAV_ESTIMATOR_TYPE_VISION = 2
MAV_ESTIMATOR_TYPE_VIO = 3

GPS_EPOCH_UNIX_S = 315964800.0  # 1980-01-06T00:00:00Z
WEEK_S = 604800.0
ENU_TO_NED = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
FLU_TO_FRD = np.diag([1.0, -1.0, -1.0])
UPPER = np.triu_indices(6)  # row-major upper triangle: 21 entries, as MAVLink's covariances


class MavlinkOutError(ValueError):
    """A solution that cannot be sent."""


@dataclass(frozen=True)
class GpsConfig:
    gps_id: int = 0
    satellites: int = 10  # sent with a fix: EKF3's GPS checks want at least 6
    uere_m: float = 1.0
    geoid_separation_m: float = 0.0
    leap_seconds: int = 18


@dataclass(frozen=True)
class Fix:
    """A WGS84 position (degrees, ellipsoidal height m) at ``stamp`` (UTC s), ENU covariance m^2."""

    stamp: float
    latitude: float
    longitude: float
    altitude: float
    covariance: np.ndarray

    def problem(self) -> str | None:
        if not all(math.isfinite(v) for v in (self.stamp, self.latitude, self.longitude, self.altitude)):
            return "position or stamp is not finite"
        if abs(self.latitude) > 90.0 or abs(self.longitude) > 180.0:
            return f"latitude/longitude out of range: {self.latitude}, {self.longitude}"
        c = np.asarray(self.covariance, np.float64)
        if c.shape != (3, 3) or not np.all(np.isfinite(c)) or np.any(np.diag(c) < 0):
            return "covariance is not a finite 3x3 matrix with a non-negative diagonal"
        return None


@dataclass(frozen=True)
class Velocity:
    """ENU velocity, m/s, and its 3x3 covariance (NaN rows/columns where a component is unknown)."""

    enu: np.ndarray
    covariance: np.ndarray
    vertical_known: bool = True
    horizontal_sigma: float = math.nan  # the horizontal standard error, m/s (speed_accuracy)


def gps_time(utc_s: float, leap_seconds: int = 18) -> tuple[int, int]:
    """(GPS week, milliseconds into the week) of a UTC time (s since 1970)."""
    gps_ms = round((utc_s + leap_seconds - GPS_EPOCH_UNIX_S) * 1000.0)
    week, ms = divmod(gps_ms, round(WEEK_S * 1000.0))
    return int(week), int(ms)


def horizontal_sigma(covariance_enu: np.ndarray) -> float:
    """1-sigma along the worst horizontal axis, m."""
    block = np.asarray(covariance_enu, np.float64)[:2, :2]
    return math.sqrt(max(float(np.linalg.eigvalsh(0.5 * (block + block.T))[-1]), 0.0))


def gps_input_fields(
    fix: Fix | None,
    velocity: Velocity | None,
    heading_deg: float | None,
    config: GpsConfig,
    now: float,
    age_s: float = 0.0,
) -> dict:
    """GPS_INPUT of a fix (3D fix) or, with ``fix`` None, of no fix (fix_type 0, all ignored).

    ``now`` (UTC s) stamps a no-fix message; a fix carries its own stamp. ``heading_deg`` (true,
    clockwise from north) goes into ``yaw`` in centidegrees (36000 for north; 0 = unknown).
    A fix held ``age_s`` seconds after it arrived is sent unchanged, but with its horizontal
    accuracy grown by (speed + speed_accuracy) * age: how far the vehicle may have moved since."""
    stamp = now if fix is None else fix.stamp
    week, week_ms = gps_time(stamp, config.leap_seconds)
    fields = dict(
        time_usec=max(int(round(stamp * 1e6)), 0),
        gps_id=config.gps_id,
        ignore_flags=0,
        time_week_ms=week_ms,
        time_week=week,
        fix_type=GPS_FIX_TYPE_NO_GPS,
        lat=0,
        lon=0,
        alt=0.0,
        hdop=0.0,
        vdop=0.0,
        vn=0.0,
        ve=0.0,
        vd=0.0,
        speed_accuracy=0.0,
        horiz_accuracy=0.0,
        vert_accuracy=0.0,
        satellites_visible=0,
        yaw=0,
    )
    if fix is None:
        fields["ignore_flags"] = 0xFF
        return fields
    problem = fix.problem()
    if problem is not None:
        raise MavlinkOutError(problem)
    cov = np.asarray(fix.covariance, np.float64)
    h_sigma = horizontal_sigma(cov)
    if velocity is not None and age_s > 0.0:
        speed = math.hypot(float(velocity.enu[0]), float(velocity.enu[1]))
        spread = velocity.horizontal_sigma if math.isfinite(velocity.horizontal_sigma) else 0.0
        h_sigma = math.hypot(h_sigma, (speed + spread) * age_s)
    v_sigma = math.sqrt(max(float(cov[2, 2]), 0.0))
    ignore = 0
    fields.update(
        fix_type=GPS_FIX_TYPE_3D_FIX,
        lat=int(round(fix.latitude * 1e7)),
        lon=int(round(fix.longitude * 1e7)),
        alt=fix.altitude - config.geoid_separation_m,
        hdop=h_sigma / config.uere_m,
        vdop=v_sigma / config.uere_m,
        horiz_accuracy=h_sigma,
        vert_accuracy=v_sigma,
        satellites_visible=config.satellites,
    )
    if velocity is None:
        ignore |= IGNORE_VEL_HORIZ | IGNORE_VEL_VERT | IGNORE_SPEED_ACCURACY
    else:
        east, north, up = (float(v) for v in velocity.enu)
        fields.update(vn=north, ve=east, vd=-up if velocity.vertical_known else 0.0)
        if not velocity.vertical_known:
            ignore |= IGNORE_VEL_VERT
        if math.isfinite(velocity.horizontal_sigma):
            fields["speed_accuracy"] = velocity.horizontal_sigma
        else:
            ignore |= IGNORE_SPEED_ACCURACY
    if heading_deg is not None and math.isfinite(heading_deg):
        centideg = int(round((heading_deg % 360.0) * 100.0)) % 36000
        fields["yaw"] = centideg or 36000
    fields["ignore_flags"] = ignore
    return fields


@dataclass(frozen=True)
class Pose:
    """The navigator's odometry: ENU position (m), FLU->ENU attitude quaternion (x, y, z, w), and
    the 6x6 covariance (x, y, z, rotations about x, y, z of the map frame), at ``stamp`` (s)."""

    stamp: float
    position: np.ndarray
    quaternion: np.ndarray
    covariance: np.ndarray

    def problem(self) -> str | None:
        p, q = np.asarray(self.position, np.float64), np.asarray(self.quaternion, np.float64)
        if not (math.isfinite(self.stamp) and np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
            return "pose is not finite"
        if not float(q @ q) > 1e-12:
            return "orientation quaternion is zero"
        if np.asarray(self.covariance).shape != (6, 6):
            return "covariance is not 6x6"
        return None


def enu_flu_to_ned_frd(quaternion_xyzw: np.ndarray) -> np.ndarray:
    """MAVLink quaternion (w, x, y, z) of the FRD body in NED, from the FLU body in ENU (x, y, z, w)."""
    R = ENU_TO_NED @ matrix_from_quaternion(np.asarray(quaternion_xyzw, np.float64)) @ FLU_TO_FRD
    x, y, z, w = quaternion_from_matrix(R)
    return np.array([w, x, y, z])


def upper_triangle(matrix: np.ndarray) -> list[float]:
    """The 21-element row-major upper triangle of a 6x6 matrix (MAVLink covariance layout)."""
    return [float(v) for v in np.asarray(matrix, np.float64)[UPPER]]


def odometry_fields(
    pose: Pose, velocity: Velocity | None, reset_counter: int, estimator_type: int = MAV_ESTIMATOR_TYPE_VISION
) -> dict:
    """ODOMETRY: pose in MAV_FRAME_LOCAL_FRD (NED axes at the map origin), velocity in the body
    (MAV_FRAME_BODY_FRD); covariances in those frames. Without a 3-D velocity (none, or its vertical
    unknown) the velocity and its covariance are NaN; angular rates are not estimated (NaN)."""
    problem = pose.problem()
    if problem is not None:
        raise MavlinkOutError(problem)
    T = np.zeros((6, 6))
    T[:3, :3] = T[3:, 3:] = ENU_TO_NED
    pose_cov = T @ np.asarray(pose.covariance, np.float64) @ T.T
    x, y, z = ENU_TO_NED @ np.asarray(pose.position, np.float64)
    q = enu_flu_to_ned_frd(pose.quaternion)
    nan = math.nan
    v_body = np.full(3, nan)
    vel_cov = np.full((6, 6), nan)
    if velocity is not None and velocity.vertical_known:  # a body-frame velocity needs all three
        R_ned_frd = ENU_TO_NED @ matrix_from_quaternion(np.asarray(pose.quaternion, np.float64)) @ FLU_TO_FRD
        v_body = R_ned_frd.T @ ENU_TO_NED @ np.asarray(velocity.enu, np.float64)
        c_ned = ENU_TO_NED @ np.asarray(velocity.covariance, np.float64) @ ENU_TO_NED.T
        vel_cov[:3, :3] = R_ned_frd.T @ c_ned @ R_ned_frd
    return dict(
        time_usec=max(int(round(pose.stamp * 1e6)), 0),
        frame_id=MAV_FRAME_LOCAL_FRD,
        child_frame_id=MAV_FRAME_BODY_FRD,
        x=float(x),
        y=float(y),
        z=float(z),
        q=[float(v) for v in q],
        vx=float(v_body[0]),
        vy=float(v_body[1]),
        vz=float(v_body[2]),
        rollspeed=nan,
        pitchspeed=nan,
        yawspeed=nan,
        pose_covariance=upper_triangle(pose_cov),
        velocity_covariance=upper_triangle(vel_cov),
        reset_counter=reset_counter % 256,
        estimator_type=estimator_type,
        quality=0,
    )


@dataclass
class ResetCounter:
    """ODOMETRY's reset_counter: incremented on a discontinuity of the solution, i.e. after it was
    lost (``lost()``), or when a position jumps from the previous one by more than ``n_sigma``
    standard deviations of the two positions' combined horizontal covariance (at least
    ``min_jump_m``) beyond ``max_speed`` times the time between them."""

    n_sigma: float = 5.0
    max_speed: float = 30.0
    min_jump_m: float = 1.0
    value: int = 0
    _last: tuple[float, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _lost: bool = False

    def lost(self) -> None:
        self._lost = True

    def update(self, stamp: float, position: np.ndarray, covariance: np.ndarray) -> int:
        p = np.asarray(position, np.float64)
        c = np.asarray(covariance, np.float64)[:3, :3]
        if self._last is not None:
            last_stamp, last_p, last_c = self._last
            jump = float(np.linalg.norm((p - last_p)[:2]))
            sigma = horizontal_sigma(c + last_c)
            travel = self.max_speed * max(stamp - last_stamp, 0.0)
            allowed = travel + max(self.n_sigma * sigma, self.min_jump_m)
            if self._lost or jump > allowed:
                self.value = (self.value + 1) % 256
        elif self._lost:
            self.value = (self.value + 1) % 256
        self._lost = False
        self._last = (stamp, p, c)
        return self.value


def global_origin_fields(latitude: float, longitude: float, altitude: float, target_system: int = 0) -> dict:
    """SET_GPS_GLOBAL_ORIGIN of the map origin (WGS84 degrees, altitude m above MSL -> mm)."""
    if not (abs(latitude) <= 90.0 and abs(longitude) <= 180.0 and math.isfinite(altitude)):
        raise MavlinkOutError(f"origin out of range: {latitude}, {longitude}, {altitude}")
    return dict(
        target_system=target_system,
        latitude=int(round(latitude * 1e7)),
        longitude=int(round(longitude * 1e7)),
        altitude=int(round(altitude * 1000.0)),
        time_usec=0,
    )


def map_origin(fix: Fix, position_enu: np.ndarray, iterations: int = 4) -> tuple[float, float, float]:
    """WGS84 (lat, lon, ellipsoidal height) of the map origin, from a fix and the map-frame (ENU)
    position of the same solution: the point whose ENU coordinates are (0, 0, 0), exactly on the
    ellipsoid (the tangent plane is the origin's, found by fixed-point iteration from the fix's)."""
    from ..maps.georef import GeoReference

    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    p = np.asarray(position_enu, np.float64)
    target = (fix.latitude, fix.longitude, fix.altitude)
    origin = GeoReference(identity, target).to_geodetic(*(-p))
    for _ in range(iterations):
        georef = GeoReference(identity, origin)
        seen = np.array(georef.from_geodetic(*target))
        origin = georef.to_geodetic(*(seen - p))
    return origin
