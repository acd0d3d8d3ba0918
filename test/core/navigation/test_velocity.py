"""The velocity fitted to navigation solutions: its value, its stamps and its covariance, checked for
consistency by Monte Carlo (independent and serially correlated position errors, odometry drift)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from feature_matching_ros.core.navigation.velocity import SolutionVelocity, VelocityConfig

VELOCITY = np.array([12.0, -9.0, 1.5])  # east, north, up, m/s
RATE = 5.0  # solutions per second
CHI2_3DOF_95 = 7.81


def flight(estimator: SolutionVelocity, errors: np.ndarray, covariances=None, t0: float = 1000.0):
    for i, error in enumerate(errors):
        t = t0 + i / RATE
        position = np.array([100.0, 200.0, 120.0]) + VELOCITY * (t - t0) + error
        estimator.add(t, *position, covariance=None if covariances is None else covariances[i])
    return estimator.fit()


def nees_of(make_errors, trials: int = 400, covariances=None, min_samples: int = 5) -> np.ndarray:
    rng = np.random.default_rng(7)
    values = []
    for _ in range(trials):
        fit = flight(SolutionVelocity(VelocityConfig(min_samples=min_samples)), make_errors(rng), covariances)
        error = fit.velocity - VELOCITY
        values.append(float(error @ np.linalg.solve(fit.covariance, error)))
    return np.array(values)


def test_the_fit_is_the_window_mean_velocity_stamped_at_the_window_middle():
    estimator = SolutionVelocity(VelocityConfig(window_s=2.0))
    assert estimator.fit() is None
    fit = flight(estimator, np.zeros((20, 3)))
    assert fit.velocity == pytest.approx(VELOCITY)
    assert fit.stamp == pytest.approx(1000.0 + 19 / RATE)
    assert fit.mid_stamp == pytest.approx(fit.stamp - 1.0)  # 11 solutions over the last 2 s
    assert fit.vertical_known and np.allclose(fit.covariance, 0.0, atol=1e-12)
    velocity = estimator.velocity()
    assert (velocity.east, velocity.north, velocity.sigma) == pytest.approx((12.0, -9.0, 0.0), abs=1e-9)


def test_without_heights_only_the_horizontal_is_fitted():
    estimator = SolutionVelocity()
    for i in range(6):
        estimator.add(10.0 + 0.2 * i, 3.0 * i, 0.0, math.nan if i == 2 else 100.0)
    fit = estimator.fit()
    assert not fit.vertical_known and math.isnan(fit.velocity[2])
    assert np.isnan(fit.covariance[2]).all() and np.isfinite(fit.covariance[:2, :2]).all()
    assert fit.velocity[0] == pytest.approx(15.0)


def test_independent_errors_give_a_consistent_covariance():
    """Measured: NEES mean 4.0 for three axes (3 if the covariance were known: it is estimated from 9
    residuals, and the t-distribution's variance factor takes back most of Hotelling's 5.4)."""
    nees = nees_of(lambda rng: rng.normal(0.0, 0.5, (20, 3)))
    assert 2.0 < nees.mean() < 4.5, nees.mean()
    assert np.mean(nees <= CHI2_3DOF_95) >= 0.85


def ar1_errors(rho: float):
    def errors(rng):
        e = np.zeros((20, 3))
        e[0] = rng.normal(0.0, 0.5, 3)
        for i in range(1, 20):
            e[i] = rho * e[i - 1] + rng.normal(0.0, 0.5 * math.sqrt(1 - rho**2), 3)
        return e

    return errors


def test_serially_correlated_errors_are_partly_seen(monkeypatch):
    """Consecutive frames of the same ground err alike. Measured NEES means (3 expected), with the
    lag-1 correction / without it: rho 0.3: 6.7 / 7.6; rho 0.7: 15 / 23 — 11 residuals show a strong
    correlation only in part."""
    from feature_matching_ros.core.navigation import velocity as solution_velocity

    corrected = {rho: nees_of(ar1_errors(rho)).mean() for rho in (0.3, 0.7)}
    monkeypatch.setattr(solution_velocity, "_serial_correlation_factor", lambda residual: 1.0)
    plain = {rho: nees_of(ar1_errors(rho)).mean() for rho in (0.3, 0.7)}
    for rho in (0.3, 0.7):
        assert corrected[rho] < 0.92 * plain[rho], (rho, corrected[rho], plain[rho])
    assert corrected[0.3] < 8.0


def test_odometry_drift_shows_in_the_covariance_through_the_solution_covariance():
    """Positions carried by odometry with a 5 % scale error: smooth, no residual, but the solution's
    covariance grows with the distance flown, and that growth is the velocity's uncertainty."""
    speed = float(np.linalg.norm(VELOCITY))
    sigma_scale = 0.05
    covariances = [np.eye(3) * (1.0 + (sigma_scale * speed * i / RATE) ** 2) for i in range(20)]

    def errors(rng):
        scale = rng.normal(0.0, sigma_scale)
        return np.array([VELOCITY * scale * i / RATE for i in range(20)]) + rng.normal(0.0, 0.01, (20, 3))

    without = nees_of(errors, trials=200)
    with_covariance = nees_of(errors, trials=200, covariances=covariances)
    assert np.median(without) > 100  # the residuals alone know nothing of the drift
    assert with_covariance.mean() < 4.0 and np.mean(with_covariance <= CHI2_3DOF_95) >= 0.9


def test_too_uncertain_too_few_and_restarts():
    estimator = SolutionVelocity(VelocityConfig(max_sigma=0.5))
    rng = np.random.default_rng(1)
    assert flight(estimator, rng.normal(0.0, 20.0, (12, 3))) is None  # noise of 20 m: sigma >> 0.5 m/s
    estimator = SolutionVelocity(VelocityConfig(min_samples=5))
    assert flight(estimator, np.zeros((4, 3))) is None
    estimator.add(2000.0, 0.0, 0.0, 0.0)  # a gap: the window restarts
    assert estimator.fit() is None
    estimator.add(2000.2, 0.0, 0.0, 0.0, covariance=np.full((3, 3), math.nan))  # taken as no covariance
    assert len(estimator._samples) == 2 and estimator._samples[-1].covariance is None
