"""Re-localisation against an earlier map-fixed frame, on the real Seneca survey.

Frame 3 (IMG_0449) fixes on the mosaic; frame 12 (IMG_0458) is on the next survey line, flown the
other way after a turn, 51 m from frame 3: it overlaps frame 3 but no frame of its own line before
the turn. Frame 41 (IMG_0487) is a bare field that overlaps nothing remembered.
"""

from __future__ import annotations

import numpy as np
import pytest

from feature_matching_ros.core.evaluation.flight_log import read_gps_csv
from feature_matching_ros.core.image import load_image
from feature_matching_ros.core.maps.georef import load_map
from feature_matching_ros.core.matching.registry import build
from feature_matching_ros.core.navigation.fix import Prediction
from feature_matching_ros.core.navigation.localizer import MapLocalizer
from feature_matching_ros.core.navigation.revisit import FrameMemory, RevisitConfig

from ...conftest import require_file

K = np.array([[557.5, 0.0, 400.0], [0.0, 557.5, 300.0], [0.0, 0.0, 1.0]])
GROUND_M = 220.0
FIXED, NEXT_LINE, BARE = 3, 12, 41


@pytest.fixture(scope="module")
def seneca(shared_data):
    flight = shared_data / "flights" / "seneca"
    track = read_gps_csv(require_file(flight / "gps.csv"))
    geomap = load_map(require_file(shared_data / "maps" / "seneca_mosaic.png"))
    frames = {
        i: load_image(require_file(flight / "images" / track.images[i])) for i in (FIXED, NEXT_LINE, BARE)
    }
    return track, geomap, frames


@pytest.fixture(scope="module")
def sift():
    return build("sift", {"max_keypoints": 8000})


@pytest.fixture(scope="module")
def memory(seneca, sift):
    """A memory holding frame 3, remembered with its real map fix."""
    track, geomap, frames = seneca
    fix = (
        MapLocalizer(sift, geomap)
        .localize(frames[FIXED], K, float(track.t[FIXED]), height=float(track.alt[FIXED] - GROUND_M))
        .fix
    )
    assert fix.accepted, fix.reason
    memory = FrameMemory()
    memory.remember(
        float(track.t[FIXED]),
        sift.extract(frames[FIXED]),
        K,
        fix.pose.position,
        fix.pose.R_map_camera,
        fix.pose.covariance,
    )
    return memory


def _predicted(track, i, offset, sigma):
    return Prediction(np.asarray(track.csv_en[i], np.float64) + offset, sigma**2 * np.eye(2))


def test_a_frame_after_a_turn_relocalises_on_the_remembered_frame(seneca, sift, memory):
    track, _, frames = seneca
    prediction = _predicted(track, NEXT_LINE, np.array([90.0, -70.0]), 60.0)  # as after coasting a turn
    height = float(track.alt[NEXT_LINE] - GROUND_M)
    revisit = memory.relocalize(
        sift,
        sift.extract(frames[NEXT_LINE]),
        K,
        float(track.t[NEXT_LINE]),
        prediction,
        measured_height=height,
    )
    assert revisit.accepted, revisit.fix.reason
    assert revisit.reference == float(track.t[FIXED])
    pose = revisit.fix.pose
    error = pose.position[:2] - track.csv_en[NEXT_LINE]
    # measured 4.0 m from GPS (whose own error against the mosaic is 3-5 m)
    assert np.linalg.norm(error) < 10.0, error
    assert abs(pose.height - height) < 0.15 * height
    assert revisit.fix.geometry.num_inliers >= 100
    # the remembered fix's own uncertainty is part of the measurement's
    remembered = memory.near(prediction)[0].covariance
    assert pose.covariance[0, 0] > remembered[0, 0] and pose.covariance[1, 1] > remembered[1, 1]


def test_a_frame_that_overlaps_nothing_remembered_is_not_relocalised(seneca, sift, memory):
    track, _, frames = seneca
    prediction = _predicted(track, FIXED, np.array([30.0, 20.0]), 40.0)  # claims to be near frame 3
    revisit = memory.relocalize(sift, sift.extract(frames[BARE]), K, float(track.t[BARE]), prediction)
    assert revisit.tried == 1 and not revisit.accepted
    assert revisit.fix is not None and revisit.fix.reason


def test_a_disagreeing_prediction_refuses_the_registration(seneca, sift, memory):
    track, _, frames = seneca
    prediction = _predicted(track, NEXT_LINE, np.array([60.0, 0.0]), 11.0)  # confident, and 60 m off
    revisit = memory.relocalize(
        sift, sift.extract(frames[NEXT_LINE]), K, float(track.t[NEXT_LINE]), prediction
    )
    assert not revisit.accepted and revisit.fix.failed == "innovation", revisit.fix.reason


def test_only_remembered_frames_near_the_prediction_are_tried(seneca, sift, memory):
    track, _, frames = seneca
    far = _predicted(track, NEXT_LINE, np.array([2000.0, 0.0]), 50.0)
    revisit = memory.relocalize(sift, sift.extract(frames[NEXT_LINE]), K, 0.0, far)
    assert revisit.fix is None and revisit.tried == 0 and not revisit.accepted


def test_the_memory_keeps_the_strongest_keypoints_of_its_newest_frames_spread_over_the_area(seneca, sift):
    _, _, frames = seneca
    features = sift.extract(frames[FIXED])
    memory = FrameMemory(RevisitConfig(capacity=2, keypoints=500))
    for stamp in (1.0, 2.0, 3.0):  # 50 m apart, footprints reaching 54 m from the nadir
        memory.remember(stamp, features, K, np.array([50.0 * stamp, 0.0, 60.0]), np.eye(3), np.eye(6))
    assert len(memory) == 2
    kept = memory.near(Prediction(np.array([125.0, 0.0]), np.eye(2)))
    assert sorted(frame.stamp for frame in kept) == [2.0, 3.0]
    memory.remember(4.0, features, K, np.array([160.0, 0.0, 60.0]), np.eye(3), np.eye(6))  # 10 m from 3
    kept = memory.near(Prediction(np.array([125.0, 0.0]), np.eye(2)))
    assert sorted(frame.stamp for frame in kept) == [2.0, 4.0]
    scores = features.scores.numpy()
    assert len(kept[0].features) == 500
    assert kept[0].features.scores.numpy().min() >= np.sort(scores)[-500]


def test_a_less_certain_frame_does_not_displace_a_better_placed_one(seneca, sift):
    _, _, frames = seneca
    features = sift.extract(frames[FIXED])
    memory = FrameMemory(RevisitConfig(keypoints=500))
    fixed = np.diag([0.5, 0.5, 1.0, 1e-4, 1e-4, 1e-4])
    memory.remember(1.0, features, K, np.array([0.0, 0.0, 60.0]), np.eye(3), fixed)
    memory.remember(2.0, features, K, np.array([5.0, 0.0, 60.0]), np.eye(3), fixed * 50.0)  # re-localised
    assert [f.stamp for f in memory.near(Prediction(np.zeros(2), np.eye(2)))] == [1.0]
    memory.remember(3.0, features, K, np.array([5.0, 0.0, 60.0]), np.eye(3), fixed * 0.5)  # a better fix
    assert [f.stamp for f in memory.near(Prediction(np.zeros(2), np.eye(2)))] == [3.0]
