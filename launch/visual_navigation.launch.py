"""Visual navigation: feature_matcher_node + geometry_node, optionally RViz.

    ros2 launch feature_matching_ros visual_navigation.launch.py \
        matcher:=xfeat(sparse) mode:=map map_image:=/data/ortho.png image_topic:=/cam0/image_raw rviz:=true

Arguments left empty keep the value of the parameter file (config/navigation.yaml by default).
Where `ros2 launch` is absent, `fm-navigate --params config/navigation.yaml` runs the same nodes.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription

PACKAGE = "feature_matching_ros"
# launch argument -> (node, parameter) it sets when not empty
ARGUMENT_PARAMETERS = {
    "matcher": ("feature_matcher", "matcher"),
    "mode": ("feature_matcher", "reference_mode"),
    "map_image": ("feature_matcher", "map_image"),
    "map_frame_id": ("feature_matcher", "map_frame_id"),
    "device": ("feature_matcher", "device"),
    "model": ("geometry", "model"),
}
# launch argument -> the node topic it remaps
ARGUMENT_REMAPS = {
    "image_topic": "camera/image_raw",
    "compressed_topic": "camera/image_raw/compressed",
    "camera_info_topic": "camera/camera_info",
}
EXECUTABLES = {"feature_matcher": "feature_matcher_node", "geometry": "geometry_node"}


def _nodes(context: LaunchContext, *args: object, **kwargs: object) -> list[Node]:
    params_file = LaunchConfiguration("params_file").perform(context)
    use_sim_time = LaunchConfiguration("use_sim_time").perform(context).lower() in ("true", "1")
    remaps = [(topic, LaunchConfiguration(arg).perform(context)) for arg, topic in ARGUMENT_REMAPS.items()]
    namespace = LaunchConfiguration("namespace").perform(context)
    nodes = []
    for name, executable in EXECUTABLES.items():
        overrides = {"use_sim_time": use_sim_time}
        for arg, (node, parameter) in ARGUMENT_PARAMETERS.items():
            value = LaunchConfiguration(arg).perform(context)
            if node == name and value:
                overrides[parameter] = value
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
        DeclareLaunchArgument("namespace", default_value="", description="namespace of both nodes"),
        DeclareLaunchArgument("matcher", default_value="", description="zoo name, e.g. xfeat(sparse)"),
        DeclareLaunchArgument("mode", default_value="", description="reference: map | keyframe | topic"),
        DeclareLaunchArgument("map_image", default_value="", description="map image file (mode:=map)"),
        DeclareLaunchArgument("map_frame_id", default_value="", description="frame_id of the map image"),
        DeclareLaunchArgument("device", default_value="", description="cpu | cuda | auto"),
        DeclareLaunchArgument("model", default_value="", description="Homography | Fundamental | Essential"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw"),
        DeclareLaunchArgument("compressed_topic", default_value="/camera/image_raw/compressed"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/camera_info"),
    ]
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", os.path.join(share, "config", "navigation.rviz")],
        parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes), rviz])
