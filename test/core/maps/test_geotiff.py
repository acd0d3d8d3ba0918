"""GeoTIFF maps: small files written here with known georeferencing, checked against pyproj
(pixel <-> CRS <-> WGS84 <-> map frame), and the real Seneca mosaic as a UTM GeoTIFF."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ...conftest import require_file, require_module

rasterio = require_module("rasterio")
pyproj = require_module("pyproj")

from rasterio.enums import ColorInterp, Resampling  # noqa: E402
from rasterio.transform import Affine  # noqa: E402

from feature_matching_ros.core.errors import ConfigError  # noqa: E402
from feature_matching_ros.core.maps.georef import GeoReference, georeference_for, load_map  # noqa: E402
from feature_matching_ros.core.maps.geotiff import geotiff_georeference, is_geotiff  # noqa: E402

UTM17N = "EPSG:32617"
LAT, LON = 41.0347, -83.3057  # Seneca, Ohio: UTM zone 17 north
RNG = np.random.default_rng(5)


def write_geotiff(path, image, transform, crs, *, nodata=None, alpha=None, dtype="uint8", **profile):
    bands = image[..., None] if image.ndim == 2 else image
    count = bands.shape[2] + (alpha is not None)
    with rasterio.open(
        path, "w", driver="GTiff", width=image.shape[1], height=image.shape[0], count=count, dtype=dtype,
        crs=crs, transform=transform, nodata=nodata, **profile,
    ) as ds:  # fmt: skip
        for i in range(bands.shape[2]):
            ds.write(bands[:, :, i].astype(dtype), i + 1)
        if alpha is not None:
            ds.write(alpha.astype(dtype), count)
            ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return path


def utm_of(lat, lon):
    return pyproj.Transformer.from_crs("EPSG:4326", UTM17N, always_xy=True).transform(lon, lat)


def texture(h, w):
    return cv2.GaussianBlur(RNG.integers(0, 255, (h, w, 3), dtype=np.uint8), (5, 5), 1.5)


def pyproj_truth(crs, transform, pixels, origin):
    """Independent chain: pixel -> CRS (the geotransform), CRS -> WGS84 and WGS84 -> topocentric ENU
    around ``origin`` (PROJ's cart + topocentric), ground on the ellipsoid at the origin's altitude."""
    xy = np.array([transform @ (c + 0.5, r + 0.5) for c, r in pixels])
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(*xy.T)
    lat0, lon0, h0 = origin
    topo = pyproj.Transformer.from_pipeline(
        "+proj=pipeline +step +proj=cart +ellps=WGS84 "
        f"+step +proj=topocentric +ellps=WGS84 +lat_0={lat0!r} +lon_0={lon0!r} +h_0={h0!r}"
    )
    e, n, u = topo.transform(lon, lat, np.full(len(lat), h0))
    return xy, np.column_stack([lat, lon]), np.column_stack([e, n, u])


def check_round_trips(path, crs, transform, *, map_tol_m):
    info = geotiff_georeference(path)
    g = info.georef
    w, h = info.size
    pixels = np.vstack([[[0, 0], [w - 1, h - 1], [w - 1, 0]], RNG.uniform(0, [w - 1, h - 1], (20, 2))])
    xy, lat_lon, enu = pyproj_truth(crs, transform, pixels, g.geodetic_origin)
    assert np.allclose(info.pixel_to_crs(pixels), xy, rtol=0, atol=1e-9)
    assert np.allclose(info.pixel_to_wgs84(pixels), lat_lon, rtol=0, atol=1e-12)
    assert np.allclose(info.pixel_to_enu(pixels), enu, rtol=0, atol=1e-6)
    # the map frame (the affine) agrees with the exact ENU within the fit residual it reports
    error = np.linalg.norm(g.pixel_to_map(pixels) - enu[:, :2], axis=1)
    assert error.max() <= info.fit_residual_m + 1e-6
    assert info.fit_residual_m < map_tol_m
    assert np.allclose(g.map_to_pixel(g.pixel_to_map(pixels)), pixels, rtol=0, atol=1e-9)
    # map frame -> WGS84 is exact (ECEF around the true origin): 1e-9° is 0.1 mm
    for (e, n, u), (lat, lon) in zip(enu, lat_lon, strict=True):
        lat_out, lon_out, alt_out = g.to_geodetic(e, n, u)
        assert lat_out == pytest.approx(lat, abs=1e-9) and lon_out == pytest.approx(lon, abs=1e-9)
        assert alt_out == pytest.approx(g.geodetic_origin[2], abs=1e-3)
        assert np.allclose(g.from_geodetic(lat, lon, g.geodetic_origin[2]), (e, n, u), atol=1e-3)
    return info


def test_utm_geotiff_round_trips_against_pyproj(tmp_path):
    e0, n0 = utm_of(LAT, LON)
    transform = Affine(0.5, 0.0, e0, 0.0, -0.5, n0)
    path = write_geotiff(tmp_path / "utm.tif", texture(300, 400), transform, UTM17N)
    info = check_round_trips(path, UTM17N, transform, map_tol_m=1e-3)
    g = info.georef
    assert g.ground_sample_distance == pytest.approx(0.5, rel=1e-3)  # UTM scale factor ~0.9997 here
    # UTM grid east is off true east by the meridian convergence: (lon - central meridian) * sin(lat)
    convergence = (LON - (-81.0)) * math.sin(math.radians(LAT))
    assert math.degrees(g.column_direction) == pytest.approx(-convergence, abs=0.01)
    # default origin: the map centre, altitude 0
    lat_c, lon_c = info.pixel_to_wgs84(np.array([[199.5, 149.5]]))[0]
    assert g.geodetic_origin == pytest.approx((lat_c, lon_c, 0.0), abs=1e-12)
    assert np.allclose(g.pixel_to_map([[199.5, 149.5]]), 0.0, atol=1e-3)


def test_geographic_geotiff_round_trips_against_pyproj(tmp_path):
    step = 5e-6  # degrees: about 0.55 m north, 0.42 m east
    transform = Affine(step, 0.0, LON, 0.0, -step, LAT)
    path = write_geotiff(tmp_path / "wgs84.tif", texture(400, 500), transform, "EPSG:4326")
    info = check_round_trips(path, "EPSG:4326", transform, map_tol_m=0.05)
    assert info.fit_residual_m > 1e-3  # a degree of longitude shrinks northwards: not exactly affine


def test_rotated_geotransform_round_trips(tmp_path):
    e0, n0 = utm_of(LAT, LON)
    c, s = math.cos(math.radians(30.0)), math.sin(math.radians(30.0))
    transform = Affine(0.4 * c, 0.4 * s, e0, 0.4 * s, -0.4 * c, n0)  # columns 30° left of grid east
    path = write_geotiff(tmp_path / "rotated.tif", texture(256, 320), transform, UTM17N)
    info = check_round_trips(path, UTM17N, transform, map_tol_m=1e-3)
    assert math.degrees(info.georef.column_direction) == pytest.approx(30.0 + 1.51, abs=0.02)


def test_a_geographic_map_too_large_for_one_affine_is_refused(tmp_path):
    transform = Affine(1e-3, 0.0, LON, 0.0, -1e-3, LAT + 0.3)  # 0.6° x 0.6° at ~100 m per pixel
    path = write_geotiff(tmp_path / "wide.tif", texture(600, 600), transform, "EPSG:4326")
    with pytest.raises(ConfigError, match="not affine in local ENU"):
        geotiff_georeference(path)
    assert geotiff_georeference(path, max_residual_px=50.0).fit_residual_m > 50.0


def test_nodata_alpha_and_sixteen_bit_grey_become_the_valid_mask(tmp_path):
    e0, n0 = utm_of(LAT, LON)
    transform = Affine(1.0, 0.0, e0, 0.0, -1.0, n0)
    rgb = texture(40, 60)
    rgb[rgb == 0] = 1
    rgb[30:] = 0
    geomap = load_map(write_geotiff(tmp_path / "nodata.tif", rgb, transform, UTM17N, nodata=0))
    assert not geomap.valid[30:].any() and geomap.valid[:30].all()
    assert np.array_equal(geomap.image[:30], rgb[:30])

    alpha = np.full((40, 60), 255, np.uint8)
    alpha[:, :10] = 0
    geomap = load_map(write_geotiff(tmp_path / "alpha.tif", texture(40, 60), transform, UTM17N, alpha=alpha))
    assert not geomap.valid[:, :10].any() and geomap.valid[:, 10:].all()

    grey = np.tile(np.linspace(1000, 5000, 60), (40, 1))
    geomap = load_map(write_geotiff(tmp_path / "grey16.tif", grey, transform, UTM17N, dtype="uint16"))
    assert geomap.image.dtype == np.uint8 and geomap.image.shape == (40, 60, 3)
    assert geomap.image[0, 0, 0] < 10 and geomap.image[0, -1, 0] > 245

    heights = np.tile(np.linspace(-3.0, 40.0, 60), (40, 1)).astype(np.float32)
    heights[:5] = np.nan
    path = write_geotiff(tmp_path / "float.tif", heights, transform, UTM17N, dtype="float32", nodata=np.nan)
    geomap = load_map(path)
    assert not geomap.valid[:5].any() and geomap.valid[5:].all()
    assert geomap.image[10, 0, 0] < 10 and geomap.image[10, -1, 0] > 245


def test_max_size_reads_the_internal_overviews_and_scales_the_georeference(tmp_path):
    e0, n0 = utm_of(LAT, LON)
    transform = Affine(0.5, 0.0, e0, 0.0, -0.5, n0)
    board = np.indices((256, 256)).sum(axis=0) % 2 * 255  # one-pixel checkerboard
    path = write_geotiff(
        tmp_path / "cog.tif", np.dstack([board] * 3), transform, UTM17N, tiled=True, blockxsize=128,
        blockysize=128, compress="deflate",
    )  # fmt: skip
    with rasterio.open(path, "r+") as ds:
        ds.build_overviews([2, 4], Resampling.nearest)  # overviews that are all 0 or all 255
    full = load_map(path)
    small = load_map(path, max_size=64)
    assert small.size == (64, 64)
    # averaging the full resolution would give grey 127; the nearest-neighbour overview holds 0 or 255
    assert set(np.unique(small.image)) <= {0, 255}
    # a decimated pixel covers the same ground as the 4x4 original pixels under it
    assert np.allclose(
        small.georef.pixel_to_map([[0, 0], [63, 63]]), full.georef.pixel_to_map([[1.5, 1.5], [253.5, 253.5]])
    )
    assert small.georef.ground_sample_distance == pytest.approx(4 * full.georef.ground_sample_distance)


def test_a_yaml_beside_a_geotiff_sets_the_origin_or_replaces_its_georeference(tmp_path):
    e0, n0 = utm_of(LAT, LON)
    path = write_geotiff(tmp_path / "m.tif", texture(64, 64), Affine(1.0, 0, e0, 0, -1.0, n0), UTM17N)
    assert is_geotiff(path)
    (tmp_path / "m.yaml").write_text(f"geodetic_origin: [{LAT}, {LON}, 220.0]\nnodata: [1, 2, 3]\n")
    g, nodata = georeference_for(path)
    assert g.geodetic_origin == (LAT, LON, 220.0) and nodata == (1, 2, 3)
    _, lat_lon, enu = pyproj_truth(UTM17N, Affine(1.0, 0, e0, 0, -1.0, n0), [[0, 0]], g.geodetic_origin)
    assert np.allclose(g.pixel_to_map([[0, 0]]), enu[:, :2], atol=1e-3)
    (tmp_path / "m.yaml").write_text("origin: [10.0, 20.0]\nground_sample_distance: 2.0\n")
    assert np.allclose(load_map(path).georef.affine, GeoReference.north_up((10.0, 20.0), 2.0).affine)
    (tmp_path / "m.yaml").unlink()
    (tmp_path / "m.tfw").write_text("2\n0\n0\n-2\n10\n20\n")
    assert np.allclose(load_map(path).georef.affine, GeoReference.north_up((10.0, 20.0), 2.0).affine)


def test_a_geotiff_is_a_map_image_the_nodes_accept(tmp_path):
    from feature_matching_ros.ros.params.checks import map_image_problem

    e0, n0 = utm_of(LAT, LON)
    path = write_geotiff(tmp_path / "m.tif", texture(32, 32), Affine(1.0, 0, e0, 0, -1.0, n0), UTM17N)
    assert map_image_problem(str(path)) is None
    assert georeference_for(path)[0].geodetic_origin is not None


def test_a_plain_tiff_still_needs_a_georeference(tmp_path):
    cv2.imwrite(str(tmp_path / "plain.tif"), texture(20, 20))
    assert not is_geotiff(tmp_path / "plain.tif")
    with pytest.raises(ConfigError, match="no georeference"):
        load_map(tmp_path / "plain.tif")
    (tmp_path / "plain.tfw").write_text("1\n0\n0\n-1\n0\n0\n")
    assert load_map(tmp_path / "plain.tif").size == (20, 20)


K = np.array([[557.5, 0.0, 400.0], [0.0, 557.5, 300.0], [0.0, 0.0, 1.0]])
GROUND_M = 220.0


def test_seneca_mosaic_as_a_utm_geotiff_gives_the_same_wgs84_fixes(tmp_path, shared_data):
    """The mosaic written as a UTM 17N GeoTIFF (its georeference from seneca_mosaic.yaml), the map frame
    centred on the map instead of the GPS log's origin: frames fix at the same WGS84 places as on the PNG."""
    from feature_matching_ros.core.evaluation.flight_log import read_gps_csv
    from feature_matching_ros.core.image import load_image
    from feature_matching_ros.core.matching.registry import build
    from feature_matching_ros.core.navigation.localizer import MapLocalizer

    png = load_map(require_file(shared_data / "maps" / "seneca_mosaic.png"))
    w, h = png.size
    cols, rows = np.meshgrid(np.linspace(0, w - 1, 9), np.linspace(0, h - 1, 9))
    pixels = np.column_stack([cols.ravel(), rows.ravel()])
    lat_lon = np.array([png.georef.to_geodetic(e, n, 0.0)[:2] for e, n in png.georef.pixel_to_map(pixels)])
    utm = np.column_stack(utm_of(lat_lon[:, 0], lat_lon[:, 1]))
    design = np.column_stack([pixels + 0.5, np.ones(len(pixels))])  # GDAL: pixel corners at integers
    a = np.linalg.lstsq(design, utm, rcond=None)[0].T
    transform = Affine(*a[0], *a[1])
    tif = write_geotiff(
        tmp_path / "seneca.tif", png.image, transform, UTM17N, tiled=True, compress="deflate",
    )  # fmt: skip
    lat_c, lon_c = (float(v) for v in lat_lon[len(lat_lon) // 2])
    (tmp_path / "seneca.yaml").write_text(f"geodetic_origin: [{lat_c!r}, {lon_c!r}, {GROUND_M}]\n")
    geo = load_map(tif)
    assert np.array_equal(geo.image, png.image) and geo.valid.all()
    assert geo.georef.geodetic_origin == (lat_c, lon_c, GROUND_M)
    # the two georeferences place every pixel at the same WGS84 position (to a millimetre)
    for p in pixels[::7]:
        a_ = png.georef.to_geodetic(*png.georef.pixel_to_map(p)[0], 0.0)
        b_ = geo.georef.to_geodetic(*geo.georef.pixel_to_map(p)[0], 0.0)
        assert np.hypot((a_[0] - b_[0]) * 111_000, (a_[1] - b_[1]) * 84_000) < 1e-3

    flight = shared_data / "flights" / "seneca"
    track = read_gps_csv(require_file(flight / "gps.csv"))
    sift = build("sift", {})
    maps = {"png": png, "tif": geo}
    metres_per_lon = math.cos(math.radians(LAT)) * 111_320
    fixed = 0
    for i in (18, 19, 20):
        image = load_image(require_file(flight / "images" / track.images[i]))
        height = float(track.alt[i] - GROUND_M)
        wgs84 = {}
        for name, geomap in maps.items():  # a localiser of its own per frame: no gate between frames
            fix = MapLocalizer(sift, geomap).localize(image, K, float(track.t[i]), height=height).fix
            if fix.accepted:
                wgs84[name] = geomap.georef.to_geodetic(*fix.pose.position)
        if len(wgs84) < 2:
            continue
        fixed += 1
        (lat_p, lon_p, alt_p), (lat_t, lon_t, alt_t) = wgs84["png"], wgs84["tif"]
        assert math.hypot((lat_p - lat_t) * 111_000, (lon_p - lon_t) * metres_per_lon) < 0.5, f"frame {i}"
        assert alt_p == pytest.approx(alt_t, abs=0.5)
        off_gps = math.hypot((lat_t - track.lat[i]) * 111_000, (lon_t - track.lon[i]) * metres_per_lon)
        assert off_gps < 5.0, f"frame {i}: GeoTIFF fix {off_gps:.1f} m off GPS"
    assert fixed >= 2
