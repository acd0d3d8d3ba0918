"""The navigator node's parameters (ros/nodes/navigator_node.py)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .shared import (
    BACKENDS,
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
from .spec import ParamSpec

if TYPE_CHECKING:  # the launch files read this module: no torch, no OpenCV at import
    from feature_matching_ros.core.navigation.config import NavigatorConfig
    from feature_matching_ros.core.navigation.fix import FixGate
    from feature_matching_ros.core.navigation.search_types import SearchConfig

# The navigator node: the whole continuous navigation (core.navigation.navigator.Navigator) in one node.
NAVIGATOR_NODE = (
    ParamSpec(
        "matcher",
        "sift",
        "zoo name of the extractor+matcher for map fixes and odometry (fm-match --list)",
    ),
    ParamSpec(
        "fallback_matcher",
        "akaze",
        "zoo name of a second matcher that searches the map again where matcher finds no fix ('' = none)",
    ),
    ParamSpec("device", "cpu", "torch device for the networks", choices=DEVICES),
    ParamSpec(
        "backend",
        "torch",
        "inference backend of the extractor's network (exported and verified on first use; torch if absent)",
        choices=BACKENDS,
    ),
    ParamSpec(
        "max_keypoints",
        0,
        "keypoints per frame for the map search (0 = the zoo's default)",
        range=(0, 100000),
    ),
    ParamSpec(
        "odometry_keypoints",
        8000,
        "keypoints per frame for keyframe odometry (0 = the map search's pipeline)",
        range=(0, 100000),
    ),
    MAX_IMAGE_EDGE,
    MAX_FRAME_PIXELS,
    ParamSpec(
        "weights_dir", "", "directory of verified weight files ('' = $FEATURE_MATCHING_WEIGHTS / cache)"
    ),
    ParamSpec("num_threads", 0, "torch CPU threads (0 = torch's default)", range=(0, 256), read_only=True),
    ParamSpec("map_image", "", "georeferenced map image (orthophoto) to navigate on"),
    *NAVIGATION_INPUTS,
    *MAP_TERRAIN,
    *MAP_SEARCH,
    *FIX_GATE,
    ParamSpec(
        "fix_max_innovation",
        4.0,
        "reject a fix further from the prediction than this many standard deviations of both",
        range=(0.0, 1000.0),
    ),
    ParamSpec(
        "fix_min_inliers_confirmed",
        15,
        "accept a fix with fewer than fix_min_inliers but this many inliers when the map agreement and a "
        "prediction good to fix_confirm_max_sigma both confirm it",
        range=(4, 100000),
    ),
    ParamSpec(
        "fix_confirm_max_sigma",
        10.0,
        "a prediction confirms a weak fix only if its horizontal standard deviation is at most this, m",
        range=(0.0, 10000.0),
    ),
    ParamSpec(
        "fix_confirm_innovation",
        3.0,
        "a weak fix is confirmed within this many standard deviations of the prediction",
        range=(0.0, 1000.0),
    ),
    ParamSpec(
        "map_correlate",
        True,
        "where keypoints find too little around a confident prediction, place the frame by gradient "
        "correlation (the prediction must then confirm the fix)",
    ),
    ParamSpec("odometry", True, "carry the solution between fixes by keyframe odometry (else coast only)"),
    ParamSpec(
        "coast_speed_sigma",
        8.0,
        "position uncertainty growth without odometry, m/s (1 sigma per second)",
        range=(0.0, 1000.0),
    ),
    ParamSpec(
        "map_sigma_m", 1.0, "horizontal accuracy of the map's georeference, m (1 sigma)", range=(0.0, 10000.0)
    ),
    ParamSpec(
        "fix_height_sigma",
        0.05,
        "relative sigma of a map fix's height beyond its fit's pixel noise (map scale, relief, tilt "
        "traded for height)",
        range=(0.0, 1.0),
    ),
    ParamSpec(
        "whole_map_interval_s",
        3.0,
        "a frame neither matcher fixes around the prediction is searched again over the whole map when "
        "it came at least this long after the frame before, s (survey cameras; 1e9: never)",
        range=(0.0, 1.0e9),
    ),
    ParamSpec(
        "whole_map_budget_s",
        0.0,
        "that search tries no further heading or height once the frame's step has taken this long, s "
        "(0: the time since the frame before)",
        range=(0.0, 1.0e9),
    ),
    ParamSpec(
        "background_search",
        True,
        "never fall behind the camera: a frame whose map search would end after the next frame is due "
        "is searched on a thread of its own and published after its odometry; its fix is fused at its "
        "frame's stamp when the search ends (false: every frame's search in its step)",
    ),
    ParamSpec(
        "max_sigma_m",
        300.0,
        "drop the solution (search the whole map again) beyond this horizontal sigma, m",
        range=(1.0, 1.0e6),
    ),
    ParamSpec(
        "odometry_min_inliers",
        30,
        "an odometry registration with fewer inliers is trusted only to its own length, in any direction",
        range=(0, 100000),
    ),
    ParamSpec(
        "revisit",
        True,
        "re-localise an uncertain solution (after a turn) on earlier fixed frames that the frame overlaps",
    ),
    ParamSpec(
        "revisit_min_sigma",
        10.0,
        "re-localise only when the prediction's horizontal standard deviation exceeds this, m",
        range=(0.0, 1.0e6),
    ),
    ParamSpec(
        "revisit_capacity",
        64,
        "fixed frames remembered for re-localisation (2000 keypoints each; SIFT: 1 MB a frame)",
        range=(1, 100000),
    ),
    ParamSpec("map_frame", "map", "frame of the published pose and odometry (REP 105)"),
    ParamSpec("base_frame", "base_link", "the aircraft's body frame (odometry child, NavSatFix frame)"),
    ParamSpec(
        "sync_slop",
        0.02,
        "largest image/camera_info stamp difference paired, s",
        range=(0.0, 10.0),
        read_only=True,
    ),
    ParamSpec(
        "sync_queue_size", 10, "messages kept per input while pairing", range=(1, 1000), read_only=True
    ),
    ParamSpec(
        "image_transport",
        "raw",
        "camera input: raw Image or CompressedImage",
        choices=TRANSPORTS,
        read_only=True,
    ),
    *VELOCITY_FIT,
    ParamSpec("diagnostics_period", 1.0, "seconds between /diagnostics messages", range=(0.1, 60.0)),
)


def navigator_config(node: Any) -> NavigatorConfig:
    """The navigator's settings from ``node``'s ``NAVIGATOR_NODE`` parameters."""
    from feature_matching_ros.core.navigation.config import NavigatorConfig
    from feature_matching_ros.core.navigation.revisit import RevisitConfig

    value = node.get_parameter
    revisit = RevisitConfig(
        capacity=value("revisit_capacity").value, min_sigma_m=value("revisit_min_sigma").value
    )
    return NavigatorConfig(
        odometry=value("odometry").value,
        coast_speed_sigma=value("coast_speed_sigma").value,
        map_sigma_m=value("map_sigma_m").value,
        fix_height_sigma=value("fix_height_sigma").value,
        whole_map_interval_s=value("whole_map_interval_s").value,
        whole_map_budget_s=value("whole_map_budget_s").value,
        background_search=value("background_search").value,
        max_sigma_m=value("max_sigma_m").value,
        odometry_min_inliers=value("odometry_min_inliers").value,
        revisit=revisit if value("revisit").value else None,
    )


def navigator_search_config(node: Any) -> SearchConfig:
    """The map search settings of the navigator: ``MAP_SEARCH``'s and its ``map_correlate``."""
    return dataclasses.replace(search_config(node), correlate=node.get_parameter("map_correlate").value)


def navigator_fix_gate(node: Any) -> FixGate:
    """The fix checks of the navigator: ``FIX_GATE``'s and its confirmation by the prediction."""
    value = node.get_parameter
    return dataclasses.replace(
        fix_gate(node),
        max_innovation=value("fix_max_innovation").value,
        min_inliers_confirmed=value("fix_min_inliers_confirmed").value,
        confirm_max_sigma_m=value("fix_confirm_max_sigma").value,
        confirm_innovation=value("fix_confirm_innovation").value,
    )
