"""The feature matcher node's parameters (ros/nodes/matcher_node.py)."""

from __future__ import annotations

from .shared import (
    BACKENDS,
    COMMON,
    DEVICES,
    MAP_SEARCH,
    MAX_FRAME_PIXELS,
    MAX_IMAGE_EDGE,
    NAVIGATION_INPUTS,
    TRANSPORTS,
)
from .spec import ParamSpec

REFERENCE_MODES = ("map", "keyframe", "topic")
PRIOR_INPUTS = ("none", "odometry", "navsatfix")

MATCHER_NODE = (
    ParamSpec(
        "matcher",
        "sift",
        "zoo name of the extractor+matcher (fm-match --list); sift measured best for both navigation modes",
    ),
    ParamSpec("device", "cpu", "torch device for the networks", choices=DEVICES),
    ParamSpec(
        "backend",
        "torch",
        "inference backend of the extractor's network (exported and verified on first use; torch if absent)",
        choices=BACKENDS,
    ),
    ParamSpec("max_keypoints", 2000, "keypoints per image (0 = the zoo's default)", range=(0, 100000)),
    ParamSpec(
        "keypoint_threshold", -1.0, "detector score threshold (< 0 = the zoo's default)", range=(-1.0, 1e6)
    ),
    ParamSpec(
        "match_threshold", -1.0, "matcher confidence threshold (< 0 = the zoo's default)", range=(-1.0, 1.0)
    ),
    MAX_IMAGE_EDGE,
    MAX_FRAME_PIXELS,
    ParamSpec(
        "weights_dir", "", "directory of verified weight files ('' = $FEATURE_MATCHING_WEIGHTS / cache)"
    ),
    ParamSpec("num_threads", 0, "torch CPU threads (0 = torch's default)", range=(0, 256), read_only=True),
    ParamSpec(
        "reference_mode",
        "keyframe",
        "reference: map image file, keyframes of the stream, or a topic",
        choices=REFERENCE_MODES,
    ),
    ParamSpec("map_image", "", "map image file for reference_mode=map"),
    ParamSpec("map_frame_id", "map_image", "frame_id reported for the map image"),
    *NAVIGATION_INPUTS,
    ParamSpec(
        "map_tile_size",
        512,
        "map features are extracted and cached per tile of this many px",
        range=(64, 8192),
    ),
    *MAP_SEARCH,
    ParamSpec(
        "prior_input",
        "none",
        "external position prior: nav_msgs/Odometry on prior/odometry (map frame) or NavSatFix on prior/fix",
        choices=PRIOR_INPUTS,
        read_only=True,
    ),
    ParamSpec(
        "keyframe_min_inliers", 50, "renew the keyframe below this many homography inliers", range=(0, 100000)
    ),
    ParamSpec(
        "keyframe_min_overlap",
        0.5,
        "renew the keyframe below this covered fraction of the frame",
        range=(0.0, 1.0),
    ),
    ParamSpec(
        "keyframe_max_frames",
        0,
        "renew the keyframe after this many frames (0 = never by count)",
        range=(0, 1000000),
    ),
    ParamSpec(
        "image_transport",
        "raw",
        "camera input: raw Image or CompressedImage",
        choices=TRANSPORTS,
        read_only=True,
    ),
    ParamSpec("use_camera_info", True, "pair each image with camera_info (approximate time)", read_only=True),
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
    *COMMON,
)
