"""The navigation map's degradation: geometry it states, errors it hides, changes, determinism."""

import dataclasses
import math

import cv2
import numpy as np
import pytest

from feature_matching_ros.core.maps.georef import GeoMap, GeoReference
from feature_matching_ros.core.simulation.aerial_texture import procedural_map
from feature_matching_ros.core.simulation.map_degrade import (
    PRESETS,
    MapDegradation,
    degrade,
    scaled_georeference,
)

GSD = 0.5


@pytest.fixture(scope="module")
def farmland():
    return procedural_map(512, 512, GSD, seed=7)


def _dots(size: int = 400, spacing: int = 80) -> tuple[GeoMap, np.ndarray]:
    """A grey map with bright dots (radius 4 px) on a grid; their true map positions (metres)."""
    image = np.full((size, size, 3), 60, np.uint8)
    centres = np.array(
        [(x, y) for y in range(spacing, size - 40, spacing) for x in range(spacing, size - 40, spacing)]
    )
    for x, y in centres:
        cv2.circle(image, (int(x), int(y)), 4, (250, 250, 250), -1)
    georef = GeoReference.north_up((100.0, 500.0), GSD)
    return GeoMap(image, np.ones((size, size), bool), georef, "dots"), georef.pixel_to_map(centres)


def _found(geomap: GeoMap, near_m: np.ndarray, radius_m: float = 12.0) -> np.ndarray:
    """Map positions (nominal georeference) of the bright blob nearest each of ``near_m``."""
    grey = geomap.image.mean(axis=2)
    out = []
    for point in near_m:
        c, r = geomap.georef.map_to_pixel(point)[0]
        k = int(math.ceil(radius_m / geomap.georef.ground_sample_distance))
        r0, c0 = max(int(round(r)) - k, 0), max(int(round(c)) - k, 0)
        window = grey[r0 : int(round(r)) + k + 1, c0 : int(round(c)) + k + 1]
        weight = np.clip(window - 150.0, 0, None)
        assert weight.sum() > 0, f"no dot near {point}"
        rows, cols = np.mgrid[: window.shape[0], : window.shape[1]]
        centroid = np.array([(cols * weight).sum(), (rows * weight).sum()]) / weight.sum() + [c0, r0]
        out.append(geomap.georef.pixel_to_map(centroid)[0])
    return np.array(out)


@pytest.mark.parametrize("factor", [2.0, 3.0, 4.0])
def test_gsd_factor_shrinks_the_map_and_scales_its_georeference(farmland, factor):
    degraded = degrade(farmland, MapDegradation(gsd_factor=factor))
    nav = degraded.map
    assert nav.size == (int(512 // factor), int(512 // factor))
    assert nav.georef.ground_sample_distance == pytest.approx(GSD * factor)
    assert nav.georef.column_direction == pytest.approx(farmland.georef.column_direction)
    # same map frame: the new pixel's centre is the centre of the old pixels it covers
    old = farmland.georef.pixel_to_map(np.array([[(factor - 1) / 2, (factor - 1) / 2]]))
    assert np.allclose(nav.georef.pixel_to_map(np.array([[0.0, 0.0]])), old)
    lo, hi = farmland.extent()
    nlo, nhi = nav.extent()
    assert (
        np.all(nlo >= lo - 1e-9) and np.all(nhi <= hi + 1e-9) and np.all(nhi - nlo > (hi - lo) - factor * GSD)
    )
    assert np.abs(degraded.error_m).max() < 1e-3  # no georeference error asked for
    assert nav.georef.geodetic_origin == farmland.georef.geodetic_origin


def test_downsampled_content_lines_up_with_the_scaled_georeference():
    dots, truth = _dots()
    nav = degrade(dots, MapDegradation(gsd_factor=3.0)).map
    assert np.abs(_found(nav, truth) - truth).max() < 0.3  # metres, at 1.5 m/px


def test_offset_and_rotation_move_features_by_the_configured_metres():
    dots, truth = _dots()
    nav = degrade(dots, MapDegradation(offset_m=(3.0, -2.0))).map
    assert np.allclose(_found(nav, truth) - truth, [3.0, -2.0], atol=0.2)
    # a rotation about the map's centre: displacement grows with the distance to it
    rotated = degrade(dots, MapDegradation(rotation_deg=1.0))
    lo, hi = dots.extent()
    centre = (lo + hi) / 2
    theta = math.radians(1.0)
    R = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    expected = centre + (truth - centre) @ R.T
    assert np.allclose(_found(rotated.map, truth), expected, atol=0.2)
    moved = np.linalg.norm(_found(rotated.map, truth) - truth, axis=1)
    assert moved.max() > 1.2 and moved.min() < 0.5  # 1°: ~1.4 m at the corner dots 80 m off centre


def test_warp_is_a_smooth_field_of_the_configured_amplitude_that_moves_features():
    dots, truth = _dots()
    degraded = degrade(dots, MapDegradation(warp_m=3.0, warp_scale_m=60.0, seed=2))
    magnitude = np.linalg.norm(degraded.error_m, axis=2)
    assert magnitude.max() == pytest.approx(3.0, rel=1e-3)
    assert np.median(magnitude) > 0.5
    gradient = np.abs(np.diff(degraded.error_m, axis=1)).max() / GSD  # metres of error per metre
    assert gradient < 3 * 3.0 / 60.0  # smooth: changes by about the amplitude over the control spacing
    found = _found(degraded.map, truth)
    moved = found - truth
    assert np.linalg.norm(moved, axis=1).max() <= 3.0 + 0.3
    assert np.linalg.norm(moved, axis=1).max() > 1.0
    # the recorded error field says where each feature went
    pixels = np.round(degraded.map.georef.map_to_pixel(found)).astype(int)
    recorded = degraded.error_m[pixels[:, 1], pixels[:, 0]]
    assert np.allclose(moved, recorded, atol=0.25)


def test_the_same_seed_gives_the_same_map_and_another_seed_another(farmland):
    config = PRESETS["realistic"]
    a, b = degrade(farmland, config), degrade(farmland, config)
    assert np.array_equal(a.map.image, b.map.image) and np.array_equal(a.error_m, b.error_m)
    assert np.array_equal(a.changed, b.changed)
    c = degrade(farmland, dataclasses.replace(config, seed=1))
    assert not np.array_equal(a.map.image, c.map.image)


def test_valid_mask_follows_the_map_data_and_no_data_stays_black():
    geomap = procedural_map(400, 400, GSD, seed=1)
    valid = np.ones((400, 400), bool)
    valid[:, 300:] = False  # east quarter has no map
    image = geomap.image.copy()
    image[~valid] = 0
    holed = GeoMap(image, valid, geomap.georef, "holed")
    nav = degrade(
        holed, MapDegradation(gsd_factor=2.0, offset_m=(4.0, 0.0), season=0.5, changed_fraction=0.1)
    ).map
    # no-data ends at column 300 of the source (x = 150 m of the map), seen 4 m further east
    edge_x = holed.georef.pixel_to_map(np.array([[299.5, 0.0]]))[0, 0] + 4.0
    x = nav.georef.pixel_to_map(np.column_stack([np.arange(nav.size[0]), np.zeros(nav.size[0])]))[:, 0]
    west_x = holed.extent()[0][0] + 4.0
    assert nav.valid[:, (x > west_x + 2.0) & (x < edge_x - 2.0)].all()
    assert not nav.valid[:, x > edge_x + 2.0].any()
    assert not nav.valid[:, 0].any()  # the offset pulls no-data in from the west edge
    assert (nav.image[~nav.valid] == 0).all()


def test_changed_fraction_is_about_as_configured(farmland):
    for fraction in (0.05, 0.2):
        degraded = degrade(farmland, MapDegradation(changed_fraction=fraction, seed=3))
        measured = degraded.changed[degraded.map.valid].mean()
        assert fraction <= measured < fraction + 0.03
        assert degraded.summary()["changed_fraction"] == pytest.approx(measured)
        # changed pixels really differ from the world, the others do not
        diff = np.abs(degraded.map.image.astype(int) - farmland.image.astype(int)).sum(axis=2)
        assert np.median(diff[degraded.changed]) > 20 and np.median(diff[~degraded.changed]) == 0


def test_season_blur_and_jpeg_change_radiometry_but_not_geometry(farmland):
    degraded = degrade(farmland, MapDegradation(season=1.0, blur_sigma=1.0, jpeg_quality=50, seed=5))
    nav = degraded.map
    assert nav.size == farmland.size and np.abs(degraded.error_m).max() < 1e-3
    difference = np.abs(nav.image.astype(float) - farmland.image.astype(float)).mean()
    assert difference > 10  # visibly another map
    # still the same place: the structure correlates strongly
    a = cv2.GaussianBlur(cv2.cvtColor(farmland.image, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 3)
    b = cv2.GaussianBlur(cv2.cvtColor(nav.image, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 3)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.6


def test_presets_and_validation():
    assert PRESETS["none"].is_identity and not PRESETS["realistic"].is_identity
    realistic = PRESETS["realistic"]
    assert realistic.gsd_factor == 3 and realistic.jpeg_quality == 75 and realistic.blur_sigma == 1.0
    assert math.hypot(*realistic.offset_m) == pytest.approx(3.0)
    assert realistic.warp_m == 2.0 and realistic.changed_fraction == 0.05
    harsh = PRESETS["harsh"]
    assert harsh.gsd_factor == 4 and harsh.warp_m > realistic.warp_m
    assert math.hypot(*harsh.offset_m) > 3.0 and harsh.changed_fraction > realistic.changed_fraction
    for bad in ({"gsd_factor": 0.5}, {"season": 2.0}, {"jpeg_quality": 0}, {"changed_fraction": 1.0}):
        with pytest.raises(ValueError):
            MapDegradation(**bad)
    assert scaled_georeference(GeoReference.north_up((0, 0), 0.5, 30.0), 2.0).ground_sample_distance == 1.0
