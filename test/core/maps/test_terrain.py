"""Terrain: DEM sampling into the map frame, 3-D PnP, fixes over relief, and a DEM that falls short."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

from feature_matching_ros.core.errors import ConfigError, TerrainError
from feature_matching_ros.core.geometry.frames import camera_rotation, rotation_from_euler
from feature_matching_ros.core.geometry.ground_pose import solve_pose_3d
from feature_matching_ros.core.maps.georef import GeoMap, GeoReference, load_map
from feature_matching_ros.core.maps.terrain import Terrain, load_dem, synthetic_relief, write_dem
from feature_matching_ros.core.matching.registry import build
from feature_matching_ros.core.navigation.fix import estimate_fix
from feature_matching_ros.core.navigation.localizer import MapLocalizer
from feature_matching_ros.core.navigation.search_types import Prior
from feature_matching_ros.core.simulation.aerial_texture import procedural_map
from feature_matching_ros.core.simulation.flight_sim import (
    APPEARANCES,
    CameraSpec,
    FlightState,
    over_terrain,
    render,
)

ORIGIN = (47.0, 8.0, 500.0)


def _topocentric(origin: tuple[float, float, float]) -> Transformer:
    """PROJ's own geodetic -> ENU chain (cart + topocentric): the reference for the DEM sampling."""
    lat, lon, h = origin
    return Transformer.from_pipeline(
        "+proj=pipeline +step +proj=axisswap +order=2,1 +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        "+step +proj=cart +ellps=WGS84 "
        f"+step +proj=topocentric +ellps=WGS84 +lat_0={lat} +lon_0={lon} +h_0={h}"
    )


def _geographic_dem(path, function, west=7.99, north=47.01, size=(300, 300), step=7e-5):
    """A DEM in EPSG:4326 (not the map's CRS) whose value at each pixel centre is function(lat, lon)."""
    transform = from_origin(west, north, step, step)
    cols, rows = np.meshgrid(np.arange(size[0]) + 0.5, np.arange(size[1]) + 0.5)
    lon = transform.c + transform.a * cols
    lat = transform.f + transform.e * rows
    values = function(np.asarray(lat), np.asarray(lon)).astype(np.float32)
    profile = dict(driver="GTiff", width=size[0], height=size[1], count=1, dtype="float32", crs="EPSG:4326")
    with rasterio.open(path, "w", **profile, transform=transform, nodata=-9999.0) as ds:
        ds.write(values, 1)
    return path


def _map_georef() -> GeoReference:
    return GeoReference.north_up((-300.0, 300.0), 0.5, geodetic_origin=ORIGIN)


def test_dem_in_another_crs_samples_an_analytic_surface_like_proj(tmp_path):
    # heights linear in latitude and longitude: bilinear sampling reproduces them exactly in the DEM's pixels
    def surface(lat, lon):
        return 520.0 + 9000.0 * (lat - 47.0) - 4000.0 * (lon - 8.0)

    dem = _geographic_dem(tmp_path / "dem.tif", surface)
    georef = _map_georef()
    extent = (np.array([-300.0, -300.0]), np.array([300.0, 300.0]))
    terrain = load_dem(dem, georef, extent)
    assert terrain.coverage == 1.0
    rng = np.random.default_rng(0)
    points = rng.uniform(-290, 290, (200, 2))
    # PROJ: the map point's latitude/longitude, the surface there, and that ground point's ENU up
    enu = _topocentric(ORIGIN)
    lat, lon, _ = enu.transform(points[:, 0], points[:, 1], np.zeros(len(points)), direction="INVERSE")
    e, n, up = enu.transform(lat, lon, surface(np.asarray(lat), np.asarray(lon)))
    assert np.allclose(e, points[:, 0], atol=0.05) and np.allclose(n, points[:, 1], atol=0.05)
    # the up of the ground at (e, n), not at the map point: the normal's tilt moves it by < 5 cm here
    assert np.max(np.abs(terrain.elevation(points) - up)) < 0.01
    # on a grid 3x coarser than the DEM, read averaged over blocks: a linear surface stays exact
    coarse = load_dem(dem, georef, extent, spacing=20.0)
    assert coarse.spacing == pytest.approx(20.0) and np.max(np.abs(coarse.elevation(points) - up)) < 0.02
    # rasterio's own reading of the DEM at a pixel centre against the terrain at that place
    with rasterio.open(dem) as ds:
        col, row = 150, 120
        lon_c = ds.transform.c + ds.transform.a * (col + 0.5)
        lat_c = ds.transform.f + ds.transform.e * (row + 0.5)
        value = float(ds.read(1)[row, col])
    point = np.array(enu.transform(lat_c, lon_c, value)[:2])
    assert abs(terrain.elevation(point[None])[0] - enu.transform(lat_c, lon_c, value)[2]) < 0.01


def test_geoid_separation_lifts_every_height(tmp_path):
    dem = _geographic_dem(tmp_path / "dem.tif", lambda lat, lon: 0 * lat + 480.0)
    extent = (np.array([-100.0, -100.0]), np.array([100.0, 100.0]))
    plain = load_dem(dem, _map_georef(), extent)
    lifted = load_dem(dem, _map_georef(), extent, geoid_separation=47.5)
    assert np.nanmax(np.abs(lifted.heights - plain.heights - 47.5)) < 1e-3
    assert (
        abs(plain.elevation(np.zeros((1, 2)))[0] - (480.0 - 500.0)) < 1e-3
    )  # the origin's own altitude is z 0


def test_synthetic_relief_round_trips_through_a_utm_geotiff(tmp_path):
    georef = _map_georef()
    extent = (np.array([-300.0, -300.0]), np.array([300.0, 300.0]))
    relief = synthetic_relief(georef, extent, 50.0, 400.0, spacing=5.0, seed=3)
    assert np.nanmin(relief.heights) == pytest.approx(-50.0) and np.nanmax(relief.heights) == pytest.approx(
        50.0
    )
    path = write_dem(relief, tmp_path / "dem.tif")
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 32632  # the UTM zone of 8° E
    back = load_dem(path, georef, extent)
    points = np.random.default_rng(1).uniform(-290, 290, (500, 2))
    # two bilinear resamplings of 5 m grids of hills 400 m apart
    assert np.max(np.abs(back.elevation(points) - relief.elevation(points))) < 0.1


def test_a_dem_that_misses_the_map_is_a_clear_error(tmp_path):
    far = _geographic_dem(tmp_path / "far.tif", lambda lat, lon: 0 * lat + 500.0, west=9.5, north=46.0)
    with pytest.raises(TerrainError, match="covers none of the map"):
        load_dem(far, _map_georef(), (np.array([-300.0, -300.0]), np.array([300.0, 300.0])))
    flat = GeoReference.north_up((-300.0, 300.0), 0.5)  # no geodetic origin: nothing places the map on it
    with pytest.raises(ConfigError, match="geodetic_origin"):
        load_dem(far, flat, (np.array([-300.0, -300.0]), np.array([300.0, 300.0])))
    with pytest.raises(ConfigError, match="DEM not found"):
        load_dem(tmp_path / "none.tif", _map_georef(), None)


def _surface_terrain(hole: bool = False) -> Terrain:
    """A tilted, curved analytic ground on a 2 m grid; optionally no data in a 60 m square at the origin."""
    xs = np.arange(-300.0, 300.0 + 1, 2.0)
    x, y = np.meshgrid(xs, xs[::-1])
    z = 0.15 * x - 0.1 * y + 30.0 * np.sin(x / 70.0) * np.cos(y / 90.0)
    if hole:
        z[(np.abs(x) < 30) & (np.abs(y) < 30)] = np.nan
    return Terrain(z, GeoReference.north_up((-300.0, 300.0), 2.0, geodetic_origin=ORIGIN), "surface")


def _camera_pose():
    R_map_camera = camera_rotation(rotation_from_euler(math.radians(4), math.radians(-3), math.radians(30)))
    return R_map_camera, np.array([12.0, -8.0, 160.0])


def _project(points: np.ndarray, K: np.ndarray, R_map_camera: np.ndarray, C: np.ndarray) -> np.ndarray:
    camera = (points - C) @ R_map_camera
    return (camera[:, :2] / camera[:, 2:]) * K[[0, 1], [0, 1]] + K[:2, 2]


def test_pnp_on_3d_points_recovers_the_pose_with_a_consistent_covariance():
    terrain = _surface_terrain()
    K = CameraSpec().K
    R, C = _camera_pose()
    rng = np.random.default_rng(2)
    ground = terrain.lift(rng.uniform(-60, 60, (150, 2)) + C[:2])
    pixels = _project(ground, K, R, C)
    exact = solve_pose_3d(ground, pixels, K)
    assert np.allclose(exact.position, C, atol=1e-4) and np.allclose(exact.R_map_camera, R, atol=1e-6)
    nees, sigma = [], 1.0
    for _ in range(150):
        pose = solve_pose_3d(ground, pixels + rng.normal(0, sigma, pixels.shape), K)
        error = pose.position - C
        nees.append(float(error @ np.linalg.solve(pose.covariance[:3, :3], error)))
    # 3 degrees of freedom: the mean of the normalised squared error is 3 if the covariance is right
    assert 2.2 < np.mean(nees) < 4.0
    # as a height above the terrain: z less the ground under the camera, covariance through its slope
    above = terrain.above_ground(exact)
    below = terrain.elevation(C[None, :2])[0]
    assert above.height == pytest.approx(C[2] - below, abs=1e-4)
    assert np.allclose(above.map_position, C, atol=1e-4) and above.ground_elevation == pytest.approx(below)


def test_nodata_under_the_camera_rejects_the_fix_with_the_reason():
    terrain = _surface_terrain(hole=True)
    georef = GeoReference.north_up((-300.0, 300.0), 0.5, geodetic_origin=ORIGIN)
    K = CameraSpec().K
    R, C = _camera_pose()
    C = np.array([0.0, 0.0, 160.0])
    rng = np.random.default_rng(4)
    xy = rng.uniform(-70, 70, (400, 2))
    xy = xy[np.max(np.abs(xy), axis=1) > 35]  # ground points around the hole, the camera over it
    pixels = _project(terrain.lift(xy), K, R, C)
    fix = estimate_fix(georef.map_to_pixel(xy), pixels, georef, K, 0.0, terrain=terrain)
    assert not fix.accepted and fix.failed == "terrain" and fix.pose is None
    assert "no elevation under the camera" in fix.reason
    few = estimate_fix(georef.map_to_pixel(xy[:8] * 0.1), pixels[:8], georef, K, 0.0, terrain=terrain)
    assert few.failed in ("terrain", "") and not few.accepted


@pytest.fixture(scope="module")
def relief_world():
    base = procedural_map(1024, 1024, 0.5, 5)
    georef = GeoReference(base.georef.affine, ORIGIN)
    flat = GeoMap(base.image, base.valid, georef, base.name)
    relief = synthetic_relief(georef, flat.extent(), 50.0, 500.0, seed=5)
    return flat, dataclasses.replace(flat, terrain=relief)


def test_a_flight_over_relief_fixes_with_the_dem_and_is_metres_off_without(relief_world, tmp_path):
    flat, hilly = relief_world
    camera = CameraSpec()
    heading = rotation_from_euler(math.radians(3), math.radians(-2), math.radians(60))
    level = [
        FlightState(float(i), np.array([-60.0 + 30 * i, 20.0 - 15 * i, 120.0]), heading) for i in range(3)
    ]
    states = over_terrain(level, hilly.terrain)
    path = write_dem(hilly.terrain, tmp_path / "dem.tif")
    with_dem = dataclasses.replace(flat, terrain=load_dem(path, flat.georef, flat.extent()))
    pipeline = build("sift")
    errors = {}
    for name, nav_map in (("dem", with_dem), ("flat", flat)):
        localizer = MapLocalizer(pipeline, nav_map)
        rng = np.random.default_rng(0)
        errors[name] = []
        for state in states:
            frame, _ = render(hilly, camera, state, APPEARANCES["moderate"], rng)
            localizer.set_prior(Prior(state.t, state.position[:2] + 8.0, 15.0))
            fix = localizer.localize(frame, camera.K, state.t, R_map_body=state.R_map_body).fix
            assert fix.pose is not None, fix.reason
            if name == "dem":
                assert fix.accepted, fix.reason
                assert abs(fix.pose.height - state.position[2]) < 0.3
            errors[name].append(float(np.linalg.norm(fix.pose.position[:2] - state.position[:2])))
    # measured: with the DEM 0.03-0.07 m; as flat ground 9.3-19.7 m off (the local slope taken for level
    # ground), and every one of those fixes passed the checks
    assert max(errors["dem"]) < 0.3
    assert min(errors["flat"]) > 3.0


def test_load_map_takes_a_dem(tmp_path):
    base = procedural_map(256, 256, 0.5, 1)
    georef = GeoReference(base.georef.affine, ORIGIN)
    from feature_matching_ros.core.simulation.aerial_texture import save_map

    save_map(GeoMap(base.image, base.valid, georef), tmp_path / "map.png")
    relief = synthetic_relief(georef, base.extent(), 20.0, 300.0, seed=0)
    write_dem(relief, tmp_path / "dem.tif")
    geomap = load_map(tmp_path / "map.png", dem=tmp_path / "dem.tif")
    assert geomap.terrain is not None and geomap.terrain.coverage == 1.0
    assert load_map(tmp_path / "map.png").terrain is None
