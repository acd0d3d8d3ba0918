"""The evaluation report of a navigation run: ``report.json``, ``report.md``, CSV tables and PNG plots.

``write_report`` scores a ``Run`` (``scoring``) and writes the files.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry.ground_pose import horizontal_sigma
from ..maps.georef import GeoMap
from . import trajectory_metrics as tm
from .plots import plot_errors, plot_tracks, plot_trajectory
from .scoring import Evaluation, Run, evaluate


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
