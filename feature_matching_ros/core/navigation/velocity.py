"""Velocity over ground from consecutive navigation solutions (positions, their stamps and covariances).

The navigator estimates positions, not a velocity, so its node (and any consumer of positions) fits
one here:

    estimator = SolutionVelocity(VelocityConfig(window_s=2.0))
    estimator.add(stamp, east, north, up, covariance)   # every solution, in order
    fit = estimator.fit()           # VelocityFit(stamp, mid_stamp, velocity [3], covariance [3 x 3]) or None
    v = estimator.velocity()        # its horizontal part: Velocity(stamp, east, north, sigma) or None

The velocity is the least-squares slope of east, north and up against time over the solutions of
the last ``window_s`` seconds: the mean velocity over the window, which under a constant acceleration
is the velocity at the window's mean stamp (``mid_stamp``, about ``window_s / 2`` before the latest
solution): in a turn or a change of climb the velocity at the latest solution differs by that lag. A
single difference would turn every correction of the solution (a map fix pulling an odometry-carried
position back) into a speed spike; the fit spreads it over the window. Its covariance has two parts:

- the regression's: the residual scatter about the line (their 3 x 3 covariance over ``n - 2``
  degrees of freedom) over the spread of the stamps: the noise of the solutions, and corrections
  within the window. Consecutive solutions err alike (frames of the same ground), which the plain
  regression variance takes for precision: it is scaled by (1 + rho) / (1 - rho) for the residuals'
  lag-1 autocorrelation rho, and by dof / (dof - 2), the variance of a t-distributed error, as it is
  estimated from few residuals. Over 11 residuals a strong correlation is only partly seen (with
  rho = 0.7 the NEES mean is 15 for 3 axes, 23 without the correction: test_solution_velocity.py);
- the drift's, when the solutions carry covariances: errors carried by odometry are not independent
  from one solution to the next but grow along the track (a scale error is a velocity error), which
  leaves no residual; the growth of the solution's covariance over the window, over the window's
  length squared, is the velocity error that explains it (its positive part: a fix that shrinks the
  covariance adds nothing here).

It needs ``min_samples`` solutions spanning ``min_span_s``; a gap longer than ``max_gap_s`` (the
solution was lost), a stamp going backwards, or a speed beyond ``max_speed`` restarts the window. A
fit whose horizontal standard error exceeds ``max_sigma`` m/s is reported as unknown. The vertical
is fitted only when every solution in the window has an up coordinate.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VelocityConfig:
    window_s: float = 2.0
    # With 5 solutions the residuals' 3 x 3 covariance has 3 degrees of freedom; with 3 it has 1, is
    # singular, and its scale is a chi-square of one degree: often far too small.
    min_samples: int = 5
    min_span_s: float = 0.3
    max_gap_s: float = 1.0
    max_sigma: float = 2.0
    max_speed: float = 100.0


@dataclass(frozen=True)
class Velocity:
    """East/north velocity, m/s, at ``stamp``; sigma: its horizontal standard error, m/s."""

    stamp: float
    east: float
    north: float
    sigma: float

    @property
    def speed(self) -> float:
        return math.hypot(self.east, self.north)


@dataclass(frozen=True, eq=False)
class VelocityFit:
    """East/north/up velocity [3], m/s, and its 3 x 3 covariance, (m/s)^2, fitted over the solutions up
    to ``stamp`` (the latest); it is the velocity at ``mid_stamp`` (their mean stamp). Without a
    vertical fit the up component and its row and column of the covariance are NaN."""

    stamp: float
    mid_stamp: float
    velocity: np.ndarray
    covariance: np.ndarray

    @property
    def vertical_known(self) -> bool:
        return bool(math.isfinite(self.velocity[2]))

    @property
    def horizontal_sigma(self) -> float:
        """The horizontal standard error, m/s: sqrt(var east + var north)."""
        return math.sqrt(max(float(np.trace(self.covariance[:2, :2])), 0.0))


@dataclass(frozen=True, eq=False)
class _Sample:
    stamp: float
    position: np.ndarray  # east, north, up (up NaN when unknown)
    covariance: np.ndarray | None  # 3 x 3 (east, north, up), m^2


class SolutionVelocity:
    def __init__(self, config: VelocityConfig | None = None) -> None:
        self.config = config or VelocityConfig()
        self._samples: deque[_Sample] = deque()

    def reset(self) -> None:
        self._samples.clear()

    def add(
        self,
        stamp: float,
        east: float,
        north: float,
        up: float = math.nan,
        covariance: np.ndarray | None = None,
    ) -> None:
        """A solution (map metres, ENU) and optionally its 3 x 3 covariance; a non-finite stamp or
        horizontal position restarts the window (a non-finite covariance is taken as none)."""
        if not all(math.isfinite(v) for v in (stamp, east, north)):
            self.reset()
            return
        if covariance is not None:
            covariance = np.asarray(covariance, np.float64).reshape(3, 3)
            if not np.isfinite(covariance).all():
                covariance = None
        if self._samples:
            last = self._samples[-1]
            dt = stamp - last.stamp
            if dt <= 0 or dt > self.config.max_gap_s:
                self.reset()
            elif (
                math.hypot(east - last.position[0], north - last.position[1])
                > self.config.max_speed * dt + 50.0
            ):
                self.reset()  # a jump no flight makes: a new solution, not a motion
        self._samples.append(_Sample(stamp, np.array([east, north, up], np.float64), covariance))
        while self._samples and stamp - self._samples[0].stamp > self.config.window_s:
            self._samples.popleft()

    def fit(self) -> VelocityFit | None:
        """The fitted velocity and its covariance, or None while too few, too short or too uncertain."""
        c = self.config
        samples = list(self._samples)
        if len(samples) < c.min_samples:
            return None
        stamps = np.array([s.stamp for s in samples])
        span = stamps[-1] - stamps[0]
        t = stamps - stamps.mean()
        spread = float(t @ t)
        if span < c.min_span_s or spread <= 0:
            return None
        positions = np.array([s.position for s in samples])
        axes = 3 if np.isfinite(positions[:, 2]).all() else 2
        xyz = positions[:, :axes] - positions[:, :axes].mean(axis=0)
        slope = (t @ xyz) / spread
        residual = xyz - np.outer(t, slope)
        dof = len(t) - 2
        covariance = residual.T @ residual / dof / spread if dof > 0 else np.full((axes, axes), math.inf)
        covariance = covariance * _serial_correlation_factor(residual)
        if dof > 2:  # a variance from dof residuals: the error is t-distributed, of variance dof / (dof - 2)
            covariance = covariance * dof / (dof - 2)
        first, last = samples[0].covariance, samples[-1].covariance
        if first is not None and last is not None:
            growth = (last - first)[:axes, :axes] / span**2
            values, vectors = np.linalg.eigh((growth + growth.T) / 2.0)
            covariance = covariance + (vectors * np.clip(values, 0.0, None)) @ vectors.T
        velocity = np.full(3, math.nan)
        velocity[:axes] = slope
        full = np.full((3, 3), math.nan)
        full[:axes, :axes] = covariance
        result = VelocityFit(float(stamps[-1]), float(stamps.mean()), velocity, full)
        if not result.horizontal_sigma <= c.max_sigma:
            return None
        return result

    def velocity(self) -> Velocity | None:
        """The horizontal part of :meth:`fit`."""
        fit = self.fit()
        if fit is None:
            return None
        return Velocity(fit.stamp, float(fit.velocity[0]), float(fit.velocity[1]), fit.horizontal_sigma)


def _serial_correlation_factor(residual: np.ndarray) -> float:
    """How much a slope's variance from ``residual`` [n x axes] understates it when consecutive errors
    are alike (consecutive frames of the same ground): (1 + rho) / (1 - rho) for the residuals' lag-1
    autocorrelation rho (an AR(1) model), rho clipped to [0, 0.8]; 1 for fewer than 4 residuals."""
    if len(residual) < 4:
        return 1.0
    energy = float((residual**2).sum())
    if energy <= 0.0:
        return 1.0
    rho = float((residual[1:] * residual[:-1]).sum()) / energy
    rho = min(max(rho, 0.0), 0.8)
    return (1.0 + rho) / (1.0 - rho)
