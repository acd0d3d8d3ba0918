"""Maps read window by window (core/maps/raster.py): small GeoTIFFs, tiles and a VRT written in tmp_path;
every windowed read is compared with the whole file read at once."""

from __future__ import annotations

import numpy as np
import pytest

from ...conftest import require_module

rasterio = require_module("rasterio")
require_module("pyproj")

from rasterio.enums import ColorInterp  # noqa: E402
from rasterio.transform import Affine  # noqa: E402

from feature_matching_ros.core.errors import ConfigError, ImageError  # noqa: E402
from feature_matching_ros.core.maps import raster as map_raster  # noqa: E402
from feature_matching_ros.core.maps.features import MapFeatures, Window  # noqa: E402
from feature_matching_ros.core.maps.georef import GeoMap, load_map  # noqa: E402
from feature_matching_ros.core.maps.raster import RasterMap, open_map  # noqa: E402
from feature_matching_ros.core.matching.registry import build  # noqa: E402
from feature_matching_ros.core.navigation.correlate import place_anywhere  # noqa: E402
from feature_matching_ros.core.navigation.search import MapSearch  # noqa: E402
from feature_matching_ros.core.simulation.aerial_texture import aerial_texture  # noqa: E402

UTM33N = "EPSG:32633"
GSD = 0.5
X0, Y0 = 500000.0, 5300000.0


def write_tif(path, image, left=X0, top=Y0, *, gsd=GSD, crs=UTM33N, alpha=None, dtype="uint8"):
    count = 3 + (alpha is not None)
    profile = dict(driver="GTiff", width=image.shape[1], height=image.shape[0], count=count, dtype=dtype)
    profile.update(
        crs=crs, transform=Affine(gsd, 0.0, left, 0.0, -gsd, top), tiled=True, blockxsize=128, blockysize=128
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.moveaxis(image, -1, 0).astype(dtype), [1, 2, 3])
        if alpha is not None:
            ds.write(alpha.astype(dtype), 4)
            ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return path


@pytest.fixture(scope="module")
def picture():
    return aerial_texture(600, 440, GSD, seed=3)


@pytest.fixture
def holed(tmp_path, picture):
    """A GeoTIFF with an alpha hole, so that masks and their erosion are exercised."""
    alpha = np.full(picture.shape[:2], 255, np.uint8)
    alpha[150:260, 200:330] = 0
    alpha[:, :20] = 0
    return write_tif(tmp_path / "holed.tif", picture, alpha=alpha)


WINDOWS = [
    (0, 0, 600, 440),
    (37, 11, 301, 203),
    (190, 140, 340, 270),
    (550, 400, 700, 520),
    (-20, -5, 40, 30),
]


def test_windowed_reads_equal_the_whole_file_read(holed):
    whole = load_map(holed)
    assert isinstance(whole.image, np.ndarray)
    windowed = open_map(holed, cache_dir=None)
    assert isinstance(windowed, RasterMap) and isinstance(windowed, GeoMap)
    assert windowed.size == whole.size
    np.testing.assert_allclose(windowed.georef.affine, whole.georef.affine)
    for x0, y0, x1, y1 in WINDOWS:
        rows, cols = slice(max(y0, 0), y1), slice(max(x0, 0), x1)
        np.testing.assert_array_equal(windowed.image[rows, cols], whole.image[rows, cols])
        np.testing.assert_array_equal(windowed.valid[rows, cols], whole.valid[rows, cols])
        image, valid = windowed.read(x0, y0, x1, y1)  # clipped to the map like a numpy slice
        np.testing.assert_array_equal(image, whole.image[rows, cols])
    assert windowed.image[5:9, 7:10, 1].shape == (4, 3)
    np.testing.assert_array_equal(windowed.image[5:9, 7:10, 1], whole.image[5:9, 7:10, 1])
    assert windowed.coverage() == pytest.approx(whole.valid.mean(), abs=0.01)


def test_a_windowed_map_is_never_read_whole_by_accident(holed):
    windowed = open_map(holed, cache_dir=None)
    with pytest.raises(ImageError, match="never read whole"):
        np.asarray(windowed.image)
    with pytest.raises(TypeError, match="step 1"):
        windowed.image[::2, ::2]
    with pytest.raises(TypeError, match="slices"):
        windowed.valid[np.array([1, 2]), 3]
    small = windowed.overview(150)
    assert max(small.size) == 150 and isinstance(small.image, np.ndarray)


def test_load_map_reads_large_geotiffs_window_by_window(holed, monkeypatch):
    assert isinstance(load_map(holed).image, np.ndarray)  # small maps as before
    monkeypatch.setattr(map_raster, "WINDOWED_MIN_PIXELS", 600 * 440)
    large = load_map(holed)
    assert isinstance(large, RasterMap)
    assert isinstance(load_map(holed, max_size=200).image, np.ndarray)  # an overview is read whole


def test_map_features_of_a_windowed_map_equal_the_in_memory_ones(holed):
    pipeline = build("sift", {"max_keypoints": 300})
    whole = MapFeatures(load_map(holed), pipeline.extract, tile=128)
    windowed = MapFeatures(open_map(holed, cache_dir=None), pipeline.extract, tile=128)
    everywhere = Window(0, 0, *whole.size)
    a, b = whole.window(everywhere), windowed.window(everywhere)
    assert len(a) > 500
    assert whole.extracted_tiles == windowed.extracted_tiles
    np.testing.assert_array_equal(a.keypoints.numpy(), b.keypoints.numpy())
    np.testing.assert_array_equal(a.descriptors.numpy(), b.descriptors.numpy())


def test_acquisition_places_a_view_on_a_windowed_map_as_on_the_whole_one(holed, picture):
    whole, windowed = load_map(holed), open_map(holed, cache_dir=None)
    view = np.ascontiguousarray(picture[60:180, 330:490])  # a frame rectified onto the map's grid
    placements = [place_anywhere(view, m.image, m.valid, 16) for m in (whole, windowed)]
    assert all(p is not None for p in placements)
    np.testing.assert_array_equal(placements[0].offset, [330, 60])
    np.testing.assert_array_equal(placements[1].offset, [330, 60])
    assert MapSearch.over(build("sift", {}), windowed)._acquirable(np.eye(3), 100.0)


def split(tmp_path, picture, cut=(256, 200), skip=()):
    """The picture as 2 x 2 GeoTIFF tiles on one grid (``skip``: tiles not written)."""
    cx, cy = cut
    paths = []
    for j, (r0, r1) in enumerate(((0, cy), (cy, picture.shape[0]))):
        for i, (c0, c1) in enumerate(((0, cx), (cx, picture.shape[1]))):
            if (i, j) in skip:
                continue
            path = tmp_path / f"tile_{i}_{j}.tif"
            paths.append(write_tif(path, picture[r0:r1, c0:c1], X0 + c0 * GSD, Y0 - r0 * GSD))
    return paths


def test_tiles_are_one_map(tmp_path, picture):
    single = open_map(write_tif(tmp_path / "whole.tif", picture), cache_dir=None)
    tiled = open_map(split(tmp_path, picture)[::-1], cache_dir=None)  # any order
    assert tiled.size == single.size == (600, 440)
    np.testing.assert_allclose(tiled.georef.affine, single.georef.affine, atol=1e-9)
    assert tiled.georef.geodetic_origin == pytest.approx(single.georef.geodetic_origin)
    for x0, y0, x1, y1 in WINDOWS:  # across the seams
        np.testing.assert_array_equal(tiled.read(x0, y0, x1, y1)[0], single.read(x0, y0, x1, y1)[0])
    assert tiled.valid[0:440, 0:600].all()


def test_a_missing_tile_is_missing_map(tmp_path, picture):
    tiled = open_map(split(tmp_path, picture, skip={(0, 1)}), cache_dir=None)  # bottom-left absent
    assert tiled.size == (600, 440)
    image, valid = tiled.read(0, 0, 600, 440)
    assert not valid[200:, :256].any() and valid[:200].all() and valid[200:, 256:].all()
    assert not image[200:, :256].any()
    assert tiled.coverage() == pytest.approx(1 - 256 * 240 / (600 * 440), abs=0.01)


def test_tiles_off_one_grid_are_refused(tmp_path, picture):
    a = write_tif(tmp_path / "a.tif", picture[:200, :256])
    b = write_tif(tmp_path / "b.tif", picture[:200, 256:], X0 + 256 * GSD + 0.2, Y0)
    with pytest.raises(ConfigError, match="pixel grid"):
        open_map([a, b], cache_dir=None)
    c = write_tif(tmp_path / "c.tif", picture[:200, 256:], X0 + 128.0, Y0, gsd=0.25)
    with pytest.raises(ConfigError, match="pixel sizes"):
        open_map([a, c], cache_dir=None)
    d = write_tif(tmp_path / "d.tif", picture[:200, 256:], X0 + 128.0, Y0, crs="EPSG:32632")
    with pytest.raises(ConfigError, match="different CRSs"):
        open_map([a, d], cache_dir=None)
    png = tmp_path / "x.png"
    png.write_bytes(b"not a GeoTIFF")
    with pytest.raises(ConfigError, match="GeoTIFF"):
        open_map([a, png], cache_dir=None)


def test_a_gdal_vrt_of_tiles_is_one_file(tmp_path, picture):
    tiles = split(tmp_path, picture)
    single = open_map(write_tif(tmp_path / "whole.tif", picture), cache_dir=None)
    with rasterio.open(tiles[0]) as ds:
        wkt = ds.crs.to_wkt()
    sources = []
    for path in tiles:
        with rasterio.open(path) as ds:
            col, row = round((ds.transform.c - X0) / GSD), round((Y0 - ds.transform.f) / GSD)
            sources.append((path.name, col, row, ds.width, ds.height))
    bands = ""
    for band, colour in ((1, "Red"), (2, "Green"), (3, "Blue")):
        simple = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="1">{name}</SourceFilename>'
            f"<SourceBand>{band}</SourceBand><SrcRect xOff='0' yOff='0' xSize='{w}' ySize='{h}'/>"
            f"<DstRect xOff='{c}' yOff='{r}' xSize='{w}' ySize='{h}'/></SimpleSource>"
            for name, c, r, w, h in sources
        )
        bands += (
            f'<VRTRasterBand dataType="Byte" band="{band}"><ColorInterp>{colour}</ColorInterp>'
            f"{simple}</VRTRasterBand>"
        )
    vrt = tmp_path / "mosaic.vrt"
    vrt.write_text(
        f'<VRTDataset rasterXSize="600" rasterYSize="440"><SRS>{wkt}</SRS>'
        f"<GeoTransform>{X0}, {GSD}, 0, {Y0}, 0, {-GSD}</GeoTransform>{bands}</VRTDataset>"
    )
    mosaic = open_map(vrt, cache_dir=None)
    assert mosaic.size == (600, 440)
    np.testing.assert_allclose(mosaic.georef.affine, single.georef.affine, atol=1e-9)
    np.testing.assert_array_equal(mosaic.read(100, 150, 400, 300)[0], single.read(100, 150, 400, 300)[0])
    assert isinstance(load_map(vrt).image, np.ndarray)  # small: read whole, like a GeoTIFF


def test_a_windowed_map_bounds_gdals_block_cache(holed, monkeypatch):
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    open_map(holed, cache_dir=None)
    limit = map_raster.limit_gdal_cache()
    assert limit is not None and limit <= map_raster.GDAL_CACHE_BYTES
