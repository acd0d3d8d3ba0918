"""One matching call: extract (or reuse cached features), match, estimate geometry, with stage times."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .extractors import Extractor
from .geometry import GeometryResult, RobustParams, estimate
from .image import resize_max_edge, validate
from .matchers import Matcher
from .types import Features, Matches, StageTimes


@dataclass(frozen=True)
class MatchResult:
    matcher: str
    features0: Features
    features1: Features
    matches: Matches
    geometry: GeometryResult | None
    times: StageTimes

    @property
    def num_inliers(self) -> int:
        return self.geometry.num_inliers if self.geometry and self.geometry.success else 0

    def summary(self) -> dict[str, Any]:
        """The JSON record of ``fm-match --json``."""
        geometry = self.geometry
        model = geometry.model if geometry is not None and geometry.success else None
        return {
            "matcher": self.matcher,
            "num_keypoints": [len(self.features0), len(self.features1)],
            "num_matches": len(self.matches),
            "num_inliers": self.num_inliers,
            "geometry": geometry.model_type if geometry is not None else None,
            "geometry_success": bool(geometry.success) if geometry is not None else None,
            "geometry_reason": geometry.reason if geometry is not None else "",
            "model": np.asarray(model).tolist() if model is not None else None,
            "time_ms": self.times.as_dict(),
        }


class Pipeline:
    """Extractor + matcher + robust geometry, as resolved by the registry.

    ``match`` takes images or already-extracted ``Features`` for either side, so a navigation
    frontend extracts its reference once and passes the cached features on every frame.
    """

    def __init__(
        self,
        name: str,
        extractor: Extractor,
        matcher: Matcher,
        *,
        geometry_model: str | None = "Homography",
        robust: RobustParams | None = None,
        max_image_edge: int | None = None,
    ) -> None:
        self.name = name
        self.extractor = extractor
        self.matcher = matcher
        self.geometry_model = geometry_model
        self.robust = robust or RobustParams()
        self.max_image_edge = max_image_edge

    def extract(self, image: np.ndarray) -> Features:
        """Features in the pixel frame of ``image``, whatever ``max_image_edge`` resizing happened."""
        image = validate(image)
        small, scale = resize_max_edge(image, self.max_image_edge)
        features = self.extractor.extract(small)
        if scale == 1.0:
            return features
        size = (int(image.shape[1]), int(image.shape[0]))
        return features.scaled(size[0] / small.shape[1], size[1] / small.shape[0], size)

    def _features(self, item: np.ndarray | Features) -> tuple[Features, float]:
        if isinstance(item, Features):
            return item, 0.0
        start = time.perf_counter()
        features = self.extract(item)
        return features, (time.perf_counter() - start) * 1e3

    def match(
        self,
        image0: np.ndarray | Features,
        image1: np.ndarray | Features,
        *,
        geometry: str | None = "default",
    ) -> MatchResult:
        """Match image 0 (the reference) to image 1; the geometry maps image 0 to image 1.

        ``geometry`` names the model ("Homography", "Fundamental"), None skips it, and
        "default" uses the zoo's setting.
        """
        f0, t0 = self._features(image0)
        f1, t1 = self._features(image1)
        start = time.perf_counter()
        matches = self.matcher.match(f0, f1)
        t_match = (time.perf_counter() - start) * 1e3
        model = self.geometry_model if geometry == "default" else geometry
        result, t_geometry = None, 0.0
        if model is not None:
            start = time.perf_counter()
            result = estimate(model, matches.points0, matches.points1, self.robust)
            t_geometry = (time.perf_counter() - start) * 1e3
        return MatchResult(self.name, f0, f1, matches, result, StageTimes(t0 + t1, t_match, t_geometry))
