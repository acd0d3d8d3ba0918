import math

import numpy as np
import pytest

from feature_matching_ros.core.frames import rotation_from_euler
from feature_matching_ros.core.nav_metrics import align_similarity, ate, error_stats, rpe, score_map_fixes


def test_error_stats_match_numpy():
    e = np.random.default_rng(0).exponential(1.0, 500)
    stats = error_stats(np.r_[e, np.nan])
    assert stats.count == 500
    assert stats.median == pytest.approx(np.median(e))
    assert stats.p95 == pytest.approx(np.percentile(e, 95))
    assert stats.rmse == pytest.approx(math.sqrt(np.mean(e**2)))
    assert error_stats(np.array([])).count == 0 and math.isnan(error_stats(np.array([])).median)


def test_map_score_counts_a_known_offset_and_wrong_fixes():
    truth = np.c_[np.arange(10.0), np.zeros(10), np.full(10, 100.0)]
    estimate = truth + [2.0, 0.0, 0.5]
    estimate[3] = np.nan
    estimate[7] = truth[7] + [30.0, 0.0, 0.0]
    reasons = [""] * 10
    reasons[3] = "too few inliers: 6 < 30"
    score = score_map_fixes(truth, estimate, reasons)
    assert score.frames == 10 and score.accepted == 9
    assert score.success_rate == pytest.approx(0.9)
    assert score.horizontal.median == pytest.approx(2.0)
    assert score.horizontal.max == pytest.approx(30.0)
    assert score.wrong_fixes == 1
    assert score.rejected == {"too few inliers": 1}


def test_similarity_alignment_recovers_a_known_transform_and_ate_is_exact():
    rng = np.random.default_rng(1)
    truth = np.cumsum(rng.normal(0, 5, (200, 3)), axis=0)
    R = rotation_from_euler(0.2, -0.1, 1.3)
    estimate = (truth @ R.T) * 0.5 + [10.0, -4.0, 2.0]
    alignment = align_similarity(estimate, truth)
    assert alignment.scale == pytest.approx(2.0)
    assert np.allclose(alignment.apply(estimate), truth, atol=1e-9)
    noise = rng.normal(0, 1, truth.shape)
    result = ate(truth + noise, truth, with_scale=False)
    assert result.errors.rmse == pytest.approx(np.sqrt(np.mean(np.sum(noise**2, axis=1))), rel=0.05)
    assert result.percent == pytest.approx(100 * result.errors.rmse / result.track_length_m)
    with pytest.raises(ValueError, match="does not move"):
        align_similarity(np.zeros((5, 3)), truth[:5])


def test_rpe_of_a_scaled_copy_is_zero_after_alignment():
    truth = np.c_[np.linspace(0, 100, 50), np.sin(np.linspace(0, 3, 50)) * 10]
    estimate = truth * 3.0
    alignment = align_similarity(estimate, truth)
    assert rpe(estimate, truth, 1, alignment).max == pytest.approx(0.0, abs=1e-9)
    assert rpe(estimate, truth, 1).median > 1.0
