"""Geometry: robust two-view estimation (homography, fundamental, essential, PnP), relative pose,
REP 103 frames and the planar ground pose.

The estimation API is imported from here; its parts live in the modules of this package.
"""

from .estimation import (
    estimate,
    estimate_essential,
    estimate_fundamental,
    estimate_homography,
    estimate_pnp,
)
from .result import GeometryResult, corner_error, warp_points
from .robust import (
    DEFAULT_METHOD,
    ESSENTIAL,
    FUNDAMENTAL,
    HOMOGRAPHY,
    MIN_MATCHES,
    MODEL_TYPES,
    PNP,
    ROBUST_METHODS,
    RobustParams,
    method_supports,
)

__all__ = [
    "DEFAULT_METHOD",
    "ESSENTIAL",
    "FUNDAMENTAL",
    "HOMOGRAPHY",
    "MIN_MATCHES",
    "MODEL_TYPES",
    "PNP",
    "ROBUST_METHODS",
    "GeometryResult",
    "RobustParams",
    "corner_error",
    "estimate",
    "estimate_essential",
    "estimate_fundamental",
    "estimate_homography",
    "estimate_pnp",
    "method_supports",
    "warp_points",
]
