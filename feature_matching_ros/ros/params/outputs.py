"""The output nodes' parameters: NMEA (ros/nodes/nmea_output_node.py) and MAVLink
(ros/nodes/mavlink_bridge_node.py)."""

from __future__ import annotations

from .shared import VELOCITY_FIT
from .spec import ParamSpec

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
