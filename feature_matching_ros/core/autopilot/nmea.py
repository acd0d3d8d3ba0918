"""NMEA 0183 sentences of a navigation solution, for an autopilot's GPS input port.

    config = NmeaConfig(talker="GN")
    lines = sentences(NmeaSolution(stamp, lat, lon, alt, covariance_enu), config)   # $GNGGA,...*hh
    data = encode(lines)                                                           # bytes, CRLF

The sentences are GGA (position, quality, HDOP, altitude), RMC (status A/V, speed, course, date),
VTG (course and speed over ground), GST (accuracy: standard deviations and the error ellipse) and
HDT (true heading, only when a heading is known). Fields follow NMEA 0183 v2.3 (RMC and VTG carry
the mode indicator). Without a solution every sentence says so: GGA quality 0, RMC status V, mode
N, empty position fields; GST and HDT are not sent.

What the fields mean here, since there are no satellites:
- HDOP = DRMS / ``uere_m``, with DRMS = sqrt(var_east + var_north) of the position covariance and
  ``uere_m`` the user equivalent range error a receiver would assume (1 m by default, so that
  HDOP reads as the horizontal standard deviation in metres). Receivers and autopilots that turn
  HDOP back into an accuracy multiply it by their own UERE: GST is the exact statement.
- GST: standard deviations of latitude (north), longitude (east) and altitude (up), m, from the
  diagonal; the semi-major/semi-minor axes (1 sigma, m) and orientation (degrees clockwise from
  true north) of the horizontal error ellipse from the 2x2 east/north block. The RMS of pseudorange
  residuals does not exist for this solution: that field is empty.
- GGA altitude is above mean sea level: the ellipsoidal height minus ``geoid_separation_m``
  (default 0: the altitude field is then the WGS84 ellipsoidal height, and the separation field
  says 0.0); the number of satellites is ``satellites`` (a count the autopilot's GPS checks
  accept), 0 without a solution.
- Speed and course come from the east/north velocity when it is known (else empty fields); the
  course is empty below ``min_course_speed`` m/s, where it would be noise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

KNOTS_PER_MPS = 3600.0 / 1852.0
KMH_PER_MPS = 3.6
MAX_SENTENCE_LENGTH = 82  # characters, from '$' to the checksum and CR LF
MAX_SIGMA_M = 99999.99  # GST fields are capped here (a sentence must stay within 82 characters)
MAX_ALTITUDE_M = 1.0e5
FIX_QUALITIES = (1, 2, 4, 5, 6, 8)  # GGA qualities a solution may claim (0 = invalid is for none)
_TALKER = re.compile(r"^[A-Z]{2}$")


class NmeaError(ValueError):
    """A solution or setting that cannot be written as NMEA 0183."""


@dataclass(frozen=True)
class NmeaConfig:
    """talker: two letters before the sentence name (GP GPS, GN multi-constellation, ...);
    fix_quality: GGA quality of a solution (1 GPS fix, 6 estimated/dead reckoning, ...);
    satellites: the GGA satellite count of a solution; uere_m: HDOP = DRMS / uere_m;
    geoid_separation_m: geoid height above the WGS84 ellipsoid at the position;
    min_course_speed: below this speed, m/s, no course is given."""

    talker: str = "GN"
    fix_quality: int = 1
    satellites: int = 10
    uere_m: float = 1.0
    geoid_separation_m: float = 0.0
    min_course_speed: float = 0.1

    def __post_init__(self) -> None:
        if not _TALKER.match(self.talker):
            raise NmeaError(f"talker must be two capital letters (GP, GN, ...); got {self.talker!r}")
        if self.fix_quality not in FIX_QUALITIES:
            raise NmeaError(f"fix_quality must be one of {FIX_QUALITIES}; got {self.fix_quality}")
        if not 0 <= self.satellites <= 99:
            raise NmeaError(f"satellites must be within [0, 99]; got {self.satellites}")
        if not (self.uere_m > 0 and math.isfinite(self.uere_m)):
            raise NmeaError(f"uere_m must be positive; got {self.uere_m}")
        if not math.isfinite(self.geoid_separation_m) or not self.min_course_speed >= 0:
            raise NmeaError("geoid_separation_m must be finite and min_course_speed non-negative")


@dataclass(frozen=True, eq=False)
class NmeaSolution:
    """A position at ``stamp`` (POSIX seconds, UTC): WGS84 latitude/longitude (degrees) and
    ellipsoidal altitude (m); covariance: 3x3 east/north/up, m^2 (None = unknown: no HDOP, no GST);
    velocity: (east, north) m/s over ground, None = unknown; heading: true heading of the body,
    degrees, None = unknown."""

    stamp: float
    latitude: float
    longitude: float
    altitude: float
    covariance: np.ndarray | None = None
    velocity: tuple[float, float] | None = None
    heading: float | None = None

    def problem(self) -> str | None:
        """Why this solution cannot be written, or None."""
        if not math.isfinite(self.stamp) or self.stamp < 0:
            return f"stamp {self.stamp} is not a time after 1970"
        if not (math.isfinite(self.latitude) and -90.0 <= self.latitude <= 90.0):
            return f"latitude {self.latitude} is not within [-90, 90]"
        if not math.isfinite(self.longitude):
            return f"longitude {self.longitude} is not finite"
        if not (math.isfinite(self.altitude) and abs(self.altitude) <= MAX_ALTITUDE_M):
            return f"altitude {self.altitude} is not within +-{MAX_ALTITUDE_M:g} m"
        if self.covariance is not None:
            c = np.asarray(self.covariance, np.float64)
            if c.shape != (3, 3) or not np.isfinite(c).all():
                return "covariance is not a finite 3x3 matrix"
            if (np.diag(c) < 0).any() or np.linalg.eigvalsh(0.5 * (c[:2, :2] + c[:2, :2].T)).min() < -1e-9:
                return "covariance is not positive semi-definite"
        if self.velocity is not None and not all(math.isfinite(v) for v in self.velocity):
            return "velocity is not finite"
        if self.heading is not None and not math.isfinite(self.heading):
            return "heading is not finite"
        return None


@dataclass(frozen=True)
class ErrorEllipse:
    """1-sigma horizontal error ellipse: semi-axes (m) and the major axis' bearing (deg, [0, 180))."""

    semi_major: float
    semi_minor: float
    orientation: float


def error_ellipse(covariance_en: np.ndarray) -> ErrorEllipse:
    """The error ellipse of a 2x2 east/north covariance (m^2)."""
    c = np.asarray(covariance_en, np.float64)[:2, :2]
    values, vectors = np.linalg.eigh(0.5 * (c + c.T))
    east, north = vectors[:, 1]  # eigenvector of the larger eigenvalue
    bearing = math.degrees(math.atan2(east, north)) % 180.0
    if bearing >= 179.995:  # 180 and 0 are the same axis; keep the field below 180.00
        bearing = 0.0
    major, minor = (math.sqrt(max(float(v), 0.0)) for v in values[::-1])
    return ErrorEllipse(major, minor, bearing)


def hdop(covariance: np.ndarray, uere_m: float) -> float:
    """HDOP of a position covariance: DRMS / uere_m (see the module docstring)."""
    c = np.asarray(covariance, np.float64)
    return math.sqrt(max(float(c[0, 0] + c[1, 1]), 0.0)) / uere_m


def checksum(body: str) -> str:
    """The two hex digits of the XOR of the characters between '$' and '*'."""
    value = 0
    for char in body.encode("ascii"):
        value ^= char
    return f"{value:02X}"


def sentence(fields: Sequence[str]) -> str:
    """'$' + comma-joined fields + '*' + checksum (no CR LF)."""
    body = ",".join(fields)
    if any(c in body for c in "$*\r\n") or not body.isascii():
        raise NmeaError(f"reserved or non-ASCII character in an NMEA field: {body!r}")
    return f"${body}*{checksum(body)}"


def _angle(value: float, degree_digits: int, hemispheres: str) -> tuple[str, str]:
    """(d..dmm.mmmmm, hemisphere) of an angle; rounded to 1e-5 minutes with the carry into degrees."""
    units = round(abs(value) * 60.0 * 100_000)  # 1e-5 minutes
    degrees, minutes = divmod(units, 60 * 100_000)
    text = f"{degrees:0{degree_digits}d}{minutes // 100_000:02d}.{minutes % 100_000:05d}"
    return text, hemispheres[0] if value >= 0 or units == 0 else hemispheres[1]


def latitude_field(latitude: float) -> tuple[str, str]:
    """ddmm.mmmmm and N/S."""
    return _angle(latitude, 2, "NS")


def longitude_field(longitude: float) -> tuple[str, str]:
    """dddmm.mmmmm and E/W, the longitude first wrapped into [-180, 180]."""
    wrapped = (longitude + 180.0) % 360.0 - 180.0
    if wrapped == -180.0 and longitude > 0:
        wrapped = 180.0
    return _angle(wrapped, 3, "EW")


def utc_fields(stamp: float) -> tuple[str, str]:
    """(hhmmss.ss, ddmmyy) of a POSIX time, rounded to 0.01 s (a rounding into the next second,
    minute, day or year carries into every field)."""
    centiseconds = round(stamp * 100)
    when = datetime.fromtimestamp(centiseconds // 100, timezone.utc)
    return f"{when:%H%M%S}.{centiseconds % 100:02d}", f"{when:%d%m%y}"


def _number(value: float | None, decimals: int) -> str:
    return "" if value is None else f"{value:.{decimals}f}"


def _course(solution: NmeaSolution, config: NmeaConfig) -> tuple[float | None, float | None]:
    """(speed m/s, course deg) over ground; None where unknown."""
    if solution.velocity is None:
        return None, None
    east, north = solution.velocity
    speed = math.hypot(east, north)
    if speed < config.min_course_speed:
        return speed, None
    course = math.degrees(math.atan2(east, north)) % 360.0
    return speed, 0.0 if round(course, 1) >= 360.0 else course


def sentences(solution: NmeaSolution | None, config: NmeaConfig, stamp: float | None = None) -> list[str]:
    """GGA, RMC, VTG, and with a solution GST (covariance known) and HDT (heading known).

    Without a solution, ``stamp`` (POSIX seconds) is the time the no-fix sentences carry."""
    if solution is not None:
        problem = solution.problem()
        if problem is not None:
            raise NmeaError(f"solution not written: {problem}")
        stamp = solution.stamp
    if stamp is None or not math.isfinite(stamp) or stamp < 0:
        raise NmeaError("a no-fix sentence needs a time (POSIX seconds)")
    t = config.talker
    time_field, date_field = utc_fields(stamp)
    if solution is None:
        return [
            sentence([f"{t}GGA", time_field, "", "", "", "", "0", "00", "", "", "M", "", "M", "", ""]),
            sentence([f"{t}RMC", time_field, "V", "", "", "", "", "", "", date_field, "", "", "N"]),
            sentence([f"{t}VTG", "", "T", "", "M", "", "N", "", "K", "N"]),
        ]
    lat, ns = latitude_field(solution.latitude)
    lon, ew = longitude_field(solution.longitude)
    covariance = None if solution.covariance is None else np.asarray(solution.covariance, np.float64)
    dop = None if covariance is None else min(hdop(covariance, config.uere_m), 99.9)
    msl = solution.altitude - config.geoid_separation_m
    gga = [f"{t}GGA", time_field, lat, ns, lon, ew, str(config.fix_quality), f"{config.satellites:02d}"]
    gga += [_number(dop, 1), f"{msl:.2f}", "M", f"{config.geoid_separation_m:.1f}", "M", "", ""]
    speed, course = _course(solution, config)
    knots = None if speed is None else speed * KNOTS_PER_MPS
    course_text = _number(course, 1)
    rmc = [f"{t}RMC", time_field, "A", lat, ns, lon, ew, _number(knots, 2), course_text, date_field]
    rmc += ["", "", "A"]
    kmh = None if speed is None else speed * KMH_PER_MPS
    vtg = [f"{t}VTG", course_text, "T", "", "M", _number(knots, 2), "N", _number(kmh, 2), "K", "A"]
    out = [sentence(gga), sentence(rmc), sentence(vtg)]
    if covariance is not None:
        ellipse = error_ellipse(covariance)
        sigmas = np.minimum(np.sqrt(np.maximum(np.diag(covariance), 0.0)), MAX_SIGMA_M)
        major, minor = (min(v, MAX_SIGMA_M) for v in (ellipse.semi_major, ellipse.semi_minor))
        gst = [f"{t}GST", time_field, "", f"{major:.2f}", f"{minor:.2f}", f"{ellipse.orientation:.2f}"]
        gst += [f"{sigmas[1]:.2f}", f"{sigmas[0]:.2f}", f"{sigmas[2]:.2f}"]
        out.append(sentence(gst))
    if solution.heading is not None:
        heading = solution.heading % 360.0
        out.append(sentence([f"{t}HDT", f"{0.0 if round(heading, 2) >= 360.0 else heading:.2f}", "T"]))
    for line in out:
        if len(line) + 2 > MAX_SENTENCE_LENGTH:
            raise NmeaError(f"sentence longer than {MAX_SENTENCE_LENGTH} characters: {line}")
    return out


def encode(lines: Sequence[str]) -> bytes:
    """The sentences as sent on the wire: ASCII, each ended by CR LF."""
    return "".join(f"{line}\r\n" for line in lines).encode("ascii")
