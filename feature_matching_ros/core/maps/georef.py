"""Georeferenced map images: pixel <-> map-frame metres, WGS84, and which pixels hold map data.

A map image's georeference is an affine map from pixel coordinates (column, row; pixel centres at
integers, as in OpenCV and in world files) to the map frame (east, north metres; see ``frames``).
It comes from a world file (``.pgw``/``.jgw``/``.tfw``/``.wld``: six lines A, D, B, E, C, F with
x = A*col + B*row + C, y = D*col + E*row + F) or from a YAML file::

    origin: [x, y]                   # map-frame metres of the top-left pixel's centre
    ground_sample_distance: 0.5      # metres per pixel
    rotation_deg: 0.0                # image column axis, counter-clockwise from east
    geodetic_origin: [lat, lon, alt] # optional: WGS84 position of the map-frame origin
    nodata: [0, 0, 0]                # optional: RGB colour that marks missing map
    world_file: map.pgw              # optional: instead of origin/ground_sample_distance/rotation_deg

A YAML or world file next to the image with the same stem is found automatically.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import yaml

from ..errors import ConfigError, ImageError
from ..image import as_rgb

if TYPE_CHECKING:
    from .terrain import Terrain

WORLD_FILE_SUFFIXES = (".pgw", ".jgw", ".tfw", ".wld", ".pngw", ".jpgw", ".tifw")

# WGS84 ellipsoid.
_A = 6378137.0
_F = 1.0 / 298.257223563
_E2 = _F * (2.0 - _F)


@dataclass(frozen=True, eq=False)
class GeoReference:
    """``affine`` (2x3): [x, y] = affine @ [col, row, 1].

    ``geodetic_origin``: WGS84 (lat°, lon°, alt m) of the map-frame origin, if known.
    """

    affine: np.ndarray
    geodetic_origin: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        a = np.array(self.affine, np.float64).reshape(2, 3)
        if not np.isfinite(a).all():
            raise ConfigError(f"georeference has non-finite coefficients: {a.tolist()}")
        if abs(np.linalg.det(a[:, :2])) < 1e-12:
            raise ConfigError(f"georeference is degenerate (zero pixel area): {a.tolist()}")
        a.setflags(write=False)
        object.__setattr__(self, "affine", a)
        if self.geodetic_origin is not None:
            lat, lon, alt = (float(v) for v in self.geodetic_origin)
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and math.isfinite(alt)):
                raise ConfigError(f"geodetic origin out of range: {self.geodetic_origin}")
            object.__setattr__(self, "geodetic_origin", (lat, lon, alt))

    @staticmethod
    def north_up(
        origin: tuple[float, float],
        ground_sample_distance: float,
        rotation_deg: float = 0.0,
        geodetic_origin: tuple[float, float, float] | None = None,
    ) -> GeoReference:
        """A map whose top-left pixel centre is at ``origin`` and whose columns point
        ``rotation_deg`` counter-clockwise from east (0: a north-up image)."""
        g = float(ground_sample_distance)
        if not (math.isfinite(g) and g > 0.0):
            raise ConfigError(f"ground_sample_distance must be a positive number of metres, got {g}")
        c, s = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
        affine = [[g * c, g * s, origin[0]], [g * s, -g * c, origin[1]]]
        return GeoReference(np.array(affine), geodetic_origin)

    @property
    def matrix(self) -> np.ndarray:
        """3x3 homogeneous pixel -> map matrix."""
        return np.vstack([self.affine, [0.0, 0.0, 1.0]])

    @property
    def ground_sample_distance(self) -> float:
        """Metres per pixel (the square root of a pixel's area)."""
        return math.sqrt(abs(float(np.linalg.det(self.affine[:, :2]))))

    @property
    def column_direction(self) -> float:
        """Angle (radians, counter-clockwise from east) in which image columns increase."""
        return math.atan2(self.affine[1, 0], self.affine[0, 0])

    def pixel_to_map(self, pixels: np.ndarray) -> np.ndarray:
        p = np.asarray(pixels, np.float64).reshape(-1, 2)
        return p @ self.affine[:, :2].T + self.affine[:, 2]

    def map_to_pixel(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, np.float64).reshape(-1, 2)
        return (p - self.affine[:, 2]) @ np.linalg.inv(self.affine[:, :2]).T

    def to_geodetic(self, east: float, north: float, up: float) -> tuple[float, float, float]:
        """WGS84 (lat°, lon°, alt m) of a map-frame point; needs ``geodetic_origin``."""
        lat0, lon0, alt0 = self._origin()
        x0, y0, z0 = _ecef(lat0, lon0, alt0)
        R = _enu_axes(lat0, lon0)
        x, y, z = np.array([x0, y0, z0]) + R.T @ np.array([east, north, up], np.float64)
        return _geodetic(x, y, z)

    def from_geodetic(self, lat: float, lon: float, alt: float) -> tuple[float, float, float]:
        """Map-frame (east, north, up) metres of a WGS84 position; needs ``geodetic_origin``."""
        lat0, lon0, alt0 = self._origin()
        d = np.array(_ecef(lat, lon, alt)) - np.array(_ecef(lat0, lon0, alt0))
        e, n, u = _enu_axes(lat0, lon0) @ d
        return float(e), float(n), float(u)

    def _origin(self) -> tuple[float, float, float]:
        if self.geodetic_origin is None:
            raise ConfigError("the map has no geodetic_origin: WGS84 positions are unavailable")
        return self.geodetic_origin


@dataclass(frozen=True, eq=False)
class GeoMap:
    """A map image (RGB uint8), the mask of pixels holding map data, and its georeference; ``terrain``:
    the ground's elevation model (``terrain.Terrain``; None: the plane z = 0)."""

    image: np.ndarray
    valid: np.ndarray
    georef: GeoReference
    name: str = "map"
    terrain: Terrain | None = dataclasses.field(default=None, kw_only=True)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[0])

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) map-frame corners of the axis-aligned box around the image."""
        w, h = self.size
        corners = self.georef.pixel_to_map(
            np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        )
        return corners.min(axis=0), corners.max(axis=0)


def read_world_file(path: str | Path) -> np.ndarray:
    """The 2x3 affine of a six-line world file."""
    path = Path(path)
    try:
        values = [float(line) for line in path.read_text().split()]
    except OSError as exc:
        raise ConfigError(f"cannot read world file {path}: {exc}") from exc
    except ValueError:
        raise ConfigError(f"world file {path} must hold six numbers, one per line") from None
    if len(values) != 6:
        raise ConfigError(f"world file {path} must hold six numbers, got {len(values)}")
    a, d, b, e, c, f = values
    return np.array([[a, b, c], [d, e, f]])


def read_georeference(path: str | Path) -> tuple[GeoReference, tuple[int, int, int] | None]:
    """A georeference (and the no-data colour, if stated) from a YAML or world file."""
    path = Path(path)
    if path.suffix.lower() in WORLD_FILE_SUFFIXES:
        return GeoReference(read_world_file(path)), None
    raw = _yaml_mapping(path)
    geodetic = _geodetic_origin(raw, path)
    try:
        if "world_file" in raw:
            affine = read_world_file(path.parent / str(raw["world_file"]))
            georef = GeoReference(affine, geodetic)
        else:
            if "origin" not in raw or "ground_sample_distance" not in raw:
                raise ConfigError(
                    f"georeference {path} needs origin and ground_sample_distance (or world_file)"
                )
            origin = raw["origin"]
            if not isinstance(origin, list) or len(origin) != 2:
                raise ConfigError(f"georeference {path}: origin must be [x, y]")
            georef = GeoReference.north_up(
                (float(origin[0]), float(origin[1])),
                float(raw["ground_sample_distance"]),
                float(raw.get("rotation_deg", 0.0)),
                geodetic,
            )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"georeference {path}: {exc}") from None
    return georef, _nodata(raw, path)


def _yaml_mapping(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read georeference {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"georeference {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"georeference {path} must be a YAML mapping")
    known = {
        "origin",
        "ground_sample_distance",
        "rotation_deg",
        "geodetic_origin",
        "nodata",
        "world_file",
        "image",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"georeference {path}: unknown keys {unknown}; known: {sorted(known)}")
    return raw


def _geodetic_origin(raw: dict, path: Path) -> tuple[float, float, float] | None:
    geodetic = raw.get("geodetic_origin")
    if geodetic is not None and (not isinstance(geodetic, list) or len(geodetic) != 3):
        raise ConfigError(f"georeference {path}: geodetic_origin must be [lat, lon, alt]")
    try:
        return tuple(float(v) for v in geodetic) if geodetic else None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"georeference {path}: {exc}") from None


def _nodata(raw: dict, path: Path) -> tuple[int, int, int] | None:
    nodata = raw.get("nodata")
    if nodata is not None and (not isinstance(nodata, list) or len(nodata) != 3):
        raise ConfigError(f"georeference {path}: nodata must be an RGB triple")
    return tuple(int(v) for v in nodata) if nodata is not None else None


def find_georeference(image_path: str | Path) -> Path | None:
    """The YAML or world file beside an image with the same stem, if any."""
    image_path = Path(image_path)
    for suffix in (".yaml", ".yml", *WORLD_FILE_SUFFIXES):
        candidate = image_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def georeference_for(
    image_path: str | Path, georef: str | Path | None = None
) -> tuple[GeoReference, tuple[int, int, int] | None]:
    """The georeference of a map image (``georef`` file, else the one beside the image), without
    reading the image; ConfigError when there is none."""
    source = Path(georef) if georef else find_georeference(image_path)
    if source is not None and not source.is_file():
        raise ConfigError(f"georeference file not found: {source}")
    if Path(image_path).suffix.lower() in (".tif", ".tiff", ".vrt"):
        from .geotiff import geotiff_georeference, is_geotiff

        # a GeoTIFF's own CRS, unless a world file or a YAML with origin/world_file replaces it; a YAML
        # with only geodetic_origin/nodata sets the map frame's origin (default: the map centre, alt 0)
        world_file = source is not None and source.suffix.lower() in WORLD_FILE_SUFFIXES
        raw = {} if source is None or world_file else _yaml_mapping(source)
        own = not world_file and not ({"origin", "ground_sample_distance", "world_file"} & set(raw))
        if own and is_geotiff(image_path):
            geodetic = _geodetic_origin(raw, source) if source else None
            return geotiff_georeference(image_path, geodetic).georef, _nodata(raw, source)
    if source is None:
        raise ConfigError(
            f"map {image_path} has no georeference: put {Path(image_path).stem}.yaml or a world file "
            f"({', '.join(WORLD_FILE_SUFFIXES[:3])}) beside it, or pass one"
        )
    return read_georeference(source)


def load_map(
    image_path: str | Path,
    georef: GeoReference | str | Path | None = None,
    nodata: tuple[int, int, int] | None = None,
    max_size: int | None = None,
    *,
    dem: str | Path | None = None,
    geoid_separation: float = 0.0,
) -> GeoMap:
    """Read a georeferenced map. ``georef``: a GeoReference, a YAML/world file, or None to look
    beside the image (a GeoTIFF carries its own). Alpha 0, a GeoTIFF's nodata and the no-data colour (if
    any) mark pixels without map. ``max_size``: read at most this many pixels along the longer side (a
    GeoTIFF's internal overviews serve that), the georeference scaled to match. A GeoTIFF or VRT of
    ``map_raster.WINDOWED_MIN_PIXELS`` or more read at full size is a ``map_raster.RasterMap``, read
    window by window, its features cached on disk (``map_cache``). ``dem``: an elevation model GeoTIFF
    (heights above the WGS84 ellipsoid, plus ``geoid_separation``; ``terrain.load_dem``) for the ground;
    the map then needs a geodetic origin (a GeoTIFF map has one)."""
    geomap = _load_map(image_path, georef, nodata, max_size)
    return geomap if dem is None else with_terrain(geomap, dem, geoid_separation)


def with_terrain(geomap: GeoMap, dem: str | Path, geoid_separation: float = 0.0) -> GeoMap:
    """``geomap`` with the elevation model ``dem`` sampled over its extent (``terrain.load_dem``)."""
    from .terrain import load_dem

    terrain = load_dem(dem, geomap.georef, geomap.extent(), geoid_separation=geoid_separation)
    return dataclasses.replace(geomap, terrain=terrain)


def _load_map(
    image_path: str | Path,
    georef: GeoReference | str | Path | None,
    nodata: tuple[int, int, int] | None,
    max_size: int | None,
) -> GeoMap:
    image_path = Path(image_path)
    if not image_path.is_file():
        raise ImageError(f"map image not found: {image_path}")
    if image_path.suffix.lower() in (".tif", ".tiff", ".vrt"):
        from .geotiff import read_geotiff
        from .raster import WINDOWED_MIN_PIXELS, open_map, raster_pixels

        if max_size is None and not isinstance(georef, GeoReference):
            if raster_pixels(image_path) >= WINDOWED_MIN_PIXELS:  # a large map: read window by window
                return open_map(image_path, georef, nodata=nodata)
        image, valid, factors = read_geotiff(image_path, max_size)
    else:
        image, valid = _read_image(image_path)
        factors = (1.0, 1.0)
        if max_size is not None and max(image.shape[:2]) > max_size:
            scale = max(image.shape[:2]) / float(max_size)
            size = (max(1, round(image.shape[1] / scale)), max(1, round(image.shape[0] / scale)))
            factors = (image.shape[1] / size[0], image.shape[0] / size[1])
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            valid = cv2.resize(valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    if not isinstance(georef, GeoReference):
        georef, stated = georeference_for(image_path, georef)
        nodata = nodata if nodata is not None else stated
    if factors != (1.0, 1.0):
        from .geotiff import scaled_georeference

        georef = scaled_georeference(georef, factors)
    if nodata is not None:
        valid &= np.any(image != np.array(nodata, np.uint8), axis=2)
    if not valid.any():
        raise ImageError(f"map image {image_path} holds no map data (every pixel is no-data)")
    return GeoMap(image, valid, georef, image_path.stem)


def _read_image(image_path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        raise ImageError(f"cannot decode map image (corrupt or unsupported format): {image_path}")
    valid = np.ones(raw.shape[:2], bool)
    if raw.ndim == 3 and raw.shape[2] == 4:
        valid &= raw[:, :, 3] > 0
        raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGB)
    elif raw.ndim == 3:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    return as_rgb(raw), valid


def _ecef(lat: float, lon: float, alt: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    n = _A / math.sqrt(1.0 - _E2 * math.sin(phi) ** 2)
    return (
        (n + alt) * math.cos(phi) * math.cos(lam),
        (n + alt) * math.cos(phi) * math.sin(lam),
        (n * (1.0 - _E2) + alt) * math.sin(phi),
    )


def _enu_axes(lat: float, lon: float) -> np.ndarray:
    """Rows: east, north, up unit vectors in ECEF at (lat, lon)."""
    phi, lam = math.radians(lat), math.radians(lon)
    sp, cp, sl, cl = math.sin(phi), math.cos(phi), math.sin(lam), math.cos(lam)
    return np.array([[-sl, cl, 0.0], [-sp * cl, -sp * sl, cp], [cp * cl, cp * sl, sp]])


def _geodetic(x: float, y: float, z: float) -> tuple[float, float, float]:
    lon = math.atan2(y, x)
    p = math.hypot(x, y)
    lat = math.atan2(z, p * (1.0 - _E2))
    for _ in range(6):
        n = _A / math.sqrt(1.0 - _E2 * math.sin(lat) ** 2)
        alt = p / math.cos(lat) - n
        lat = math.atan2(z, p * (1.0 - _E2 * n / (n + alt)))
    n = _A / math.sqrt(1.0 - _E2 * math.sin(lat) ** 2)
    alt = p / math.cos(lat) - n
    return math.degrees(lat), math.degrees(lon), alt
