"""One matching call: extract (or reuse cached features), match, estimate geometry, with stage times."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..geometry import GeometryResult, RobustParams, estimate
from ..image import resize_max_edge, validate
from .extractors import Extractor
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


# A model that only a few of the matches support is as likely to fit outliers as the scene: with
# hundreds of matches between unrelated images a homography still finds 6-16 "inliers". Measured on
# the real image pairs of the test data (sift, orb, akaze, xfeat(sparse), xfeat+lightglue):
# homographies between unrelated images reach 6.2 % inliers (xfeat(sparse), box -> aero1: 15 of
# 242), or more with fewer than 15 inliers (xfeat+lightglue: 12 of 13); true pairs go as low as
# 14.5 % (orb, box -> box_in_scene: 75 of 517) and 12.1 % for a fundamental matrix (akaze,
# aero1 -> aero3: 74 of 610), hence 10 %. A fundamental matrix between unrelated images still
# collects 11-28 % inliers (a point only has to lie near a line): no ratio separates those.
DEFAULT_MIN_INLIERS = 15
DEFAULT_MIN_INLIER_RATIO = 0.10


def support_failure(geometry: GeometryResult, min_inliers: int, min_inlier_ratio: float) -> str | None:
    """Why a successful ``geometry`` has too little support to be believed, or None."""
    if not geometry.success:
        return None
    n, m = geometry.num_inliers, geometry.num_matches
    if n < min_inliers:
        return f"only {n} of {m} matches are inliers ({n} < min_inliers {min_inliers})"
    if geometry.inlier_ratio < min_inlier_ratio:
        return (
            f"only {n} of {m} matches are inliers "
            f"({100 * geometry.inlier_ratio:.1f} % < min_inlier_ratio {100 * min_inlier_ratio:g} %)"
        )
    return None


class Pipeline:
    """Extractor + matcher + robust geometry, as resolved by the registry.

    ``match`` takes images or already-extracted ``Features`` for either side, so a navigation
    frontend extracts its reference once and passes the cached features on every frame.

    A model supported by fewer than ``min_inliers`` inliers, or by less than ``min_inlier_ratio``
    of the matches, is reported as a failure whose reason says so (0 and 0.0 turn the checks off).
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
        min_inliers: int = DEFAULT_MIN_INLIERS,
        min_inlier_ratio: float = DEFAULT_MIN_INLIER_RATIO,
    ) -> None:
        self.name = name
        self.extractor = extractor
        self.matcher = matcher
        self.geometry_model = geometry_model
        self.robust = robust or RobustParams()
        self.max_image_edge = max_image_edge
        self.set_support(min_inliers, min_inlier_ratio)

    def set_support(self, min_inliers: int, min_inlier_ratio: float) -> None:
        """The least support a model needs to count as found (0 and 0.0: no check); ConfigError if invalid."""
        if isinstance(min_inliers, bool) or not isinstance(min_inliers, (int, np.integer)) or min_inliers < 0:
            raise ConfigError(f"min_inliers must be an integer >= 0, got {min_inliers!r}")
        if (
            isinstance(min_inlier_ratio, bool)
            or not isinstance(min_inlier_ratio, (int, float, np.floating, np.integer))
            or not (math.isfinite(min_inlier_ratio) and 0.0 <= min_inlier_ratio <= 1.0)
        ):
            raise ConfigError(f"min_inlier_ratio must be within [0, 1], got {min_inlier_ratio!r}")
        self.min_inliers = int(min_inliers)
        self.min_inlier_ratio = float(min_inlier_ratio)

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
            weak = support_failure(result, self.min_inliers, self.min_inlier_ratio)
            if weak is not None:
                result = GeometryResult.failure(result.model_type, result.method, weak, result.num_matches)
            t_geometry = (time.perf_counter() - start) * 1e3
        return MatchResult(self.name, f0, f1, matches, result, StageTimes(t0 + t1, t_match, t_geometry))

    def warm_up(self) -> None:
        """Match a synthetic image to itself once: the first calls into torch are several times slower."""
        from ..simulation.synthetic import procedural_texture

        image = procedural_texture(320, 240)
        self.match(image, image, geometry=None)
