"""The on-disk map feature cache (core/maps/feature_cache.py): hits, misses, invalidation by settings and by a
changed map file, corrupt entries rebuilt, and a localisation from cached features; small GeoTIFFs in
tmp_path, real SIFT."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ...conftest import require_module

rasterio = require_module("rasterio")
require_module("pyproj")

from rasterio.transform import Affine  # noqa: E402

from feature_matching_ros.core.geometry.frames import rotation_from_euler  # noqa: E402
from feature_matching_ros.core.maps import feature_cache as map_cache  # noqa: E402
from feature_matching_ros.core.maps.feature_cache import FeatureCache, default_cache_dir  # noqa: E402
from feature_matching_ros.core.maps.features import MapFeatures, Window  # noqa: E402
from feature_matching_ros.core.maps.georef import load_map  # noqa: E402
from feature_matching_ros.core.maps.raster import open_map  # noqa: E402
from feature_matching_ros.core.matching.registry import build  # noqa: E402
from feature_matching_ros.core.navigation.localizer import MapLocalizer  # noqa: E402
from feature_matching_ros.core.navigation.search import MapSearch  # noqa: E402
from feature_matching_ros.core.navigation.search_types import Prior  # noqa: E402
from feature_matching_ros.core.simulation.aerial_texture import aerial_texture  # noqa: E402
from feature_matching_ros.core.simulation.flight_sim import Appearance, CameraSpec, FlightState, render  # noqa: E402

GSD = 0.5


def write_tif(path: Path, seed: int = 4, size=(640, 480)) -> Path:
    image = aerial_texture(*size, GSD, seed=seed)
    profile = dict(driver="GTiff", width=size[0], height=size[1], count=3, dtype="uint8", crs="EPSG:32633")
    profile.update(transform=Affine(GSD, 0.0, 500000.0, 0.0, -GSD, 5300000.0), tiled=True)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.moveaxis(image, -1, 0))
    return path


@pytest.fixture(scope="module")
def sift():
    return build("sift", {"max_keypoints": 400})


@pytest.fixture
def setup(tmp_path):
    return write_tif(tmp_path / "map.tif"), tmp_path / "cache"


def features(path, cache_dir, pipeline, tile=256, scale=1.0):
    geomap = open_map(path, cache_dir=cache_dir)
    return MapFeatures(
        geomap, pipeline.extract, tile=tile, scale=scale, cache=FeatureCache.for_map(geomap, pipeline)
    )


def everything(f: MapFeatures):
    return f.window(Window(0, 0, *f.size))


def entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_built_once_then_found(setup, sift):
    path, cache_dir = setup
    first = features(path, cache_dir, sift)
    assert first.store is None and first.cache.last_event == "miss"
    reported = []
    first.warm(progress=lambda done, total: reported.append((done, total)))
    assert first.cache.last_event == "built" and reported[-1] == (6, 6) and len(reported) == 6
    assert len(entries(cache_dir)) == 1
    fresh = MapFeatures(load_map(path), sift.extract, tile=256)  # the same map in memory, no cache
    second = features(path, cache_dir, sift)
    assert second.store is not None and second.cache.last_event == "hit"
    a, b = everything(fresh), everything(second)
    assert len(a) > 1000 and second.extracted_tiles == fresh.extracted_tiles
    np.testing.assert_array_equal(a.keypoints.numpy(), b.keypoints.numpy())
    np.testing.assert_array_equal(a.descriptors.numpy(), b.descriptors.numpy())
    np.testing.assert_array_equal(a.scores.numpy(), b.scores.numpy())
    assert b.image_size == a.image_size


def test_settings_and_map_changes_are_misses(setup, sift):
    path, cache_dir = setup
    features(path, cache_dir, sift).warm()
    assert features(path, cache_dir, build("sift", {"max_keypoints": 200})).store is None  # extractor setting
    assert features(path, cache_dir, build("orb", {"max_keypoints": 400})).store is None  # extractor
    assert features(path, cache_dir, sift, tile=128).store is None  # grid
    assert features(path, cache_dir, sift, scale=2.0).store is None  # search grid upsampling
    assert features(path, cache_dir, sift).store is not None
    # a frame size limit larger than a tile crop changes no feature (the nodes' max_image_edge 1024)
    assert features(path, cache_dir, build("sift", {"max_keypoints": 400, "max_image_edge": 1024})).store
    assert (
        features(path, cache_dir, build("sift", {"max_keypoints": 400, "max_image_edge": 256})).store is None
    )
    stat = path.stat()
    write_tif(path, seed=5)  # new content: a new identity (mtime, ends), even with the old mtime
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = features(path, cache_dir, sift)
    assert changed.store is None
    changed.warm()
    assert changed.cache.last_event == "built"
    assert len(entries(cache_dir)) == 1  # the stale entry of the same file and settings is gone
    manifest = json.loads((entries(cache_dir)[0] / "manifest.json").read_text())
    assert manifest["description"]["map"]["files"][0]["path"] == str(path.resolve())


def test_a_feature_code_change_is_a_miss(setup, sift, monkeypatch):
    path, cache_dir = setup
    features(path, cache_dir, sift).warm()
    code = dict(map_cache.code_identity(), feature_code_sha256="0" * 64)
    monkeypatch.setattr(map_cache, "code_identity", lambda: code)
    assert features(path, cache_dir, sift).store is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest", "missing"])
def test_a_corrupt_entry_is_rebuilt_not_used(setup, sift, damage):
    path, cache_dir = setup
    features(path, cache_dir, sift).warm()
    good = everything(features(path, cache_dir, sift))
    entry = entries(cache_dir)[0]
    descriptors = entry / "descriptors.bin"
    if damage == "flip":
        raw = bytearray(descriptors.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        descriptors.write_bytes(bytes(raw))
    elif damage == "truncate":
        descriptors.write_bytes(descriptors.read_bytes()[:-512])
    elif damage == "manifest":
        (entry / "manifest.json").write_text('{"key": "')
    else:
        descriptors.unlink()
    reopened = features(path, cache_dir, sift)
    assert reopened.store is None
    assert reopened.cache.last_event.startswith("rebuilt: ")
    why = {"flip": "CRC-32", "truncate": "bytes", "manifest": "manifest", "missing": "missing"}[damage]
    assert why in reopened.cache.last_event
    reopened.warm()
    assert reopened.store is not None
    np.testing.assert_array_equal(everything(reopened).descriptors.numpy(), good.descriptors.numpy())


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv(map_cache.ENV_MAP_CACHE, str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv(map_cache.ENV_MAP_CACHE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "feature_matching_ros" / "map_features"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG spec says
    assert default_cache_dir() == Path.home() / ".cache" / "feature_matching_ros" / "map_features"


def test_no_cache_for_maps_in_memory_or_when_disabled(setup, sift):
    path, _ = setup
    assert FeatureCache.for_map(load_map(path), sift) is None
    assert FeatureCache.for_map(open_map(path, cache_dir=None), sift) is None


def test_localises_from_cached_features_with_a_bounded_tile_memory(setup, sift, monkeypatch):
    path, cache_dir = setup
    MapLocalizer(sift, open_map(path, cache_dir=cache_dir), tile=256)  # builds the entry
    monkeypatch.setattr("feature_matching_ros.core.maps.features.CACHED_TILES", 2)
    geomap = open_map(path, cache_dir=cache_dir)
    localizer = MapLocalizer(sift, geomap, tile=256)
    assert localizer.features.cache.last_event == "hit"
    camera = CameraSpec(320, 240, 60.0)
    truth = np.array([10.0, -5.0, 60.0])
    state = FlightState(1.0, truth, rotation_from_euler(0.0, 0.0, 0.4))
    frame, seen = render(load_map(path), camera, state, Appearance(), np.random.default_rng(1))
    assert seen == 1.0
    localizer.set_prior(Prior(0.9, truth[:2] + [12.0, 9.0], 15.0))
    result = localizer.localize(frame, camera.K, 1.0, R_map_body=state.R_map_body, height=60.0)
    assert result.fix.accepted, result.fix.reason
    assert np.linalg.norm(result.fix.pose.position[:2] - truth[:2]) < 0.5
    assert len(localizer.features._tiles) <= 2
    search = MapSearch.over(sift, geomap, tile=256)
    assert search.features.store is not None  # a search built anew finds the entry at once


def test_an_unusable_cache_leaves_the_map_working(setup, sift, tmp_path, caplog):
    path, _ = setup
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("")
    f = features(path, blocker / "cache", sift)
    f.warm()
    assert f.store is None and "map feature cache unusable" in caplog.text
    assert len(everything(f)) > 1000  # tiles extracted as the window reaches them
