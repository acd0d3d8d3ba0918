"""The evaluation report of a navigation run: ``report.json``, ``report.md`` and PNG plots.

A pipeline runner fills one ``FrameRecord`` per camera frame (times in seconds, positions in the
map frame: east, north, up metres, see ``frames``) into a ``Run``; ``write_report`` scores it
(``trajectory_metrics``) and writes the files. Only the estimates of accepted frames are scored.

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

import csv
import json
import math
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import trajectory_metrics as tm
from .flight_log import AMBIGUOUS, DISJOINT, OVERLAPPING, classify_pairs
from .georef import GeoMap
from .ground_pose import horizontal_sigma
from .report_plots import plot_errors, plot_tracks, plot_trajectory

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


def _f(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _g(value: float) -> str:
    return f"{value:g}"


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_table(ev: Evaluation) -> str:
    """The markdown summary table (errors in m with 2 decimals, rates in %, latency in ms)."""
    run, n = ev.run, len(ev.run.frames)
    done = sum(f.accepted for f in run.frames)
    rows: list[tuple[str, str]] = [
        ("frames", str(n)),
        ("accepted", f"{done} ({_f(100 * ev.success_rate, 1)} %)"),
    ]
    if ev.good_fixes is not None:
        g = ev.good_fixes
        rows.append(
            (f"fixes within {_g(g['bound_m'])} m of truth", f"{g['count']} ({_f(100 * g['rate'], 1)} %)")
        )
    if ev.map is not None:
        e = ev.map.errors
        rows += [
            ("horizontal error median / p95 / max (m)", f"{_f(e.median)} / {_f(e.p95)} / {_f(e.max)}"),
            ("horizontal RMSE (m)", _f(e.rmse)),
            ("height error median / max (m)", f"{_f(ev.map.vertical.median)} / {_f(ev.map.vertical.max)}"),
            (f"wrong fixes (> {ev.map.wrong_fix_bound_m:g} m)", str(ev.map.wrong_fixes)),
            ("rejected", str(n - done)),
        ]
    if ev.tracks is not None and ev.rpe is not None and ev.pairs is not None:
        tr = ev.tracks
        rows += [
            (f"tracks evaluated (>= {tm.MIN_TRACK_FRAMES} frames)", f"{tr.evaluated} of {len(tr.tracks)}"),
            ("ATE % of track length median / worst", f"{_f(tr.median_percent)} / {_f(tr.worst_percent)}"),
            ("ATE RMSE median over tracks (m)", _f(tr.median_rmse_m)),
            ("RPE over 1 frame median / p95 (m)", f"{_f(ev.rpe.median)} / {_f(ev.rpe.p95)}"),
        ]
        rows += [(f"{k} pairs accepted", f"{v['accepted']} of {v['pairs']}") for k, v in ev.pairs.items()]
    if ev.navigation is not None:
        nv, ne = ev.navigation, ev.navigation.nees
        rows += [
            ("navigation solution", f"{nv.with_solution} ({_f(100 * nv.solution_rate, 1)} %)"),
            (
                "navigation error median / p95 / max (m)",
                f"{_f(nv.errors.median)} / {_f(nv.errors.p95)} / {_f(nv.errors.max)}",
            ),
            ("NEES mean (2 DOF, ideal 2.00)", _f(ne.mean)),
            (f"NEES <= {ne.bound_95:.3f} (χ² 95 %, ideal 0.95)", _f(ne.within_95)),
            (f"NEES <= {ne.bound_99:.3f} (χ² 99 %, ideal 0.99)", _f(ne.within_99)),
        ]
        he, hn = nv.height_errors, nv.height_nees
        if he is not None and hn is not None and hn.count:
            rows += [
                ("height error median / p95 / max (m)", f"{_f(he.median)} / {_f(he.p95)} / {_f(he.max)}"),
                ("height NEES mean (1 DOF, ideal 1.00)", _f(hn.mean)),
                (f"height NEES <= {hn.bound_95:.3f} (χ² 95 %, ideal 0.95)", _f(hn.within_95)),
            ]
    lat = ev.latency
    rows.append(
        (
            "latency median / p95 / max (ms)",
            f"{_f(lat.median_ms, 1)} / {_f(lat.p95_ms, 1)} / {_f(lat.max_ms, 1)}",
        )
    )
    rows.append(("rate at median latency (Hz)", _f(lat.hz)))
    return _table(rows, ("metric", "value"))


def markdown(ev: Evaluation, plots: Sequence[Path] = ()) -> str:
    run = ev.run
    parts = [f"# Evaluation: {run.mode} mode, {run.matcher}", ""]
    parts += [f"- {k}: {v}" for k, v in run.metadata.items()] + ["", "## Summary", "", summary_table(ev), ""]
    if ev.rejected:
        parts += ["## Rejections", "", _table(list(ev.rejected.items()), ("reason", "frames")), ""]
    if ev.rejected_by_check:
        rows = list(ev.rejected_by_check.items())
        parts += ["## Rejections by failed check", "", _table(rows, ("check", "frames")), ""]
    if ev.accepted_by_matching:
        rows = list(ev.accepted_by_matching.items())
        parts += ["## Accepted fixes by matching", "", _table(rows, ("matched by", "fixes")), ""]
    if ev.navigation is not None:
        rows = list(ev.navigation.sources.items())
        parts += ["## Navigation solution by source", "", _table(rows, ("source", "frames")), ""]
    if ev.tracks is not None:
        rows = []
        for t in ev.tracks.tracks:
            r = t.result
            cells = ("n/a",) * 4 if r is None else (_f(r.rmse), _f(r.rmse_percent), _f(r.track_length, 1))
            cells = cells if r is None else (*cells, _f(r.alignment.scale, 3))
            rows.append((t.track_id, int(t.indices[0]), int(t.indices[-1]), t.frames, *cells, t.note))
        header = ("track", "first", "last", "frames", "ATE RMSE (m)", "ATE %", "length (m)", "scale", "note")
        parts += ["## Tracks", "", _table(rows, header), ""]
    parts += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(parts) + "\n"


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # paths and other metadata objects


def report_dict(ev: Evaluation) -> dict[str, Any]:
    """Everything of the report as JSON-ready values (NaN -> None, arrays -> lists)."""
    skip = ("frames", "metadata", "mode", "matcher")
    settings = {f.name: getattr(ev.run, f.name) for f in fields(ev.run) if f.name not in skip}
    frames = [
        {**_jsonable(f), "error_m": _jsonable(float(ev.errors[i]))} for i, f in enumerate(ev.run.frames)
    ]
    if ev.nav_errors is not None and ev.nees is not None:
        for i, frame in enumerate(frames):
            frame["nav_error_m"] = _jsonable(float(ev.nav_errors[i]))
            frame["nees"] = _jsonable(float(ev.nees[i]))
    tracks = None
    if ev.tracks is not None:
        names = ("evaluated", "median_percent", "worst_percent", "median_rmse_m")
        tracks = {k: _jsonable(getattr(ev.tracks, k)) for k in names}
        keys = ("errors", "alignment", "track_length", "rmse_percent", "aligned")
        tracks["tracks"] = [
            {
                "track_id": t.track_id,
                "first": int(t.indices[0]),
                "last": int(t.indices[-1]),
                "frames": t.frames,
                "note": t.note,
                "ate": None if t.result is None else {k: _jsonable(getattr(t.result, k)) for k in keys},
            }
            for t in ev.tracks.tracks
        ]
    return {
        "mode": ev.run.mode,
        "matcher": ev.run.matcher,
        "metadata": _jsonable(ev.run.metadata),
        "settings": _jsonable(settings),
        "success_rate": _jsonable(ev.success_rate),
        "rejected": ev.rejected,
        "latency": _jsonable(ev.latency),
        "map": _jsonable(ev.map),
        "tracks": tracks,
        "rpe": _jsonable(ev.rpe),
        "pairs": ev.pairs,
        "good_fixes": _jsonable(ev.good_fixes),
        "rejected_by_check": ev.rejected_by_check,
        "accepted_by_matching": ev.accepted_by_matching,
        "navigation": _jsonable(ev.navigation),
        "frames": frames,
    }


@dataclass(frozen=True, eq=False)
class Report:
    """What ``write_report`` wrote; summary: the markdown summary table, for printing."""

    folder: Path
    json_path: Path
    markdown_path: Path
    csv_path: Path
    plots: tuple[Path, ...]
    summary: str
    evaluation: Evaluation


def write_report(run: Run, folder: str | Path, geomap: GeoMap | None = None) -> Report:
    """Score ``run`` and write report.json, report.md, frames.csv and the plots into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ev = evaluate(run)
    plots = [plot_trajectory(ev, folder / "trajectory.png", geomap), plot_errors(ev, folder / "errors.png")]
    if ev.tracks is not None:
        plots.append(plot_tracks(ev, folder / "tracks.png"))
    json_path, md_path, csv_path = folder / "report.json", folder / "report.md", folder / "frames.csv"
    json_path.write_text(json.dumps(report_dict(ev), indent=1, allow_nan=False))
    md_path.write_text(markdown(ev, plots))
    if ev.navigation is not None:
        write_navigation_csv(ev, csv_path)
    else:
        write_frames_csv(ev, csv_path)
    return Report(folder, json_path, md_path, csv_path, tuple(plots), summary_table(ev), ev)


FRAME_COLUMNS = (
    "name", "t_s", "truth_x", "truth_y", "truth_z", "est_x", "est_y", "est_z",
    "accepted", "error_m", "latency_ms", "track_id", "reason",
)  # fmt: skip


def write_frames_csv(ev: Evaluation, path: Path) -> Path:
    """One row per frame (m, s, ms; empty cells for unknown values; estimates of accepted frames)."""
    truth, estimate = ev.run.column("truth"), ev.run.column("estimate")

    def cell(v: float | None) -> str:
        return "" if v is None or not math.isfinite(v) else repr(float(v))

    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FRAME_COLUMNS)
        for i, r in enumerate(ev.run.frames):
            numbers = [r.t, *truth[i], *estimate[i]]
            writer.writerow(
                [r.name, *map(cell, numbers), int(r.accepted), cell(ev.errors[i]), cell(r.latency_ms)]
                + [r.track_id, r.reason]
            )
    return path


NAV_FRAME_COLUMNS = (
    "image", "t_s", "accepted", "reason", "failed_check", "matched_by", "east_m", "north_m", "up_m",
    "error_m", "nav_source", "nav_east_m", "nav_north_m", "nav_up_m", "nav_sigma_m", "nav_up_sigma_m",
    "nav_error_m", "nees",
    "gps_east_m", "gps_north_m", "gps_up_m", "latency_ms",
)  # fmt: skip


def write_navigation_csv(ev: Evaluation, path: Path) -> Path:
    """Navigation runs: one row per frame. east/north/up_m, error_m: the frame's fix (also a rejected
    one, when a pose was solved: see ``accepted``) and its horizontal error; nav_*: the navigation
    solution, nav_sigma_m its horizontal standard deviation (largest axis), nav_up_sigma_m its
    height's, nees dᵀ P⁻¹ d of its horizontal error; gps_*: the truth. Empty cells where there is
    no value."""
    run = ev.run
    truth, fix, nav = run.column("truth"), run.column("fix"), run.column("nav")
    fix_errors = tm.absolute_errors(fix, truth, horizontal=True)
    nav_errors = ev.nav_errors if ev.nav_errors is not None else np.full(len(run.frames), np.nan)
    nees = ev.nees if ev.nees is not None else np.full(len(run.frames), np.nan)

    def cell(v: float | None) -> str:
        return "" if v is None or not math.isfinite(v) else repr(round(float(v), 4))

    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(NAV_FRAME_COLUMNS)
        for i, r in enumerate(run.frames):
            sigma = up_sigma = None
            if r.nav_covariance is not None:
                sigma = horizontal_sigma(r.nav_covariance)
                if len(r.nav_covariance) > 2:
                    up_sigma = math.sqrt(max(float(r.nav_covariance[2, 2]), 0.0))
            writer.writerow(
                [r.name, cell(r.t), int(r.accepted), r.reason, r.failed_check, r.matched_by]
                + [*map(cell, fix[i]), cell(fix_errors[i]), r.nav_source]
                + [*map(cell, nav[i]), cell(sigma), cell(up_sigma), cell(nav_errors[i]), cell(nees[i])]
                + [*map(cell, truth[i]), cell(r.latency_ms)]
            )
    return path


def progress(total: int | None = None, desc: str = "frames", enabled: bool = True) -> Any:
    """A tqdm bar on stderr counting frames: ``bar.update()`` per frame, ``bar.close()`` at the end."""
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="frame", disable=not enabled, file=sys.stderr, dynamic_ncols=True
    )
