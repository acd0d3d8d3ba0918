"""Map tile features on the search grid: upsampled extraction, coordinates back on the map."""

import math

import numpy as np
import pytest

from feature_matching_ros.core.maps.features import MapFeatures, Window
from feature_matching_ros.core.matching.registry import build
from feature_matching_ros.core.navigation.search_types import Prior
from feature_matching_ros.core.simulation.aerial_texture import procedural_map


@pytest.fixture(scope="module")
def geomap():
    return procedural_map(600, 400, 0.5, seed=3)


def test_the_search_grid_is_the_map_upsampled_and_converts_back(geomap):
    features = MapFeatures(geomap, build("sift", {}).extract, tile=256, scale=2.0)
    assert features.size == (1200, 800)
    np.testing.assert_allclose(features.to_map(features.from_map([[10.0, 20.0]])), [[10.0, 20.0]])
    np.testing.assert_allclose(features.from_map([[0.0, 0.0]]), [[0.5, 0.5]])  # pixel centres align


def test_upsampled_keypoints_land_on_the_same_map_structure(geomap):
    extract = build("sift", {}).extract
    coarse = MapFeatures(geomap, extract, tile=256, scale=1.0).window(Window(0, 0, 600, 400))
    fine_features = MapFeatures(geomap, extract, tile=512, scale=2.0)
    fine = fine_features.window(Window(0, 0, 1200, 800))
    assert len(fine) > len(coarse) > 100
    on_map = fine_features.to_map(fine.keypoints.numpy())
    nearest = np.min(np.linalg.norm(coarse.keypoints.numpy()[:, None] - on_map[None], axis=2), axis=1)
    assert np.mean(nearest < 1.0) > 0.5  # most map-resolution keypoints are found again on the fine grid


def test_upsampling_out_of_range_is_refused(geomap):
    with pytest.raises(ValueError):
        MapFeatures(geomap, build("sift", {}).extract, scale=0.5)


@pytest.mark.parametrize(
    "bad",
    [
        {"position": np.array([math.nan, 0.0])},
        {"position": np.array([0.0, 0.0]), "sigma": math.inf},
        {"position": np.array([0.0, 0.0]), "sigma": -1.0},
        {"position": np.array([0.0, 0.0]), "height": -5.0},
        {"position": np.array([0.0, 0.0]), "R_map_body": np.full((3, 3), math.nan)},
    ],
)
def test_a_position_prior_must_be_finite(bad):
    with pytest.raises(ValueError):
        Prior(0.0, **bad)
