"""The geometry node's parameters (ros/nodes/geometry_node.py)."""

from __future__ import annotations

from .shared import COMMON, FIX_GATE, MAP_TERRAIN, NAVIGATION_INPUTS
from .spec import ParamSpec

GEOMETRY_MODELS = ("Homography", "Fundamental", "Essential")
GEOMETRY_MODES = ("relative", "map", "odometry")

GEOMETRY_NODE = (
    ParamSpec("model", "Homography", "two-view model estimated from the matches", choices=GEOMETRY_MODELS),
    ParamSpec("method", "CV2_USAC_MAGSAC", "robust estimator (see core.geometry.ROBUST_METHODS)"),
    ParamSpec("reproj_threshold", 3.0, "inlier threshold in pixels", range=(0.01, 1000.0)),
    ParamSpec("confidence", 0.9999, "robust estimator confidence", range=(0.5, 0.999999999)),
    ParamSpec("max_iter", 10000, "robust estimator iteration cap", range=(1, 10000000)),
    ParamSpec("min_inlier_ratio", 0.0, "report failure below this inlier ratio", range=(0.0, 1.0)),
    ParamSpec("publish_pose", True, "publish the relative pose (needs camera_info)"),
    ParamSpec(
        "max_matches",
        100000,
        "MatchArray messages with more matches are refused (the frontend sends at most about "
        "max_keypoints); bounds the time one message can hold the executor",
        range=(4, 10_000_000),
    ),
    ParamSpec("image_buffer", 8, "camera images kept for the debug overlay", range=(1, 100), read_only=True),
    ParamSpec(
        "mode",
        "relative",
        "relative: two-view pose to the reference; map: absolute fixes on map_image; odometry: keyframe VO",
        choices=GEOMETRY_MODES,
        read_only=True,
    ),
    ParamSpec("map_image", "", "map image whose georeference turns map matches into fixes (mode=map)"),
    *NAVIGATION_INPUTS,
    *MAP_TERRAIN,
    ParamSpec("map_frame", "map", "frame of absolute poses and the path (REP 105)"),
    ParamSpec("odom_frame", "odom", "frame of keyframe odometry (REP 105)"),
    ParamSpec("base_frame", "base_link", "the aircraft's body frame (child of poses and odometry)"),
    *FIX_GATE,
    ParamSpec("path_length", 2000, "poses kept in the published path", range=(1, 1000000)),
    ParamSpec(
        "default_height",
        0.0,
        "height above ground for odometry without altitude input, m (0 = none)",
        range=(0.0, 100000.0),
    ),
    *COMMON,
)
