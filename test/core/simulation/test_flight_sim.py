import math

import cv2
import numpy as np
import pytest

from feature_matching_ros.core.geometry import corner_error, estimate, warp_points
from feature_matching_ros.core.geometry.frames import camera_rotation, euler_from_rotation
from feature_matching_ros.core.maps.georef import load_map
from feature_matching_ros.core.simulation.aerial_texture import procedural_map, save_map
from feature_matching_ros.core.simulation.flight_sim import (
    APPEARANCES,
    CameraSpec,
    FlightPlan,
    fly,
    map_to_image,
    random_waypoints,
    render,
)

CAMERA = CameraSpec(640, 480, 60.0)


@pytest.fixture(scope="module")
def geomap():
    return procedural_map(1024, 1024, 0.5, seed=3)


@pytest.fixture(scope="module")
def states(geomap):
    waypoints = random_waypoints(geomap, CAMERA, 130.0, 10.0, 4, seed=3)
    plan = FlightPlan(
        waypoints, speed=20.0, altitude=110.0, altitude_variation=0.15, tilt_deg=10.0, yaw="random"
    )
    return fly(plan, 12)


def test_flight_follows_the_plan(states):
    heights = np.array([s.position[2] for s in states])
    assert np.all((heights > 110 * 0.84) & (heights < 110 * 1.16))
    steps = np.linalg.norm(np.diff([s.position[:2] for s in states], axis=0), axis=1)
    assert np.allclose(steps[steps > 1], 20.0 / 5.0, atol=0.05)  # speed / rate (except at turns)
    for s in states:
        roll, pitch, _ = euler_from_rotation(s.R_map_body)
        assert abs(math.degrees(roll)) <= 10.0 + 1e-6 and abs(math.degrees(pitch)) <= 10.0 + 1e-6


def test_the_nadir_point_is_where_the_optical_axis_meets_the_ground(geomap, states):
    for s in states[:3]:
        axis = camera_rotation(s.R_map_body)[:, 2]
        ground = s.position[:2] + axis[:2] * s.position[2] / -axis[2]
        pixel = geomap.georef.map_to_pixel(ground)
        principal = warp_points(map_to_image(geomap.georef, CAMERA.K, s), pixel)[0]
        assert np.allclose(principal, CAMERA.K[:2, 2], atol=1e-6)


def test_unwarping_a_frame_with_the_ground_truth_gives_back_the_map(geomap, states):
    rng = np.random.default_rng(0)
    for s in states[::4]:
        frame, seen = render(geomap, CAMERA, s, APPEARANCES["none"], rng)
        assert seen == 1.0
        H = map_to_image(geomap.georef, CAMERA.K, s)
        back = cv2.warpPerspective(frame, np.linalg.inv(H), geomap.size, flags=cv2.INTER_LINEAR)
        covered = cv2.warpPerspective(np.ones(frame.shape[:2], np.uint8), np.linalg.inv(H), geomap.size) > 0
        covered = cv2.erode(covered.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        a = back[covered].astype(np.float64).ravel()
        b = geomap.image[covered].astype(np.float64).ravel()
        ncc = np.corrcoef(a, b)[0, 1]
        assert ncc > 0.9


def test_sift_matches_between_frame_and_map_fit_the_ground_truth_homography(geomap, states):
    s = states[5]
    frame, _ = render(geomap, CAMERA, s, APPEARANCES["moderate"], np.random.default_rng(1))
    H = map_to_image(geomap.georef, CAMERA.K, s)
    sift = cv2.SIFT_create(4000)
    k0, d0 = sift.detectAndCompute(cv2.cvtColor(geomap.image, cv2.COLOR_RGB2GRAY), None)
    k1, d1 = sift.detectAndCompute(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), None)
    pairs = [m for m, n in cv2.BFMatcher().knnMatch(d0, d1, k=2) if m.distance < 0.75 * n.distance]
    p0 = np.array([k0[m.queryIdx].pt for m in pairs])
    p1 = np.array([k1[m.trainIdx].pt for m in pairs])
    error = np.linalg.norm(warp_points(H, p0) - p1, axis=1)
    assert (error < 2.0).sum() >= 30
    fitted = estimate("Homography", p0, p1)
    assert fitted.success
    # a map pixel is ~2.3 frame pixels here, and the corners extrapolate beyond the matches
    assert corner_error(fitted.model, H, CAMERA.width, CAMERA.height) < 6.0


def test_random_waypoints_keep_the_footprint_on_the_map(geomap):
    radius = CAMERA.footprint_radius(130.0, 10.0)
    lo, hi = geomap.extent()
    points = random_waypoints(geomap, CAMERA, 130.0, 10.0, 20, seed=5)
    assert np.all(points - radius >= lo) and np.all(points + radius <= hi)
    with pytest.raises(ValueError, match="too small"):
        random_waypoints(geomap, CAMERA, 2000.0, 0.0, 2, seed=0)


def test_saved_map_loads_with_the_same_georeference(geomap, tmp_path):
    path = save_map(geomap, tmp_path / "m.png")
    loaded = load_map(path)
    assert np.array_equal(loaded.image, geomap.image)
    assert np.allclose(loaded.georef.affine, geomap.georef.affine)
    assert loaded.valid.all()
