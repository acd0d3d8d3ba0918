"""Visual navigation: feature_matcher_node + geometry_node (or navigator_node alone), optionally RViz.

    ros2 launch feature_matching_ros visual_navigation.launch.py \
        matcher:=sift mode:=map map_image:=/data/ortho.png map_georef:=/data/ortho.yaml \
        image_topic:=/cam0/image_raw attitude_topic:=/mavros/imu/data altitude_topic:=/rangefinder rviz:=true

    ros2 launch feature_matching_ros visual_navigation.launch.py mode:=navigation map_image:=/data/ortho.png

    ros2 launch feature_matching_ros visual_navigation.launch.py mode:=navigation map_image:=/data/ortho.tif \
        mavlink_bridge:=true mavlink_connection:=/dev/ttyACM1 nmea_output:=true nmea_udp_host:=192.168.1.10

    ros2 launch feature_matching_ros visual_navigation.launch.py mode:=navigation mavros:=true \
        map_image:=/data/ortho.tif

mode:=navigation runs navigator_node alone: the continuous navigation solution (map fixes carried
between them by keyframe odometry) on pose, odometry, velocity and fix. nmea_output:=true and
mavlink_bridge:=true start those output nodes beside it (off by default), connected by the nmea_* and
mavlink_* arguments. mavros:=true remaps the outputs to MAVROS's inputs and, where attitude_topic and
altitude_topic are left at their defaults, the aids to MAVROS's outputs (MAVROS_REMAPS, README
"MAVROS"). Arguments left empty keep the value of the parameter file (config/navigation.yaml by
default). Where `ros2 launch` is absent, `fm-navigate --params config/navigation.yaml [--mode
navigation]` runs the same nodes.
"""

import os

from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription

PACKAGE = "feature_matching_ros"
# launch argument -> the (node, parameter) pairs it sets when not empty
ARGUMENT_PARAMETERS = {
    "matcher": (("feature_matcher", "matcher"), ("navigator", "matcher")),
    "map_image": (("feature_matcher", "map_image"), ("geometry", "map_image"), ("navigator", "map_image")),
    "map_georef": (
        ("feature_matcher", "map_georef"),
        ("geometry", "map_georef"),
        ("navigator", "map_georef"),
    ),
    "map_frame_id": (("feature_matcher", "map_frame_id"),),
    "device": (("feature_matcher", "device"), ("navigator", "device")),
    "backend": (("feature_matcher", "backend"), ("navigator", "backend")),
    "model": (("geometry", "model"),),
    "reference_mode": (("feature_matcher", "reference_mode"),),
    "image_transport": (("feature_matcher", "image_transport"), ("navigator", "image_transport")),
    "attitude_input": (
        ("feature_matcher", "attitude_input"),
        ("geometry", "attitude_input"),
        ("navigator", "attitude_input"),
    ),
    "prior_input": (("feature_matcher", "prior_input"),),
    "nmea_udp_host": (("nmea_output", "udp_host"),),
    "nmea_udp_port": (("nmea_output", "udp_port"),),
    "nmea_serial_device": (("nmea_output", "serial_device"),),
    "nmea_serial_baud": (("nmea_output", "serial_baud"),),
    "mavlink_connection": (("mavlink_bridge", "connection"),),
    "mavlink_baud": (("mavlink_bridge", "baud"),),
}
# the arguments above whose parameter is an integer
INTEGER_ARGUMENTS = ("nmea_udp_port", "nmea_serial_baud", "mavlink_baud")
# output node -> the launch argument that starts it beside the navigation nodes (default off)
OUTPUTS = {"nmea_output": "nmea_output", "mavlink_bridge": "mavlink_bridge"}
# mode:=VALUE -> the nodes it starts, with the parameters it sets on each
MODES = {
    "map": {"feature_matcher": {"reference_mode": "map"}, "geometry": {"mode": "map"}},
    "keyframe": {"feature_matcher": {"reference_mode": "keyframe"}, "geometry": {"mode": "odometry"}},
    "topic": {"feature_matcher": {"reference_mode": "topic"}, "geometry": {"mode": "relative"}},
    "navigation": {"navigator": {}},
}
# the nodes started without mode:=
DEFAULT_NODES = ("feature_matcher", "geometry")
# launch argument -> the node topic it remaps
ARGUMENT_REMAPS = {
    "image_topic": "camera/image_raw",
    "compressed_topic": "camera/image_raw/compressed",
    "camera_info_topic": "camera/camera_info",
    "attitude_topic": "imu/data",
    "altitude_topic": "altitude",
    "prior_odometry_topic": "prior/odometry",
    "prior_fix_topic": "prior/fix",
}
# mavros:=true: node topic -> the MAVROS (ROS 2) topic it is remapped to. Outputs: the pose goes out as
# VISION_POSITION_ESTIMATE (vision_pose plugin), the odometry as ODOMETRY (odometry plugin; it needs TF
# from the odometry's frames to odom_ned and base_link_frd), the velocity as VISION_SPEED_ESTIMATE
# (vision_speed plugin; ENU linear velocity).
MAVROS_REMAPS = {
    "pose": "/mavros/vision_pose/pose_cov",
    "odometry": "/mavros/odometry/out",
    "velocity": "/mavros/vision_speed/speed_twist_cov",
}
# mavros:=true: remap argument -> the MAVROS topic it takes when left at its default (imu plugin:
# sensor_msgs/Imu, ENU/FLU; ArduPilot rangefinder plugin: sensor_msgs/Range)
MAVROS_INPUTS = {"attitude_topic": "/mavros/imu/data", "altitude_topic": "/mavros/rangefinder/rangefinder"}
# the defaults of those arguments
DEFAULT_TOPICS = {"attitude_topic": "/imu/data", "altitude_topic": "/altitude"}
EXECUTABLES = {
    "feature_matcher": "feature_matcher_node",
    "geometry": "geometry_node",
    "navigator": "navigator_node",
    "nmea_output": "nmea_output",
    "mavlink_bridge": "mavlink_bridge",
}


def _flag(context: LaunchContext, argument: str) -> bool:
    return LaunchConfiguration(argument).perform(context).lower() in ("true", "1")


def _remaps(context: LaunchContext) -> list[tuple[str, str]]:
    mavros = _flag(context, "mavros")
    remaps = []
    for arg, topic in ARGUMENT_REMAPS.items():
        value = LaunchConfiguration(arg).perform(context)
        if mavros and arg in MAVROS_INPUTS and value == DEFAULT_TOPICS[arg]:
            value = MAVROS_INPUTS[arg]
        remaps.append((topic, value))
    return remaps + (list(MAVROS_REMAPS.items()) if mavros else [])


def _argument(context: LaunchContext, arg: str) -> str | int:
    value = LaunchConfiguration(arg).perform(context)
    if value and arg in INTEGER_ARGUMENTS:
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{arg}:={value} is not an integer") from None
    return value


def _nodes(context: LaunchContext, *args: object, **kwargs: object) -> list[Node]:
    params_file = LaunchConfiguration("params_file").perform(context)
    use_sim_time = _flag(context, "use_sim_time")
    remaps = _remaps(context)
    namespace = LaunchConfiguration("namespace").perform(context)
    mode = LaunchConfiguration("mode").perform(context)
    if mode and mode not in MODES:
        raise ValueError(f"mode:={mode} is not one of {', '.join(MODES)}")
    names = list(MODES[mode] if mode else DEFAULT_NODES)
    names += [name for name, arg in OUTPUTS.items() if _flag(context, arg)]
    nodes = []
    for name in names:
        executable = EXECUTABLES[name]
        overrides = {"use_sim_time": use_sim_time, **(MODES[mode].get(name, {}) if mode else {})}
        for arg, targets in ARGUMENT_PARAMETERS.items():
            value = _argument(context, arg)
            for node, parameter in targets:
                if node == name and value != "":
                    overrides[parameter] = value
        if name == "nmea_output" and overrides.get("serial_device"):
            overrides["output"] = "serial"  # nmea_serial_device:=... sends to that device, not UDP
        nodes.append(
            Node(
                package=PACKAGE,
                executable=executable,
                name=name,
                namespace=namespace,
                parameters=[params_file, overrides],
                remappings=remaps,
                output="screen",
                emulate_tty=True,
            )
        )
    return nodes


def _rviz(context: LaunchContext, *args: object, **kwargs: object) -> list:
    """RViz where asked for and installed; without rviz2 the nodes run on (launch would orphan them)."""
    if not _flag(context, "rviz"):
        return []
    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        return [LogInfo(msg="rviz:=true, but rviz2 is not installed: running without RViz")]
    return [
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", os.path.join(get_package_share_directory(PACKAGE), "config", "navigation.rviz")],
            parameters=[{"use_sim_time": _flag(context, "use_sim_time")}],
        )
    ]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    arguments = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "navigation.yaml")),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false", description="follow /clock (bag replay)"
        ),
        DeclareLaunchArgument(
            "rviz", default_value="false", description="start rviz2 with config/navigation.rviz"
        ),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the nodes"),
        DeclareLaunchArgument(
            "matcher", default_value="", description="zoo name, e.g. sift or xfeat(sparse)"
        ),
        DeclareLaunchArgument(
            "mode",
            default_value="",
            description="map (fixes) | keyframe (odometry) | topic | navigation (navigator_node alone)",
        ),
        DeclareLaunchArgument(
            "map_image", default_value="", description="map image file (mode:=map or navigation)"
        ),
        DeclareLaunchArgument(
            "map_georef", default_value="", description="YAML or world file (default: beside map_image)"
        ),
        DeclareLaunchArgument("map_frame_id", default_value="", description="frame_id of the map image"),
        DeclareLaunchArgument("device", default_value="", description="cpu | cuda | auto"),
        DeclareLaunchArgument(
            "backend", default_value="", description="torch | openvino | onnxruntime | tensorrt (networks)"
        ),
        DeclareLaunchArgument("model", default_value="", description="Homography | Fundamental | Essential"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw"),
        DeclareLaunchArgument("compressed_topic", default_value="/camera/image_raw/compressed"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info"),
        DeclareLaunchArgument(
            "attitude_topic", default_value=DEFAULT_TOPICS["attitude_topic"], description="sensor_msgs/Imu"
        ),
        DeclareLaunchArgument(
            "altitude_topic", default_value=DEFAULT_TOPICS["altitude_topic"], description="sensor_msgs/Range"
        ),
        DeclareLaunchArgument(
            "reference_mode", default_value="", description="map | keyframe | topic (overrides mode:=)"
        ),
        DeclareLaunchArgument("image_transport", default_value="", description="raw | compressed"),
        DeclareLaunchArgument("attitude_input", default_value="", description="imu | quaternion | none"),
        DeclareLaunchArgument("prior_input", default_value="", description="none | odometry | navsatfix"),
        DeclareLaunchArgument(
            "prior_odometry_topic", default_value="prior/odometry", description="nav_msgs/Odometry prior"
        ),
        DeclareLaunchArgument(
            "prior_fix_topic", default_value="prior/fix", description="sensor_msgs/NavSatFix prior"
        ),
        DeclareLaunchArgument(
            "mavros",
            default_value="false",
            description="remap pose, odometry and velocity to MAVROS's vision_pose, odometry and "
            "vision_speed inputs, and the default attitude/altitude topics to /mavros/imu/data and "
            "/mavros/rangefinder/rangefinder",
        ),
        DeclareLaunchArgument(
            "nmea_output", default_value="false", description="start nmea_output (NMEA 0183 for a GPS port)"
        ),
        DeclareLaunchArgument(
            "nmea_udp_host", default_value="", description="nmea_output UDP destination host"
        ),
        DeclareLaunchArgument(
            "nmea_udp_port", default_value="", description="nmea_output UDP destination port"
        ),
        DeclareLaunchArgument(
            "nmea_serial_device",
            default_value="",
            description="nmea_output to this serial device instead of UDP",
        ),
        DeclareLaunchArgument(
            "nmea_serial_baud", default_value="", description="nmea_output serial baud rate"
        ),
        DeclareLaunchArgument(
            "mavlink_bridge",
            default_value="false",
            description="start mavlink_bridge (GPS_INPUT, ODOMETRY to ArduPilot/PX4)",
        ),
        DeclareLaunchArgument(
            "mavlink_connection",
            default_value="",
            description="pymavlink connection: udpout:HOST:PORT, udpin:HOST:PORT, tcp:HOST:PORT or a "
            "serial device",
        ),
        DeclareLaunchArgument(
            "mavlink_baud", default_value="", description="mavlink_bridge serial baud rate"
        ),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes), OpaqueFunction(function=_rviz)])
