"""GeoTIFF and Cloud-Optimised GeoTIFF maps in any projected or geographic CRS.

The map frame stays local ENU metres (east, north) around a geodetic origin: by default the map's centre
on the ellipsoid (altitude 0), or one the caller gives. A pixel's exact place in that frame goes
pixel -> file CRS (the geotransform) -> WGS84 (pyproj) -> ECEF -> ENU; the GeoReference is the best affine
fit of that relation over the whole image, and a map on which the fit misses by more than
``max_residual_px`` pixels anywhere is refused rather than silently distorted. Fixes go back to WGS84
through the ECEF/ENU transform of ``GeoReference.to_geodetic``, so they are exact wherever the fit is.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ImageError
from .georef import GeoReference, _enu_axes

GEOTIFF_SUFFIXES = (".tif", ".tiff", ".vrt")  # a GDAL VRT reads like one GeoTIFF
MAX_RESIDUAL_PX = 0.5
_FIT_SAMPLES = 17  # per image side, corners and edges included


@dataclass(frozen=True, eq=False)
class GeoTiffGeoreference:
    """A GeoTIFF's georeference in the map frame.

    ``transform``: the file's geotransform (2x3, pixel corner convention of GDAL: x = a*col + b*row + c
    at the top-left corner of pixel (col, row)). ``crs``: the file's CRS (WKT). ``fit_residual_m``: the
    largest distance between ``georef`` and the exact pixel -> ENU relation on the image.
    """

    georef: GeoReference
    crs: str
    transform: np.ndarray
    size: tuple[int, int]
    fit_residual_m: float

    def pixel_to_crs(self, pixels: np.ndarray) -> np.ndarray:
        """File-CRS coordinates of pixel centres (column, row; centres at integers)."""
        p = np.asarray(pixels, np.float64).reshape(-1, 2) + 0.5
        return p @ self.transform[:, :2].T + self.transform[:, 2]

    def pixel_to_wgs84(self, pixels: np.ndarray) -> np.ndarray:
        """Exact (lat°, lon°) of pixel centres, through pyproj."""
        lon, lat = _to_wgs84(self.crs).transform(*self.pixel_to_crs(pixels).T)
        return np.column_stack([lat, lon])

    def pixel_to_enu(self, pixels: np.ndarray) -> np.ndarray:
        """Exact map-frame (east, north, up) of pixel centres on the ellipsoid at the origin's altitude."""
        lat_lon = self.pixel_to_wgs84(pixels)
        return wgs84_to_enu(lat_lon, self.georef.geodetic_origin)


def is_geotiff(path: str | Path) -> bool:
    """Whether ``path`` is a TIFF that carries its own CRS and geotransform."""
    path = Path(path)
    if path.suffix.lower() not in GEOTIFF_SUFFIXES or not path.is_file():
        return False
    rasterio = _rasterio()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                return ds.crs is not None and not ds.transform.is_identity
    except rasterio.errors.RasterioIOError:
        return False


def geotiff_georeference(
    path: str | Path,
    geodetic_origin: tuple[float, float, float] | None = None,
    max_residual_px: float = MAX_RESIDUAL_PX,
) -> GeoTiffGeoreference:
    """The pixel -> map-frame georeference of a GeoTIFF (header only, no pixels read)."""
    rasterio = _rasterio()
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None or ds.transform.is_identity:
                raise ConfigError(
                    f"GeoTIFF {path} has no CRS and geotransform (GCP/RPC-only files: warp first)"
                )
            crs, size = ds.crs.to_wkt(), (ds.width, ds.height)
            t = ds.transform
            transform = np.array([[t.a, t.b, t.c], [t.d, t.e, t.f]], np.float64)
    except rasterio.errors.RasterioIOError as exc:
        raise ImageError(f"cannot open GeoTIFF {path}: {exc}") from exc
    return fit_georeference(crs, transform, size, geodetic_origin, max_residual_px, f"GeoTIFF {path}")


def fit_georeference(
    crs: str,
    transform: np.ndarray,
    size: tuple[int, int],
    geodetic_origin: tuple[float, float, float] | None = None,
    max_residual_px: float = MAX_RESIDUAL_PX,
    name: str = "map",
) -> GeoTiffGeoreference:
    """The map-frame georeference of an image of ``size`` px in ``crs`` with the GDAL geotransform
    ``transform`` (2x3): the affine fit of pixel -> CRS -> WGS84 -> ENU, refused beyond
    ``max_residual_px``."""
    w, h = size
    cols, rows = np.meshgrid(
        np.linspace(-0.5, w - 0.5, _FIT_SAMPLES), np.linspace(-0.5, h - 0.5, _FIT_SAMPLES)
    )
    pixels = np.column_stack([cols.ravel(), rows.ravel()])
    exact = GeoTiffGeoreference(GeoReference(np.eye(2, 3)), crs, transform, size, 0.0)
    lat_lon = exact.pixel_to_wgs84(pixels)
    if not np.isfinite(lat_lon).all():
        raise ConfigError(f"{name}: part of the image is outside its CRS's valid area")
    if geodetic_origin is None:
        lat, lon = exact.pixel_to_wgs84(np.array([[(w - 1) / 2.0, (h - 1) / 2.0]]))[0]
        geodetic_origin = (float(lat), float(lon), 0.0)
    enu = wgs84_to_enu(lat_lon, geodetic_origin)[:, :2]
    design = np.column_stack([pixels, np.ones(len(pixels))])
    affine = np.linalg.lstsq(design, enu, rcond=None)[0].T
    residual = float(np.max(np.linalg.norm(design @ affine.T - enu, axis=1)))
    georef = GeoReference(affine, geodetic_origin)
    residual_px = residual / georef.ground_sample_distance
    if residual_px > max_residual_px:
        raise ConfigError(
            f"{name}: its CRS is not affine in local ENU metres over this extent (best fit misses "
            f"by {residual:.2f} m = {residual_px:.2f} px > {max_residual_px} px); "
            "reproject it to a local projected CRS (a UTM zone, say) or cut it smaller"
        )
    return GeoTiffGeoreference(georef, crs, transform, size, residual)


def read_geotiff(
    path: str | Path, max_size: int | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """RGB uint8 image, validity mask (nodata, alpha and internal masks) and the decimation factors
    (original pixels per returned pixel, along columns and rows). With ``max_size`` the longer side is
    at most that many pixels, read from the file's internal overviews where it has them."""
    rasterio = _rasterio()
    from rasterio.enums import ColorInterp, Resampling

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                scale = 1.0
                if max_size is not None and max(ds.width, ds.height) > max_size:
                    scale = max(ds.width, ds.height) / float(max_size)
                shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
                bands = [i + 1 for i, c in enumerate(ds.colorinterp) if c != ColorInterp.alpha]
                if ds.colorinterp[bands[0] - 1] == ColorInterp.palette:
                    raise ImageError(f"GeoTIFF {path} is palette-coloured: expand it to RGB first")
                bands = bands[:3] if len(bands) >= 3 else bands[:1] * 3
                data = ds.read(bands, out_shape=(3, *shape), resampling=Resampling.average)
                valid = ds.dataset_mask(out_shape=shape) > 0
                factors = (ds.width / shape[1], ds.height / shape[0])
    except rasterio.errors.RasterioIOError as exc:
        raise ImageError(f"cannot read GeoTIFF {path}: {exc}") from exc
    image = np.ascontiguousarray(np.moveaxis(data, 0, -1))
    if image.dtype != np.uint8:
        image = _to_uint8(image, valid)
    return image, valid, factors


def wgs84_to_enu(lat_lon: np.ndarray, origin: tuple[float, float, float]) -> np.ndarray:
    """(east, north, up) metres around ``origin`` of WGS84 points at the origin's altitude (pyproj ECEF)."""
    lat_lon = np.asarray(lat_lon, np.float64).reshape(-1, 2)
    to_ecef = _transformer("EPSG:4979", "EPSG:4978")
    alt = np.full(len(lat_lon), origin[2])
    points = np.column_stack(to_ecef.transform(lat_lon[:, 1], lat_lon[:, 0], alt))
    x0 = np.array(to_ecef.transform(origin[1], origin[0], origin[2]))
    return (points - x0) @ _enu_axes(origin[0], origin[1]).T


def scaled_georeference(georef: GeoReference, factors: tuple[float, float]) -> GeoReference:
    """The georeference of the same map read with ``factors`` original pixels per pixel (columns, rows)."""
    # decimated pixel centre c' sits at original pixel (c' + 0.5) * factor - 0.5
    fx, fy = factors
    s = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])
    return GeoReference((georef.matrix @ s)[:2], georef.geodetic_origin)


def _to_uint8(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    values = image[valid] if valid.any() else image.reshape(-1, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN data
        lo, hi = (float(v) for v in np.nanpercentile(values, [0.5, 99.5]))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    hi = max(hi, lo + 1e-9)
    scaled = np.nan_to_num((image.astype(np.float64) - lo) * (255.0 / (hi - lo)), nan=0.0)
    return np.clip(scaled, 0, 255).round().astype(np.uint8)


def _to_wgs84(crs: str):
    return _transformer(crs, "EPSG:4326")


def _transformer(source: str, target: str):
    from pyproj import CRS, Transformer

    return Transformer.from_crs(CRS.from_user_input(source), CRS.from_user_input(target), always_xy=True)


def _rasterio():
    import rasterio
    import rasterio.errors

    return rasterio
