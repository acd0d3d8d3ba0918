"""`ros2 launch` of the package's launch files for real: nodes over DDS on a simulated flight bag,
their parameters seen by `ros2 param`, and clean ends (no orphaned node, no traceback)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from feature_matching_ros.ros import params

from ..ros.conftest import DOMAIN_ID, ros_context, spin_until  # noqa: F401  (ros_context: a fixture)
from .ros2_tools import PACKAGE, Launched, make_overlay, require_ros2_tools, tool_env

pytestmark = pytest.mark.ros

READY_S = 60.0  # two Python nodes importing torch on a loaded 2-core machine


@pytest.fixture(scope="session")
def ament_prefix(tmp_path_factory) -> str:
    return make_overlay(tmp_path_factory.mktemp("ament_prefix"))


@pytest.fixture(scope="session")
def flight(tmp_path_factory) -> Path:
    """A 12-frame simulated flight (320x240 frames over a 1024 px procedural map) in a bag."""
    from feature_matching_ros.cli.simulate import main

    out = tmp_path_factory.mktemp("flight") / "flight"
    argv = ["--out", str(out), "--frames", "12", "--map-size", "1024", "--width", "320", "--height", "240"]
    assert main(argv) == 0
    return out


@pytest.fixture
def tools(ros_context, ament_prefix):  # noqa: F811
    """(`ros2` executable, the environment to run the tools in: the test's DDS domain)."""
    return require_ros2_tools(), tool_env(ament_prefix, DOMAIN_ID)


def ros2(tools, *args: str, attempts: int = 5) -> str:
    """The output of `ros2 ARGS`, without the daemon; retried while discovery is not complete."""
    executable, env = tools
    for _ in range(attempts):
        done = subprocess.run(
            [executable, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode == 0 and "Node not found" not in done.stdout + done.stderr:
            return done.stdout
    pytest.fail(f"ros2 {' '.join(args)}: {done.stdout}{done.stderr}")


def launch(tools, tmp_path: Path, *arguments: str, file: str = "visual_navigation.launch.py") -> Launched:
    executable, env = tools
    return Launched([executable, "launch", PACKAGE, file, *arguments], env, tmp_path / "launch.log")


def param_get(tools, *queries: tuple[str, str]) -> list[str]:
    """`ros2 param get NODE NAME` for every (node, name), run side by side (each takes seconds)."""
    executable, env = tools
    values: dict[tuple[str, str], str] = {}
    last: dict[tuple[str, str], str] = {}
    for attempt in range(6):
        todo = [q for q in queries if q not in values]
        if not todo:
            break
        # discovery and the parameter service can take seconds on a loaded 2-core machine
        running = {
            q: subprocess.Popen(
                [executable, "param", "get", "--no-daemon", "--spin-time", str(1 + attempt), *q],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for q in todo
        }
        for query, process in running.items():
            out = process.communicate(timeout=60)[0]
            last[query] = out.strip()
            if process.returncode == 0 and "Node not found" not in out:
                values[query] = out.strip().rsplit(": ", 1)[-1]
    missing = [q for q in queries if q not in values]
    assert not missing, f"ros2 param get failed for {missing}: {[last[q][-300:] for q in missing]}"
    return [values[q] for q in queries]


def replay_until(tools, bag: Path, tmp_path: Path, executor, done, what: str) -> None:
    """Play ``bag`` in a loop until ``done()``. One pass may not be enough on a loaded machine: a node
    whose subscription the player has not matched yet misses the best-effort messages of that pass."""
    _, env = tools
    player = Launched(
        [shutil.which("fm-replay", path=env["PATH"]), str(bag), "--loop", "--wait-for-subscribers", "30"]
        + ["--topics", "/camera/image_raw", "/camera/camera_info", "/imu/data", "/altitude"],
        env,
        tmp_path / "replay.log",
    )
    try:
        spin_until(executor, done, timeout=60, what=what)
    finally:
        assert player.interrupt() == 0, player.output


def collect(ros_context, topic: str, msg_type: type):  # noqa: F811
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data

    node = rclpy.create_node("fm_launch_probe", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    received: list = []
    node.create_subscription(msg_type, topic, received.append, qos_profile_sensor_data)
    return node, executor, received


def assert_clean_end(launched: Launched) -> None:
    code = launched.interrupt()
    output = launched.output
    assert not launched.leftovers(), f"processes left running: {launched.leftovers()}\n{output[-3000:]}"
    assert "Traceback" not in output, output[-4000:]
    assert "process has died" not in output, output[-4000:]
    assert code == 0, output[-3000:]


def wait_ready(launched: Launched, text: str = "ready on") -> None:
    launched.wait_for_output(text, READY_S)


def test_map_mode_gives_poses_and_its_parameters(tools, ros_context, flight, tmp_path):  # noqa: F811
    from geometry_msgs.msg import PoseWithCovarianceStamped

    node, executor, poses = collect(ros_context, "/pose", PoseWithCovarianceStamped)
    launched = launch(
        tools,
        tmp_path,
        "mode:=map",
        f"map_image:={flight / 'map.png'}",
        "use_sim_time:=true",
        "matcher:=sift",
    )
    try:
        wait_ready(launched, "tiles in")
        listed = ros2(tools, "param", "list", "--no-daemon", "--spin-time", "1", "/feature_matcher")
        assert {s.name for s in params.MATCHER_NODE} <= set(re.findall(r"^\s+(\S+)$", listed, re.M))
        assert param_get(
            tools,
            ("/feature_matcher", "reference_mode"),
            ("/geometry", "mode"),
            ("/geometry", "use_sim_time"),
        ) == ["map", "map", "True"]
        replay_until(
            tools, flight / "bag", tmp_path, executor, lambda: poses, "/pose from the launched nodes"
        )
        position = poses[-1].pose.pose.position
        assert poses[-1].header.frame_id == "map"
        assert all(math.isfinite(v) for v in (position.x, position.y, position.z))
        assert_clean_end(launched)
    finally:
        if launched.running():
            launched.kill()
        executor.shutdown()
        node.destroy_node()


def test_keyframe_mode_in_a_namespace_gives_odometry(tools, ros_context, flight, tmp_path):  # noqa: F811
    from nav_msgs.msg import Odometry

    node, executor, odometry = collect(ros_context, "/uav1/odometry", Odometry)
    launched = launch(tools, tmp_path, "mode:=keyframe", "namespace:=uav1", "use_sim_time:=true")
    try:
        wait_ready(launched)
        modes = param_get(tools, ("/uav1/feature_matcher", "reference_mode"), ("/uav1/geometry", "mode"))
        assert modes == ["keyframe", "odometry"]
        replay_until(tools, flight / "bag", tmp_path, executor, lambda: len(odometry) >= 3, "/uav1/odometry")
        assert odometry[-1].header.frame_id == "odom"
        assert_clean_end(launched)
    finally:
        if launched.running():
            launched.kill()
        executor.shutdown()
        node.destroy_node()


def test_node_arguments_reach_the_nodes_and_a_missing_rviz_orphans_nothing(
    tools,
    ros_context,  # noqa: F811
    tmp_path,
):
    """The README's launch arguments set node parameters and remap the prior topics; rviz:=true
    where rviz2 is not installed leaves the nodes running, and Ctrl-C ends them all."""
    import rclpy

    executable, env = tools
    assert (
        subprocess.run([executable, "pkg", "prefix", "rviz2"], env=env, capture_output=True).returncode != 0
    )
    launched = launch(
        tools,
        tmp_path,
        "mode:=topic",
        "rviz:=true",
        "image_transport:=compressed",
        "attitude_input:=quaternion",
        "prior_input:=odometry",
        "prior_odometry_topic:=/ekf/odom",
        "prior_fix_topic:=/gps/fix",
    )
    node = rclpy.create_node("fm_launch_probe", context=ros_context)
    try:
        wait_ready(launched)
        assert "rviz2 is not installed" in launched.output
        assert launched.running()
        assert param_get(
            tools,
            ("/feature_matcher", "image_transport"),
            ("/feature_matcher", "attitude_input"),
            ("/geometry", "attitude_input"),
            ("/feature_matcher", "prior_input"),
        ) == ["compressed", "quaternion", "quaternion", "odometry"]
        deadline = time.monotonic() + 10
        while not node.get_subscriptions_info_by_topic("/ekf/odom") and time.monotonic() < deadline:
            time.sleep(0.1)
        subscribers = {info.node_name for info in node.get_subscriptions_info_by_topic("/ekf/odom")}
        assert "feature_matcher" in subscribers
        compressed = node.get_subscriptions_info_by_topic("/camera/image_raw/compressed")
        assert "feature_matcher" in {info.node_name for info in compressed}
        assert_clean_end(launched)
    finally:
        if launched.running():
            launched.kill()
        node.destroy_node()


def test_replay_ends_when_the_player_dies(tools, tmp_path):
    """replay.launch.py with a player that exits at once (no such bag): the whole launch ends."""
    launched = launch(
        tools, tmp_path, f"bag:={tmp_path / 'missing'}", "mode:=keyframe", file="replay.launch.py"
    )
    try:
        launched.wait(30)
        assert not launched.leftovers(), launched.output[-3000:]
        assert "shutting down launched system" in launched.output, launched.output[-3000:]
    finally:
        if launched.running():
            launched.kill()


# mavros:=true: the navigator's topics as MAVROS's plugins subscribe them (ROS 2 MAVROS), with types
MAVROS_OUTPUTS = {
    "/mavros/vision_pose/pose_cov": "geometry_msgs/msg/PoseWithCovarianceStamped",
    "/mavros/odometry/out": "nav_msgs/msg/Odometry",
    "/mavros/vision_speed/speed_twist_cov": "geometry_msgs/msg/TwistWithCovarianceStamped",
}
MAVROS_AIDS = {
    "/mavros/imu/data": "sensor_msgs/msg/Imu",
    "/mavros/rangefinder/rangefinder": "sensor_msgs/msg/Range",
}


def test_outputs_and_mavros_remaps(tools, ros_context, flight, tmp_path):  # noqa: F811
    """mode:=navigation with mavros:=true, nmea_output:=true and mavlink_bridge:=true: the three nodes
    run, the navigator publishes on MAVROS's input topics and reads its aids from MAVROS's outputs,
    NMEA sentences arrive on the UDP port given, and the bridge, reading the remapped odometry, sends
    MAVLink to the connection given."""
    import os
    import socket

    import numpy as np
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import NavSatFix

    from ..conftest import require_module

    os.environ["MAVLINK20"] = "1"
    mavutil = require_module("pymavlink.mavutil", " (install_requires has it)")
    from ..ros.nodes.test_mavlink_bridge import T0, fix_message, free_port, odometry_message

    nmea = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    nmea.bind(("127.0.0.1", 0))
    nmea.setblocking(False)
    mavlink_port = free_port()
    autopilot = mavutil.mavlink_connection(f"udpin:127.0.0.1:{mavlink_port}", dialect="common")
    launched = launch(
        tools,
        tmp_path,
        "mode:=navigation",
        f"map_image:={flight / 'map.png'}",
        "mavros:=true",
        "nmea_output:=true",
        f"nmea_udp_port:={nmea.getsockname()[1]}",
        "mavlink_bridge:=true",
        f"mavlink_connection:=udpout:127.0.0.1:{mavlink_port}",
    )
    node = rclpy.create_node("fm_launch_probe", context=ros_context)
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    odometry_pub = node.create_publisher(Odometry, "/mavros/odometry/out", reliable)
    fix_pub = node.create_publisher(NavSatFix, "/fix", reliable)
    try:
        wait_ready(launched, "navigating on")
        launched.wait_for_output("MAVLink 2 GPS_INPUT, ODOMETRY to udpout", READY_S)
        launched.wait_for_output("NMEA 0183 (GN) to udp://127.0.0.1", READY_S)

        def graph(topic: str, kind: str) -> set[tuple[str, str]]:
            infos = getattr(node, f"get_{kind}_info_by_topic")(topic)
            return {(info.node_name, info.topic_type) for info in infos}

        def wired() -> bool:
            return (
                all(("navigator", t) in graph(topic, "publishers") for topic, t in MAVROS_OUTPUTS.items())
                and all(("navigator", t) in graph(topic, "subscriptions") for topic, t in MAVROS_AIDS.items())
                and {"nmea_output", "mavlink_bridge"}
                <= {n for n, _ in graph("/mavros/odometry/out", "subscriptions")}
            )

        deadline = time.monotonic() + 30
        while not wired() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert wired(), {t: graph(t, "publishers") | graph(t, "subscriptions") for t in MAVROS_OUTPUTS}
        for topic in ("/pose", "/odometry", "/velocity", "/imu/data", "/altitude"):
            assert not graph(topic, "publishers") and not graph(topic, "subscriptions"), topic
        wanted = [f"{topic} [{kind}]" for topic, kind in {**MAVROS_OUTPUTS, **MAVROS_AIDS}.items()]
        wanted += ["/navigator", "/nmea_output", "/mavlink_bridge"]
        for spin in (2, 3, 5):  # the command line tools' discovery may take a few seconds
            listed = ros2(tools, "topic", "list", "-t", "--no-daemon", "--spin-time", str(spin))
            listed += ros2(tools, "node", "list", "--no-daemon", "--spin-time", str(spin))
            if all(w in listed.splitlines() for w in wanted):
                break
        assert all(w in listed.splitlines() for w in wanted), listed
        # the outputs on the remapped odometry: a solution in, GPS_INPUT with a fix and ODOMETRY out
        received: list = []
        sentences: list[bytes] = []
        deadline = time.monotonic() + 30
        t = T0
        while time.monotonic() < deadline:
            t += 0.2
            fix_pub.publish(fix_message(t))
            odometry_pub.publish(odometry_message(t))
            time.sleep(0.2)
            while (msg := autopilot.recv_match(blocking=False)) is not None:
                received.append(msg)
            while True:
                try:
                    sentences.append(nmea.recv(4096))
                except BlockingIOError:
                    break
            kinds = {m.get_type() for m in received}
            fixed = any(m.get_type() == "GPS_INPUT" and m.fix_type == 3 for m in received)
            if {"HEARTBEAT", "ODOMETRY"} <= kinds and fixed and sentences:
                break
        kinds = {m.get_type() for m in received}
        assert {"HEARTBEAT", "ODOMETRY", "GPS_INPUT"} <= kinds, kinds
        odometry = [m for m in received if m.get_type() == "ODOMETRY"][-1]
        assert np.isfinite([odometry.x, odometry.y, odometry.z]).all()
        assert any(m.get_type() == "GPS_INPUT" and m.fix_type == 3 for m in received)
        assert any(b"GGA," in s for s in sentences), sentences[:3]
        assert_clean_end(launched)
    finally:
        if launched.running():
            launched.kill()
        node.destroy_node()
        autopilot.close()
        nmea.close()
