import math

import cv2
import numpy as np
import pytest

from feature_matching_ros.core.errors import ConfigError, ImageError
from feature_matching_ros.core.maps.georef import (
    GeoReference,
    find_georeference,
    georeference_for,
    load_map,
    read_georeference,
)


def test_north_up_pixel_axes_point_east_and_south():
    g = GeoReference.north_up((100.0, 200.0), 0.5)
    assert np.allclose(g.pixel_to_map([[0, 0], [2, 0], [0, 2]]), [[100, 200], [101, 200], [100, 199]])
    assert np.allclose(g.map_to_pixel(g.pixel_to_map([[13.5, 7.25]])), [[13.5, 7.25]])
    assert g.ground_sample_distance == pytest.approx(0.5)
    assert g.column_direction == pytest.approx(0.0)


def test_rotated_georeference():
    g = GeoReference.north_up((0.0, 0.0), 2.0, rotation_deg=90.0)
    assert np.allclose(g.pixel_to_map([[1, 0]]), [[0, 2]])  # columns point north
    assert g.column_direction == pytest.approx(math.pi / 2)


def test_world_file_matches_the_yaml_form(tmp_path):
    (tmp_path / "m.pgw").write_text("0.5\n0.0\n0.0\n-0.5\n350000.25\n4500000.75\n")
    g, nodata = read_georeference(tmp_path / "m.pgw")
    assert nodata is None
    assert np.allclose(
        g.pixel_to_map([[0, 0], [10, 4]]), [[350000.25, 4500000.75], [350005.25, 4500000.75 - 2]]
    )
    (tmp_path / "m.png").write_bytes(b"")
    assert find_georeference(tmp_path / "m.png") == tmp_path / "m.pgw"


def test_yaml_with_geodetic_origin_round_trips_wgs84(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(
        "origin: [-50.0, 40.0]\nground_sample_distance: 0.25\ngeodetic_origin: [41.0, -81.5, 250.0]\n"
    )
    g, _ = read_georeference(path)
    lat, lon, alt = g.to_geodetic(300.0, -400.0, 120.0)
    # 400 m south and 300 m east of 41 N: about 0.0036 deg of latitude, 0.0036 deg of longitude
    assert lat == pytest.approx(41.0 - 400.0 / 111_000, abs=2e-5)
    assert lon == pytest.approx(-81.5 + 300.0 / (111_320 * math.cos(math.radians(41.0))), abs=2e-5)
    assert alt == pytest.approx(370.0, abs=0.05)  # curvature drops 25 cm over 500 m... within 5 cm here
    assert np.allclose(g.from_geodetic(lat, lon, alt), (300.0, -400.0, 120.0), atol=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("origin: [0, 0]\n", "needs origin and ground_sample_distance"),
        ("origin: [0, 0]\nground_sample_distance: -1\n", "positive"),
        ("origin: [0]\nground_sample_distance: 1\n", "origin must be"),
        ("origin: [0, 0]\nground_sample_distance: 1\nresolution: 2\n", "unknown keys"),
        ("- not a mapping\n", "mapping"),
        ("origin: [0, 0]\nground_sample_distance: 1\ngeodetic_origin: [91, 0, 0]\n", "out of range"),
    ],
)
def test_bad_georeference_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_georeference(path)


def test_world_file_with_wrong_count(tmp_path):
    (tmp_path / "m.jgw").write_text("1\n0\n0\n-1\n5\n")
    with pytest.raises(ConfigError, match="six numbers"):
        read_georeference(tmp_path / "m.jgw")


def test_load_map_marks_alpha_and_nodata_as_missing(tmp_path):
    rgba = np.full((40, 60, 4), 200, np.uint8)
    rgba[:, :10, 3] = 0  # transparent strip
    rgba[30:, :, :3] = 0  # black strip: no-data colour
    cv2.imwrite(str(tmp_path / "m.png"), rgba)
    (tmp_path / "m.yaml").write_text("origin: [0, 0]\nground_sample_distance: 1.0\nnodata: [0, 0, 0]\n")
    geomap = load_map(tmp_path / "m.png")
    assert geomap.size == (60, 40)
    assert not geomap.valid[:, :10].any()
    assert not geomap.valid[30:].any()
    assert geomap.valid[:30, 10:].all()
    lo, hi = geomap.extent()
    assert np.allclose(lo, [-0.5, -39.5]) and np.allclose(hi, [59.5, 0.5])


def test_map_without_georeference_or_image_is_a_clear_error(tmp_path):
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((20, 20, 3), np.uint8) + 50)
    with pytest.raises(ConfigError, match="no georeference"):
        load_map(tmp_path / "m.png")
    with pytest.raises(ConfigError, match="not found"):
        georeference_for(tmp_path / "m.png", tmp_path / "missing.yaml")
    with pytest.raises(ImageError, match="not found"):
        load_map(tmp_path / "absent.png", GeoReference.north_up((0, 0), 1.0))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageError, match="cannot decode"):
        load_map(tmp_path / "broken.png", GeoReference.north_up((0, 0), 1.0))


def test_load_map_max_size_shrinks_the_image_and_scales_the_georeference(tmp_path):
    rgba = np.full((100, 200, 4), 200, np.uint8)
    rgba[:, :50, 3] = 0
    cv2.imwrite(str(tmp_path / "m.png"), rgba)
    (tmp_path / "m.yaml").write_text("origin: [0, 0]\nground_sample_distance: 1.0\n")
    full, small = load_map(tmp_path / "m.png"), load_map(tmp_path / "m.png", max_size=50)
    assert small.size == (50, 25)
    assert not small.valid[:, :12].any() and small.valid[:, 13:].all()
    # a shrunk pixel covers the 4x4 original pixels under it
    assert np.allclose(
        small.georef.pixel_to_map([[0, 0], [49, 24]]), full.georef.pixel_to_map([[1.5, 1.5], [197.5, 97.5]])
    )
    assert np.allclose(small.extent(), full.extent())
