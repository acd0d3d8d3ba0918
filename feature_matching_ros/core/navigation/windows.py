"""The windows of the search grid a rectified frame is matched in: the sweep over the whole map, and
keypoint matching in one window (guided by the prior where it can be)."""

from __future__ import annotations

import numpy as np
import torch

from ..geometry import RobustParams, estimate
from ..maps.features import MapFeatures, Window
from ..matching.pipeline import Pipeline
from ..matching.types import Features
from . import guided
from .rectify import Rectified
from .search_types import MapMatch


def sweep(half: np.ndarray, size: tuple[int, int], overlap: float) -> list[Window]:
    """Windows twice the footprint, overlapping by ``overlap``, covering the map."""
    span = 4 * half
    step = np.maximum(span * (1.0 - overlap), 16)
    xs = np.arange(span[0] / 2, max(size[0] - span[0] / 2, 0) + step[0], step[0])
    ys = np.arange(span[1] / 2, max(size[1] - span[1] / 2, 0) + step[1], step[1])
    return [Window.around(np.array([x, y]), span[0] / 2, span[1] / 2, size) for y in ys for x in xs]


def match_window(
    pipeline: Pipeline,
    features: MapFeatures,
    min_matches: int,
    query: Features,
    view: Rectified,
    window: Window,
    strategy: str,
    guide: tuple[np.ndarray, float] | None = None,
) -> MapMatch | None:
    reference = features.window(window)
    if len(reference) < min_matches:
        return None
    if guide is not None and guided.supports(reference):
        offset = torch.as_tensor(guide[0] - window.offset, dtype=torch.float32)
        expected = query.keypoints.detach().float().cpu() + offset
        ratio = pipeline.matcher.ratio_threshold
        matches = guided.guided_match(reference, query, expected, guide[1], ratio)
        strategy += "+guided"
    else:
        matches = pipeline.match(reference, query, geometry=None).matches
    grid_points = matches.points0.astype(np.float64) + window.offset
    support = 0
    if len(matches) >= 4:
        # Inlier support of a quick homography ranks windows and hypotheses better than match counts.
        quick = estimate("Homography", grid_points, matches.points1, RobustParams(max_iter=2000))
        support = quick.num_inliers if quick.success else 0
    return MapMatch(
        features.to_map(grid_points),
        view.to_original(matches.points1),
        matches.scores,
        window,
        strategy,
        len(reference),
        support=support,
    )
