"""Navigation accuracy: error statistics, map-fix scoring, similarity alignment, ATE and RPE.

Positions are map-frame metres, [N x 2] or [N x 3] float arrays. Frames without an estimate are
NaN rows; they count against the success rate and are left out of error statistics.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ErrorStats:
    """count, and mean / median / RMSE / 95th percentile / max of the errors (NaN when count is 0)."""

    count: int
    mean: float
    median: float
    rmse: float
    p95: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def error_stats(errors: np.ndarray) -> ErrorStats:
    e = np.asarray(errors, np.float64).ravel()
    e = e[np.isfinite(e)]
    if e.size == 0:
        nan = math.nan
        return ErrorStats(0, nan, nan, nan, nan, nan)
    return ErrorStats(
        int(e.size),
        float(e.mean()),
        float(np.median(e)),
        float(np.sqrt(np.mean(e**2))),
        float(np.percentile(e, 95)),
        float(e.max()),
    )


@dataclass(frozen=True)
class MapScore:
    """Absolute localisation over a flight: accepted fixes, their horizontal errors, wrong fixes
    (accepted with an error above ``wrong_bound_m``), and why the others were rejected."""

    frames: int
    accepted: int
    horizontal: ErrorStats
    vertical: ErrorStats
    wrong_fixes: int
    wrong_bound_m: float
    rejected: dict[str, int]

    @property
    def success_rate(self) -> float:
        return self.accepted / self.frames if self.frames else math.nan


def score_map_fixes(
    truth: np.ndarray, estimate: np.ndarray, reasons: list[str], wrong_bound_m: float = 15.0
) -> MapScore:
    """``estimate`` rows are NaN where no fix was accepted; ``reasons``: why, per frame ('' if accepted)."""
    truth = np.asarray(truth, np.float64).reshape(len(reasons), -1)
    estimate = np.asarray(estimate, np.float64).reshape(truth.shape)
    accepted = np.isfinite(estimate).all(axis=1)
    horizontal = np.linalg.norm(estimate[accepted, :2] - truth[accepted, :2], axis=1)
    vertical = np.abs(estimate[accepted, 2] - truth[accepted, 2]) if truth.shape[1] > 2 else np.zeros(0)
    rejected = Counter(_reason_kind(r) for r, ok in zip(reasons, accepted, strict=True) if not ok)
    return MapScore(
        len(reasons),
        int(accepted.sum()),
        error_stats(horizontal),
        error_stats(vertical),
        int((horizontal > wrong_bound_m).sum()),
        wrong_bound_m,
        dict(rejected.most_common()),
    )


def _reason_kind(reason: str) -> str:
    """The kind of a rejection, without its numbers: 'too few inliers: 6 < 30' -> 'too few inliers'."""
    return (reason or "no answer").split(":")[0].split(" (")[0].strip()


@dataclass(frozen=True)
class Similarity:
    """x -> scale * rotation @ x + translation."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(points, np.float64) @ self.rotation.T + self.translation


def align_similarity(estimate: np.ndarray, truth: np.ndarray, with_scale: bool = True) -> Similarity:
    """The least-squares similarity taking ``estimate`` onto ``truth`` (Umeyama's closed form)."""
    x = np.asarray(estimate, np.float64)
    y = np.asarray(truth, np.float64)
    if x.shape != y.shape or x.ndim != 2 or len(x) < x.shape[1]:
        raise ValueError(f"need matching [N x D] point sets with N >= D, got {x.shape} and {y.shape}")
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mx, y - my
    variance = float((xc**2).sum() / len(x))
    if variance <= 1e-12:
        raise ValueError("the estimated trajectory does not move: no alignment")
    U, S, Vt = np.linalg.svd(yc.T @ xc / len(x))
    sign = np.eye(x.shape[1])
    sign[-1, -1] = np.sign(np.linalg.det(U) * np.linalg.det(Vt)) or 1.0
    rotation = U @ sign @ Vt
    scale = float(np.trace(np.diag(S) @ sign) / variance) if with_scale else 1.0
    return Similarity(scale, rotation, my - scale * rotation @ mx)


@dataclass(frozen=True)
class AteResult:
    """Absolute trajectory error after a similarity alignment; ``percent`` = RMSE / track length."""

    errors: ErrorStats
    alignment: Similarity
    track_length_m: float

    @property
    def percent(self) -> float:
        return 100.0 * self.errors.rmse / self.track_length_m if self.track_length_m > 0 else math.nan


def ate(estimate: np.ndarray, truth: np.ndarray, with_scale: bool = True) -> AteResult:
    alignment = align_similarity(estimate, truth, with_scale)
    errors = np.linalg.norm(alignment.apply(estimate) - np.asarray(truth, np.float64), axis=1)
    length = float(np.linalg.norm(np.diff(np.asarray(truth, np.float64), axis=0), axis=1).sum())
    return AteResult(error_stats(errors), alignment, length)


def rpe(
    estimate: np.ndarray, truth: np.ndarray, delta: int = 1, alignment: Similarity | None = None
) -> ErrorStats:
    """Relative position error: how wrong each ``delta``-frame displacement is, after the rotation
    and scale of ``alignment`` (if given) so that a frame change does not count as error."""
    est = np.asarray(estimate, np.float64)
    if alignment is not None:
        est = alignment.scale * est @ alignment.rotation.T
    d_est = est[delta:] - est[:-delta]
    d_true = np.asarray(truth, np.float64)[delta:] - np.asarray(truth, np.float64)[:-delta]
    return error_stats(np.linalg.norm(d_est - d_true, axis=1))
