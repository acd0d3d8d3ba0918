"""Velocity over ground from consecutive navigation solutions (positions and their stamps).

The navigator publishes positions, not a velocity (its Odometry twist says "not estimated"), so a
consumer that needs one (NMEA speed and course) fits it here:

    estimator = SolutionVelocity(VelocityConfig(window_s=2.0))
    estimator.add(stamp, east, north)          # every solution, in order
    v = estimator.velocity()                   # Velocity(east, north, sigma) or None

The velocity is the least-squares slope of east and north against time over the solutions of the
last ``window_s`` seconds. A single difference would turn every correction of the solution (a map
fix pulling an odometry-carried position back) into a speed spike; the fit spreads it over the
window, and its residual scatter measures it: the standard error of the slopes is the velocity's
sigma, and a velocity less certain than ``max_sigma`` m/s is reported as unknown. It needs
``min_samples`` solutions spanning ``min_span_s``; a gap longer than ``max_gap_s`` (the solution
was lost), a stamp going backwards, or a speed beyond ``max_speed`` restarts the window.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VelocityConfig:
    window_s: float = 2.0
    min_samples: int = 3
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


class SolutionVelocity:
    def __init__(self, config: VelocityConfig | None = None) -> None:
        self.config = config or VelocityConfig()
        self._samples: deque[tuple[float, float, float]] = deque()

    def reset(self) -> None:
        self._samples.clear()

    def add(self, stamp: float, east: float, north: float) -> None:
        """A solution; a non-finite one restarts the window."""
        if not all(math.isfinite(v) for v in (stamp, east, north)):
            self.reset()
            return
        if self._samples:
            last = self._samples[-1]
            dt = stamp - last[0]
            if dt <= 0 or dt > self.config.max_gap_s:
                self.reset()
            elif math.hypot(east - last[1], north - last[2]) > self.config.max_speed * dt + 50.0:
                self.reset()  # a jump no flight makes: a new solution, not a motion
        self._samples.append((stamp, east, north))
        while self._samples and stamp - self._samples[0][0] > self.config.window_s:
            self._samples.popleft()

    def velocity(self) -> Velocity | None:
        """The fitted velocity, or None while too few, too short or too uncertain."""
        c = self.config
        if len(self._samples) < c.min_samples:
            return None
        data = np.asarray(self._samples, np.float64)
        t = data[:, 0] - data[:, 0].mean()
        spread = float(t @ t)
        if data[-1, 0] - data[0, 0] < c.min_span_s or spread <= 0:
            return None
        xy = data[:, 1:] - data[:, 1:].mean(axis=0)
        slope = (t @ xy) / spread
        residual = xy - np.outer(t, slope)
        dof = len(t) - 2
        variance = float((residual**2).sum()) / dof / spread if dof > 0 else math.inf
        sigma = math.sqrt(variance)
        if not sigma <= c.max_sigma:
            return None
        return Velocity(float(data[-1, 0]), float(slope[0]), float(slope[1]), sigma)
