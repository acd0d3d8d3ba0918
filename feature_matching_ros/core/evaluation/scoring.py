"""A navigation run scored against its ground truth: ``FrameRecord`` per camera frame, ``Run``, and
``evaluate`` into an ``Evaluation`` (what ``report`` writes and ``plots`` draws).

A pipeline runner fills one ``FrameRecord`` per camera frame (times in seconds, positions in the
map frame: east, north, up metres, see ``frames``) into a ``Run``. Only the estimates of accepted
frames are scored (``trajectory_metrics``).

- map mode: success rate, horizontal error of the accepted fixes, wrong fixes, rejections by reason.
  With a continuous navigation solution (frames carrying ``nav_*`` fields, from ``Navigator``) also:
  fixes within ``good_fix_bound_m`` of the truth, rejections by failed check, and the solution's
  availability, horizontal error and covariance consistency (2-DOF NEES against χ²(2) bounds).
- keyframe mode: every track (a run of frames with one ``track_id``) is aligned to the ground truth on
  its own by a similarity (ATE, RPE over one frame with that alignment); consecutive frames are
  classed overlapping / ambiguous / disjoint by their true distance, and frame i's outcome is
  counted for the pair (i-1, i).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import trajectory_metrics as tm
from .flight_log import AMBIGUOUS, DISJOINT, OVERLAPPING, classify_pairs

MODES = ("map", "keyframe")


def _position(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    p = np.asarray(value, np.float64).reshape(-1)
    if p.size not in (2, 3):
        raise ValueError(f"{name} must be [x, y] or [x, y, z] metres, got {p.size} values")
    return np.append(p, np.nan) if p.size == 2 else p


@dataclass(frozen=True, eq=False)
class FrameRecord:
    """One camera frame. t: s; truth / estimate: map-frame [x, y(, z)] m or None (unknown / not
    localised); accepted: the pipeline published this estimate; reason: why not ('' if accepted);
    latency_ms: image in -> answer out, None without an answer; track_id: keyframe-mode track (< 0:
    none); name: image name or stamp, for the reader.

    Optional, for a continuous navigation solution: failed_check: the name of the fix check that
    rejected the frame ('' if accepted or none); nav_source: where the solution came from ('fix',
    'revisit', 'odometry', 'coast', 'none'; '' = no navigator ran); nav_position: map-frame
    [x, y(, z)] m or None (no solution); nav_covariance: its covariance, 2x2 (horizontal) or 3x3,
    m²; matched_by: how the
    map correspondences were found (the search's strategy, e.g. 'prior+guided+refined' or
    'prior+correlated+refined'). ``estimate`` may be set for a rejected fix too (its pose, for
    diagnostics): only accepted estimates are scored."""

    t: float
    truth: Any
    estimate: Any = None
    accepted: bool = False
    reason: str = ""
    latency_ms: float | None = None
    track_id: int = 0
    name: str = ""
    failed_check: str = ""
    nav_source: str = ""
    nav_position: Any = None
    nav_covariance: Any = None
    matched_by: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "truth", _position(self.truth, "truth"))
        object.__setattr__(self, "estimate", _position(self.estimate, "estimate"))
        object.__setattr__(self, "nav_position", _position(self.nav_position, "nav_position"))
        if self.nav_covariance is not None:
            c = np.asarray(self.nav_covariance, np.float64)
            if c.shape not in ((2, 2), (3, 3)):
                raise ValueError(f"nav_covariance must be 2x2 or 3x3, got shape {c.shape}")
            object.__setattr__(self, "nav_covariance", c)
        if (self.nav_covariance is None) != (self.nav_position is None):
            raise ValueError(f"frame {self.name or self.t}: nav_position and nav_covariance go together")
        if self.accepted and self.estimate is None:
            raise ValueError(f"frame {self.name or self.t}: accepted without an estimate")


@dataclass(frozen=True, eq=False)
class Run:
    """A run to report: mode ('map' | 'keyframe'), matcher name, frames in time order, free JSON-able
    metadata (bag, map, parameters...), and the evaluation settings: wrong_fix_bound_m (map mode);
    overlapping_below_m / disjoint_above_m (keyframe pair classes); with_scale (similarity, not only
    rigid, track alignment); horizontal (keyframe ATE and RPE on x, y only); good_fix_bound_m
    (navigation runs: an accepted fix this close to the truth counts as a good fix)."""

    mode: str
    matcher: str
    frames: Sequence[FrameRecord]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    wrong_fix_bound_m: float = tm.WRONG_FIX_BOUND_M
    overlapping_below_m: float = 45.0
    disjoint_above_m: float = 85.0
    with_scale: bool = True
    horizontal: bool = True
    good_fix_bound_m: float = 15.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        object.__setattr__(self, "frames", tuple(self.frames))
        if not self.frames:
            raise ValueError("a run needs at least one frame to report on")

    @property
    def navigation(self) -> bool:
        """Whether a continuous navigation solution was recorded (any frame has a nav_source)."""
        return any(f.nav_source for f in self.frames)

    def column(self, name: str) -> np.ndarray:
        """[N x 3] positions of 'truth', 'estimate' (NaN unless accepted), 'fix' (the estimate, also
        of rejected frames) or 'nav' (the navigation solution)."""
        if name not in ("truth", "estimate", "fix", "nav"):
            raise ValueError(f"no column {name!r}")
        out = np.full((len(self.frames), 3), np.nan)
        for i, f in enumerate(self.frames):
            p = {
                "truth": f.truth,
                "estimate": f.estimate if f.accepted else None,
                "fix": f.estimate,
                "nav": f.nav_position,
            }[name]
            if p is not None:
                out[i] = p
        return out

    def nav_covariances(self) -> np.ndarray:
        """[N x 3 x 3] covariance of the navigation solution's east, north and height (NaN where
        none, and the height's row and column where a solution has a horizontal one only), m²."""
        out = np.full((len(self.frames), 3, 3), np.nan)
        for i, f in enumerate(self.frames):
            if f.nav_covariance is not None:
                k = min(len(f.nav_covariance), 3)
                out[i, :k, :k] = f.nav_covariance[:k, :k]
        return out


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Scores of a run. errors [N] m: per-frame error (map: horizontal; keyframe: track-aligned);
    rejected: frames without an accepted estimate by ``reason_category``; map / tracks / rpe / pairs
    are set for their mode; pairs: class -> {'pairs', 'accepted'}. Navigation runs also: good_fixes
    {'count', 'rate', 'bound_m'} (accepted fixes within good_fix_bound_m), rejected_by_check: frames
    without an accepted fix by failed check, accepted_by_matching: accepted fixes by how their
    correspondences were found, navigation: the solution's summary, nav_errors [N] m and nees [N]
    per frame."""

    run: Run
    success_rate: float
    errors: np.ndarray
    latency: tm.LatencyStats
    rejected: dict[str, int]
    map: tm.MapSummary | None = None
    tracks: tm.TrackAteSummary | None = None
    rpe: tm.ErrorStats | None = None
    pairs: dict[str, dict[str, int]] | None = None
    good_fixes: dict[str, float] | None = None
    rejected_by_check: dict[str, int] | None = None
    accepted_by_matching: dict[str, int] | None = None
    navigation: tm.NavigationSummary | None = None
    nav_errors: np.ndarray | None = None
    nees: np.ndarray | None = None


NO_CHECK = "(no pose solved)"


def _navigation(run: Run, ev: Evaluation) -> Evaluation:
    """``ev`` with the navigation scores of ``run`` added."""
    truth, nav = run.column("truth"), run.column("nav")
    covariances = run.nav_covariances()
    accepted = np.array([f.accepted for f in run.frames], bool)
    count, rate = tm.fixes_within(ev.errors, accepted, run.good_fix_bound_m)
    checks = Counter(f.failed_check or NO_CHECK for f in run.frames if not f.accepted)
    matched_by = Counter(f.matched_by or "?" for f in run.frames if f.accepted)
    summary = tm.navigation_summary(truth, nav, covariances, [f.nav_source for f in run.frames])
    nav_errors = tm.absolute_errors(nav, truth, horizontal=True)
    nees = tm.nees(nav[:, :2] - truth[:, :2], covariances[:, :2, :2])
    return replace(
        ev,
        good_fixes={"count": count, "rate": rate, "bound_m": run.good_fix_bound_m},
        rejected_by_check=dict(checks.most_common()),
        accepted_by_matching=dict(matched_by.most_common()),
        navigation=summary,
        nav_errors=nav_errors,
        nees=nees,
    )


def evaluate(run: Run) -> Evaluation:
    """Score a run (see the module docstring for what each mode measures)."""
    truth, estimate = run.column("truth"), run.column("estimate")
    accepted = np.array([f.accepted for f in run.frames], bool)
    latency = tm.latency_stats([f.latency_ms for f in run.frames])
    if run.mode == "map":
        summary = tm.map_summary(
            truth, estimate, accepted, [f.reason for f in run.frames], run.wrong_fix_bound_m
        )
        errors = tm.absolute_errors(estimate, truth, horizontal=True)
        ev = Evaluation(run, summary.success_rate, errors, latency, summary.rejected, map=summary)
        return _navigation(run, ev) if run.navigation else ev
    d = 2 if run.horizontal else 3
    ids = [f.track_id for f in run.frames]
    tracks = tm.track_ate(estimate[:, :d], truth[:, :d], ids, run.with_scale)
    errors = np.full(len(run.frames), np.nan)
    steps = []
    for tr in tracks.tracks:
        if tr.result is not None:
            errors[tr.indices] = tr.result.per_frame
            steps.append(
                tm.rpe_errors(estimate[tr.indices, :d], truth[tr.indices, :d], 1, tr.result.alignment)
            )
    pairs = {label: {"pairs": 0, "accepted": 0} for label in (OVERLAPPING, AMBIGUOUS, DISJOINT)}
    known = np.isfinite(truth[:, :2]).all(axis=1)
    for pair in classify_pairs(truth[:, :2], run.overlapping_below_m, run.disjoint_above_m):
        if known[pair.first] and known[pair.second]:
            pairs[pair.label]["pairs"] += 1
            pairs[pair.label]["accepted"] += int(accepted[pair.second])
    rate = float(accepted.mean()) if accepted.size else float("nan")
    rpe = tm.error_stats(np.concatenate(steps) if steps else [])
    rejected = Counter(tm.reason_category(f.reason) for f in run.frames if not f.accepted)
    return Evaluation(
        run, rate, errors, latency, dict(rejected.most_common()), tracks=tracks, rpe=rpe, pairs=pairs
    )
