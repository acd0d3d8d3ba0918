"""Large maps read window by window: one GeoTIFF / COG / GDAL VRT, or several GeoTIFF tiles as one map.

A 5 km x 5 km orthophoto at 0.3 m/px is 16700 x 16700 px: 840 MB of RGB and 280 MB of mask at full
resolution. ``open_map`` reads only its header; ``RasterMap.image`` and ``RasterMap.valid`` are views
that read the pixels of a slice (``map.image[y0:y1, x0:x1]``) from the files when asked, through
rasterio windows, so the search, the sub-pixel alignment and the map agreement only ever hold the
part of the map they look at. ``RasterMap`` is a ``GeoMap`` (same ``georef``, ``size``, ``extent``).

Several files are one map when they are GeoTIFFs in one CRS, north-up, with the same pixel size and
on one pixel grid (offsets whole pixels apart): the tiles of an orthophoto export. They are mosaicked
here, read window by window from the files a window touches; a gap between tiles is missing map.
Anything else (other CRSs or resolutions, rotated grids) is refused with the reason: build a GDAL VRT
(``gdalbuildvrt``, or ``gdalwarp`` to one grid) and pass the ``.vrt``, which GDAL reads as one file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ImageError
from .georef import GeoMap, GeoReference, georeference_for

_log = logging.getLogger(__name__)

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt")
# Bytes at each end of a file hashed into its identity (the TIFF header and directory sit at the start).
IDENTITY_BYTES = 64 * 1024
# Longest side of the overview from which a 16-bit or float map's 8-bit stretch is computed.
STRETCH_OVERVIEW = 1024
# ``load_map`` reads a GeoTIFF or VRT of at least this many pixels window by window (8192 x 8192: 200 MB
# of RGB); smaller ones are read whole, as before.
WINDOWED_MIN_PIXELS = 8192 * 8192
# GDAL's block cache defaults to 5 % of the RAM and fills with the decoded blocks of a large map read
# tile by tile (1.2 GB of RSS on a 23 GB machine while the 25 km^2 map was prepared): a windowed map
# lowers it to this, unless GDAL_CACHEMAX is set.
GDAL_CACHE_BYTES = 128 * 2**20


@dataclass(frozen=True)
class RasterFile:
    """One file of a map: its place (``col``, ``row``: top-left pixel) and size in map pixels."""

    path: Path
    col: int
    row: int
    width: int
    height: int

    def identity(self) -> dict[str, Any]:
        """What changes when the file does: resolved path, size, mtime (ns) and a digest of its first
        and last ``IDENTITY_BYTES`` (see ``map_cache``)."""
        stat = self.path.stat()
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            digest.update(handle.read(IDENTITY_BYTES))
            if stat.st_size > 2 * IDENTITY_BYTES:
                handle.seek(-IDENTITY_BYTES, 2)
                digest.update(handle.read(IDENTITY_BYTES))
        return {
            "path": str(self.path.resolve()),
            "bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256_ends": digest.hexdigest(),
        }


class RasterSource:
    """The files of a map, kept open, and windowed reads of their RGB pixels and validity mask."""

    def __init__(self, files: list[RasterFile], size: tuple[int, int], nodata: tuple[int, int, int] | None):
        self.files = files
        self.size = size
        self.nodata = nodata
        self._lock = threading.Lock()  # a rasterio dataset is not safe for concurrent reads
        self._datasets: list[Any] = []
        self._bands: list[list[int]] = []
        limit_gdal_cache()
        try:
            for f in files:
                ds = _open(f.path)
                self._datasets.append(ds)
                self._bands.append(_rgb_bands(ds, f.path))
        except ImageError:
            self.close()
            raise
        dtypes = {ds.dtypes[0] for ds in self._datasets}
        self.dtype = dtypes.pop() if len(dtypes) == 1 else "mixed"
        self.stretch: tuple[float, float] | None = None
        if self.dtype != "uint8":
            self.stretch = self._stretch_limits()

    def close(self) -> None:
        for ds in self._datasets:
            ds.close()
        self._datasets = []

    def read(self, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        """(RGB uint8 [h x w x 3], valid [h x w]) of map pixels [x0, x1) x [y0, y1), clipped to the map."""
        from rasterio.windows import Window

        width, height = self.size
        x0, x1 = min(max(x0, 0), width), min(max(x1, 0), width)
        y0, y1 = min(max(y0, 0), height), min(max(y1, 0), height)
        h, w = max(y1 - y0, 0), max(x1 - x0, 0)
        image = np.zeros((h, w, 3), np.uint8)
        valid = np.zeros((h, w), bool)
        for f, ds, bands in zip(self.files, self._datasets, self._bands, strict=True):
            a0, a1 = max(x0, f.col), min(x1, f.col + f.width)
            b0, b1 = max(y0, f.row), min(y1, f.row + f.height)
            if a1 <= a0 or b1 <= b0:
                continue
            window = Window(a0 - f.col, b0 - f.row, a1 - a0, b1 - b0)
            with self._lock:
                data = ds.read(bands, window=window)
                mask = ds.dataset_mask(window=window) > 0
            image[b0 - y0 : b1 - y0, a0 - x0 : a1 - x0] = self._to_uint8(data)
            valid[b0 - y0 : b1 - y0, a0 - x0 : a1 - x0] = mask
        if self.nodata is not None:
            valid &= np.any(image != np.array(self.nodata, np.uint8), axis=2)
        return image, valid

    def overview(self, max_size: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        """The whole map at most ``max_size`` px along its longer side, from the files' overviews:
        (RGB, valid, original pixels per pixel along columns and rows)."""
        from rasterio.enums import Resampling

        width, height = self.size
        scale = max(width, height) / float(max_size) if max(width, height) > max_size else 1.0
        shape = (max(1, round(height / scale)), max(1, round(width / scale)))
        fx, fy = width / shape[1], height / shape[0]
        image = np.zeros((*shape, 3), np.uint8)
        valid = np.zeros(shape, bool)
        for f, ds, bands in zip(self.files, self._datasets, self._bands, strict=True):
            c0, c1 = round(f.col / fx), round((f.col + f.width) / fx)
            r0, r1 = round(f.row / fy), round((f.row + f.height) / fy)
            if c1 <= c0 or r1 <= r0:
                continue
            with self._lock:
                data = ds.read(bands, out_shape=(3, r1 - r0, c1 - c0), resampling=Resampling.average)
                mask = ds.dataset_mask(out_shape=(r1 - r0, c1 - c0)) > 0
            image[r0:r1, c0:c1] = self._to_uint8(data)
            valid[r0:r1, c0:c1] = mask
        if self.nodata is not None:
            valid &= np.any(image != np.array(self.nodata, np.uint8), axis=2)
        return image, valid, (fx, fy)

    def _to_uint8(self, data: np.ndarray) -> np.ndarray:
        image = np.moveaxis(data, 0, -1)
        if self.stretch is None and image.dtype == np.uint8:
            return image
        lo, hi = self.stretch or (0.0, 255.0)
        scaled = np.nan_to_num((image.astype(np.float32) - lo) * (255.0 / (hi - lo)), nan=0.0)
        return np.clip(scaled, 0, 255).round().astype(np.uint8)

    def _stretch_limits(self) -> tuple[float, float]:
        """0.5-99.5 % of the valid pixels of a 16-bit or float map, from an overview (as ``read_geotiff``
        does over the whole image, which a large map never is read as)."""
        from rasterio.enums import Resampling

        values = []
        for f, ds, bands in zip(self.files, self._datasets, self._bands, strict=True):
            scale = max(f.width, f.height) / float(STRETCH_OVERVIEW)
            shape = (max(1, round(f.height / max(scale, 1.0))), max(1, round(f.width / max(scale, 1.0))))
            data = ds.read(bands, out_shape=(3, *shape), resampling=Resampling.nearest).astype(np.float64)
            mask = ds.dataset_mask(out_shape=shape) > 0
            values.append(np.moveaxis(data, 0, -1)[mask])
        values = np.concatenate(values) if values else np.zeros((0, 3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = (float(v) for v in np.nanpercentile(values, [0.5, 99.5])) if len(values) else (0, 1)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo, hi = 0.0, 1.0
        return lo, max(hi, lo + 1e-9)


class _Pixels:
    """A read-on-slice view of a map's pixels; ``view[y0:y1, x0:x1]`` returns a numpy array."""

    def __init__(self, source: RasterSource, which: int) -> None:
        self._source = source
        self._which = which  # 0: RGB image, 1: validity mask
        width, height = source.size
        self.shape = (height, width, 3) if which == 0 else (height, width)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.uint8) if which == 0 else np.dtype(bool)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        rows = key[0] if len(key) > 0 else slice(None)
        cols = key[1] if len(key) > 1 else slice(None)
        if not (isinstance(rows, slice) and isinstance(cols, slice)):
            raise TypeError("a windowed map is indexed by slices: map.image[y0:y1, x0:x1]")
        y0, y1, sy = rows.indices(self.shape[0])
        x0, x1, sx = cols.indices(self.shape[1])
        if sy != 1 or sx != 1:
            raise TypeError("a windowed map is read with step 1; use RasterMap.overview for a smaller copy")
        part = self._source.read(x0, y0, max(x1, x0), max(y1, y0))[self._which]
        return part[(slice(None), slice(None), *key[2:])] if len(key) > 2 else part

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise ImageError(
            "a windowed map is never read whole: slice it (map.image[y0:y1, x0:x1]) "
            "or read an overview (map.overview(max_size))"
        )


@dataclass(frozen=True, eq=False)
class RasterMap(GeoMap):
    """A ``GeoMap`` whose ``image``/``valid`` are windowed views of ``source``; ``cache_dir``: where its
    map features are cached (``map_cache``; None: not cached)."""

    source: RasterSource | None = None
    crs: str = ""
    cache_dir: Path | None = None
    files: tuple[Path, ...] = field(default=())

    def read(self, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        """(RGB, valid) of map pixels [x0, x1) x [y0, y1)."""
        return self.source.read(x0, y0, x1, y1)

    def overview(self, max_size: int) -> GeoMap:
        """An in-memory ``GeoMap`` of the whole map at most ``max_size`` px along its longer side."""
        from .geotiff import scaled_georeference

        image, valid, factors = self.source.overview(max_size)
        return GeoMap(image, valid, scaled_georeference(self.georef, factors), self.name)

    def coverage(self, max_size: int = 2048) -> float:
        """Fraction of the map's pixels that hold map data (from an overview of ``max_size`` px)."""
        return float(self.source.overview(max_size)[1].mean())

    def identity(self) -> dict[str, Any]:
        """Everything about the map that its features depend on (``map_cache`` keys entries by it)."""
        return {
            "files": [dict(f.identity(), col=f.col, row=f.row) for f in self.source.files],
            "size": list(self.size),
            "nodata": list(self.source.nodata) if self.source.nodata is not None else None,
            "stretch": list(self.source.stretch) if self.source.stretch is not None else None,
        }

    def close(self) -> None:
        self.source.close()


def is_raster_map(path: str | Path) -> bool:
    return Path(path).suffix.lower() in RASTER_SUFFIXES


def raster_pixels(path: str | Path) -> int:
    """Width x height of a GeoTIFF or VRT (header only)."""
    with _open(Path(path)) as ds:
        return int(ds.width) * int(ds.height)


def open_map(
    paths: str | Path | list[str | Path] | tuple[str | Path, ...],
    georef: str | Path | None = None,
    *,
    nodata: tuple[int, int, int] | None = None,
    cache_dir: str | Path | None | bool = True,
) -> RasterMap:
    """A map of one GeoTIFF / COG / VRT or several GeoTIFF tiles, reading only headers.

    ``georef``: a YAML beside (or given) with ``geodetic_origin`` / ``nodata`` (for one file also a
    world file or a YAML georeference, as ``load_map``); ``nodata``: an RGB colour of missing map (else
    the YAML's). ``cache_dir``: the map feature cache (True:
    ``map_cache.default_cache_dir()``; None or False: none).
    """
    from .feature_cache import default_cache_dir

    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not paths:
        raise ConfigError("a map needs at least one file")
    for p in paths:
        if not p.is_file():
            raise ImageError(f"map file not found: {p}")
        if not is_raster_map(p):
            raise ConfigError(f"map file {p}: a windowed map is a GeoTIFF (.tif/.tiff) or a GDAL VRT (.vrt)")
    if len(paths) == 1:
        geo, stated = georeference_for(paths[0], georef)
        with _open(paths[0]) as ds:
            files = [RasterFile(paths[0], 0, 0, ds.width, ds.height)]
            crs = ds.crs.to_wkt() if ds.crs else ""
    else:
        files, geo, stated, crs = _mosaic(paths, georef)
    size = (max(f.col + f.width for f in files), max(f.row + f.height for f in files))
    source = RasterSource(files, size, nodata if nodata is not None else stated)
    if cache_dir is True:
        cache = default_cache_dir()
    else:
        cache = Path(cache_dir).expanduser() if cache_dir else None
    name = paths[0].stem if len(paths) == 1 else f"{paths[0].stem}+{len(paths) - 1}"
    view, mask = _Pixels(source, 0), _Pixels(source, 1)
    return RasterMap(view, mask, geo, name, source, crs, cache, tuple(paths))  # type: ignore[arg-type]


def _mosaic(
    paths: list[Path], georef: str | Path | None
) -> tuple[list[RasterFile], GeoReference, tuple[int, int, int] | None, str]:
    """Tiles on one grid: their places, and the georeference of the whole (fitted like one GeoTIFF)."""
    from .georef import _geodetic_origin, _nodata, _yaml_mapping
    from .geotiff import fit_georeference

    headers = []
    for p in paths:
        with _open(p) as ds:
            if ds.crs is None or ds.transform.is_identity:
                raise ConfigError(f"map tile {p} has no CRS and geotransform")
            headers.append((p, ds.crs, ds.transform, ds.width, ds.height))
    crs0, t0 = headers[0][1], headers[0][2]
    for p, crs, t, _, _ in headers:
        if crs != crs0:
            raise ConfigError(
                f"map tiles {paths[0]} and {p} are in different CRSs: warp them to one (or build a VRT)"
            )
        if abs(t.b) > 0 or abs(t.d) > 0:
            raise ConfigError(f"map tile {p} is not north-up: build a VRT (gdalwarp) of the tiles")
        if not (math.isclose(t.a, t0.a, rel_tol=1e-9) and math.isclose(t.e, t0.e, rel_tol=1e-9)):
            raise ConfigError(
                f"map tiles {paths[0]} and {p} have different pixel sizes ({t0.a:g} x {t0.e:g} against "
                f"{t.a:g} x {t.e:g}): resample them to one grid (or build a VRT)"
            )
    left, top = min(t.c for _, _, t, _, _ in headers), max(t.f for _, _, t, _, _ in headers)
    files = []
    for p, _, t, w, h in headers:
        col, row = (t.c - left) / t0.a, (t.f - top) / t0.e
        if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
            raise ConfigError(f"map tile {p} is off the other tiles' pixel grid by a fraction of a pixel")
        files.append(RasterFile(p, int(round(col)), int(round(row)), w, h))
    size = (max(f.col + f.width for f in files), max(f.row + f.height for f in files))
    transform = np.array([[t0.a, 0.0, left], [0.0, t0.e, top]], np.float64)
    raw = _yaml_mapping(Path(georef)) if georef else {}
    extra = set(raw) - {"geodetic_origin", "nodata"}
    if extra:
        raise ConfigError(
            f"georeference {georef}: a tiled map takes only geodetic_origin and nodata, not {extra}"
        )
    geodetic = _geodetic_origin(raw, Path(georef)) if georef else None
    fitted = fit_georeference(crs0.to_wkt(), transform, size, geodetic, name=str(paths[0].parent))
    return files, fitted.georef, _nodata(raw, Path(georef)) if georef else None, crs0.to_wkt()


def limit_gdal_cache(max_bytes: int = GDAL_CACHE_BYTES) -> int | None:
    """Lower GDAL's block cache to ``max_bytes`` (never raise it; an explicit ``GDAL_CACHEMAX`` is left
    alone); the limit in force, None where GDAL's library cannot be reached."""
    lib = _libgdal()
    if lib is None:
        return None
    current = int(lib.GDALGetCacheMax64())
    if "GDAL_CACHEMAX" not in os.environ and current > max_bytes:
        lib.GDALSetCacheMax64(ctypes.c_int64(max_bytes))
        current = int(lib.GDALGetCacheMax64())
    return current


@lru_cache(maxsize=1)
def _libgdal() -> Any:
    """The GDAL library rasterio uses: its wheel's copy, else the system's."""
    rasterio = _rasterio()
    here = Path(rasterio.__file__).resolve().parent
    candidates = sorted((here.parent / "rasterio.libs").glob("libgdal*.so*"))
    name = str(candidates[0]) if candidates else ctypes.util.find_library("gdal")
    if not name:
        _log.debug("GDAL's library not found: its block cache keeps GDAL's default size")
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.GDALGetCacheMax64.restype = ctypes.c_int64
        lib.GDALSetCacheMax64.argtypes = [ctypes.c_int64]
    except (OSError, AttributeError) as exc:
        _log.debug("GDAL's block cache size cannot be set: %s", exc)
        return None
    return lib


def _rgb_bands(ds: Any, path: Path) -> list[int]:
    from rasterio.enums import ColorInterp

    bands = [i + 1 for i, c in enumerate(ds.colorinterp) if c != ColorInterp.alpha]
    if not bands:
        raise ImageError(f"map file {path} has no colour band")
    if ds.colorinterp[bands[0] - 1] == ColorInterp.palette:
        raise ImageError(f"map file {path} is palette-coloured: expand it to RGB first")
    return bands[:3] if len(bands) >= 3 else bands[:1] * 3


def _open(path: Path) -> Any:
    rasterio = _rasterio()
    try:
        with warnings.catch_warnings():  # a plain TIFF with a world file has no geotransform of its own
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise ImageError(f"cannot open map file {path}: {exc}") from exc


def _rasterio() -> Any:
    import rasterio
    import rasterio.errors

    return rasterio
