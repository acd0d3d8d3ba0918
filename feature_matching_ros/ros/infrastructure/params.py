"""Node parameters as data: name, default, description, allowed values or range, read-only.

The tables here are the single source for the nodes' declarations, the config files and the launch
files' checks; this module imports rclpy only inside ``declare``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from feature_matching_ros.core.errors import ConfigError

if TYPE_CHECKING:  # the launch files read this module: no torch, no OpenCV at import
    from feature_matching_ros.core.navigation.fix import FixGate
    from feature_matching_ros.core.navigation.search import SearchConfig


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    range: tuple[float, float] | None = None  # inclusive; ints for integer parameters
    read_only: bool = False
    min_nonzero: float | None = None  # 0 means off; any other value must be at least this

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}"
        if self.range is not None and not (self.range[0] <= value <= self.range[1]):
            return f"{self.name} must be within [{self.range[0]}, {self.range[1]}]; got {value!r}"
        if self.min_nonzero is not None and value != 0 and value < self.min_nonzero:
            return f"{self.name} must be 0 (off) or at least {self.min_nonzero}; got {value!r}"
        return None


DEVICES = ("cpu", "cuda", "auto")
BACKENDS = ("torch", "openvino", "onnxruntime", "tensorrt")  # core.inference.BACKENDS
REFERENCE_MODES = ("map", "keyframe", "topic")
TRANSPORTS = ("raw", "compressed")
GEOMETRY_MODELS = ("Homography", "Fundamental", "Essential")
ATTITUDE_INPUTS = ("imu", "quaternion", "none")
PRIOR_INPUTS = ("none", "odometry", "navsatfix")
GEOMETRY_MODES = ("relative", "map", "odometry")

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

# The ground's elevation model (core.terrain), read by the geometry node (map mode) and the navigator.
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

# The map search (core.map_search.SearchConfig), as the frontend's map mode and the navigator set it.
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

# Acceptance checks of a map fix (core.map_fix.FixGate), the same names in both nodes that make fixes.
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

# The velocity fitted to the navigation solution (core.solution_velocity): published by the navigator,
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

# The navigator node: the whole continuous navigation (core.navigator.Navigator) in one node.
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

# The NMEA output node (ros/nodes/nmea_output_node.py): the navigator's solution as NMEA 0183 for a GPS
# input, beside the navigator (visual_navigation.launch.py nmea_output:=true).
NMEA_OUTPUTS = ("udp", "serial")
NMEA_OUTPUT_NODE = (
    ParamSpec("output", "udp", "where the sentences go", choices=NMEA_OUTPUTS, read_only=True),
    ParamSpec("udp_host", "127.0.0.1", "UDP destination host (output=udp)", read_only=True),
    ParamSpec("udp_port", 10110, "UDP destination port (output=udp)", range=(1, 65535), read_only=True),
    ParamSpec("serial_device", "/dev/ttyUSB0", "serial device (output=serial)", read_only=True),
    ParamSpec(
        "serial_baud", 115200, "serial baud rate (output=serial)", range=(1200, 4_000_000), read_only=True
    ),
    ParamSpec("rate", 5.0, "sentence groups sent per second", range=(0.1, 50.0), read_only=True),
    ParamSpec(
        "max_age",
        1.0,
        "a solution (fix, velocity, heading) is sent for this long after it arrived, s; then no fix",
        range=(0.05, 60.0),
        read_only=True,
    ),
    ParamSpec("talker", "GN", "NMEA talker ID (two capital letters: GP, GN, ...)", read_only=True),
    ParamSpec(
        "fix_quality",
        1,
        "GGA fix quality of a solution (1 = GPS fix, 6 = estimated; 0 is sent without one)",
        range=(1, 8),
        read_only=True,
    ),
    ParamSpec(
        "satellites", 10, "GGA satellite count of a solution (0 without)", range=(0, 99), read_only=True
    ),
    ParamSpec(
        "uere_m",
        1.0,
        "HDOP = horizontal standard deviation (DRMS) / uere_m, m",
        range=(0.01, 100.0),
        read_only=True,
    ),
    ParamSpec(
        "geoid_separation",
        0.0,
        "geoid height above the WGS84 ellipsoid, m: GGA altitude = ellipsoidal height - this",
        range=(-200.0, 200.0),
        read_only=True,
    ),
    ParamSpec(
        "heading_max_sigma",
        10.0,
        "HDT is sent when the odometry's yaw standard deviation is at most this, degrees",
        range=(0.0, 180.0),
        read_only=True,
    ),
    *VELOCITY_FIT,
    ParamSpec(
        "diagnostics_period",
        1.0,
        "seconds between /diagnostics messages",
        range=(0.1, 60.0),
        read_only=True,
    ),
)

# The MAVLink bridge (ros/nodes/mavlink_bridge_node.py): the navigator's solution as GPS_INPUT and ODOMETRY
# for ArduPilot and PX4, beside the navigator (visual_navigation.launch.py mavlink_bridge:=true).
ESTIMATOR_TYPES = ("vision", "vio")
MAVLINK_BRIDGE_NODE = (
    ParamSpec(
        "connection",
        "udpout:127.0.0.1:14550",
        "pymavlink connection string: udpout:HOST:PORT, udpin:HOST:PORT, tcp:HOST:PORT or a serial "
        "device (/dev/ttyACM0; baud from 'baud')",
        read_only=True,
    ),
    ParamSpec(
        "baud", 921600, "serial baud rate (serial connections)", range=(1200, 4_000_000), read_only=True
    ),
    ParamSpec("gps_input", True, "send GPS_INPUT (a MAVLink GPS) at 'rate'", read_only=True),
    ParamSpec(
        "odometry", True, "send ODOMETRY (external navigation) for every odometry message", read_only=True
    ),
    ParamSpec(
        "set_origin",
        True,
        "send SET_GPS_GLOBAL_ORIGIN (the map origin, from the first fix and odometry of one solution)",
        read_only=True,
    ),
    ParamSpec(
        "rate", 5.0, "GPS_INPUT messages per second (ArduPilot wants >= 5)", range=(5.0, 50.0), read_only=True
    ),
    ParamSpec(
        "max_age",
        1.0,
        "a fix is sent as valid for this long after it arrived, s; then fix_type 0",
        range=(0.05, 60.0),
        read_only=True,
    ),
    ParamSpec("system_id", 1, "MAVLink system id sent (the vehicle's)", range=(1, 255), read_only=True),
    ParamSpec(
        "component_id",
        191,
        "MAVLink component id sent (191 = MAV_COMP_ID_ONBOARD_COMPUTER)",
        range=(1, 255),
        read_only=True,
    ),
    ParamSpec(
        "target_system",
        1,
        "the autopilot's system id (SET_GPS_GLOBAL_ORIGIN)",
        range=(0, 255),
        read_only=True,
    ),
    ParamSpec("gps_id", 0, "GPS_INPUT gps_id (0 = first GPS instance)", range=(0, 255), read_only=True),
    ParamSpec(
        "satellites",
        10,
        "GPS_INPUT satellites_visible with a fix (ArduPilot's EKF3 GPS check wants >= 6); 0 without",
        range=(0, 255),
        read_only=True,
    ),
    ParamSpec("uere_m", 1.0, "HDOP/VDOP = 1-sigma accuracy / uere_m", range=(0.01, 100.0), read_only=True),
    ParamSpec(
        "geoid_separation",
        0.0,
        "geoid height above the WGS84 ellipsoid, m: altitudes sent = ellipsoidal height - this",
        range=(-200.0, 200.0),
        read_only=True,
    ),
    ParamSpec("estimator_type", "vision", "ODOMETRY estimator_type", choices=ESTIMATOR_TYPES, read_only=True),
    ParamSpec(
        "reset_sigma",
        5.0,
        "ODOMETRY reset_counter steps when a position jumps beyond this many sigma (or after a loss)",
        range=(1.0, 100.0),
        read_only=True,
    ),
    *VELOCITY_FIT,
    ParamSpec(
        "diagnostics_period",
        1.0,
        "seconds between /diagnostics messages",
        range=(0.1, 60.0),
        read_only=True,
    ),
)

# Parameters rclpy declares itself or reads from overrides (QoS overrides, sim time).
BUILTIN = {"use_sim_time", "start_type_description_service"}

NODES = {
    "feature_matcher": MATCHER_NODE,
    "geometry": GEOMETRY_NODE,
    "navigator": NAVIGATOR_NODE,
    "nmea_output": NMEA_OUTPUT_NODE,
    "mavlink_bridge": MAVLINK_BRIDGE_NODE,
}


def declare(node: Any, specs: tuple[ParamSpec, ...]) -> None:
    """Declare ``specs`` on an rclpy node with descriptors (description, choices, ranges, read-only)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    for spec in specs:
        text = spec.description + (f" (one of: {', '.join(spec.choices)})" if spec.choices else "")
        descriptor = ParameterDescriptor(description=text, read_only=spec.read_only)
        if spec.range is not None and isinstance(spec.default, bool) is False:
            low, high = spec.range
            if isinstance(spec.default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
            else:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
                ]
        try:
            node.declare_parameter(spec.name, spec.default, descriptor)
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            raise ConfigError(f"{node.get_name()}: parameter {spec.name}: {exc}") from None
    # rclpy keeps values for undeclared names silently: a typo in a params file would go unnoticed.
    unknown = sorted(set(getattr(node, "_parameter_overrides", {})) - {s.name for s in specs} - BUILTIN)
    # A warning, not an error: wildcard sections and global -p arguments reach every node of a process.
    if unknown:
        node.get_logger().warning(
            f"ignoring unknown parameters {unknown}; valid: {sorted(s.name for s in specs)}"
        )
    reason = check_all(specs, {s.name: node.get_parameter(s.name).value for s in specs})
    if reason:
        raise ConfigError(f"{node.get_name()}: {reason}")


def check_all(specs: tuple[ParamSpec, ...], values: dict[str, Any]) -> str | None:
    """The first reason a set of values is unacceptable (unknown names included), or None."""
    by_name = {s.name: s for s in specs}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            return f"unknown parameter {name!r}"
        reason = spec.check(value)
        if reason:
            return reason
    return None


def search_config(node: Any) -> SearchConfig:
    """The map search settings of ``node``'s ``MAP_SEARCH`` parameters."""
    from feature_matching_ros.core.navigation.search import SearchConfig

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
