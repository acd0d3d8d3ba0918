import math

import numpy as np
import pytest

from feature_matching_ros.core.evaluation import trajectory_metrics as tm
from feature_matching_ros.core.geometry.frames import rotation_from_euler


def residual_orthogonal_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with zero mean and no correlation with the centred points: the least-squares
    similarity between x and T(x) + noise is exactly T, and the residuals are the noise itself."""
    basis = np.column_stack([np.ones(len(x)), x])
    noise = rng.normal(0.0, sigma, x.shape)
    return noise - basis @ np.linalg.lstsq(basis, noise, rcond=None)[0]


def test_similarity_and_exact_ate_are_recovered_in_3d():
    rng = np.random.default_rng(1)
    estimate = np.cumsum(rng.normal(0.0, 5.0, (60, 3)), axis=0)
    rotation = rotation_from_euler(0.1, -0.2, 1.3)
    scale, translation = 2.5, np.array([100.0, -40.0, 7.0])
    noise = residual_orthogonal_noise(estimate, 0.7, rng)
    truth = scale * estimate @ rotation.T + translation + noise

    result = tm.ate(estimate, truth)

    assert result.alignment.scale == pytest.approx(scale, rel=1e-9)
    assert np.allclose(result.alignment.rotation, rotation, atol=1e-9)
    assert np.allclose(result.alignment.translation, translation, atol=1e-7)
    expected = np.linalg.norm(noise, axis=1)
    assert np.allclose(result.per_frame, expected, atol=1e-7)
    assert result.rmse == pytest.approx(math.sqrt(np.mean(expected**2)), rel=1e-9)
    assert result.median == pytest.approx(np.median(expected), rel=1e-9)
    assert result.max == pytest.approx(expected.max(), rel=1e-9)
    length = np.linalg.norm(np.diff(truth, axis=0), axis=1).sum()
    assert result.track_length == pytest.approx(length)
    assert result.rmse_percent == pytest.approx(100.0 * result.rmse / length)


def test_rigid_alignment_keeps_scale_one_and_2d_works():
    rng = np.random.default_rng(2)
    estimate = rng.uniform(-50.0, 50.0, (20, 2))
    angle = math.radians(-35.0)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    truth = estimate @ rotation.T + [3.0, 4.0]
    rigid = tm.align_similarity(estimate, truth, with_scale=False)
    assert rigid.scale == 1.0
    assert rigid.yaw_deg == pytest.approx(-35.0)
    assert np.allclose(rigid.apply(estimate), truth)
    # Two distinct points suffice in 2-D; the fit is then exact.
    two = tm.align_similarity(estimate[:2], 3.0 * truth[:2])
    assert np.allclose(two.apply(estimate[:2]), 3.0 * truth[:2])
    assert two.scale == pytest.approx(3.0)


def test_mirrored_estimate_still_gives_a_proper_rotation():
    rng = np.random.default_rng(3)
    truth = rng.normal(0.0, 10.0, (30, 3))
    mirrored = truth * [1.0, -1.0, 1.0]
    alignment = tm.align_similarity(mirrored, truth)
    assert np.linalg.det(alignment.rotation) == pytest.approx(1.0)
    assert np.allclose(alignment.rotation @ alignment.rotation.T, np.eye(3))


@pytest.mark.parametrize(
    "points, message",
    [
        (np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [5.0, 5.0, 5.0]]), "degenerate"),
        (np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]), "coincide"),
        (np.array([[1.0, 2.0, 0.0], [3.0, 2.0, 0.0]]), "at least 3"),
        (np.array([[1.0, 2.0]]), "at least 2"),
        (np.array([[1.0, 2.0], [np.nan, 1.0], [4.0, 4.0]]), "finite"),
        (np.zeros((4, 4)), "N x 2"),
    ],
)
def test_degenerate_alignments_are_refused(points, message):
    with pytest.raises(ValueError, match=message):
        tm.align_similarity(points, points + 1.0)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        tm.absolute_errors(np.zeros((3, 2)), np.zeros((4, 2)))


def test_constant_offset_of_two_metres():
    truth = np.column_stack([np.arange(10.0) * 30.0, np.zeros(10), np.full(10, 100.0)])
    estimate = truth + [1.2, 1.6, 5.0]  # 2 m horizontally, 5 m vertically
    horizontal = tm.absolute_errors(estimate, truth)
    assert np.allclose(horizontal, 2.0)
    assert tm.error_stats(horizontal).median == pytest.approx(2.0)
    assert np.allclose(tm.absolute_errors(estimate, truth, horizontal=False), math.sqrt(29.0))
    assert tm.absolute_errors(estimate[:, :2], truth[:, :2]).tolist() == pytest.approx([2.0] * 10)


def test_error_stats_against_numpy():
    rng = np.random.default_rng(4)
    errors = rng.exponential(3.0, 101)
    stats = tm.error_stats(np.append(errors, [np.nan, np.nan]))
    assert stats.count == 101
    assert stats.p95 == pytest.approx(np.percentile(errors, 95))
    assert stats.median == pytest.approx(np.median(errors))
    assert stats.mean == pytest.approx(errors.mean())
    assert stats.rmse == pytest.approx(math.sqrt(np.mean(errors**2)))
    assert stats.max == errors.max()
    assert tm.error_stats([3.0, 4.0]).rmse == pytest.approx(math.sqrt(12.5))


def test_empty_error_stats_are_nan_not_an_exception():
    for empty in ([], np.array([np.nan])):
        stats = tm.error_stats(empty)
        assert stats.count == 0
        assert all(math.isnan(v) for v in (stats.mean, stats.median, stats.rmse, stats.p95, stats.max))


def test_ate_leaves_out_frames_without_estimate():
    truth = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]])
    estimate = truth.copy()
    estimate[2] = np.nan
    result = tm.ate(estimate, truth)
    assert result.errors.count == 4
    assert result.rmse == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(result.per_frame[2]) and np.isnan(result.aligned[2]).all()
    # Length over the frames used: (0,0)-(10,0)-(0,10)-(0,0) = 10 + sqrt(200) + 10.
    assert result.track_length == pytest.approx(20.0 + math.sqrt(200.0))
    assert tm.track_length(truth) == pytest.approx(40.0)


def test_rpe_unaligned_and_aligned():
    truth = np.column_stack([np.arange(8.0) * 10.0, np.zeros(8)])
    # Rotated by 90 degrees, scaled by 2 and shifted: the shape is right, scale and heading are not.
    estimate = 2.0 * truth[:, ::-1] * [1.0, 1.0] + [5.0, 5.0]
    raw = tm.rpe(estimate, truth)
    assert raw.count == 7
    # Each step: estimated (0, 20) against true (10, 0).
    assert raw.median == pytest.approx(math.hypot(10.0, 20.0))
    alignment = tm.ate(estimate, truth).alignment
    assert tm.rpe(estimate, truth, 1, alignment).max == pytest.approx(0.0, abs=1e-9)
    assert tm.rpe(estimate, truth, delta=3).count == 5
    with pytest.raises(ValueError, match="delta"):
        tm.rpe(estimate, truth, delta=0)


def test_rpe_of_a_constant_drift_per_step():
    truth = np.column_stack([np.arange(11.0) * 20.0, np.zeros(11), np.full(11, 50.0)])
    estimate = truth + np.outer(np.arange(11.0), [0.0, 0.5, 0.0])
    estimate[5] = np.nan  # frame 5 lost: pairs (4, 5) and (5, 6) drop out
    errors = tm.rpe_errors(estimate, truth, 1)
    assert np.isnan(errors[[4, 5]]).all()
    assert tm.rpe(estimate, truth).count == 8
    assert tm.rpe(estimate, truth).median == pytest.approx(0.5)
    assert tm.rpe(estimate, truth, delta=2).median == pytest.approx(1.0)


def test_split_tracks():
    tracks = tm.split_tracks([0, 0, 1, 1, 1, -1, -1, 0, 0, 2])
    assert [t.tolist() for t in tracks] == [[0, 1], [2, 3, 4], [7, 8], [9]]
    assert tm.split_tracks([]) == []


def test_track_ate_summary():
    rng = np.random.default_rng(5)
    estimate = np.column_stack([np.arange(20.0) * 10.0, rng.uniform(-30.0, 30.0, 20)])
    truth = estimate.copy()
    # Track 0 (frames 0-7): exact up to a similarity; track 1 (8-15): known residual noise;
    # track 2 (16-17): too short; frames 18-19 in no track.
    truth[:8] = 2.0 * estimate[:8] @ np.array([[0.0, -1.0], [1.0, 0.0]]).T + 9.0
    noise = residual_orthogonal_noise(estimate[8:16], 2.0, rng)
    truth[8:16] += noise
    ids = [0] * 8 + [1] * 8 + [2] * 2 + [-1] * 2
    summary = tm.track_ate(estimate, truth, ids)
    assert [t.track_id for t in summary.tracks] == [0, 1, 2]
    assert summary.evaluated == 2
    first, second, short = summary.tracks
    assert first.result.rmse == pytest.approx(0.0, abs=1e-8)
    assert first.result.alignment.scale == pytest.approx(2.0)
    assert first.result.alignment.yaw_deg == pytest.approx(90.0)
    assert second.result.rmse == pytest.approx(math.sqrt(np.mean(np.sum(noise**2, axis=1))))
    assert short.result is None and "2 frames" in short.note
    expected = [first.result.rmse_percent, second.result.rmse_percent]
    length = tm.track_length(truth[8:16])
    assert second.result.rmse_percent == pytest.approx(100.0 * second.result.rmse / length)
    assert summary.median_percent == pytest.approx(np.median(expected))
    assert summary.worst_percent == pytest.approx(max(expected))
    assert summary.median_rmse_m == pytest.approx(second.result.rmse / 2.0)


def test_track_ate_notes_a_degenerate_track():
    truth = np.column_stack([np.arange(6.0), np.arange(6.0), np.arange(6.0)])  # a straight line in 3-D
    summary = tm.track_ate(truth, truth, [0] * 6)
    assert summary.evaluated == 0 and "degenerate" in summary.tracks[0].note
    assert math.isnan(summary.median_percent)


def test_map_summary_on_a_hand_built_flight():
    truth = np.column_stack([np.arange(10.0) * 25.0, np.zeros(10), np.full(10, 120.0)])
    estimate = np.full((10, 3), np.nan)
    accepted = np.zeros(10, bool)
    offsets = {0: 1.0, 1: 2.0, 2: 3.0, 4: 20.0, 6: 4.0, 9: 16.0}  # metres east of the truth
    for i, dx in offsets.items():
        estimate[i] = truth[i] + [dx, 0.0, 30.0]  # vertical errors do not count
        accepted[i] = True
    estimate[3] = truth[3] + [100.0, 0.0, 0.0]  # a rejected pose is ignored
    reasons = [""] * 10
    reasons[3] = "too few inliers: 12 < 30"
    reasons[5] = "too few inliers: 3 < 30"
    reasons[7] = "jump of 80.2 m in 1.00 s exceeds the motion bound 70.0 m"
    reasons[8] = "no homography: no matches: none"
    summary = tm.map_summary(truth, estimate, accepted, reasons)
    assert summary.frames == 10 and summary.accepted == 6
    assert summary.success_rate == pytest.approx(0.6)
    assert summary.wrong_fixes == 2  # 20 m and 16 m > 15 m
    assert summary.errors.count == 6
    assert summary.errors.median == pytest.approx(3.5)
    assert summary.errors.max == pytest.approx(20.0)
    assert (summary.vertical.count, summary.vertical.median) == (6, pytest.approx(30.0))
    assert tm.map_summary(truth[:, :2], estimate[:, :2], accepted, reasons).vertical.count == 0
    assert summary.rejected == {
        "too few inliers: # < #": 2,
        "jump of # m in # s exceeds the motion bound # m": 1,
        "no homography: no matches: none": 1,
    }
    assert tm.map_summary(truth, estimate, accepted, reasons, wrong_fix_bound_m=18.0).wrong_fixes == 1
    accepted[5] = True
    with pytest.raises(ValueError, match="no \\(finite\\) estimated position"):
        tm.map_summary(truth, estimate, accepted, reasons)


def test_reason_category():
    assert tm.reason_category("inlier ratio 0.12 < 0.25") == "inlier ratio # < #"
    assert tm.reason_category("implausible tilt 31.5° > 25°") == "implausible tilt #° > #°"
    assert tm.reason_category("  ") == "unknown"


def test_latency_stats():
    values = [100.0, 110.0, None, 120.0, 400.0, float("nan")]
    stats = tm.latency_stats(values)
    finite = np.array([100.0, 110.0, 120.0, 400.0])
    assert stats.count == 4
    assert stats.median_ms == pytest.approx(115.0)
    assert stats.p95_ms == pytest.approx(np.percentile(finite, 95))
    assert stats.max_ms == 400.0
    assert stats.mean_ms == pytest.approx(182.5)
    assert stats.hz == pytest.approx(1000.0 / 115.0)
    assert math.isnan(tm.latency_stats([None]).hz)


def test_chi2_bounds_for_two_degrees_of_freedom():
    assert tm.CHI2_2DOF_95 == pytest.approx(5.991, abs=1e-3)
    assert tm.CHI2_2DOF_99 == pytest.approx(9.210, abs=1e-3)


def test_nees_by_hand():
    errors = np.array([[3.0, 4.0], [1.0, 0.0], [1.0, 1.0], [np.nan, 0.0], [2.0, 0.0]])
    covariances = np.array(
        [
            np.diag([9.0, 16.0]),  # 9/9 + 16/16 = 2
            [[2.0, 1.0], [1.0, 2.0]],  # inverse [[2, -1], [-1, 2]] / 3: 2/3
            [[1.0, 0.0], [0.0, 0.0]],  # singular: no NEES
            np.eye(2),  # no error vector (NaN): no NEES
            np.full((2, 2), np.nan),  # no covariance
        ]
    )
    values = tm.nees(errors, covariances)
    assert values[:2] == pytest.approx([2.0, 2.0 / 3.0], rel=1e-12)
    assert np.isnan(values[2:]).all()
    with pytest.raises(ValueError, match="covariances"):
        tm.nees(errors, covariances[:, :1, :1])


def test_nees_stats_by_hand():
    s = tm.nees_stats([1.0, 2.0, 6.0, 10.0, np.nan])
    assert s.count == 4
    assert s.mean == pytest.approx(4.75) and s.median == pytest.approx(4.0)
    assert s.within_95 == 0.5  # 1 and 2 are <= 5.991; 6 and 10 are not
    assert s.within_99 == 0.75  # 6 <= 9.21
    empty = tm.nees_stats([np.nan])
    assert empty.count == 0 and math.isnan(empty.mean) and math.isnan(empty.within_95)
    one = tm.nees_stats([1.0, 2.0, 6.0, 10.0, np.nan], dof=1)
    assert (one.dof, one.bound_95, one.bound_99) == (1, pytest.approx(3.841459), pytest.approx(6.634897))
    assert one.within_95 == 0.5 and one.within_99 == 0.75  # 6 <= 6.635
    with pytest.raises(ValueError, match="1 or 2"):
        tm.nees_stats([1.0], dof=3)


def test_the_one_dof_chi_square_bounds_are_the_normal_quantiles_squared():
    from statistics import NormalDist

    assert tm.CHI2_1DOF_95 == pytest.approx(NormalDist().inv_cdf(0.975) ** 2, rel=1e-6)
    assert tm.CHI2_1DOF_99 == pytest.approx(NormalDist().inv_cdf(0.995) ** 2, rel=1e-6)


def test_fixes_within_counts_accepted_fixes_close_enough():
    errors = [1.0, 20.0, np.nan, 15.0, 3.0]
    accepted = [True, True, False, True, False]  # frame 4 is close but not accepted
    assert tm.fixes_within(errors, accepted, 15.0) == (2, 0.4)
    assert tm.fixes_within(errors, accepted, 30.0) == (3, 0.6)
    assert tm.fixes_within(errors, accepted, 0.5) == (0, 0.0)
    with pytest.raises(ValueError, match="accepted flags"):
        tm.fixes_within(errors, accepted[:2], 15.0)


def test_navigation_summary_by_hand():
    truth = np.array([[0.0, 0.0, 100.0], [10.0, 0.0, 100.0], [20.0, 0.0, 100.0], [30.0, 0.0, 100.0]])
    position = np.array([[3.0, 4.0, 90.0], [np.nan] * 3, [20.0, 1.0, 100.0], [30.0, 0.0, 100.0]])
    cov = np.full((4, 3, 3), np.nan)
    cov[0], cov[2], cov[3] = np.diag([9.0, 16.0, 1.0]), np.eye(3), np.eye(3)
    s = tm.navigation_summary(truth, position, cov, ["fix", "none", "odometry", "odometry"])
    assert (s.frames, s.with_solution, s.solution_rate) == (4, 3, 0.75)
    assert s.errors.count == 3 and s.errors.median == 1.0 and s.errors.max == 5.0
    assert s.nees.count == 3 and s.nees.mean == pytest.approx(1.0)  # NEES 2, 1, 0
    assert s.nees.within_95 == 1.0
    assert s.sources == {"odometry": 2, "fix": 1, "none": 1}
    # the height: errors 10, 0, 0 m against variances 1, 1, 1: NEES 100, 0, 0 (1 DOF)
    assert s.height_errors.count == 3 and s.height_errors.max == 10.0 and s.height_errors.median == 0.0
    assert s.height_nees.dof == 1 and s.height_nees.count == 3
    assert s.height_nees.mean == pytest.approx(100.0 / 3.0) and s.height_nees.within_95 == pytest.approx(
        2 / 3
    )
    horizontal_only = tm.navigation_summary(truth[:, :2], position[:, :2], cov[:, :2, :2])
    assert horizontal_only.height_nees is None and horizontal_only.nees.mean == pytest.approx(1.0)
    with pytest.raises(ValueError, match="covariance"):
        tm.navigation_summary(truth, position, cov[:2])
