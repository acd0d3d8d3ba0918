"""Trajectory accuracy: similarity alignment, absolute and relative errors, map-fix and latency summaries.

Positions are float64 arrays [N x 3] (x east, y north, z up; metres, map frame, see ``frames``)
or [N x 2] (x, y only); row i of an estimate and of the ground truth belong to the same frame.
A row holding NaN means "no estimate for this frame"; statistics leave such rows out.
Errors are metres, latencies milliseconds, times seconds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WRONG_FIX_BOUND_M = 15.0
MIN_TRACK_FRAMES = 3
_DEGENERATE_TOL = 1e-10


def _points(values: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(values, np.float64)
    if p.ndim != 2 or p.shape[1] not in (2, 3):
        raise ValueError(f"{name} must be an [N x 2] or [N x 3] array of positions, got shape {p.shape}")
    return p


def _pair(estimate: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e, t = _points(estimate, "estimate"), _points(truth, "truth")
    if e.shape != t.shape:
        raise ValueError(f"estimate {e.shape} and truth {t.shape} must have the same shape")
    return e, t


@dataclass(frozen=True, eq=False)
class Similarity:
    """x -> scale * rotation @ x + translation (rotation 2x2 or 3x3, det +1; translation in metres)."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """The transformed points [N x d]."""
        p = np.asarray(points, np.float64)
        return self.scale * p @ self.rotation.T + self.translation

    @property
    def yaw_deg(self) -> float:
        """Rotation about the z axis in degrees, counter-clockwise."""
        return float(np.degrees(np.arctan2(self.rotation[1, 0], self.rotation[0, 0])))


def align_similarity(estimate: np.ndarray, truth: np.ndarray, with_scale: bool = True) -> Similarity:
    """The similarity (or rigid motion, ``with_scale=False``) T minimising sum |T(estimate_i) - truth_i|^2.

    Closed form of Umeyama (1991). Needs finite rows: at least 2 distinct points in 2-D, at least
    3 points not on one line in 3-D; otherwise ValueError.
    """
    x, y = _pair(estimate, truth)
    if not np.isfinite(x).all() or not np.isfinite(y).all():
        raise ValueError("align_similarity needs finite positions (drop frames without an estimate first)")
    d = x.shape[1]
    if len(x) < d:
        raise ValueError(f"aligning {d}-D points needs at least {d} of them, got {len(x)}")
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mx, y - my
    var_x, var_y = float((xc**2).sum(axis=1).mean()), float((yc**2).sum(axis=1).mean())
    shape = "distinct" if d == 2 else "non-collinear"
    if var_x <= 0.0 or var_y <= 0.0:
        raise ValueError(f"cannot align: the points must be {shape}, but they all coincide")
    u, sv, vt = np.linalg.svd(yc.T @ xc / len(x))
    if sv[d - 2] <= _DEGENERATE_TOL * np.sqrt(var_x * var_y):
        raise ValueError(f"cannot align: the {d}-D points are degenerate (need {shape} points)")
    s = np.ones(d)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[-1] = -1.0
    rotation = u @ np.diag(s) @ vt
    scale = float((sv * s).sum() / var_x) if with_scale else 1.0
    return Similarity(scale, rotation, my - scale * rotation @ mx)


def absolute_errors(estimate: np.ndarray, truth: np.ndarray, horizontal: bool = True) -> np.ndarray:
    """Per-frame Euclidean distance [N] (m); horizontal: x and y only. NaN where a row holds NaN."""
    e, t = _pair(estimate, truth)
    if horizontal:
        e, t = e[:, :2], t[:, :2]
    return np.linalg.norm(e - t, axis=1)


@dataclass(frozen=True)
class ErrorStats:
    """Summary of errors (m, or the unit of the input). count: finite values used; NaN when 0."""

    count: int
    mean: float
    median: float
    rmse: float
    p95: float
    max: float


def error_stats(errors: np.ndarray | Sequence[float]) -> ErrorStats:
    """Statistics over the finite values of ``errors`` (p95: numpy's linear percentile)."""
    e = np.asarray(errors, np.float64).reshape(-1)
    e = e[np.isfinite(e)]
    if e.size == 0:
        nan = float("nan")
        return ErrorStats(0, nan, nan, nan, nan, nan)
    return ErrorStats(
        int(e.size),
        float(e.mean()),
        float(np.median(e)),
        float(np.sqrt(np.mean(e**2))),
        float(np.percentile(e, 95)),
        float(e.max()),
    )


def track_length(positions: np.ndarray) -> float:
    """Sum of the step lengths between consecutive finite rows (m)."""
    p = _points(positions, "positions")
    p = p[np.isfinite(p).all(axis=1)]
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) if len(p) > 1 else 0.0


@dataclass(frozen=True, eq=False)
class AteResult:
    """Absolute trajectory error after aligning the estimate to the truth.

    errors: statistics of the aligned per-frame distances; per_frame [N]: those distances (NaN for
    frames without an estimate); aligned [N x d]: the aligned estimate; track_length: ground-truth
    length over the same frames (m); rmse_percent: RMSE / track_length * 100 (NaN for length 0).
    """

    errors: ErrorStats
    alignment: Similarity
    per_frame: np.ndarray
    aligned: np.ndarray
    track_length: float
    rmse_percent: float

    @property
    def rmse(self) -> float:
        return self.errors.rmse

    @property
    def median(self) -> float:
        return self.errors.median

    @property
    def max(self) -> float:
        return self.errors.max


def ate(estimate: np.ndarray, truth: np.ndarray, with_scale: bool = True) -> AteResult:
    """Align on the frames where both rows are finite, then measure the full-dimensional distances.

    Pass [N x 2] arrays for a horizontal ATE. ValueError when those frames are degenerate.
    """
    e, t = _pair(estimate, truth)
    ok = np.isfinite(e).all(axis=1) & np.isfinite(t).all(axis=1)
    alignment = align_similarity(e[ok], t[ok], with_scale)
    aligned = np.full_like(e, np.nan)
    aligned[ok] = alignment.apply(e[ok])
    per_frame = np.linalg.norm(aligned - t, axis=1)
    stats = error_stats(per_frame)
    length = track_length(t[ok])
    percent = 100.0 * stats.rmse / length if length > 0 else float("nan")
    return AteResult(stats, alignment, per_frame, aligned, length, percent)


def rpe_errors(
    estimate: np.ndarray, truth: np.ndarray, delta: int = 1, alignment: Similarity | None = None
) -> np.ndarray:
    """|R' (est[i+delta] - est[i]) - (truth[i+delta] - truth[i])| for each i [N - delta] (m).

    Choice: with ``alignment`` the estimated displacements are first scaled and rotated by that
    similarity (pass ``ate(...).alignment``; its translation cancels), which measures drift of the
    shape; without it (default) they are compared as estimated, so scale and heading errors count.
    NaN where either frame of a pair has no estimate.
    """
    if delta < 1:
        raise ValueError(f"rpe delta must be >= 1 frame, got {delta}")
    e, t = _pair(estimate, truth)
    de, dt = e[delta:] - e[:-delta], t[delta:] - t[:-delta]
    if alignment is not None:
        de = alignment.scale * de @ alignment.rotation.T
    return np.linalg.norm(de - dt, axis=1)


def rpe(
    estimate: np.ndarray, truth: np.ndarray, delta: int = 1, alignment: Similarity | None = None
) -> ErrorStats:
    """Relative pose error on positions over ``delta`` frames; see ``rpe_errors``."""
    return error_stats(rpe_errors(estimate, truth, delta, alignment))


def split_tracks(track_ids: np.ndarray | Sequence[int]) -> list[np.ndarray]:
    """Frame indices of each track: a maximal run of consecutive frames with the same id.

    Negative ids mean "in no track" and start no track.
    """
    ids = np.asarray(track_ids).reshape(-1)
    tracks: list[np.ndarray] = []
    start = 0
    for i in range(1, ids.size + 1):
        if i == ids.size or ids[i] != ids[start]:
            if ids[start] >= 0:
                tracks.append(np.arange(start, i))
            start = i
    return tracks


@dataclass(frozen=True, eq=False)
class TrackAte:
    """One track: its id, frame indices, frames with an estimate, and its ATE (None with a note why)."""

    track_id: int
    indices: np.ndarray
    frames: int
    result: AteResult | None
    note: str = ""


@dataclass(frozen=True, eq=False)
class TrackAteSummary:
    """Per-track ATE; median/worst of rmse_percent over evaluated tracks (NaN when none)."""

    tracks: tuple[TrackAte, ...]
    evaluated: int
    median_percent: float
    worst_percent: float
    median_rmse_m: float


def track_ate(
    estimate: np.ndarray,
    truth: np.ndarray,
    track_ids: np.ndarray | Sequence[int],
    with_scale: bool = True,
    min_frames: int = MIN_TRACK_FRAMES,
) -> TrackAteSummary:
    """ATE of each track aligned on its own; tracks with fewer than ``min_frames`` estimated frames,
    or degenerate ones, are listed with a note but not summarised."""
    e, t = _pair(estimate, truth)
    ids = np.asarray(track_ids).reshape(-1)
    if ids.size != len(e):
        raise ValueError(f"{ids.size} track ids for {len(e)} frames")
    tracks = []
    for idx in split_tracks(ids):
        frames = int((np.isfinite(e[idx]).all(axis=1) & np.isfinite(t[idx]).all(axis=1)).sum())
        result, note = None, ""
        if frames < min_frames:
            note = f"{frames} frames with an estimate < {min_frames}"
        else:
            try:
                result = ate(e[idx], t[idx], with_scale)
            except ValueError as exc:
                note = str(exc)
        tracks.append(TrackAte(int(ids[idx[0]]), idx, frames, result, note))
    done = [tr.result for tr in tracks if tr.result is not None]
    percents = np.array([r.rmse_percent for r in done])
    finite = percents[np.isfinite(percents)]
    nan = float("nan")
    return TrackAteSummary(
        tuple(tracks),
        len(done),
        float(np.median(finite)) if finite.size else nan,
        float(finite.max()) if finite.size else nan,
        float(np.median([r.rmse for r in done])) if done else nan,
    )


def reason_category(reason: str) -> str:
    """A rejection reason with its numbers replaced by '#', so that equal checks group together."""
    text = re.sub(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", "#", reason.strip())
    return text or "unknown"


@dataclass(frozen=True)
class MapSummary:
    """Map-mode outcome. success_rate: accepted / frames; errors: horizontal error (m) of the accepted
    fixes that have a ground truth; vertical: their |z error| (m; count 0 for 2-D input);
    wrong_fixes: accepted fixes with horizontal error > wrong_fix_bound_m; rejected: frame count by
    ``reason_category`` of the frames without an accepted fix."""

    frames: int
    accepted: int
    success_rate: float
    errors: ErrorStats
    vertical: ErrorStats
    wrong_fixes: int
    wrong_fix_bound_m: float
    rejected: dict[str, int]


def map_summary(
    truth: np.ndarray,
    estimate: np.ndarray,
    accepted: np.ndarray | Sequence[bool],
    reasons: Sequence[str],
    wrong_fix_bound_m: float = WRONG_FIX_BOUND_M,
) -> MapSummary:
    """Summarise map fixes. ``estimate`` rows are NaN where nothing was localised; an accepted frame
    must have an estimate (ValueError otherwise)."""
    e, t = _pair(estimate, truth)
    ok = np.asarray(accepted, bool).reshape(-1)
    if ok.size != len(e) or len(reasons) != len(e):
        raise ValueError(f"{len(e)} frames but {ok.size} accepted flags and {len(reasons)} reasons")
    if not np.isfinite(e[ok, :2]).all():
        raise ValueError("an accepted fix has no (finite) estimated position")
    errors = absolute_errors(e[ok], t[ok], horizontal=True)
    rejected = Counter(reason_category(r) for r, a in zip(reasons, ok, strict=True) if not a)
    return MapSummary(
        frames=len(e),
        accepted=int(ok.sum()),
        success_rate=float(ok.mean()) if ok.size else float("nan"),
        errors=error_stats(errors),
        vertical=error_stats(np.abs(e[ok, 2] - t[ok, 2]) if e.shape[1] == 3 else []),
        wrong_fixes=int((errors[np.isfinite(errors)] > wrong_fix_bound_m).sum()),
        wrong_fix_bound_m=float(wrong_fix_bound_m),
        rejected=dict(rejected.most_common()),
    )


@dataclass(frozen=True)
class LatencyStats:
    """Per-frame processing time (ms) over the frames that have one; hz = 1000 / median_ms, the
    typical rate when frames are processed back to back (1000 / mean_ms is the sustained rate)."""

    count: int
    mean_ms: float
    median_ms: float
    p95_ms: float
    max_ms: float
    hz: float


def latency_stats(latency_ms: np.ndarray | Sequence[float | None]) -> LatencyStats:
    """Latency statistics; None and NaN entries (no answer) are left out."""
    values = np.array([np.nan if v is None else v for v in latency_ms], np.float64)
    s = error_stats(values)
    hz = 1000.0 / s.median if s.count and s.median > 0 else float("nan")
    return LatencyStats(s.count, s.mean, s.median, s.p95, s.max, hz)


# χ²(2) quantiles: for 2 degrees of freedom P(χ² <= x) = 1 - exp(-x / 2), so x = -2 ln(1 - p).
CHI2_2DOF_95 = -2.0 * float(np.log(0.05))  # 5.991
CHI2_2DOF_99 = -2.0 * float(np.log(0.01))  # 9.210
CHI2_1DOF_95 = 3.841459  # the square of the normal distribution's 97.5 % quantile
CHI2_1DOF_99 = 6.634897


def fixes_within(
    errors: np.ndarray | Sequence[float], accepted: np.ndarray | Sequence[bool], bound_m: float
) -> tuple[int, float]:
    """(count, rate) of frames with an accepted fix whose error (m, NaN: no truth) is <= bound_m;
    the rate is over all frames (NaN for none)."""
    e = np.asarray(errors, np.float64).reshape(-1)
    ok = np.asarray(accepted, bool).reshape(-1)
    if e.size != ok.size:
        raise ValueError(f"{e.size} errors but {ok.size} accepted flags")
    good = ok & np.isfinite(e) & (e <= bound_m)
    count = int(good.sum())
    return count, (count / e.size if e.size else float("nan"))


def nees(errors: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    """Normalised estimation error squared dᵀ P⁻¹ d per frame [N].

    errors [N x d] (estimate - truth), covariances [N x d x d] (the estimate's covariance). NaN where
    either holds NaN or the covariance is not positive definite (no consistent value exists).
    """
    d = np.asarray(errors, np.float64)
    P = np.asarray(covariances, np.float64)
    if d.ndim != 2 or P.shape != (*d.shape, d.shape[1]):
        raise ValueError(f"errors [N x d] and covariances [N x d x d] expected, got {d.shape} and {P.shape}")
    out = np.full(len(d), np.nan)
    for i in range(len(d)):
        if not (np.isfinite(d[i]).all() and np.isfinite(P[i]).all()):
            continue
        try:
            L = np.linalg.cholesky(0.5 * (P[i] + P[i].T))
        except np.linalg.LinAlgError:
            continue
        y = np.linalg.solve(L, d[i])
        out[i] = float(y @ y)
    return out


@dataclass(frozen=True)
class NeesStats:
    """Covariance consistency of ``dof``-dimensional errors (2: horizontal position, 1: height) over
    the frames with a NEES value. For a consistent filter the NEES follows χ²(dof): mean ``dof``, 95 %
    of frames below ``bound_95`` (2 DOF: 5.991, 1 DOF: 3.841) and 99 % below ``bound_99`` (9.210,
    6.635). mean above ``dof`` / low fractions: the covariance is too small (overconfident); mean well
    below: too large. NaN when count is 0."""

    count: int
    mean: float
    median: float
    within_95: float
    within_99: float
    bound_95: float = CHI2_2DOF_95
    bound_99: float = CHI2_2DOF_99
    dof: int = 2


def nees_stats(values: np.ndarray | Sequence[float], dof: int = 2) -> NeesStats:
    """Statistics of ``dof``-DOF (2 or 1) NEES values (NaN entries left out)."""
    bounds = {2: (CHI2_2DOF_95, CHI2_2DOF_99), 1: (CHI2_1DOF_95, CHI2_1DOF_99)}
    if dof not in bounds:
        raise ValueError(f"NEES statistics for 1 or 2 degrees of freedom, got {dof}")
    b95, b99 = bounds[dof]
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        nan = float("nan")
        return NeesStats(0, nan, nan, nan, nan, b95, b99, dof)
    return NeesStats(
        int(v.size),
        float(v.mean()),
        float(np.median(v)),
        float(np.mean(v <= b95)),
        float(np.mean(v <= b99)),
        b95,
        b99,
        dof,
    )


@dataclass(frozen=True)
class NavigationSummary:
    """A continuous navigation solution against the truth. frames: all frames; with_solution: frames
    with a position (rate over all frames); errors: horizontal error (m) of the frames with a
    solution and a truth; nees: consistency of those errors with the solution's horizontal
    covariance; sources: frame count by source of the solution ('fix', 'odometry', 'coast', 'none');
    height_errors, height_nees: the same for the height, where truth, solution and covariance have it."""

    frames: int
    with_solution: int
    solution_rate: float
    errors: ErrorStats
    nees: NeesStats
    sources: dict[str, int]
    height_errors: ErrorStats | None = None
    height_nees: NeesStats | None = None


def navigation_summary(
    truth: np.ndarray,
    position: np.ndarray,
    covariance: np.ndarray,
    sources: Sequence[str] = (),
) -> NavigationSummary:
    """Score a navigation solution: truth and position [N x 2|3] (NaN rows: unknown / no solution),
    covariance [N x 2 x 2] or larger (its upper-left 2x2 block is the horizontal one, [2, 2] the
    height's variance; NaN: none)."""
    p, t = _pair(position, truth)
    P = np.asarray(covariance, np.float64)
    if P.ndim != 3 or len(P) != len(p) or P.shape[1] < 2 or P.shape[1] != P.shape[2]:
        raise ValueError(f"covariance must be [N x k x k] with k >= 2 for {len(p)} frames, got {P.shape}")
    has = np.isfinite(p[:, :2]).all(axis=1)
    d = p[:, :2] - t[:, :2]
    values = nees(d, P[:, :2, :2])
    counted = Counter(s or "none" for s in sources)
    height_errors = height_nees = None
    if p.shape[1] > 2 and t.shape[1] > 2 and P.shape[1] > 2:
        dz = p[:, 2:3] - t[:, 2:3]
        height_errors = error_stats(np.abs(dz[:, 0]))
        height_nees = nees_stats(nees(dz, P[:, 2:3, 2:3]), dof=1)
    return NavigationSummary(
        frames=len(p),
        with_solution=int(has.sum()),
        solution_rate=float(has.mean()) if len(p) else float("nan"),
        errors=error_stats(np.linalg.norm(d, axis=1)),
        nees=nees_stats(values),
        sources=dict(counted.most_common()),
        height_errors=height_errors,
        height_nees=height_nees,
    )
