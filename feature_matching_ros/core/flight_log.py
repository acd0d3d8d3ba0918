"""Evaluation inputs that need no ROS: a GPS log in CSV form, its image folder, and frame pairs.

The CSV holds one row per camera frame with the columns ``image, t_s, lat_deg, lon_deg, alt_m,
track_deg, east_m, north_m`` (the format of the Seneca survey flight): t_s in seconds, WGS84
degrees, altitude in metres above sea level, track (course over ground) in degrees clockwise from
north, and east/north metres of the log's own local approximation. Positions are converted here to
the map frame (east, north, up metres, see ``frames``) on the WGS84 tangent plane at an origin.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FeatureMatchingError, ImageError
from .georef import GeoReference

GPS_COLUMNS = ("image", "t_s", "lat_deg", "lon_deg", "alt_m", "track_deg", "east_m", "north_m")
OVERLAPPING = "overlapping"
AMBIGUOUS = "ambiguous"
DISJOINT = "disjoint"
OVERLAPPING_BELOW_M = 45.0
DISJOINT_ABOVE_M = 85.0


class FlightLogError(FeatureMatchingError):
    """A flight log cannot be read or does not have the expected columns and values."""


@dataclass(frozen=True)
class GpsRow:
    """One frame of a GPS log. position: map-frame (east, north, up) metres; csv_east/csv_north: the
    log's own local metres."""

    index: int
    image: str
    t: float
    lat: float
    lon: float
    alt: float
    track_deg: float
    csv_east: float
    csv_north: float
    position: tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class GpsTrack:
    """A GPS log as arrays of N rows.

    t [N] s; lat, lon [N] degrees; alt [N] m; track_deg [N]; csv_en [N x 2]: the log's east/north
    columns (m); enu [N x 3]: east, north, up metres on the WGS84 tangent plane at ``origin``
    (lat°, lon°, alt m), which is the first fix unless another was given.
    """

    images: tuple[str, ...]
    t: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    alt: np.ndarray
    track_deg: np.ndarray
    csv_en: np.ndarray
    enu: np.ndarray
    origin: tuple[float, float, float]

    def __len__(self) -> int:
        return len(self.images)

    def row(self, i: int) -> GpsRow:
        e, n, u = (float(v) for v in self.enu[i])
        return GpsRow(
            i,
            self.images[i],
            float(self.t[i]),
            float(self.lat[i]),
            float(self.lon[i]),
            float(self.alt[i]),
            float(self.track_deg[i]),
            float(self.csv_en[i, 0]),
            float(self.csv_en[i, 1]),
            (e, n, u),
        )


def read_gps_csv(path: str | Path, origin: tuple[float, float, float] | None = None) -> GpsTrack:
    """Read a GPS log; ``origin``: WGS84 (lat°, lon°, alt m) of the map-frame origin (default: the
    first fix), e.g. a map's ``georef.geodetic_origin`` to express the log in that map's frame."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in GPS_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise FlightLogError(f"{path}: missing columns {missing}; expected {list(GPS_COLUMNS)}")
            rows = list(reader)
    except OSError as exc:
        raise FlightLogError(f"cannot read GPS log {path}: {exc}") from exc
    if not rows:
        raise FlightLogError(f"GPS log {path} has no rows")
    try:
        numbers = np.array([[float(r[c]) for c in GPS_COLUMNS[1:]] for r in rows], np.float64)
    except (TypeError, ValueError) as exc:
        raise FlightLogError(f"GPS log {path}: a value is not a number ({exc})") from None
    if not np.isfinite(numbers).all():
        raise FlightLogError(f"GPS log {path} holds non-finite values")
    t, lat, lon, alt, track, east, north = numbers.T
    if np.any(np.diff(t) < 0):
        raise FlightLogError(f"GPS log {path}: t_s must not decrease")
    if origin is None:
        origin = (float(lat[0]), float(lon[0]), float(alt[0]))
    frame = GeoReference.north_up((0.0, 0.0), 1.0, geodetic_origin=origin)
    enu = np.array([frame.from_geodetic(a, b, c) for a, b, c in zip(lat, lon, alt, strict=True)])
    return GpsTrack(
        tuple(r["image"].strip() for r in rows),
        t,
        lat,
        lon,
        alt,
        track,
        np.column_stack([east, north]),
        enu,
        frame.geodetic_origin,
    )


def image_folder_track(folder: str | Path, log: str | Path | GpsTrack) -> list[tuple[Path, GpsRow]]:
    """Each image of the log (a CSV path or a read GpsTrack) paired with its row, in log order.

    ImageError naming every image of the log that is not in ``folder``. Images in the folder that
    the log does not list are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"image folder not found: {folder}")
    track = log if isinstance(log, GpsTrack) else read_gps_csv(log)
    paths = [folder / name for name in track.images]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise ImageError(
            f"{len(missing)} of {len(paths)} images of the GPS log are missing from {folder}: {shown}"
        )
    return [(p, track.row(i)) for i, p in enumerate(paths)]


@dataclass(frozen=True)
class FramePair:
    """Frames ``first`` and ``second`` (indices), their horizontal GPS distance (m) and its class."""

    first: int
    second: int
    distance_m: float
    label: str


def classify_distance(
    distance_m: float,
    overlapping_below: float = OVERLAPPING_BELOW_M,
    disjoint_above: float = DISJOINT_ABOVE_M,
) -> str:
    """OVERLAPPING below the first bound, DISJOINT above the second, AMBIGUOUS in between (or NaN)."""
    if not 0.0 < overlapping_below <= disjoint_above:
        raise ValueError(
            f"need 0 < overlapping_below <= disjoint_above, got {overlapping_below} and {disjoint_above}"
        )
    if distance_m < overlapping_below:
        return OVERLAPPING
    if distance_m > disjoint_above:
        return DISJOINT
    return AMBIGUOUS


def classify_pairs(
    positions: np.ndarray,
    overlapping_below: float = OVERLAPPING_BELOW_M,
    disjoint_above: float = DISJOINT_ABOVE_M,
) -> list[FramePair]:
    """Classify each consecutive pair (i, i+1) of ``positions`` [N x 2|3] (map frame, m) by the
    horizontal (east, north) distance between them."""
    p = np.asarray(positions, np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"positions must be [N x 2] or [N x 3], got shape {p.shape}")
    steps = np.linalg.norm(np.diff(p[:, :2], axis=0), axis=1)
    return [
        FramePair(i, i + 1, float(d), classify_distance(float(d), overlapping_below, disjoint_above))
        for i, d in enumerate(steps)
    ]
