"""The large-image Fast DDS profile: when it is applied, and that 640x480 frames cross processes with it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from feature_matching_ros.ros.infrastructure.dds import (
    FAST_DDS_2_VARIABLE,
    FAST_DDS_3_VARIABLE,
    large_image_profile,
    profile_variable,
    use_large_image_profile,
)

from ..conftest import DOMAIN_ID

FRAMES = 60

# A camera driver in its own process: best-effort sensor QoS, 640x480 rgb8 at 30 Hz.
CAMERA = textwrap.dedent(
    f"""
    import time
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from feature_matching_ros.ros.infrastructure.dds import use_large_image_profile

    use_large_image_profile()
    rclpy.init()
    node = rclpy.create_node("dds_test_camera")
    pub = node.create_publisher(Image, "dds_test/image_raw", qos_profile_sensor_data)
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    msg = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
    msg.data = bytes(range(256)) * (640 * 480 * 3 // 256)
    for i in range({FRAMES}):
        msg.header.frame_id = str(i)
        pub.publish(msg)
        time.sleep(1 / 30)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()
    """
)


def test_profile_is_set_for_fast_dds_by_default():
    env: dict[str, str] = {}
    assert use_large_image_profile(env) == large_image_profile()
    assert env == {profile_variable({}): large_image_profile()}
    assert os.path.isfile(large_image_profile())
    assert "<segment_size>" in open(large_image_profile()).read()


def test_profile_is_set_for_fast_dds_named_explicitly():
    env = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    assert use_large_image_profile(env) is not None
    assert profile_variable({}) in env


def _prefix(root: Path, package: str | None) -> str:
    (root / "share" / (package or "std_msgs")).mkdir(parents=True)
    return str(root)


@pytest.mark.parametrize(
    ("packages", "variable"),
    [
        (["fastdds"], FAST_DDS_3_VARIABLE),  # Kilted and later: Fast DDS 3
        (["fastrtps"], FAST_DDS_2_VARIABLE),  # Humble, Jazzy: Fast DDS 2
        ([None, "fastrtps", "fastdds"], FAST_DDS_2_VARIABLE),  # the first prefix that has one decides
        ([None, "fastdds", "fastrtps"], FAST_DDS_3_VARIABLE),
    ],
)
def test_the_variable_is_the_one_of_the_installed_fast_dds(tmp_path, packages, variable):
    prefixes = [_prefix(tmp_path / str(i), package) for i, package in enumerate(packages)]
    env = {"AMENT_PREFIX_PATH": os.pathsep.join(prefixes)}
    assert profile_variable(env) == variable
    assert use_large_image_profile(env) == large_image_profile()
    assert env[variable] == large_image_profile()
    assert set(env) == {"AMENT_PREFIX_PATH", variable}  # the other Fast DDS's variable stays unset


@pytest.mark.parametrize(
    "env",
    [
        {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"},
        {"RMW_IMPLEMENTATION": "rmw_zenoh_cpp"},
        {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/my_profile.xml"},
        {"FASTRTPS_DEFAULT_PROFILES_FILE": "/etc/my_old_profile.xml"},
        {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"},
    ],
)
def test_user_middleware_choices_are_left_alone(env):
    before = dict(env)
    assert use_large_image_profile(env) is None
    assert env == before


@pytest.mark.ros
def test_camera_frames_cross_processes_with_the_profile(ros_context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    received: list[str] = []
    node = rclpy.create_node("dds_test_listener", context=ros_context)
    node.create_subscription(
        Image, "dds_test/image_raw", lambda m: received.append(m.header.frame_id), qos_profile_sensor_data
    )
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID))
    for name in (FAST_DDS_2_VARIABLE, FAST_DDS_3_VARIABLE):
        env.pop(name, None)
    camera = subprocess.Popen(
        [sys.executable, "-c", CAMERA], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 40
        while camera.poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
        for _ in range(20):
            executor.spin_once(timeout_sec=0.02)
    finally:
        if camera.poll() is None:
            camera.kill()
        output = camera.communicate()[0]
        executor.shutdown()
        node.destroy_node()
    # The camera set the variable its Fast DDS reads: Kilted's rmw would warn about Fast DDS 2's.
    assert camera.returncode == 0 and "deprecated" not in output, output
    # On each tested distribution (make test: Kilted, Fast DDS 3; make test-jazzy: Fast DDS 2).
    # Without the profile the writer's 512 KiB shared-memory segment loses them: 0 of 60 here.
    assert len(received) >= 0.8 * FRAMES, f"received {len(received)} of {FRAMES} frames"
