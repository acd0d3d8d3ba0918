"""Map localisation on a short simulated flight (real SIFT and XFeat, procedural map), and the
first frame of the real Seneca flight searched over the whole mosaic."""

import numpy as np
import pytest

from feature_matching_ros.core.evaluation.flight_log import read_gps_csv
from feature_matching_ros.core.image import load_image
from feature_matching_ros.core.maps.georef import load_map
from feature_matching_ros.core.matching.registry import build
from feature_matching_ros.core.navigation.fix import FixGate, Prediction
from feature_matching_ros.core.navigation.localizer import MapLocalizer
from feature_matching_ros.core.navigation.search_types import Prior
from feature_matching_ros.core.simulation.aerial_texture import procedural_map
from feature_matching_ros.core.simulation.flight_sim import (
    APPEARANCES,
    CameraSpec,
    FlightPlan,
    fly,
    random_waypoints,
    render,
)

from ...conftest import require_file

CAMERA = CameraSpec(640, 480, 60.0)


@pytest.fixture(scope="module")
def flight():
    geomap = procedural_map(1024, 1024, 0.5, seed=11)
    waypoints = random_waypoints(geomap, CAMERA, 120.0, 10.0, 4, seed=11)
    plan = FlightPlan(
        waypoints, speed=25.0, altitude=100.0, altitude_variation=0.2, tilt_deg=10.0, yaw="random"
    )
    rng = np.random.default_rng(11)
    frames = [(s, render(geomap, CAMERA, s, APPEARANCES["strong"], rng)[0]) for s in fly(plan, 10)]
    return geomap, frames


@pytest.mark.parametrize("matcher", ["sift", "xfeat(sparse)"])
def test_a_short_flight_is_localised_within_loose_bounds(flight, matcher):
    geomap, frames = flight
    localizer = MapLocalizer(build(matcher, {}), geomap)
    errors, accepted = [], 0
    for state, image in frames:
        result = localizer.localize(
            image, CAMERA.K, state.t, R_map_body=state.R_map_body, height=state.position[2]
        )
        if result.fix.accepted:
            accepted += 1
            errors.append(np.linalg.norm(result.fix.pose.position[:2] - state.position[:2]))
            assert abs(result.fix.pose.height - state.position[2]) < 2.0
            assert np.all(np.linalg.eigvalsh(result.fix.pose.covariance) > 0)
    assert accepted >= 8, f"{matcher}: {accepted}/10 fixes"
    assert np.median(errors) < 0.5
    assert max(errors) < 5.0


def test_without_attitude_the_heading_hypotheses_still_find_the_first_fix(flight):
    geomap, frames = flight
    localizer = MapLocalizer(build("sift", {}), geomap)
    state, image = frames[0]
    result = localizer.localize(image, CAMERA.K, state.t, height=state.position[2])  # global, no heading
    assert result.fix.accepted, result.fix.reason
    assert np.linalg.norm(result.fix.pose.position[:2] - state.position[:2]) < 1.0


@pytest.fixture(scope="module")
def seneca_first(shared_data):
    """The real Seneca flight's first frame (IMG_0446), its GPS position and height, the mosaic."""
    flight = shared_data / "flights" / "seneca"
    track = read_gps_csv(require_file(flight / "gps.csv"))
    geomap = load_map(require_file(shared_data / "maps" / "seneca_mosaic.png"))
    image = load_image(require_file(flight / "images" / track.images[0]))
    return geomap, image, float(track.t[0]), track.csv_en[0], float(track.alt[0] - 220.0)


SENECA_K = np.array([[557.5, 0.0, 400.0], [0.0, 557.5, 300.0], [0.0, 0.0, 1.0]])


def _assert_fixed(result, position, height):
    assert result.fix.accepted, result.fix.reason
    assert result.match.strategy.startswith("sweep")
    error = float(np.linalg.norm(result.fix.pose.position[:2] - position))
    assert error < 15.0, f"{error:.1f} m from GPS"
    assert abs(result.fix.pose.height - height) < 0.2 * height


@pytest.mark.parametrize("with_height", [True, False], ids=["altitude", "no altitude"])
def test_a_rotation_invariant_extractor_searching_the_whole_map_tries_the_other_headings_next(
    seneca_first, with_height
):
    """IMG_0446 without attitude or prior: akaze, though rotation invariant, matches it to the
    mosaic only turned near its own heading. At its measured height the frame as it is (heading 0)
    gives the fix; without altitude, at the 60 m height hypothesis, only headings 90 and 270 pass
    the map agreement (measured), so the other headings are tried when the first finds nothing."""
    geomap, image, stamp, position, height = seneca_first
    localizer = MapLocalizer(build("akaze", {}), geomap)
    result = localizer.localize(image, SENECA_K, stamp, height=height if with_height else None)
    _assert_fixed(result, position, height)


def test_every_usable_match_of_a_whole_map_search_is_checked_in_turn(seneca_first):
    """IMG_0446 searched at four headings at once (akaze taken as not rotation invariant) at its
    measured height: the match with the most support (heading 180, measured: 7 inliers) is refused
    by the fix checks; the next one (heading 0) gives the fix."""
    geomap, image, stamp, position, height = seneca_first
    pipeline = build("akaze", {})
    pipeline.extractor.rotation_invariant = False
    result = MapLocalizer(pipeline, geomap).localize(image, SENECA_K, stamp, height=height)
    _assert_fixed(result, position, height)


def test_a_whole_map_search_ignores_the_prior_but_not_the_prediction(flight):
    """``localize_whole_map`` finds the frame with a prior 300 m off (whose radius the frame is far
    outside of); its fix must still agree with the prediction, and a refused one leaves the search
    as it was."""
    geomap, frames = flight
    state, image = frames[0]
    localizer = MapLocalizer(build("sift", {}), geomap)
    aids = dict(R_map_body=state.R_map_body, height=state.position[2])
    wrong = Prior(state.t, state.position[:2] + [300.0, 0.0], 5.0)
    localizer.set_prior(wrong)
    assert not localizer.localize(image, CAMERA.K, state.t, **aids).fix.accepted  # searched around the prior
    localizer.set_prior(wrong)
    far = Prediction(state.position[:2] + [300.0, 0.0], np.eye(2) * 5.0**2)
    refused = localizer.localize_whole_map(image, CAMERA.K, state.t, prediction=far, **aids)
    assert not refused.fix.accepted and refused.fix.failed == "innovation", refused.fix.reason
    assert localizer.search.prior is wrong and localizer.search.failures == 0
    assert localizer.search.config.acquire  # the search's own configuration is back
    near = Prediction(state.position[:2] + [3.0, -2.0], np.eye(2) * 5.0**2)
    result = localizer.localize_whole_map(image, CAMERA.K, state.t, prediction=near, **aids)
    assert result.fix.accepted, result.fix.reason
    assert np.linalg.norm(result.fix.pose.position[:2] - state.position[:2]) < 1.0
    assert localizer.search.prior is not wrong and localizer.last_fix is result.fix


def test_a_frame_from_elsewhere_gives_no_fix(flight):
    geomap, frames = flight
    other = procedural_map(1024, 1024, 0.5, seed=99)  # different farmland: nothing matches
    localizer = MapLocalizer(build("sift", {}), other)
    state, _ = frames[0]
    wrong_image = render(geomap, CAMERA, state, APPEARANCES["none"], np.random.default_rng(0))[0]
    localizer.set_prior(Prior(state.t, state.position[:2], 5.0))
    result = localizer.localize(
        wrong_image, CAMERA.K, state.t, R_map_body=state.R_map_body, height=state.position[2]
    )
    assert not result.fix.accepted
    assert result.fix.reason


def test_the_gate_rejects_a_jump_beyond_the_motion_bound(flight):
    geomap, frames = flight
    localizer = MapLocalizer(build("sift", {}), geomap, gate=FixGate(max_speed=1.0, jump_margin_m=1.0))
    (s0, i0), (s1, i1) = frames[0], frames[3]  # 0.6 s apart, some 15 m
    first = localizer.localize(i0, CAMERA.K, s0.t, R_map_body=s0.R_map_body, height=s0.position[2])
    assert first.fix.accepted
    second = localizer.localize(i1, CAMERA.K, s1.t, R_map_body=s1.R_map_body, height=s1.position[2])
    assert not second.fix.accepted
    assert "motion bound" in second.fix.reason
