"""Evaluation inputs that need no ROS: a GPS log in CSV form, its image folder, and frame pairs.

The CSV holds one row per camera frame with the columns ``image, t_s, lat_deg, lon_deg, alt_m,
track_deg, east_m, north_m`` (the format of the Seneca survey flight): t_s in seconds, WGS84
degrees, altitude in metres above sea level, track (course over ground) in degrees clockwise from
north, and east/north metres of the log's own local approximation. Positions are converted here to
the map frame (east, north, up metres, see ``frames``) on the WGS84 tangent plane at an origin.

An image folder without a CSV can give the same ``GpsTrack`` from its images' EXIF
(``read_exif_track``: GPS latitude, longitude, altitude and DateTimeOriginal; Pillow reads it), and
a focal length in pixels (``exif_focal_px``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import FeatureMatchingError, ImageError
from ..maps.georef import GeoReference

GPS_COLUMNS = ("image", "t_s", "lat_deg", "lon_deg", "alt_m", "track_deg", "east_m", "north_m")
OVERLAPPING = "overlapping"
AMBIGUOUS = "ambiguous"
DISJOINT = "disjoint"
OVERLAPPING_BELOW_M = 45.0
DISJOINT_ABOVE_M = 85.0
EXIF_SUFFIXES = (".jpg", ".jpeg", ".tif", ".tiff")
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
# Focal plane resolution units (EXIF tag 0xA210) in millimetres; 2 (inch) is the default.
_UNIT_MM = {1: 25.4, 2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}
_FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


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


@dataclass(frozen=True)
class ExifInfo:
    """What an image's EXIF says (None where a tag is missing or unusable): lat/lon degrees (WGS84,
    north/east positive), alt metres above sea level, time: DateTimeOriginal (+ sub-seconds) as POSIX
    seconds of that wall-clock time read as UTC (only differences are meaningful), track_deg: GPS
    course over ground, focal_px: focal length in pixels of this image (see ``exif_focal_px``)."""

    lat: float | None
    lon: float | None
    alt: float | None
    time: float | None
    track_deg: float | None
    focal_px: float | None


def _number(value: object) -> float | None:
    try:
        x = float(value)  # Pillow's IFDRational, int or float
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return x if math.isfinite(x) else None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip("\x00 ") if value is not None else ""


def _degrees(dms: object, ref: object, negative: str) -> float | None:
    try:
        parts = [_number(v) for v in dms]  # type: ignore[union-attr]
    except TypeError:
        parts = [_number(dms)]
    if not parts or any(p is None for p in parts):
        return None
    value = sum(p / 60.0**k for k, p in enumerate(parts))  # type: ignore[operator]
    return -value if _text(ref).upper().startswith(negative) else value


def _exif_time(exif: object, ifd: dict) -> float | None:
    text = _text(ifd.get(0x9003)) or _text(exif.get(0x0132))  # type: ignore[attr-defined]
    try:
        stamp = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    seconds = (stamp - datetime(1970, 1, 1)).total_seconds()
    sub = _text(ifd.get(0x9291))
    return seconds + (float("0." + sub) if sub.isdigit() else 0.0)


def _focal_px(ifd: dict, size: tuple[int, int]) -> float | None:
    width, height = size
    f_mm = _number(ifd.get(0x920A))
    resolution = _number(ifd.get(0xA20E))
    if f_mm and f_mm > 0 and resolution and resolution > 0:
        unit = _UNIT_MM.get(int(_number(ifd.get(0xA210)) or 2))
        reference = _number(ifd.get(0xA002)) or width  # the resolution is that of the full sensor image
        if unit and reference > 0:
            return f_mm * resolution / unit * width / reference
    f35 = _number(ifd.get(0xA405))
    if f35 and f35 > 0:  # 35 mm equivalent: the same diagonal angle of view as on a 36 x 24 mm frame
        return f35 * math.hypot(width, height) / _FULL_FRAME_DIAGONAL_MM
    return None


def read_exif(path: str | Path) -> ExifInfo:
    """The EXIF GPS position, time and focal length of one image (ImageError if it is unreadable)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            exif = image.getexif()
            size = image.size
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageError(f"cannot read {path}: {exc}") from exc
    gps, ifd = exif.get_ifd(_GPS_IFD), exif.get_ifd(_EXIF_IFD)
    lat = _degrees(gps.get(2), gps.get(1), "S") if 2 in gps else None
    lon = _degrees(gps.get(4), gps.get(3), "W") if 4 in gps else None
    alt = _number(gps.get(6))
    below = gps.get(5) in (1, b"\x01") or _text(gps.get(5)) == "1"  # GPSAltitudeRef 1: below sea level
    if alt is not None and below:
        alt = -alt
    return ExifInfo(lat, lon, alt, _exif_time(exif, ifd), _number(gps.get(0x0F)), _focal_px(ifd, size))


def exif_focal_px(path: str | Path) -> float | None:
    """Focal length in pixels of this image from its EXIF: FocalLength (mm) times
    FocalPlaneXResolution (px per unit, scaled from PixelXDimension to the image's width), else the
    35 mm equivalent focal length (by the diagonal); None without either."""
    return read_exif(path).focal_px


def read_exif_track(folder: str | Path, origin: tuple[float, float, float] | None = None) -> GpsTrack:
    """A GpsTrack from the EXIF of the images (JPEG, TIFF) in ``folder``, in time order.

    t: DateTimeOriginal seconds since the first image; lat, lon, alt: EXIF GPS; track_deg: EXIF
    GPSTrack or NaN; enu: tangent-plane metres at ``origin`` (default: the first image's position);
    csv_en: the same east/north (there is no log of its own). FlightLogError naming the images
    without a GPS position, altitude or time, or if the folder holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"image folder not found: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXIF_SUFFIXES and p.is_file())
    if not paths:
        raise FlightLogError(f"{folder} holds no JPEG or TIFF images to read EXIF from")
    infos = [read_exif(p) for p in paths]
    lacking = [p.name for p, x in zip(paths, infos, strict=True) if None in (x.lat, x.lon, x.alt, x.time)]
    if lacking:
        shown = ", ".join(lacking[:10]) + (", ..." if len(lacking) > 10 else "")
        raise FlightLogError(
            f"{len(lacking)} of {len(paths)} images in {folder} have no EXIF GPS position, altitude "
            f"or DateTimeOriginal: {shown}; give the flight's GPS log with --gps"
        )
    order = sorted(range(len(paths)), key=lambda i: (infos[i].time, paths[i].name))
    paths, infos = [paths[i] for i in order], [infos[i] for i in order]
    lat = np.array([x.lat for x in infos], np.float64)
    lon = np.array([x.lon for x in infos], np.float64)
    alt = np.array([x.alt for x in infos], np.float64)
    time = np.array([x.time for x in infos], np.float64)
    track = np.array([np.nan if x.track_deg is None else x.track_deg for x in infos], np.float64)
    if origin is None:
        origin = (float(lat[0]), float(lon[0]), float(alt[0]))
    frame = GeoReference.north_up((0.0, 0.0), 1.0, geodetic_origin=origin)
    enu = np.array([frame.from_geodetic(a, b, c) for a, b, c in zip(lat, lon, alt, strict=True)])
    return GpsTrack(
        tuple(p.name for p in paths),
        time - time[0],
        lat,
        lon,
        alt,
        track,
        enu[:, :2].copy(),
        enu,
        frame.geodetic_origin,
    )
