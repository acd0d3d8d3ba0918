"""Node parameters as data: name, default, description, allowed values or range, read-only.

The tables here are the single source for the nodes' declarations, the config files and the launch
files' checks; this package imports rclpy only inside ``declare``. ``checks`` (the checks that need the
machine or the file system, with OpenCV and torch) is imported on its own.
"""

from __future__ import annotations

from .geometry import GEOMETRY_MODELS, GEOMETRY_MODES, GEOMETRY_NODE
from .matcher import MATCHER_NODE, PRIOR_INPUTS, REFERENCE_MODES
from .navigator import NAVIGATOR_NODE, navigator_config, navigator_fix_gate, navigator_search_config
from .outputs import ESTIMATOR_TYPES, MAVLINK_BRIDGE_NODE, NMEA_OUTPUT_NODE, NMEA_OUTPUTS
from .shared import (
    ATTITUDE_INPUTS,
    BACKENDS,
    COMMON,
    DEVICES,
    FIX_GATE,
    MAP_SEARCH,
    MAP_TERRAIN,
    MAX_FRAME_PIXELS,
    MAX_IMAGE_EDGE,
    NAVIGATION_INPUTS,
    TRANSPORTS,
    VELOCITY_FIT,
    fix_gate,
    search_config,
)
from .spec import BUILTIN, ParamSpec, check_all, declare

NODES = {
    "feature_matcher": MATCHER_NODE,
    "geometry": GEOMETRY_NODE,
    "navigator": NAVIGATOR_NODE,
    "nmea_output": NMEA_OUTPUT_NODE,
    "mavlink_bridge": MAVLINK_BRIDGE_NODE,
}

__all__ = [
    "ATTITUDE_INPUTS",
    "BACKENDS",
    "BUILTIN",
    "COMMON",
    "DEVICES",
    "ESTIMATOR_TYPES",
    "FIX_GATE",
    "GEOMETRY_MODELS",
    "GEOMETRY_MODES",
    "GEOMETRY_NODE",
    "MAP_SEARCH",
    "MAP_TERRAIN",
    "MATCHER_NODE",
    "MAVLINK_BRIDGE_NODE",
    "MAX_FRAME_PIXELS",
    "MAX_IMAGE_EDGE",
    "NAVIGATION_INPUTS",
    "NAVIGATOR_NODE",
    "NMEA_OUTPUTS",
    "NMEA_OUTPUT_NODE",
    "NODES",
    "PRIOR_INPUTS",
    "REFERENCE_MODES",
    "TRANSPORTS",
    "VELOCITY_FIT",
    "ParamSpec",
    "check_all",
    "declare",
    "fix_gate",
    "navigator_config",
    "navigator_fix_gate",
    "navigator_search_config",
    "search_config",
]
