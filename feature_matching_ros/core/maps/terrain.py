"""Terrain: an elevation model (DEM or DSM) in the map frame, so that the ground is not the plane z = 0.

Heights. A DEM GeoTIFF (any CRS, read with rasterio) holds heights above the WGS84 ellipsoid; an
orthometric DEM (above a geoid: SRTM, Copernicus, most national models) needs the geoid separation N
of the area (``geoid_separation``, metres, added to every value; no geoid model is applied). In the
map frame (local ENU around the map's geodetic origin, ``georef``) the ground's z is the up coordinate
of that ellipsoidal point, through ECEF: a DEM value equal to the origin's altitude is z = 0 at the
origin and d^2/2R below the tangent plane d metres away (the curvature the flat-ground path ignores).
The point's horizontal shift from the tilt of the ellipsoid's normal ((h - alt0) d / R: 4 cm for 50 m
of relief 5 km away) is neglected.

The DEM is resampled once, at load, onto a regular north-up grid in the map frame over the map's extent
(bilinear in the DEM's own pixels, no data wherever any of the four neighbours has none); elevations are
then bilinear in that grid. ``GroundPose.position`` keeps z = height above the ground under the camera,
as everywhere in the package; ``GroundPose.ground_elevation`` is the terrain's map-frame z there.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError, TerrainError
from ..geometry.ground_pose import MIN_POINTS, GroundPose, solve_pose_3d
from .georef import GeoReference, _ecef, _enu_axes

MAX_GRID_SIDE = 2048  # grid nodes per side at most (16 MiB of float32; 2.4 m over 5 km)
GRID_CHUNK_NODES = 1 << 18  # grid nodes transformed at a time while loading
NEWTON_STEPS = 12  # ray / terrain intersection
RESELECT_PX = 3.0  # reprojection error of a point the 3-D pose keeps, px: at most
RESELECT_MIN_PX = 1.0  # ... and at least
RESELECT_ROUNDS = 3


@dataclass(frozen=True, eq=False)
class Terrain:
    """Ground elevation: ``heights`` [rows x cols] map-frame z (m) at the nodes of ``grid`` (grid
    pixel -> map x, y), NaN where the DEM has no data; ``coverage``: the fraction of the map's extent
    with data; ``name``: where it came from."""

    heights: np.ndarray
    grid: GeoReference
    name: str = "dem"
    coverage: float = 1.0

    def __post_init__(self) -> None:
        heights = np.asarray(self.heights, np.float32)
        if heights.ndim != 2 or min(heights.shape) < 2:
            raise ConfigError(f"terrain {self.name}: heights must be a 2-D grid of at least 2 x 2")
        heights.setflags(write=False)
        object.__setattr__(self, "heights", heights)
        grow, gcol = np.gradient(heights.astype(np.float64))  # per grid row / column
        inv = np.linalg.inv(self.grid.affine[:, :2])  # d(col, row) / d(x, y): any rotation or flip
        slope_x = gcol * inv[0, 0] + grow * inv[1, 0]
        slope_y = gcol * inv[0, 1] + grow * inv[1, 1]
        object.__setattr__(self, "_slopes", (slope_x.astype(np.float32), slope_y.astype(np.float32)))

    @property
    def spacing(self) -> float:
        """Grid node spacing, metres."""
        return self.grid.ground_sample_distance

    def elevation(self, points: np.ndarray) -> np.ndarray:
        """Map-frame ground z (m) under map points [N x 2] (x, y); NaN outside the DEM or over no data."""
        cr = self.grid.map_to_pixel(np.asarray(points, np.float64)[..., :2])
        return bilinear(self.heights, cr[:, 0], cr[:, 1])

    def slope(self, points: np.ndarray) -> np.ndarray:
        """[N x 2] dz/dx, dz/dy of the ground under map points (NaN where it has no data)."""
        cr = self.grid.map_to_pixel(np.asarray(points, np.float64)[..., :2])
        sx, sy = self._slopes  # type: ignore[attr-defined]
        return np.column_stack([bilinear(sx, cr[:, 0], cr[:, 1]), bilinear(sy, cr[:, 0], cr[:, 1])])

    def lift(self, points: np.ndarray) -> np.ndarray:
        """Map points [N x 2] on the ground: [N x 3] (z NaN where the DEM has no data)."""
        p = np.asarray(points, np.float64).reshape(-1, 2)
        return np.column_stack([p, self.elevation(p)])

    def reference_height(self) -> float:
        """The median of the grid's heights (a level for flights 'above the terrain')."""
        return float(np.nanmedian(self.heights))

    def intersect(self, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Where rays from ``origin`` (map frame, z above the terrain) along ``directions`` [N x 3] first
        meet the ground, [N x 3]; NaN rows for rays that look up, leave the DEM or cross no data.

        Newton's method on f(t) = z(t) - ground(x(t), y(t)) from the level of the ground under the
        origin; smooth relief converges in a few steps. Occlusion (a ray crossing a ridge before the
        point it converges to) is not modelled."""
        o = np.asarray(origin, np.float64).reshape(3)
        d = np.asarray(directions, np.float64).reshape(-1, 3)
        below = self.elevation(o[None, :2])[0]
        level = below if math.isfinite(below) else self.reference_height()
        down = d[:, 2] < -1e-9
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(down, (o[2] - level) / -d[:, 2], np.nan)
            for _ in range(NEWTON_STEPS):
                p = o + t[:, None] * d
                f = p[:, 2] - self.elevation(p)
                df = d[:, 2] - np.sum(self.slope(p) * d[:, :2], axis=1)
                t = t - f / np.where(df < -1e-9, df, np.nan)
            p = o + t[:, None] * d
            converged = np.abs(p[:, 2] - self.elevation(p)) < 0.01
        p[~(converged & (t > 0))] = np.nan
        return p

    def above_ground(self, pose: GroundPose) -> GroundPose:
        """A pose solved with map-frame z (height above z = 0) as one whose z is the height above the
        terrain under the camera, the covariance carried through the ground's slope there."""
        centre = pose.position[None, :2]
        h = float(self.elevation(centre)[0])
        if not math.isfinite(h):
            x, y = pose.position[:2]
            raise TerrainError(
                f"the DEM {self.name} has no elevation under the camera at map ({x:.1f}, {y:.1f}) m: "
                "its height above ground is unknown"
            )
        gx, gy = self.slope(centre)[0]
        J = np.eye(6)
        J[2, 0], J[2, 1] = -gx, -gy
        covariance = J @ pose.covariance @ J.T
        position = pose.position - np.array([0.0, 0.0, h])
        return GroundPose(position, pose.R_map_camera, covariance, pose.num_points, pose.residual_rms_px, h)


def solve_terrain_pose(
    map_points: np.ndarray,
    image_points: np.ndarray,
    K: np.ndarray,
    terrain: Terrain,
    dist: np.ndarray | None = None,
    *,
    seed: np.ndarray | None = None,
    threshold_px: float = RESELECT_PX,
) -> GroundPose | None:
    """The camera pose from ground points at map (x, y) [N x 2] lifted onto the terrain and their pixels
    [N x 2]: PnP on the 3-D points (``ground_pose.solve_pose_3d``), z then the height above the ground
    under the camera. ``seed`` [N] bool: the points to start from (a homography's inliers); the points
    are then chosen again among all by their reprojection error under the 3-D pose, RESELECT_ROUNDS
    times: within three standard deviations of the chosen points' own error (from their median), at
    least RESELECT_MIN_PX and at most ``threshold_px``. Over relief the homography's loose inlier band
    admits mismatches and misses correct points off its plane. None if no pose fits; TerrainError when the DEM
    has no data under too many points or under the camera."""
    lifted = terrain.lift(map_points)
    pixels = np.asarray(image_points, np.float64).reshape(-1, 2)
    chosen = np.ones(len(lifted), bool) if seed is None else np.asarray(seed, bool).copy()
    known = np.isfinite(lifted[:, 2])
    if (chosen & known).sum() < MIN_POINTS:
        raise TerrainError(
            f"the DEM {terrain.name} has no elevation under {int((chosen & ~known).sum())} of "
            f"{int(chosen.sum())} inliers ({int((chosen & known).sum())} left, {MIN_POINTS} needed)"
        )
    pose = solve_pose_3d(lifted[chosen & known], pixels[chosen & known], K, dist)
    for _ in range(RESELECT_ROUNDS if pose is not None else 0):
        error = np.full(len(lifted), np.inf)
        error[known] = np.linalg.norm(_reproject(lifted[known], pose, K, dist) - pixels[known], axis=1)
        sigma = float(np.median(error[chosen & known])) / 1.1774  # median of a 2-D normal error's length
        chosen = error < float(np.clip(3.0 * sigma, RESELECT_MIN_PX, threshold_px))
        if chosen.sum() < MIN_POINTS:
            break
        better = solve_pose_3d(lifted[chosen], pixels[chosen], K, dist)
        if better is None:
            break
        pose = better
    return None if pose is None else terrain.above_ground(pose)


def _reproject(points: np.ndarray, pose: GroundPose, K: np.ndarray, dist: np.ndarray | None) -> np.ndarray:
    R_cam_map = pose.R_map_camera.T
    rvec = cv2.Rodrigues(R_cam_map)[0]
    tvec = -R_cam_map @ pose.position
    d = None if dist is None or len(dist) == 0 else np.asarray(dist, np.float64)
    return cv2.projectPoints(points, rvec, tvec, np.asarray(K, np.float64), d)[0].reshape(-1, 2)


def bilinear(grid: np.ndarray, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``grid`` at fractional (col, row) pixel centres; NaN outside or where any of
    the four neighbours is NaN."""
    cols = np.asarray(cols, np.float64)
    rows = np.asarray(rows, np.float64)
    h, w = grid.shape
    out = np.full(cols.shape, np.nan)
    with np.errstate(invalid="ignore"):
        inside = (cols >= 0) & (cols <= w - 1) & (rows >= 0) & (rows <= h - 1)
    c, r = cols[inside], rows[inside]
    c0 = np.minimum(np.floor(c).astype(np.int64), w - 2)
    r0 = np.minimum(np.floor(r).astype(np.int64), h - 2)
    fc, fr = c - c0, r - r0

    def at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:  # gathered, then float64 (never the whole grid)
        return grid[rows, cols].astype(np.float64)

    top = at(r0, c0) * (1 - fc) + at(r0, c0 + 1) * fc
    bottom = at(r0 + 1, c0) * (1 - fc) + at(r0 + 1, c0 + 1) * fc
    out[inside] = top * (1 - fr) + bottom * fr
    return out


def enu_to_wgs84(points: np.ndarray, origin: tuple[float, float, float]) -> np.ndarray:
    """WGS84 (lat°, lon°, h m) of map-frame points [N x 3] around the geodetic ``origin`` (pyproj)."""
    p = np.asarray(points, np.float64).reshape(-1, 3)
    ecef = np.array(_ecef(*origin)) + p @ _enu_axes(origin[0], origin[1])
    lon, lat, h = _transformer("EPSG:4978", "EPSG:4979").transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])
    return np.column_stack([lat, lon, h])


def wgs84_up(lat_lon_h: np.ndarray, origin: tuple[float, float, float]) -> np.ndarray:
    """Map-frame z (the ENU up coordinate around ``origin``) of WGS84 points [N x 3] (lat°, lon°, h m)."""
    q = np.asarray(lat_lon_h, np.float64).reshape(-1, 3)
    x, y, z = _transformer("EPSG:4979", "EPSG:4978").transform(q[:, 1], q[:, 0], q[:, 2])
    d = np.column_stack([x, y, z]) - np.array(_ecef(*origin))
    return d @ _enu_axes(origin[0], origin[1])[2]


def load_dem(
    path: str | Path,
    georef: GeoReference,
    extent: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    geoid_separation: float = 0.0,
    spacing: float | None = None,
) -> Terrain:
    """The DEM GeoTIFF ``path`` (first band; ellipsoidal heights, plus ``geoid_separation``) resampled
    onto a map-frame grid over ``extent`` (the map's (min, max) corners) of the map georeferenced by
    ``georef``, at ``spacing`` m (default: the DEM's own resolution there, at most MAX_GRID_SIDE nodes a
    side); without ``extent``, over the whole DEM. TerrainError if the DEM covers none of the map;
    ConfigError if the map has no geodetic origin."""
    path = Path(path)
    if georef.geodetic_origin is None:
        raise ConfigError(
            f"DEM {path}: the map has no geodetic_origin, so its frame cannot be placed on the DEM "
            "(give the map a geodetic_origin, or use a GeoTIFF map)"
        )
    if not path.is_file():
        raise ConfigError(f"DEM not found: {path}")
    if not math.isfinite(geoid_separation):
        raise ConfigError(f"DEM {path}: geoid_separation must be finite, got {geoid_separation}")
    import rasterio
    import rasterio.errors
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    origin = georef.geodetic_origin
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                if ds.crs is None or ds.transform.is_identity:
                    raise ConfigError(f"DEM {path} has no CRS and geotransform")
                lo, hi = (np.asarray(v, np.float64) for v in (extent or _dem_extent(ds, origin)))
                to_dem = _transformer("EPSG:4979", ds.crs.to_wkt())
                inverse = ~ds.transform
                resolution = _dem_spacing(ds, origin, (lo + hi) / 2)  # the DEM's pixel on the ground, m
                if spacing is None:
                    spacing = resolution
                span = hi - lo
                spacing = max(float(spacing), float(np.max(span)) / (MAX_GRID_SIDE - 1))
                cols = int(math.ceil(span[0] / spacing)) + 1
                rows = int(math.ceil(span[1] / spacing)) + 1
                grid = GeoReference(np.array([[spacing, 0.0, lo[0]], [0.0, -spacing, hi[1]]]), origin)

                def dem_pixels(nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                    """(lat, lon, h=0) of map nodes [N x 2] and their fractional DEM pixels."""
                    geo = enu_to_wgs84(np.column_stack([nodes, np.zeros(len(nodes))]), origin)
                    x, y, _ = to_dem.transform(geo[:, 1], geo[:, 0], geo[:, 2])
                    pc, pr = _affine(inverse, np.asarray(x), np.asarray(y))
                    return geo, np.asarray(pc) - 0.5, np.asarray(pr) - 0.5  # pixel centres at integers

                # the DEM window: around the grid's boundary (the transform is smooth), read once
                edge = np.unique(
                    np.concatenate(
                        [
                            np.column_stack([np.arange(cols), np.zeros(cols)]),
                            np.column_stack([np.arange(cols), np.full(cols, rows - 1)]),
                            np.column_stack([np.zeros(rows), np.arange(rows)]),
                            np.column_stack([np.full(rows, cols - 1), np.arange(rows)]),
                        ]
                    ),
                    axis=0,
                )
                _, pc, pr = dem_pixels(grid.pixel_to_map(edge))
                finite = np.isfinite(pc) & np.isfinite(pr)
                if not finite.any():
                    raise TerrainError(f"DEM {path} covers none of the map (outside its CRS's area)")
                c0 = max(int(math.floor(pc[finite].min())) - 2, 0)
                r0 = max(int(math.floor(pr[finite].min())) - 2, 0)
                c1 = min(int(math.ceil(pc[finite].max())) + 3, ds.width)
                r1 = min(int(math.ceil(pr[finite].max())) + 3, ds.height)
                if c1 - c0 < 2 or r1 - r0 < 2:
                    raise TerrainError(_no_cover(path, ds.bounds, ds.crs))
                # a DEM much finer than the grid is read averaged over blocks (from its overviews if any)
                block = max(int(spacing / resolution), 1) if resolution > 0 else 1
                shape = (max((r1 - r0) // block, 2), max((c1 - c0) // block, 2))
                data = ds.read(
                    1,
                    window=Window(c0, r0, c1 - c0, r1 - r0),
                    masked=True,
                    out_dtype="float32",
                    out_shape=shape,
                    resampling=Resampling.average,
                )
                fx, fy = (c1 - c0) / shape[1], (r1 - r0) / shape[0]  # DEM pixels per pixel read
                scale, offset = float(ds.scales[0] or 1.0), float(ds.offsets[0] or 0.0)
    except rasterio.errors.RasterioIOError as exc:
        raise ConfigError(f"cannot read DEM {path}: {exc}") from exc
    values = np.ma.filled(data, np.nan)
    if scale != 1.0 or offset != 0.0:
        values = values * np.float32(scale) + np.float32(offset)
    values[~np.isfinite(values)] = np.nan
    z = np.full((rows, cols), np.nan, np.float32)
    step = max(1, GRID_CHUNK_NODES // cols)  # grid rows at a time: bounded temporaries on large maps
    for top in range(0, rows, step):
        cc, rr = np.meshgrid(
            np.arange(cols, dtype=np.float64), np.arange(top, min(top + step, rows), dtype=np.float64)
        )
        geo, pc, pr = dem_pixels(grid.pixel_to_map(np.column_stack([cc.ravel(), rr.ravel()])))
        h = bilinear(values, (pc - c0 + 0.5) / fx - 0.5, (pr - r0 + 0.5) / fy - 0.5) + geoid_separation
        ok = np.isfinite(h)
        part = np.full(len(h), np.nan)
        part[ok] = wgs84_up(np.column_stack([geo[ok, 0], geo[ok, 1], h[ok]]), origin)
        z[top : top + step] = part.reshape(-1, cols)
    coverage = float(np.isfinite(z).mean())
    if coverage == 0.0:
        raise TerrainError(_no_cover(path, None, None))
    return Terrain(z, grid, path.name, coverage)


def synthetic_relief(
    georef: GeoReference,
    extent: tuple[np.ndarray, np.ndarray],
    amplitude: float = 50.0,
    wavelength: float = 600.0,
    spacing: float = 5.0,
    seed: int = 0,
) -> Terrain:
    """Smooth hills over ``extent`` in the map frame: a sum of random plane waves of about ``wavelength``
    metres, scaled so that the heights span exactly -``amplitude``..+``amplitude`` around z = 0."""
    rng = np.random.default_rng(seed)
    lo, hi = (np.asarray(v, np.float64) for v in extent)
    lo, hi = lo - 4 * spacing, hi + 4 * spacing
    cols = int(math.ceil((hi[0] - lo[0]) / spacing)) + 1
    rows = int(math.ceil((hi[1] - lo[1]) / spacing)) + 1
    grid = GeoReference(np.array([[spacing, 0.0, lo[0]], [0.0, -spacing, hi[1]]]), georef.geodetic_origin)
    xy = _grid_nodes(grid, cols, rows)
    z = np.zeros(len(xy))
    for k in range(5):
        angle = rng.uniform(0, 2 * np.pi)
        length = wavelength * rng.uniform(0.7, 1.6)
        direction = np.array([math.cos(angle), math.sin(angle)])
        z += np.cos(2 * np.pi * (xy @ direction) / length + rng.uniform(0, 2 * np.pi)) / (1 + 0.5 * k)
    z -= 0.5 * (z.max() + z.min())
    z *= amplitude / max(float(np.abs(z).max()), 1e-9)
    return Terrain(z.reshape(rows, cols).astype(np.float32), grid, f"relief-{seed}")


def write_dem(
    terrain: Terrain, path: str | Path, crs: str | None = None, resolution: float | None = None
) -> Path:
    """Write ``terrain`` as a GeoTIFF DEM of ellipsoidal heights (float32, nodata NaN) in ``crs``
    (default: the UTM zone of its geodetic origin) at ``resolution`` CRS units (default: its spacing),
    which ``load_dem`` reads back; needs the terrain grid's geodetic origin."""
    import rasterio
    from rasterio.transform import from_origin

    origin = terrain.grid.geodetic_origin
    if origin is None:
        raise ConfigError("write_dem needs a terrain whose grid has a geodetic origin")
    crs = crs or _utm(origin)
    resolution = resolution or terrain.spacing
    rows, cols = terrain.heights.shape
    corners = terrain.grid.pixel_to_map(
        np.array([[0, 0], [cols - 1, 0], [0, rows - 1], [cols - 1, rows - 1]])
    )
    geo = enu_to_wgs84(np.column_stack([corners, np.zeros(4)]), origin)
    x, y, _ = _transformer("EPSG:4979", crs).transform(geo[:, 1], geo[:, 0], geo[:, 2])
    # the CRS-aligned box inside the terrain grid (corners: top-left, top-right, bottom-left, bottom-right)
    west, east = max(x[0], x[2]), min(x[1], x[3])
    south, north = max(y[2], y[3]), min(y[0], y[1])
    width, height = int((east - west) / resolution), int((north - south) / resolution)
    transform = from_origin(west, north, resolution, resolution)
    cc, rr = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    px, py = _affine(transform, cc.ravel(), rr.ravel())
    lon, lat, _ = _transformer(crs, "EPSG:4979").transform(np.asarray(px), np.asarray(py), np.zeros(px.size))
    e, n, _ = _enu_of(np.column_stack([lat, lon]), origin)
    z = terrain.elevation(np.column_stack([e, n]))
    h = np.full(z.shape, np.nan)
    ok = np.isfinite(z)
    h[ok] = enu_to_wgs84(np.column_stack([e[ok], n[ok], z[ok]]), origin)[:, 2]
    path = Path(path)
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="float32", crs=crs)
    with rasterio.open(path, "w", **profile, transform=transform, nodata=float("nan")) as ds:
        ds.write(h.reshape(height, width).astype(np.float32), 1)
    return path


def _enu_of(lat_lon: np.ndarray, origin: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    ll = np.asarray(lat_lon, np.float64).reshape(-1, 2)
    x, y, z = _transformer("EPSG:4979", "EPSG:4978").transform(
        ll[:, 1], ll[:, 0], np.full(len(ll), origin[2])
    )
    enu = (np.column_stack([x, y, z]) - np.array(_ecef(*origin))) @ _enu_axes(origin[0], origin[1]).T
    return enu[:, 0], enu[:, 1], enu[:, 2]


def _grid_nodes(grid: GeoReference, cols: int, rows: int) -> np.ndarray:
    cc, rr = np.meshgrid(np.arange(cols, dtype=np.float64), np.arange(rows, dtype=np.float64))
    return grid.pixel_to_map(np.column_stack([cc.ravel(), rr.ravel()]))


def _dem_extent(ds: Any, origin: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The map-frame box around a DEM's pixels (its edges sampled)."""
    t = np.linspace(0.0, 1.0, 17)
    edges = np.concatenate(
        [
            np.column_stack([t, 0 * t]),
            np.column_stack([t, 0 * t + 1]),
            np.column_stack([0 * t, t]),
            np.column_stack([0 * t + 1, t]),
        ]
    ) * np.array([ds.width, ds.height])
    x, y = _affine(ds.transform, edges[:, 0], edges[:, 1])
    lon, lat, _ = _transformer(ds.crs.to_wkt(), "EPSG:4979").transform(
        np.asarray(x), np.asarray(y), np.zeros(len(edges))
    )
    e, n, _ = _enu_of(np.column_stack([lat, lon]), origin)
    return np.array([e.min(), n.min()]), np.array([e.max(), n.max()])


def _dem_spacing(ds: Any, origin: tuple[float, float, float], centre: np.ndarray) -> float:
    """The DEM's pixel size on the ground (m) near the map's centre."""
    geo = enu_to_wgs84(np.array([[centre[0], centre[1], 0.0]]), origin)
    x, y, _ = _transformer("EPSG:4979", ds.crs.to_wkt()).transform(geo[:, 1], geo[:, 0], geo[:, 2])
    t = ds.transform
    pts = np.array([[x[0], y[0]], [x[0] + t.a, y[0] + t.d], [x[0] + t.b, y[0] + t.e]])
    lon, lat, _ = _transformer(ds.crs.to_wkt(), "EPSG:4979").transform(pts[:, 0], pts[:, 1], np.zeros(3))
    e, n, _ = _enu_of(np.column_stack([lat, lon]), origin)
    steps = np.hypot(e[1:] - e[0], n[1:] - n[0])
    return float(np.sqrt(steps[0] * steps[1])) if np.all(steps > 0) else 1.0


def _affine(t: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An affine.Affine applied to arrays."""
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


def _utm(origin: tuple[float, float, float]) -> str:
    zone = int((origin[1] + 180.0) // 6) + 1
    return f"EPSG:{32600 + zone if origin[0] >= 0 else 32700 + zone}"


def _no_cover(path: Path, bounds: Any, crs: Any) -> str:
    where = f" (its bounds {tuple(round(b, 1) for b in bounds)} in {crs})" if bounds is not None else ""
    return f"DEM {path} covers none of the map{where}: it must hold elevations under the map's area"


def _transformer(source: str, target: str) -> Any:
    from pyproj import CRS, Transformer

    return Transformer.from_crs(CRS.from_user_input(source), CRS.from_user_input(target), always_xy=True)
