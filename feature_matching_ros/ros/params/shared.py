"""The parameters several nodes share, and the core settings built from them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .spec import ParamSpec

if TYPE_CHECKING:  # the launch files read this module: no torch, no OpenCV at import
    from feature_matching_ros.core.navigation.fix import FixGate
    from feature_matching_ros.core.navigation.search_types import SearchConfig

DEVICES = ("cpu", "cuda", "auto")
BACKENDS = ("torch", "openvino", "onnxruntime", "tensorrt")  # core.matching.inference.BACKENDS
TRANSPORTS = ("raw", "compressed")
ATTITUDE_INPUTS = ("imu", "quaternion", "none")

# Navigation aids and the map, read by both nodes (the same names in both parameter sections).
NAVIGATION_INPUTS = (
    ParamSpec(
        "map_georef",
        "",
        "georeference of map_image: YAML or world file ('' = the one beside the image; none = no navigation)",
    ),
    ParamSpec(
        "attitude_input",
        "imu",
        "attitude aid on imu/data: sensor_msgs/Imu, geometry_msgs/QuaternionStamped, or none",
        choices=ATTITUDE_INPUTS,
        read_only=True,
    ),
    ParamSpec("use_altitude", True, "height above ground from sensor_msgs/Range on altitude", read_only=True),
    ParamSpec(
        "aid_max_age",
        0.1,
        "largest stamp difference between a frame and its attitude/altitude, s",
        range=(0.0, 10.0),
    ),
)

# The ground's elevation model (core.maps.terrain), read by the geometry node (map mode) and the navigator.
MAP_TERRAIN = (
    ParamSpec(
        "map_dem",
        "",
        "elevation model GeoTIFF (DEM/DSM, any CRS, heights above the WGS84 ellipsoid) under map_image "
        "('' = flat ground, the plane z = 0); needs the map's geodetic origin",
        read_only=True,
    ),
    ParamSpec(
        "map_geoid_separation",
        0.0,
        "added to every map_dem value, m: the geoid separation of an orthometric DEM (0 = ellipsoidal)",
        range=(-200.0, 200.0),
        read_only=True,
    ),
)

# Camera frames: the frame size accepted, and the size frames are matched at.
MAX_IMAGE_EDGE = ParamSpec(
    "max_image_edge",
    1024,
    "images are matched downscaled to this longest edge, px (default 1024: a 4000x3000 frame takes "
    "seconds and gigabytes at full size; 0 = full size, else at least 64)",
    range=(0, 16384),
    min_nonzero=64,
)
MAX_FRAME_PIXELS = ParamSpec(
    "max_frame_pixels",
    50_000_000,
    "largest camera frame accepted, px (width x height; a compressed frame is checked from its header "
    "before it is decoded)",
    range=(1024, 1_000_000_000),
)

COMMON = (
    ParamSpec("publish_debug", True, "publish the debug picture topics"),
    ParamSpec("diagnostics_period", 1.0, "seconds between /diagnostics messages", range=(0.1, 60.0)),
)

# The map search (core.navigation.search_types.SearchConfig), as the frontend's map mode and the
# navigator set it.
MAP_SEARCH = (
    ParamSpec(
        "map_upsample",
        0.0,
        "search-grid pixels per map pixel (1 = map resolution; 0 = auto: 2 if the map is 3x coarser)",
        range=(0.0, 8.0),
    ),
    ParamSpec("map_refine", True, "refine map matches to sub-pixel by direct alignment"),
    ParamSpec(
        "guided",
        True,
        "around a narrow prior, match frame keypoints only to map keypoints near where it puts them",
    ),
    ParamSpec(
        "map_acquire",
        True,
        "without a prior, with a measured attitude and height, place the frame by correlation over the whole "
        "map (maps up to 4 Mpx) where keypoints find nothing; the next frame must confirm the placement",
    ),
    ParamSpec(
        "map_tilted_retry",
        True,
        "where the frame rectified level at the prior's heading gives no fix and the prior is tilted, match "
        "it again rectified by that tilt",
    ),
    ParamSpec(
        "search_margin", 40.0, "map search radius around a fresh position prior, m", range=(0.0, 100000.0)
    ),
    ParamSpec(
        "search_max_speed", 40.0, "speed bound growing the search radius with time, m/s", range=(0.0, 1000.0)
    ),
    ParamSpec(
        "default_height",
        0.0,
        "height above ground without altitude input or solution, m (0 = try several)",
        range=(0.0, 100000.0),
    ),
)

# Acceptance checks of a map fix (core.navigation.fix.FixGate), the same names in both nodes that make fixes.
FIX_GATE = (
    ParamSpec("fix_min_inliers", 30, "reject a fix with fewer homography inliers", range=(4, 100000)),
    ParamSpec("fix_min_inlier_ratio", 0.25, "reject a fix below this inlier ratio", range=(0.0, 1.0)),
    ParamSpec("fix_max_tilt", 25.0, "reject a fix whose camera tilts more, degrees", range=(0.0, 90.0)),
    ParamSpec("fix_min_height", 5.0, "reject a fix lower above ground, m", range=(0.0, 100000.0)),
    ParamSpec("fix_max_height", 3000.0, "reject a fix higher above ground, m", range=(0.0, 100000.0)),
    ParamSpec(
        "fix_max_height_error",
        0.25,
        "reject a fix whose height disagrees more with the altitude input (relative)",
        range=(0.0, 10.0),
    ),
    ParamSpec(
        "fix_max_yaw_error",
        40.0,
        "reject a fix whose heading disagrees more with the attitude input, degrees "
        "(tolerates a course-over-ground heading's crab angle; a strong fix is never rejected by it)",
        range=(0.0, 180.0),
    ),
    ParamSpec(
        "fix_max_speed",
        60.0,
        "reject a fix further from the previous one than this speed allows, m/s",
        range=(0.0, 10000.0),
    ),
    ParamSpec(
        "fix_max_sigma",
        5.0,
        "reject a fix whose horizontal standard deviation is larger, m",
        range=(0.0, 100000.0),
    ),
    ParamSpec(
        "fix_max_residual", 4.0, "reject a fix whose reprojection RMS is larger, px", range=(0.0, 1000.0)
    ),
)

# The velocity fitted to the navigation solution (core.navigation.velocity): published by the navigator,
# fitted again by the output nodes from the odometry they receive.
VELOCITY_FIT = (
    ParamSpec(
        "velocity_window",
        2.0,
        "velocity: least-squares fit over the solutions of this many seconds",
        range=(0.1, 60.0),
        read_only=True,
    ),
    ParamSpec(
        "velocity_max_sigma",
        2.0,
        "a velocity is published (navigator) or sent (outputs) only when its horizontal standard error is "
        "at most this, m/s",
        range=(0.0, 1000.0),
        read_only=True,
    ),
)


def search_config(node: Any) -> SearchConfig:
    """The map search settings of ``node``'s ``MAP_SEARCH`` parameters."""
    from feature_matching_ros.core.navigation.search_types import SearchConfig

    value = node.get_parameter
    return SearchConfig(
        margin_m=value("search_margin").value,
        max_speed=value("search_max_speed").value,
        default_height=value("default_height").value,
        refine=value("map_refine").value,
        map_upsample=value("map_upsample").value,
        guided=value("guided").value,
        acquire=value("map_acquire").value,
        tilted_retry=value("map_tilted_retry").value,
    )


def fix_gate(node: Any) -> FixGate:
    """The fix checks of ``node``'s ``FIX_GATE`` parameters."""
    from feature_matching_ros.core.navigation.fix import FixGate

    value = node.get_parameter
    return FixGate(
        min_inliers=value("fix_min_inliers").value,
        min_inlier_ratio=value("fix_min_inlier_ratio").value,
        height_range=(value("fix_min_height").value, value("fix_max_height").value),
        max_tilt_deg=value("fix_max_tilt").value,
        max_height_error=value("fix_max_height_error").value,
        max_yaw_error_deg=value("fix_max_yaw_error").value,
        max_speed=value("fix_max_speed").value,
        max_sigma_m=value("fix_max_sigma").value,
        max_residual_px=value("fix_max_residual").value,
    )
