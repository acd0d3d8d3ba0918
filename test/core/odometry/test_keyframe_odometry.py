"""Keyframe odometry on real Seneca survey frames (real SIFT, real GPS)."""

import csv

import numpy as np
import pytest

from feature_matching_ros.core.image import load_image
from feature_matching_ros.core.matching.registry import build
from feature_matching_ros.core.odometry.keyframe_odometry import KeyframeOdometry

from ...conftest import require_file

K = np.array([[557.5, 0.0, 400.0], [0.0, 557.5, 300.0], [0.0, 0.0, 1.0]])
GROUND_M = 220.0  # terrain elevation of the survey area, m above sea level


@pytest.fixture(scope="module")
def seneca(shared_data):
    root = shared_data / "flights" / "seneca"
    rows = list(csv.DictReader(require_file(root / "gps.csv").open()))
    return root, rows


def _frame(root, row):
    return (
        load_image(require_file(root / "images" / row["image"])),
        float(row["t_s"]),
        float(row["alt_m"]) - GROUND_M,
    )


def _gps(row):
    return np.array([float(row["east_m"]), float(row["north_m"])])


def test_consecutive_survey_frames_register_with_metric_steps(seneca):
    root, rows = seneca
    odometry = KeyframeOdometry(build("sift", {"max_keypoints": 8000}))
    steps = [odometry.step(*_frame(root, row)[:2], K, _frame(root, row)[2]) for row in rows[:5]]
    assert not steps[0].registered and steps[0].origin is not None  # a track starts
    for i in range(1, 5):
        step = steps[i]
        assert step.registered, step.reason
        assert step.track == steps[0].track
        assert np.all(np.linalg.eigvalsh(step.covariance) > 0)
        previous = steps[i - 1].position if steps[i - 1].position is not None else steps[0].origin
        moved = np.linalg.norm(step.position[:2] - previous[:2])
        truth = np.linalg.norm(_gps(rows[i]) - _gps(rows[i - 1]))
        assert moved == pytest.approx(truth, rel=0.25), f"frame {i}: {moved:.1f} m vs GPS {truth:.1f} m"


def test_a_turn_loses_the_track_and_starts_a_new_one(seneca):
    root, rows = seneca
    gaps = [np.linalg.norm(_gps(rows[i]) - _gps(rows[i - 1])) for i in range(1, len(rows))]
    turn = next(i + 1 for i, gap in enumerate(gaps) if gap > 85.0)  # consecutive frames that cannot overlap
    odometry = KeyframeOdometry(build("sift", {"max_keypoints": 8000}))
    first = odometry.step(*_frame(root, rows[turn - 1])[:2], K, _frame(root, rows[turn - 1])[2])
    lost = odometry.step(*_frame(root, rows[turn])[:2], K, _frame(root, rows[turn])[2])
    assert not lost.registered
    assert lost.position is None and lost.covariance is None  # never a pose from a failed registration
    assert lost.reason.startswith("track lost")
    assert lost.track == first.track + 1


def test_an_unrelated_image_gets_no_pose(seneca, shared_data):
    root, rows = seneca
    odometry = KeyframeOdometry(build("sift", {"max_keypoints": 8000}))
    odometry.step(*_frame(root, rows[0])[:2], K, _frame(root, rows[0])[2])
    graf = load_image(require_file(shared_data / "pairs" / "graf1.png"))
    step = odometry.step(graf[:600, :800], 6.0, K, 60.0)
    assert not step.registered and step.position is None


# --- a video camera: frames a tenth of a second apart (``video_flight``) -----------------------------


def _counting(pipeline):
    """The pipeline, with a list that grows by one per image it extracts features of."""
    calls, extract = [], pipeline.extract
    pipeline.extract = lambda image: calls.append(1) or extract(image)
    return pipeline, calls


def _odometry_errors(odometry, camera, frames, stamps):
    """Each frame's odometry position error (m) against the truth, the track anchored on the first."""
    first = frames[0][0]
    errors = []
    for (state, image), stamp in zip(frames, stamps, strict=True):
        attitude = first.R_map_body if state is first else None
        step = odometry.step(image, stamp, camera.K, float(state.position[2]), attitude)
        if state is not first:
            assert step.registered, step.reason
        position = step.position if step.registered else step.origin
        errors.append(float(np.linalg.norm(position[:2] - (state.position[:2] - first.position[:2]))))
    return errors


def test_video_rate_frames_register_by_optical_flow_without_any_keypoints(video_flight):
    camera, _, frames = video_flight
    sift, calls = _counting(build("sift", {}))
    errors = _odometry_errors(KeyframeOdometry(sift), camera, frames, [s.t for s, _ in frames])
    assert not calls  # 78 m flown, two keyframes renewed, and no features extracted
    assert max(errors) < 0.5, errors  # 0.15 m measured


def test_the_flow_follows_the_corners_through_changes_of_exposure(video_flight):
    """The same flight rendered with the simulator's strong appearance changes (gain, gamma, colour,
    blur, noise from frame to frame): equalised locally (CLAHE) instead of globally, the flow lost
    its corners twice on this flight."""
    from feature_matching_ros.core.simulation.flight_sim import APPEARANCES, render

    camera, world, frames = video_flight
    rng = np.random.default_rng(0)
    changed = [(s, render(world, camera, s, APPEARANCES["strong"], rng)[0]) for s, _ in frames]
    sift, calls = _counting(build("sift", {}))
    errors = _odometry_errors(KeyframeOdometry(sift), camera, changed, [s.t for s, _ in changed])
    assert not calls
    assert max(errors) < 0.5, errors


def test_frames_a_second_apart_are_registered_by_keypoints(video_flight):
    camera, _, frames = video_flight
    sift, calls = _counting(build("sift", {}))
    errors = _odometry_errors(KeyframeOdometry(sift), camera, frames[:6], [10.0 * s.t for s, _ in frames[:6]])
    assert len(calls) == 6
    assert max(errors) < 0.5, errors


def test_where_the_flow_loses_its_corners_keypoints_register_the_frame(video_flight):
    """Frames 3 and 18 are 0.1 s apart but 30 m (140 px): the flow keeps too few of its corners;
    keypoints of the keyframe and of the frame (two extractions) register it, and the flow goes on
    from there."""
    camera, _, frames = video_flight
    sift, calls = _counting(build("sift", {}))
    chosen = [frames[i] for i in (0, 1, 2, 3, 18, 19, 20)]
    errors = _odometry_errors(KeyframeOdometry(sift), camera, chosen, [0.1 * k for k in range(7)])
    assert len(calls) == 2
    assert max(errors) < 0.5, errors
