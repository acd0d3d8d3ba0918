"""The ROS-free core: images, the matcher zoo, weights, extractors, matchers and geometry.

    from feature_matching_ros.core import build, load_image
    pipeline = build("xfeat(sparse)")
    result = pipeline.match(load_image("a.png"), load_image("b.png"))
    result.geometry.model  # 3x3 homography a -> b

Names are imported on first use, so a tool that needs only geometry or weights does not pay
for importing torch and kornia.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ConfigError, FeatureMatchingError, ImageError, WeightsError, ZooError

_LAZY = {
    "GeometryResult": ".geometry",
    "RobustParams": ".geometry",
    "corner_error": ".geometry",
    "estimate": ".geometry",
    "load_image": ".image",
    "MatchResult": ".matching.pipeline",
    "Pipeline": ".matching.pipeline",
    "availability": ".matching.registry",
    "build": ".matching.registry",
    "Features": ".matching.types",
    "Matches": ".matching.types",
    "StageTimes": ".matching.types",
    "Zoo": ".matching.zoo",
    "ZooEntry": ".matching.zoo",
    "load_zoo": ".matching.zoo",
}

__all__ = ["ConfigError", "FeatureMatchingError", "ImageError", "WeightsError", "ZooError", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
