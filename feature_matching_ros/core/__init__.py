"""The ROS-free core: images, the matcher zoo, weights, extractors, matchers and geometry.

from feature_matching_ros.core import build, load_image
pipeline = build("xfeat(sparse)")
result = pipeline.match(load_image("a.png"), load_image("b.png"))
result.geometry.model  # 3x3 homography a -> b
"""

from .errors import ConfigError, FeatureMatchingError, ImageError, WeightsError, ZooError
from .geometry import GeometryResult, RobustParams, corner_error, estimate
from .image import load_image
from .pipeline import MatchResult, Pipeline
from .registry import availability, build
from .types import Features, Matches, StageTimes
from .zoo import Zoo, ZooEntry, load_zoo

__all__ = [
    "ConfigError",
    "FeatureMatchingError",
    "Features",
    "GeometryResult",
    "ImageError",
    "MatchResult",
    "Matches",
    "Pipeline",
    "RobustParams",
    "StageTimes",
    "WeightsError",
    "Zoo",
    "ZooEntry",
    "ZooError",
    "availability",
    "build",
    "corner_error",
    "estimate",
    "load_image",
    "load_zoo",
]
