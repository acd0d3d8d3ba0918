"""Robust estimators and model types: method names and their OpenCV flags, which method estimates
which model, the fewest matches and inliers per model, and ``RobustParams``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import cv2
import numpy as np

from feature_matching_ros.core.errors import ConfigError

DEFAULT_METHOD = "CV2_USAC_MAGSAC"

CV2_FLAGS: Mapping[str, int] = MappingProxyType(
    {
        "CV2_USAC_MAGSAC": cv2.USAC_MAGSAC,
        "CV2_RANSAC": cv2.RANSAC,
        "CV2_USAC_DEFAULT": cv2.USAC_DEFAULT,
        "CV2_USAC_FM_8PTS": cv2.USAC_FM_8PTS,
        "CV2_USAC_PROSAC": cv2.USAC_PROSAC,
        "CV2_USAC_FAST": cv2.USAC_FAST,
        "CV2_USAC_ACCURATE": cv2.USAC_ACCURATE,
        "CV2_USAC_PARALLEL": cv2.USAC_PARALLEL,
    }
)
POSELIB = "POSELIB"

ROBUST_METHODS: tuple[str, ...] = (*CV2_FLAGS, POSELIB)
"""Names of the robust estimators; ``POSELIB`` is LO-RANSAC from the poselib package."""

HOMOGRAPHY = "Homography"
FUNDAMENTAL = "Fundamental"
ESSENTIAL = "Essential"
PNP = "PnP"
MODEL_TYPES: tuple[str, ...] = (HOMOGRAPHY, FUNDAMENTAL, ESSENTIAL)
"""Two-view models ``estimate`` dispatches; PnP (3D-2D) has its own ``estimate_pnp``."""

MIN_MATCHES: Mapping[str, int] = MappingProxyType({HOMOGRAPHY: 4, FUNDAMENTAL: 8, ESSENTIAL: 5, PNP: 4})
"""Fewest correspondences each estimator accepts."""

MIN_INLIERS: Mapping[str, int] = MappingProxyType({HOMOGRAPHY: 5, FUNDAMENTAL: 8, ESSENTIAL: 6, PNP: 4})
"""Fewest inliers for a model to count: its minimal sample (4, 7, 5, 3) plus one.

A model supported only by its own minimal sample fits those points exactly whatever they are,
so it carries no evidence.
"""

UNSUPPORTED: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        # Measured with OpenCV 5.0.0 (the tests also pass on 4.14): both calls accept the flag but
        # return a wrong model.
        ("CV2_USAC_FM_8PTS", HOMOGRAPHY): "it is OpenCV's 8-point fundamental-matrix solver",
        ("CV2_USAC_FM_8PTS", PNP): "it is OpenCV's 8-point fundamental-matrix solver",
    }
)

NOUNS: Mapping[str, str] = MappingProxyType(
    {HOMOGRAPHY: "homography", FUNDAMENTAL: "fundamental matrix", ESSENTIAL: "essential matrix", PNP: "PnP"}
)


def method_supports(method: str, model_type: str) -> bool:
    """Whether ``method`` (one of ROBUST_METHODS) can estimate ``model_type`` (MODEL_TYPES or "PnP")."""
    return method in ROBUST_METHODS and model_type in NOUNS and (method, model_type) not in UNSUPPORTED


def _is_real(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class RobustParams:
    """Settings of the robust estimator.

    reproj_threshold: inlier threshold in pixels (one-way transfer error for homographies and
    PnP, Sampson distance for fundamental and essential matrices); confidence: in (0, 1);
    max_iter: iteration cap of the robust loop.
    """

    method: str = DEFAULT_METHOD
    reproj_threshold: float = 8.0
    confidence: float = 0.9999
    max_iter: int = 10000

    def __post_init__(self) -> None:
        if self.method not in ROBUST_METHODS:
            raise ConfigError(f"unknown robust method {self.method!r}; valid: {', '.join(ROBUST_METHODS)}")
        if not _is_real(self.reproj_threshold) or not self.reproj_threshold > 0:
            raise ConfigError(
                f"reproj_threshold must be a positive number of pixels, got {self.reproj_threshold!r}"
            )
        if not _is_real(self.confidence) or not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be strictly between 0 and 1, got {self.confidence!r}")
        if (
            isinstance(self.max_iter, bool)
            or not isinstance(self.max_iter, (int, np.integer))
            or self.max_iter < 1
        ):
            raise ConfigError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
