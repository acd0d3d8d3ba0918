"""Integrity on real frames: with the inlier-count gates opened wide, no pose the matcher gets wrong
on the real Seneca frames may be accepted, while correct fixes are; and a wrong fix whose inliers
all agree (so that it passes every geometric check, like a match shifted by one period of a
repetitive texture) is refused by the map-agreement check (``map_verify``)."""

from __future__ import annotations

import numpy as np
import pytest

from feature_matching_ros.core.evaluation.flight_log import read_gps_csv
from feature_matching_ros.core.image import load_image
from feature_matching_ros.core.maps.georef import load_map
from feature_matching_ros.core.matching.registry import build
from feature_matching_ros.core.navigation.fix import FixGate, Prediction, estimate_fix
from feature_matching_ros.core.navigation.localizer import MapLocalizer
from feature_matching_ros.core.navigation.verify import check_agreement, map_agreement

from ...conftest import require_file

K = np.array([[557.5, 0.0, 400.0], [0.0, 557.5, 300.0], [0.0, 0.0, 1.0]])
# Frames where sift finds a pose far off (turns, bare fields, trees) or a correct one.
FRAMES = (0, 1, 7, 13, 17, 24, 34, 41, 4, 19, 20, 26, 32, 49)
# Every check but the counts left as it is.
OPEN = FixGate(min_inliers=6, min_inlier_ratio=0.0, max_sigma_m=1e9)


@pytest.fixture(scope="module")
def candidates(shared_data):
    """(localizer, [(GPS error m, fix, localization, frame)]) of the frames searched afresh over the
    whole mosaic with the open gate that got a pose or were refused by the map agreement."""
    flight = shared_data / "flights" / "seneca"
    track = read_gps_csv(require_file(flight / "gps.csv"))
    geomap = load_map(require_file(shared_data / "maps" / "seneca_mosaic.png"))
    localizer = MapLocalizer(build("sift", {}), geomap, gate=OPEN)
    found = []
    for i in FRAMES:
        localizer.search.set_prior(None)
        localizer.last_fix = None
        image = load_image(require_file(flight / "images" / track.images[i]))
        result = localizer.localize(image, K, float(track.t[i]), height=float(track.alt[i] - 220.0))
        fix = result.fix
        if fix.pose is not None or fix.failed == "agreement":
            where = fix.pose.position[:2] if fix.pose is not None else np.full(2, np.inf)
            found.append((float(np.linalg.norm(where - track.csv_en[i])), fix, result, image))
    return localizer, found


def test_no_pose_more_than_30_m_off_is_accepted_with_the_counts_opened(candidates):
    _, found = candidates
    for error, fix, *_ in found:
        assert not (fix.accepted and error > 30.0), f"a fix {error:.0f} m off was accepted: {fix.agreement}"
    refused = [fix for _, fix, *_ in found if not fix.accepted]
    assert len(refused) >= 5, "the hard frames (turns, bare fields) should be refused"
    assert any(fix.failed == "agreement" for fix in refused), "the map agreement refused none of them"


def test_correct_fixes_pass_the_map_agreement_check(candidates):
    right = [(e, f) for e, f, *_ in candidates[1] if e < 10.0 and f.geometry.num_inliers >= 30]
    assert len(right) >= 5
    passed = [f for _, f in right if f.accepted]
    assert len(passed) >= len(right) - 1, [(round(e, 1), f.reason) for e, f in right if not f.accepted]


@pytest.mark.parametrize("shift_m", [(32.0, 0.0), (0.0, -45.0), (20.0, 25.0)])
def test_a_consistent_but_shifted_fix_passes_geometry_and_fails_the_map_agreement(candidates, shift_m):
    localizer, found = candidates
    error, fix, result, image = max(found, key=lambda c: c[1].geometry.num_inliers if c[0] < 5 else 0)
    georef = localizer.geomap.georef
    match = result.match
    moved = georef.map_to_pixel(georef.pixel_to_map(match.map_points) + np.asarray(shift_m))
    wrong = estimate_fix(moved, match.image_points, georef, K, fix.stamp, gate=FixGate())
    assert wrong.accepted, f"the shifted fix should pass every geometric check: {wrong.reason}"
    assert np.linalg.norm(wrong.pose.position[:2] - fix.pose.position[:2]) > 25.0
    geomap, config = localizer.geomap, localizer.search.config
    resolution = fix.pose.height / K[0, 0] / georef.ground_sample_distance

    def verdict(candidate):
        return check_agreement(
            geomap.image,
            geomap.valid,
            image,
            np.asarray(candidate.geometry.model),
            resolution,
            config.min_agreement,
            config.min_peak,
        )

    agreement, why = verdict(wrong)
    assert why, f"a fix {np.linalg.norm(shift_m):.0f} m off passed the map agreement: {agreement}"
    assert verdict(fix)[1] == ""


def test_the_agreement_peaks_at_the_true_alignment_only(shared_data):
    geomap = load_map(require_file(shared_data / "maps" / "seneca_mosaic.png"))
    crop = geomap.image[500:650, 500:700]  # the map itself seen by a camera at map resolution
    H = np.array([[1.0, 0.0, -500.0], [0.0, 1.0, -500.0], [0.0, 0.0, 1.0]])
    at_truth = map_agreement(geomap.image, geomap.valid, crop, H, 1.0)
    assert at_truth.score > 0.9 and at_truth.peak > 1.3 and at_truth.covered == pytest.approx(1.0)
    off = H @ np.array([[1.0, 0.0, -40.0], [0.0, 1.0, 25.0], [0.0, 0.0, 1.0]])
    elsewhere = map_agreement(geomap.image, geomap.valid, crop, off, 1.0)
    assert elsewhere.score < 0.2 and elsewhere.peak < 1.1


def test_a_weak_fix_is_accepted_only_when_the_map_and_the_prediction_both_confirm_it(candidates):
    """Below ``min_inliers`` a fix needs the map agreement and a confident prediction that agrees."""
    localizer, found = candidates
    error, fix, result, _ = max(found, key=lambda c: c[1].geometry.num_inliers if c[0] < 5 else 0)
    assert fix.agreement is not None and fix.accepted
    inliers = np.flatnonzero(np.asarray(fix.geometry.inlier_mask, bool))
    keep = np.random.default_rng(0).choice(inliers, 20, replace=False)  # a real match, thinned out
    match, georef = result.match, localizer.geomap.georef
    truth = fix.pose.position[:2]
    gate = FixGate()

    def weak(prediction, agreement=fix.agreement):
        points = (match.map_points[keep], match.image_points[keep])
        return estimate_fix(
            *points, georef, K, fix.stamp, gate=gate, prediction=prediction, agreement=agreement
        )

    near = Prediction(truth + [3.0, -2.0], np.eye(2) * 5.0**2)
    confirmed = weak(near)
    assert confirmed.accepted, confirmed.reason
    assert confirmed.geometry.num_inliers < gate.min_inliers
    assert np.linalg.norm(confirmed.pose.position[:2] - truth) < 5.0
    unverified = weak(near, agreement=None)
    assert not unverified.accepted and unverified.failed == "inliers"
    assert not weak(None).accepted
    vague = weak(Prediction(truth, np.eye(2) * 25.0**2))
    assert vague.failed == "inliers" and "too uncertain" in vague.reason
    elsewhere = weak(Prediction(truth + [40.0, 0.0], np.eye(2) * 5.0**2))
    # a weak fix away from the prediction is no evidence that the prediction is wrong
    assert elsewhere.failed == "inliers" and "from the prediction" in elsewhere.reason


def test_without_an_altitude_input_a_fix_must_agree_with_the_predicted_height(candidates):
    """Fused, a fix's wrong height pulls the position along their correlation: on the Seneca flight
    without altitude a fix 4 m from GPS but measuring 44.6 m (the prediction: 64.2 m) moved the
    solution 31 m off at a 5.2 m standard deviation. Such a fix disagrees with the prediction."""
    localizer, found = candidates
    _, fix, result, _ = max(found, key=lambda c: c[1].geometry.num_inliers if c[0] < 5 else 0)
    assert fix.accepted
    match, georef = result.match, localizer.geomap.georef
    position, height = fix.pose.position[:2], fix.pose.height

    def with_predicted(predicted_height):
        prediction = Prediction(position, np.eye(2) * 5.0**2, height=predicted_height)
        return estimate_fix(match.map_points, match.image_points, georef, K, fix.stamp, prediction=prediction)

    assert with_predicted(height * 1.1).accepted
    assert with_predicted(None).accepted
    refused = with_predicted(height * 1.4)
    assert not refused.accepted and refused.failed == "innovation", refused.reason
    assert "navigation prediction's" in refused.reason
