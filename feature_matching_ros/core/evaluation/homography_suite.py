"""Homography accuracy of a pipeline on seeded synthetic warps of given images.

The metric is the usual one of SuperGlue / LoFTR / LightGlue on HPatches: the mean distance
between the four image corners mapped by the estimated and by the true homography, summarised
as the area under the cumulative error curve up to a few pixel thresholds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..geometry import corner_error
from ..image import as_rgb
from ..matching.pipeline import Pipeline
from ..simulation.synthetic import Photometric, random_homography, warp

CASE_SIZE = (640, 480)
AUC_THRESHOLDS: tuple[int, ...] = (3, 5, 10)
MIN_OVERLAP = 0.3
_MAX_DRAWS = 1000


def homography_auc(
    errors: Iterable[float], thresholds: Sequence[float] = AUC_THRESHOLDS
) -> dict[int | float, float]:
    """Area under the recall-vs-corner-error curve up to each threshold, normalised to [0, 1].

    The curve joins the points (0, 0) and (e_i, i / n) of the sorted errors by straight lines
    (trapezoidal rule), as in SuperGlue's and LoFTR's evaluation code; an error exactly at a
    threshold does not count as below it. Failures count with an error of inf or NaN: they
    stay in n but never reach the curve.
    """
    values = np.asarray(list(errors), np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("homography_auc needs at least one error")
    if (values < 0).any():
        raise ValueError("corner errors must be >= 0 (use inf for a failure)")
    values = np.sort(np.where(np.isnan(values), np.inf, values))
    recall = np.arange(1, values.size + 1) / values.size
    aucs: dict[int | float, float] = {}
    for threshold in thresholds:
        if not threshold > 0:
            raise ValueError(f"AUC thresholds must be positive, got {threshold}")
        below = int(np.searchsorted(values, threshold, side="left"))
        x = np.concatenate([[0.0], values[:below], [threshold]])
        y = np.concatenate([[0.0], recall[:below], [recall[below - 1] if below else 0.0]])
        area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
        aucs[threshold] = area / threshold
    return aucs


@dataclass(frozen=True)
class SyntheticCase:
    """One pair with known geometry: ``image1`` is ``image0`` warped by ``homography`` (0 -> 1).

    overlap: fraction of ``image1``'s pixels that show ``image0``.
    """

    name: str
    image0: np.ndarray
    image1: np.ndarray
    homography: np.ndarray
    photometric: Photometric
    overlap: float


def fit_to_size(image: np.ndarray, size: tuple[int, int] = CASE_SIZE) -> np.ndarray:
    """``image`` as RGB of ``size`` (width, height): centre-cropped to that aspect ratio, then resized."""
    image = as_rgb(image)
    width, height = size
    h, w = image.shape[:2]
    crop_w, crop_h = min(w, round(h * width / height)), min(h, round(w * height / width))
    x0, y0 = (w - crop_w) // 2, (h - crop_h) // 2
    crop = image[y0 : y0 + crop_h, x0 : x0 + crop_w]
    shrinking = crop_w > width
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def overlap_fraction(homography: np.ndarray, size: tuple[int, int] = CASE_SIZE) -> float:
    """Fraction of an image of ``size`` that shows the same-size source warped by ``homography``."""
    source = np.full((size[1], size[0]), 255, np.uint8)
    covered = cv2.warpPerspective(source, homography, size, flags=cv2.INTER_NEAREST)
    return float(np.count_nonzero(covered)) / covered.size


def synthetic_cases(
    images: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    n_per_image: int,
    seed: int,
    *,
    min_overlap: float = MIN_OVERLAP,
) -> list[SyntheticCase]:
    """``n_per_image`` seeded warps of each source image, resized to 640x480 first.

    Each warp rotates by up to 180 degrees, scales log-uniformly in [0.5, 2], adds perspective
    and shift, then changes gain, offset, noise and blur. A homography is redrawn until the
    warped image overlaps the frame by at least ``min_overlap`` of its area. Case k of image i
    depends only on (seed, i, k), not on how many cases or images were asked for.
    """
    if n_per_image < 0:
        raise ValueError(f"n_per_image must be >= 0, got {n_per_image}")
    if not 0.0 <= min_overlap < 1.0:
        raise ValueError(f"min_overlap must be in [0, 1), got {min_overlap}")
    named = (
        images.items() if isinstance(images, Mapping) else ((f"image{i}", im) for i, im in enumerate(images))
    )
    width, height = CASE_SIZE
    cases = []
    for i, (name, image) in enumerate(named):
        source = fit_to_size(image)
        for k in range(n_per_image):
            rng = np.random.default_rng((seed, i, k))
            for _ in range(_MAX_DRAWS):
                homography = random_homography(rng, width, height)
                overlap = overlap_fraction(homography)
                if overlap >= min_overlap:
                    break
            else:
                raise ValueError(f"no homography with overlap >= {min_overlap} in {_MAX_DRAWS} draws")
            photometric = Photometric.random(rng)
            warped = photometric.apply(warp(source, homography), rng)
            cases.append(SyntheticCase(f"{name}#{k}", source, warped, homography, photometric, overlap))
    return cases


@dataclass(frozen=True)
class CaseResult:
    """Outcome of one case; ``corner_error_px`` is inf when no homography was found."""

    name: str
    corner_error_px: float
    success: bool
    num_matches: int
    num_inliers: int
    total_ms: float
    reason: str = ""


@dataclass(frozen=True)
class SuiteResult:
    matcher: str
    cases: tuple[CaseResult, ...]
    auc: dict[int | float, float]

    @property
    def success_rate(self) -> float:
        return sum(c.success for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(c.total_ms for c in self.cases) if self.cases else math.nan

    @property
    def median_ms(self) -> float:
        return statistics.median(c.total_ms for c in self.cases) if self.cases else math.nan

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record; infinite errors become None."""
        return {
            "matcher": self.matcher,
            "num_cases": len(self.cases),
            "auc": {str(t): v for t, v in self.auc.items()},
            "success_rate": self.success_rate,
            "mean_ms": self.mean_ms,
            "median_ms": self.median_ms,
            "cases": [
                {
                    "name": c.name,
                    "corner_error_px": c.corner_error_px if math.isfinite(c.corner_error_px) else None,
                    "success": c.success,
                    "num_matches": c.num_matches,
                    "num_inliers": c.num_inliers,
                    "total_ms": c.total_ms,
                    "reason": c.reason,
                }
                for c in self.cases
            ],
        }


def evaluate_case(pipeline: Pipeline, case: SyntheticCase) -> CaseResult:
    """Match ``case`` from its images (both extracted, timed in total_ms) and score the homography."""
    result = pipeline.match(case.image0, case.image1, geometry="Homography")
    geometry = result.geometry
    success = geometry is not None and geometry.success and geometry.model is not None
    height, width = case.image0.shape[:2]
    error = corner_error(geometry.model, case.homography, width, height) if success else math.inf
    return CaseResult(
        name=case.name,
        corner_error_px=error,
        success=success,
        num_matches=len(result.matches),
        num_inliers=result.num_inliers,
        total_ms=result.times.total_ms,
        reason=geometry.reason if geometry is not None else "no geometry",
    )


def evaluate_pipeline(
    pipeline: Pipeline,
    cases: Sequence[SyntheticCase],
    thresholds: Sequence[float] = AUC_THRESHOLDS,
    *,
    on_case: Callable[[CaseResult], None] | None = None,
) -> SuiteResult:
    """Corner errors of ``pipeline`` on every case and their AUC; ``on_case`` sees each result as it comes."""
    results = []
    for case in cases:
        outcome = evaluate_case(pipeline, case)
        results.append(outcome)
        if on_case is not None:
            on_case(outcome)
    errors = [r.corner_error_px for r in results]
    auc = homography_auc(errors, thresholds) if results else {t: 0.0 for t in thresholds}
    return SuiteResult(pipeline.name, tuple(results), auc)
