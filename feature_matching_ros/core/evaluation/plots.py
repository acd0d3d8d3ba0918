"""The plots of an evaluation report: trajectory (over the map, when given), error over time, tracks.

matplotlib is imported inside the functions (Agg canvas, no display), so scoring needs none of it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..maps.georef import GeoMap
from .scoring import Evaluation


def _figure(size: tuple[float, float], rows: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, 1, **kwargs)


def _frame_axes(ax: Any, points: np.ndarray, title: str) -> None:
    """Equal-scale east/north axes around the finite ``points`` with a margin."""
    p = points[np.isfinite(points).all(axis=1)]
    if len(p):
        lo, hi = p.min(axis=0), p.max(axis=0)
        margin = max(0.08 * float((hi - lo).max()), 10.0)
        ax.set_xlim(lo[0] - margin, hi[0] + margin)
        ax.set_ylim(lo[1] - margin, hi[1] + margin)
    ax.set_aspect("equal")
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)


def map_raster(
    geomap: GeoMap, xlim: tuple[float, float], ylim: tuple[float, float], max_pixels: int = 1600
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The map resampled north up over the map-frame box ``xlim`` x ``ylim`` (m): an RGBA image
    (alpha 0 off the map or on no-data) and its imshow extent (left, right, bottom, top) in metres."""
    import cv2

    (x0, x1), (y0, y1) = xlim, ylim
    g = max(geomap.georef.ground_sample_distance, max(x1 - x0, y1 - y0) / max_pixels)
    w, h = max(1, math.ceil((x1 - x0) / g)), max(1, math.ceil((y1 - y0) / g))
    a = geomap.georef.affine
    inv = np.linalg.inv(a[:, :2])
    # Raster pixel (c, r) -> map (x0 + (c + 0.5) g, y1 - (r + 0.5) g) -> map-image pixel.
    to_map = np.array([[g, 0.0, x0 + 0.5 * g], [0.0, -g, y1 - 0.5 * g]])
    m = np.hstack([inv @ to_map[:, :2], (inv @ (to_map[:, 2] - a[:, 2]))[:, None]])
    flags = cv2.WARP_INVERSE_MAP
    rgb = cv2.warpAffine(geomap.image, m, (w, h), flags=cv2.INTER_LINEAR | flags, borderValue=0)
    alpha = cv2.warpAffine(geomap.valid.astype(np.uint8) * 255, m, (w, h), flags=cv2.INTER_NEAREST | flags)
    return np.dstack([rgb, alpha]), (x0, x0 + w * g, y1 - h * g, y1)


def plot_trajectory(ev: Evaluation, path: Path, geomap: GeoMap | None = None) -> Path:
    """Ground truth and accepted estimates in the map frame; rejected frames marked at their truth;
    the navigation solution, when the run has one."""
    run = ev.run
    truth, est = run.column("truth"), run.column("estimate")
    nav = run.column("nav") if ev.navigation is not None else np.full_like(truth, np.nan)
    accepted = np.array([f.accepted for f in run.frames], bool)
    fig, ax = _figure((8.0, 8.0))
    points = np.vstack([truth[:, :2], est[:, :2], nav[:, :2]])
    _frame_axes(ax, points, f"{run.mode} mode, {run.matcher}: trajectory")
    if geomap is not None:
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        rgba, extent = map_raster(geomap, xlim, ylim)
        ax.imshow(rgba, extent=extent, origin="upper", zorder=0, interpolation="bilinear")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
    ax.plot(truth[:, 0], truth[:, 1], "-", color="0.15", lw=1.2, marker=".", ms=3, label="ground truth")
    ax.plot(truth[:1, 0], truth[:1, 1], "^", color="0.15", ms=9, label="start")
    if ev.navigation is not None:
        ax.plot(nav[:, 0], nav[:, 1], "-", color="tab:purple", lw=1.2, alpha=0.8, label="navigation solution")
    ax.plot(est[:, 0], est[:, 1], ".-", color="tab:blue", lw=0.8, ms=5, label="estimate (accepted)")
    if ev.map is not None:
        wrong = np.nan_to_num(ev.errors, nan=0.0) > run.wrong_fix_bound_m
        ax.plot(est[wrong, 0], est[wrong, 1], "o", mfc="none", color="tab:orange", ms=10, label="wrong fix")
    rejected = ~accepted
    ax.plot(truth[rejected, 0], truth[rejected, 1], "x", color="tab:red", ms=7, label="rejected (at truth)")
    ax.legend(loc="best", fontsize=8)
    fig.savefig(path)
    return path


def plot_errors(ev: Evaluation, path: Path) -> Path:
    """Per-frame error over time, above a strip of the accepted/rejected state."""
    run = ev.run
    t = np.array([f.t for f in run.frames], np.float64)
    t = t - t[0] if t.size else t
    accepted = np.array([f.accepted for f in run.frames], bool)
    fig, (ax, state) = _figure((10.0, 5.0), 2, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    label = "horizontal error (m)" if ev.map is not None else "track-aligned error (m)"
    ax.plot(t, ev.errors, ".-", color="tab:blue", label=label)
    if ev.nav_errors is not None:
        ax.plot(t, ev.nav_errors, "-", color="tab:purple", lw=1.0, label="navigation solution error (m)")
    if ev.map is not None:
        ax.axhline(run.wrong_fix_bound_m, ls="--", color="tab:orange", label="wrong-fix bound")
    ax.set_ylabel(label)
    ax.set_title(f"{run.mode} mode, {run.matcher}: error over time")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    state.plot(t[accepted], np.ones(accepted.sum()), "|", color="tab:green", ms=14)
    state.plot(t[~accepted], np.zeros((~accepted).sum()), "|", color="tab:red", ms=14)
    state.set_yticks([0, 1], ["rejected", "accepted"])
    state.set_ylim(-0.6, 1.6)
    state.set_xlabel("time since the first frame (s)")
    fig.savefig(path)
    return path


def plot_tracks(ev: Evaluation, path: Path) -> Path:
    """Keyframe mode: each evaluated track aligned to the ground truth on its own."""
    truth = ev.run.column("truth")
    fig, ax = _figure((8.0, 8.0))
    _frame_axes(ax, truth[:, :2], f"keyframe mode, {ev.run.matcher}: tracks aligned by similarity")
    ax.plot(truth[:, 0], truth[:, 1], "-", color="0.6", lw=2.0, label="ground truth")
    done = [tr for tr in (ev.tracks.tracks if ev.tracks else ()) if tr.result is not None]
    for k, tr in enumerate(done):
        a = tr.result.aligned
        label = f"track {tr.track_id}: ATE {tr.result.rmse_percent:.1f} %" if k < 12 else None
        ax.plot(a[:, 0], a[:, 1], ".-", lw=1.0, ms=4, color=f"C{k % 10}", label=label)
    ax.legend(loc="best", fontsize=8)
    fig.savefig(path)
    return path
