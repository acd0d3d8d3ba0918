"""Replay a rosbag2 with sim time through the visual-navigation pipeline.

    ros2 launch feature_matching_ros replay.launch.py bag:=/flights/seneca rate:=1.0 mode:=keyframe

Takes every argument of visual_navigation.launch.py (use_sim_time is forced on). The launch ends
when the player exits: at the end of the bag, or when it fails. Without `ros2 bag`,
`fm-replay BAG --rate R` plays the bag and `fm-navigate` runs the pipeline.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription

PACKAGE = "feature_matching_ros"
FORWARDED = (
    "params_file",
    "rviz",
    "namespace",
    "matcher",
    "mode",
    "map_image",
    "map_georef",
    "map_frame_id",
    "device",
    "model",
    "image_topic",
    "compressed_topic",
    "camera_info_topic",
    "attitude_topic",
    "altitude_topic",
    "reference_mode",
    "image_transport",
    "attitude_input",
    "prior_input",
    "prior_odometry_topic",
    "prior_fix_topic",
)


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    navigation = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "visual_navigation.launch.py")),
        launch_arguments={
            "use_sim_time": "true",
            **{name: LaunchConfiguration(name) for name in FORWARDED},
        }.items(),
    )
    play = ExecuteProcess(
        cmd=[
            "ros2",
            "bag",
            "play",
            LaunchConfiguration("bag"),
            "--clock",
            "--rate",
            LaunchConfiguration("rate"),
        ],
        output="screen",
        # The end of the bag, or a player that fails, ends the replay: no nodes left waiting for data.
        on_exit=[Shutdown(reason="ros2 bag play exited")],
    )
    defaults = {
        "params_file": os.path.join(share, "config", "navigation.yaml"),
        "rviz": "false",
        "image_topic": "/camera/image_raw",
        "compressed_topic": "/camera/image_raw/compressed",
        "camera_info_topic": "/camera/camera_info",
        "attitude_topic": "/imu/data",
        "altitude_topic": "/altitude",
        "prior_odometry_topic": "prior/odometry",
        "prior_fix_topic": "prior/fix",
    }
    arguments = [
        DeclareLaunchArgument("bag", description="rosbag2 directory or file to play"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        *[DeclareLaunchArgument(name, default_value=defaults.get(name, "")) for name in FORWARDED],
    ]
    return LaunchDescription([*arguments, navigation, play])
