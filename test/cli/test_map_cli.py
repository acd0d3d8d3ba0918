"""``fm-map info|prepare`` on small GeoTIFF tiles written in tmp_path."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ..conftest import require_module

rasterio = require_module("rasterio")
require_module("pyproj")

from rasterio.transform import Affine  # noqa: E402

from feature_matching_ros.cli import map_tool  # noqa: E402
from feature_matching_ros.core.simulation.aerial_texture import aerial_texture  # noqa: E402

GSD = 0.4


@pytest.fixture
def tiles(tmp_path):
    """Three 300 x 200 px tiles of a 600 x 400 px map in UTM 33N; the bottom-right one is absent."""
    picture = aerial_texture(600, 400, GSD, seed=8)
    paths = []
    for col, row in ((0, 0), (300, 0), (0, 200)):
        path = tmp_path / f"tile_{col}_{row}.tif"
        transform = Affine(GSD, 0.0, 400000.0 + col * GSD, 0.0, -GSD, 5000000.0 - row * GSD)
        with rasterio.open(
            path, "w", driver="GTiff", width=300, height=200, count=3, dtype="uint8", crs="EPSG:32633",
            transform=transform,
        ) as ds:  # fmt: skip
            ds.write(np.moveaxis(picture[row : row + 200, col : col + 300], -1, 0))
        paths.append(str(path))
    return paths


def test_info_prints_extent_gsd_crs_size_and_coverage(tiles, capsys):
    assert map_tool.main(["info", *tiles]) == 0
    out = capsys.readouterr().out
    assert "(3 files)" in out
    assert "size:       600 x 400 px" in out
    # on the ground (the map frame), UTM's scale factor 300 km off the central meridian is 1.0002
    assert "GSD:        0.4001 m/px on the ground (pixel 0.4 x 0.4 metre in the CRS)" in out
    assert "WGS 84 / UTM zone 33N (EPSG:32633)" in out
    extent = re.search(r"extent: +east (\S+) \.\. (\S+) m, north (\S+) \.\. (\S+) m", out)
    east0, east1, north0, north1 = (float(v) for v in extent.groups())
    # the box in the map frame (true north) around a grid turned by the meridian convergence (1.1 deg)
    assert 240.0 < east1 - east0 < 243.5 and 160.0 < north1 - north0 < 165.0
    assert "bounds:     x 400000.000 .. 400240.000, y 4999840.000 .. 5000000.000 metre in the CRS" in out
    assert "coverage:   75.0 %" in out
    assert map_tool.main(["info", "--json", *tiles]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["size_px"] == [600, 400] and record["epsg"] == 32633
    assert record["area_km2"] == pytest.approx(0.0384, rel=1e-3)
    lat, lon = record["corners_wgs84"][0]
    assert 45.0 < lat < 45.2 and 13.7 < lon < 13.8  # UTM 33N, 400 km east, 5000 km north


def test_prepare_builds_the_cache_once(tiles, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["prepare", *tiles, "--matcher", "sift", "--max-keypoints", "300", "--cache-dir", str(cache)]
    assert map_tool.main([*args, "--tile", "256"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("built: ") and "6 tiles" in captured.out
    assert "fm-map prepare" in captured.err  # the progress bar
    assert map_tool.main([*args, "--tile", "256"]) == 0
    assert capsys.readouterr().out.startswith("found: ")
    assert map_tool.main([*args, "--tile", "128"]) == 0  # other settings: another entry
    assert capsys.readouterr().out.startswith("built: ")
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


def test_bad_maps_exit_1(tmp_path, capsys):
    missing = tmp_path / "absent.tif"
    assert map_tool.main(["info", str(missing)]) == 1
    assert "not found" in capsys.readouterr().err
