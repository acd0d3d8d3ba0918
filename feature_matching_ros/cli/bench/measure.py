"""One core match of a query frame and what is read from it: stage times, matches, corner error."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...core import Features, Pipeline
from ...core.geometry import corner_error

STAGES = ("extract", "match", "geometry", "total")


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


@dataclass(frozen=True)
class FrameRecord:
    extract_ms: float
    match_ms: float
    geometry_ms: float
    total_ms: float
    wall_ms: float
    matches: int
    inliers: int
    corner_error_px: float


def run_core(pipeline: Pipeline, reference: Features, frame: np.ndarray, truth: np.ndarray) -> FrameRecord:
    start = time.perf_counter()
    result = pipeline.match(reference, frame, geometry="Homography")
    wall = (time.perf_counter() - start) * 1e3
    geometry = result.geometry
    found = geometry is not None and geometry.success
    height, width = frame.shape[:2]
    error = corner_error(geometry.model, truth, width, height) if found else float("inf")
    times = result.times
    return FrameRecord(
        times.extract_ms,
        times.match_ms,
        times.geometry_ms,
        times.total_ms,
        wall,
        len(result.matches),
        result.num_inliers,
        error,
    )
