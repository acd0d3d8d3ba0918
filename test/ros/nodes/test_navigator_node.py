"""The navigator node over real DDS: a simulated flight fed frame by frame (camera image, camera_info,
attitude, altitude), and the continuous solution it publishes on pose, odometry and fix."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from feature_matching_ros.cli import simulate
from feature_matching_ros.ros.nodes.navigator_node import UNKNOWN_ROTATION_VARIANCE

from ..conftest import spin_until
from ..harness import FRAME_ID, Harness, stamp

pytestmark = pytest.mark.ros

FRAMES = 10
GEODETIC_ORIGIN = (41.27, -81.75, 250.0)
READY_TIMEOUT = 60.0
ANSWER_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    out = tmp_path_factory.mktemp("navigator-sim") / "flight"
    args = ["--out", str(out), "--frames", str(FRAMES), "--map-size", "1024", "--seed", "11", "--tilt", "8"]
    assert simulate.main([*args, "--altitude-variation", "0.2", "--appearance", "moderate"]) == 0
    origin = ", ".join(str(v) for v in GEODETIC_ORIGIN)
    (out / "map.yaml").write_text((out / "map.yaml").read_text() + f"geodetic_origin: [{origin}]\n")
    from feature_matching_ros.ros.bags.flight_bag import read_flight

    return out, list(read_flight(out / "bag"))


class Pilot:
    """The test side: publishes a frame with its aids, collects the navigator's answers by stamp."""

    def __init__(self, context, node_name: str = "navigator"):
        from geometry_msgs.msg import TwistWithCovarianceStamped
        from nav_msgs.msg import Odometry
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Imu, NavSatFix, Range

        from feature_matching_ros.ros.infrastructure import topics

        self.harness = Harness(context, "fm_test_pilot")
        self.node_name = node_name
        node = self.harness.node
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        outputs = (
            (topics.ODOMETRY, Odometry),
            (topics.FIX, NavSatFix),
            (topics.VELOCITY, TwistWithCovarianceStamped),
        )
        for topic, msg_type in outputs:
            node.create_subscription(msg_type, topic, self.harness.received[topic].append, reliable)
        self.imu_pub = node.create_publisher(Imu, topics.ATTITUDE, qos_profile_sensor_data)
        self.range_pub = node.create_publisher(Range, topics.ALTITUDE, qos_profile_sensor_data)

    @property
    def received(self):
        return self.harness.received

    def publish(self, frame, t: float, info=None) -> None:
        from sensor_msgs.msg import Imu, Range

        from feature_matching_ros.core.geometry.pose import quaternion_from_matrix
        from feature_matching_ros.ros.conversions.images import array_to_image

        header_stamp = stamp(t)
        if frame.R_map_body is not None:
            imu = Imu()
            imu.header.stamp, imu.header.frame_id = header_stamp, "base_link"
            q = imu.orientation
            q.x, q.y, q.z, q.w = (float(v) for v in quaternion_from_matrix(frame.R_map_body))
            self.imu_pub.publish(imu)
        if frame.height is not None:
            altitude = Range(range=float(frame.height), min_range=0.5, max_range=1000.0)
            altitude.header.stamp, altitude.header.frame_id = header_stamp, "base_link"
            self.range_pub.publish(altitude)
        image = array_to_image(np.ascontiguousarray(frame.image), "rgb8")
        image.header.stamp, image.header.frame_id = header_stamp, FRAME_ID
        self.harness.info_pub.publish(info if info is not None else camera_info_of(frame, header_stamp))
        self.harness.image_pub.publish(image)

    def answer_to(self, executor, frame, t: float):
        self.publish(frame, t)
        return self.answer(executor, t)

    def answer(self, executor, t: float):
        """The status (GeometryEstimate) for the frame at ``t``, and its pose, odometry and fix."""
        key = stamp(t)

        def of(topic):
            found = [m for m in self.received[topic] if m.header.stamp == key]
            return found[-1] if found else None

        spin_until(executor, lambda: of("geometry") is not None, ANSWER_TIMEOUT, f"the status of t={t}")
        status = of("geometry")
        if status.pose_published:
            spin_until(
                executor,
                lambda: all(of(topic) is not None for topic in ("pose", "odometry", "fix")),
                5.0,
                f"pose, odometry and fix of t={t}",
            )
        return status, of("pose"), of("odometry"), of("fix")


def camera_info_of(frame, header_stamp, K=None):
    from sensor_msgs.msg import CameraInfo

    height, width = frame.image.shape[:2]
    K = frame.K if K is None else K
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.header.stamp, info.header.frame_id = header_stamp, FRAME_ID
    info.k = [float(v) for v in np.asarray(K).reshape(9)]
    info.d = [0.0] * 5
    return info


def running_navigator(ros_context, map_image, frames, **parameters):
    """The body of a fixture: the navigator node on ``map_image`` (and ``parameters``), ready (map
    features extracted), with a pilot whose subscriptions it sees; yields (node, pilot, executor,
    frames)."""
    from rclpy.parameter import Parameter

    from feature_matching_ros.ros.infrastructure.spin import make_executor
    from feature_matching_ros.ros.nodes.navigator_node import NavigatorNode

    overrides = {"map_image": str(map_image), "diagnostics_period": 0.2, "odometry_keypoints": 3000}
    # the tests send a frame as soon as the last is answered, faster than their stamps: in the
    # background (the default) most frames would go unsearched; it has a test of its own
    overrides["background_search"] = False
    overrides.update(parameters)
    node = NavigatorNode(
        context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    pilot = Pilot(ros_context)
    executor = make_executor(ros_context)
    executor.add_node(node)
    executor.add_node(pilot.harness.node)
    try:
        spin_until(executor, lambda: node.ready, READY_TIMEOUT, "the navigator to load the map")
        pilot.harness.wait_for_subscribers(executor)
        spin_until(
            executor,
            lambda: (
                pilot.imu_pub.get_subscription_count() > 0 and pilot.range_pub.get_subscription_count() > 0
            ),
            what="the navigator to subscribe the aids",
        )
        outputs = {"pose", "odometry", "fix", "geometry", "velocity"}
        publishers = [p for p in node.publishers if p.topic_name.lstrip("/") in outputs]
        spin_until(
            executor,
            lambda: all(p.get_subscription_count() > 0 for p in publishers),
            what="the navigator to see the pilot's subscriptions",
        )
        yield node, pilot, executor, frames
    finally:
        executor.shutdown()
        node.destroy_node()
        pilot.harness.destroy()


@pytest.fixture
def navigator(ros_context, flight):
    """The navigator node on the flight's map, ready (map features extracted), with a pilot."""
    out, frames = flight
    yield from running_navigator(ros_context, out / "map.png", frames)


def test_navigator_publishes_the_solution_of_a_simulated_flight(navigator, flight):
    from feature_matching_ros.core.maps.georef import GeoReference

    node, pilot, executor, frames = navigator
    georef = GeoReference(np.eye(2, 3), GEODETIC_ORIGIN)  # only to_geodetic of map metres is used
    published = 0
    for frame in frames:
        pilot.publish(frame, frame.stamp)
        status, pose, odometry, fix = pilot.answer(executor, frame.stamp)
        if not status.pose_published:
            assert published == 0, f"a solution once found is kept: {status.pose_status}"
            assert pose is None and odometry is None
            continue
        published += 1
        assert status.pose_status.split(";")[0] in ("fix", "odometry", "coast"), status.pose_status
        assert pose.header.frame_id == "map" and odometry.header.frame_id == "map"
        assert odometry.child_frame_id == "base_link"
        p = pose.pose.pose.position
        position = np.array([p.x, p.y, p.z])
        assert np.isfinite(position).all()
        truth = frame.truth_position
        assert np.linalg.norm(position[:2] - truth[:2]) < 3.0, (status.pose_status, position, truth)
        assert abs(position[2] - truth[2]) < 3.0
        covariance = np.array(pose.pose.covariance).reshape(6, 6)
        assert np.isfinite(covariance).all()
        assert np.all(np.linalg.eigvalsh(covariance[:3, :3]) > 0), covariance[:3, :3]
        assert np.all(np.linalg.eigvalsh(covariance) > 0)
        q = pose.pose.pose.orientation
        assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
        assert odometry.pose.pose == pose.pose.pose
        assert list(odometry.pose.covariance) == list(pose.pose.covariance)
        lat, lon, alt = georef.to_geodetic(*position)
        assert fix.status.status >= 0
        assert fix.latitude == pytest.approx(lat, abs=1e-7) and fix.longitude == pytest.approx(lon, abs=1e-7)
        assert fix.altitude == pytest.approx(alt, abs=1e-3)
        assert np.allclose(np.array(fix.position_covariance).reshape(3, 3), covariance[:3, :3])
    # a frame without texture: no fix and no odometry, the solution coasts with a growing covariance
    last_covariance = covariance
    blank = dataclasses.replace(frames[-1], image=np.full_like(frames[-1].image, 128))
    t = frames[-1].stamp + 0.2
    status, pose, odometry, fix = pilot.answer_to(executor, blank, t)
    assert status.pose_published and status.pose_status.startswith("coast; fix rejected"), status.pose_status
    covariance = np.array(pose.pose.covariance).reshape(6, 6)
    assert np.trace(covariance[:2, :2]) > np.trace(last_covariance[:2, :2])
    assert np.allclose(np.diag(covariance)[3:], UNKNOWN_ROTATION_VARIANCE)
    assert np.all(np.linalg.eigvalsh(covariance) > 0)
    assert fix.status.status >= 0
    published_frames = [m for m in pilot.received["geometry"] if m.pose_published]
    assert len(published_frames) >= len(frames), [m.pose_status for m in pilot.received["geometry"]]
    sources = [m.pose_status.split(";")[0] for m in pilot.received["geometry"]]
    assert sources.count("fix") >= len(frames) // 2, sources

    def counted() -> bool:
        return any("frames: fix" in {v.key for v in s.values} for s in pilot.harness.diagnostics("navigator"))

    spin_until(executor, counted, what="diagnostics counting the frames with a fix")


def test_with_the_search_in_the_background_every_frame_is_answered_after_its_odometry(ros_context, flight):
    """Frames at the camera's 5 Hz: the first frame's search runs while the next frames are answered;
    its fix comes in with a later frame's answer, fused at its own stamp, and from then on every frame
    has a solution within 3 m of the truth."""
    out, frames = flight
    running = running_navigator(ros_context, out / "map.png", frames, background_search=True)
    node, pilot, executor, frames = next(running)
    try:
        assert node._navigator.config.background_search
        statuses, errors = [], []
        for frame in frames:
            due = time.monotonic() + 0.2
            pilot.publish(frame, frame.stamp)
            status, pose, _, _ = pilot.answer(executor, frame.stamp)
            statuses.append(status.pose_status)
            if status.pose_published:
                p = pose.pose.pose.position
                errors.append(float(np.hypot(p.x - frame.truth_position[0], p.y - frame.truth_position[1])))
            elif errors:
                pytest.fail(f"a solution once found is kept: {status.pose_status}")
            spin_until(executor, lambda due=due: time.monotonic() > due)
    finally:
        running.close()
    assert statuses[0].startswith("no solution (none); searching the map in the background"), statuses[0]
    fused = [s for s in statuses if "fix of the frame at" in s and "s accepted" in s]
    assert fused and statuses.index(fused[0]) > 0, statuses
    assert errors and max(errors) < 3.0, (errors, statuses)


def test_navigator_reports_bad_input_and_answers_the_next_frame(navigator):
    from sensor_msgs.msg import Image

    node, pilot, executor, frames = navigator
    frame = frames[0]
    # camera_info with a zero focal length
    broken = np.asarray(frame.K).copy()
    broken[0, 0] = broken[1, 1] = 0.0
    pilot.publish(frame, 1.0, info=camera_info_of(frame, stamp(1.0), broken))
    status = pilot.harness.wait_for_error(executor, "navigator", "focal")
    assert status.message.startswith("bad camera_info:")
    # a garbage image: its data does not fill the declared size
    garbage = Image(width=640, height=480, encoding="rgb8", step=640 * 3)
    garbage.data = bytes(1000)
    garbage.header.stamp, garbage.header.frame_id = stamp(2.0), FRAME_ID
    pilot.harness.info_pub.publish(camera_info_of(frame, stamp(2.0)))
    pilot.harness.image_pub.publish(garbage)
    pilot.harness.wait_for_error(executor, "navigator", "bad image")
    assert pilot.received["pose"] == [] and pilot.received["geometry"] == []  # bad input: no status
    # before the first fix a frame without texture has no solution: its status, nothing else
    blank = dataclasses.replace(frame, image=np.full_like(frame.image, 128))
    status, pose, odometry, fix = pilot.answer_to(executor, blank, 3.0)
    assert not status.pose_published and status.pose_status.startswith("no solution (none)"), (
        status.pose_status
    )
    assert pose is None and odometry is None and fix is None
    assert not pilot.received["pose"] and not pilot.received["fix"]
    # the next valid frame is navigated
    pilot.publish(frame, frame.stamp)
    answer, pose, _, _ = pilot.answer(executor, frame.stamp)
    assert answer.pose_published, answer.pose_status
    p = pose.pose.pose.position
    assert np.linalg.norm(np.array([p.x, p.y]) - frame.truth_position[:2]) < 3.0
    assert node.monitor.errors["bad camera_info"] == 1 and node.monitor.errors["bad image"] == 1


def test_fm_navigate_runs_the_navigator_alone(ros_context, flight, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml
    from rclpy.executors import SingleThreadedExecutor

    from ..conftest import DOMAIN_ID

    out, frames = flight
    root = str(Path(__file__).resolve().parents[3])
    content = yaml.safe_load(open(os.path.join(root, "config", "navigation.yaml")))
    content["navigator"]["ros__parameters"].update(map_image=str(out / "map.png"), odometry=False)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(content))
    executable = os.path.join(os.path.dirname(sys.executable), "fm-navigate")
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.pop("ROS_STATIC_PEERS", None)
    process = subprocess.Popen(
        [executable, "--mode", "navigation", "--params", str(params_file)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pilot = Pilot(ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(pilot.harness.node)
    frame = frames[0]
    try:
        pilot.harness.wait_for_subscribers(executor)
        deadline = time.monotonic() + 60
        while not pilot.received["pose"] and time.monotonic() < deadline and process.poll() is None:
            # again until the node (in another process) is ready; large best-effort frames may be lost
            pilot.publish(frame, frame.stamp)
            for _ in range(20):
                executor.spin_once(timeout_sec=0.05)
        spin_until(executor, lambda: pilot.received["pose"], what="a pose from fm-navigate --mode navigation")
        pose = pilot.received["pose"][0]
        p = pose.pose.pose.position
        assert np.linalg.norm(np.array([p.x, p.y]) - frame.truth_position[:2]) < 3.0
        assert not pilot.received["matches"], "the navigator runs alone"
    finally:
        executor.shutdown()
        pilot.harness.destroy()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert "navigating on" in output


def test_navigator_survives_a_failing_step_and_never_publishes_a_non_finite_pose(navigator):
    node, pilot, executor, frames = navigator
    real = node._navigator.step
    calls = []

    def faulty(*args, **kwargs):
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("simulated fault inside the navigator")
        state = real(*args, **kwargs)
        if len(calls) == 2:
            return dataclasses.replace(state, position=np.array([np.nan, 0.0, 100.0]))
        return state

    node._navigator.step = faulty
    pilot.publish(frames[0], frames[0].stamp)
    status = pilot.harness.wait_for_error(executor, "navigator", "simulated fault")
    assert status.message.startswith("internal: RuntimeError")
    answer, pose, _, _ = pilot.answer_to(executor, frames[1], frames[1].stamp)
    assert not answer.pose_published and "non-finite position" in answer.pose_status, answer.pose_status
    assert pose is None and not pilot.received["pose"] and not pilot.received["odometry"]
    pilot.harness.wait_for_error(executor, "navigator", "invalid pose")
    answer, pose, odometry, fix = pilot.answer_to(executor, frames[2], frames[2].stamp)
    assert answer.pose_published, answer.pose_status
    p = pose.pose.pose.position
    assert np.linalg.norm(np.array([p.x, p.y]) - frames[2].truth_position[:2]) < 3.0


def test_navigator_parameters_are_validated_and_a_change_rebuilds_it(navigator):
    from rclpy.parameter import Parameter

    node, pilot, executor, frames = navigator
    refused = node.set_parameters([Parameter("map_upsample", value=100.0)])[0]
    assert not refused.successful and "map_upsample" in refused.reason
    refused = node.set_parameters([Parameter("matcher", value="no-such-matcher")])[0]
    assert not refused.successful and "not in the zoo" in refused.reason
    assert not node.set_parameters([Parameter("matcher", value="")])[0].successful  # no matcher at all
    old = node._navigator
    assert node.set_parameters([Parameter("map_upsample", value=1.0)])[0].successful
    spin_until(executor, lambda: node.ready and node._navigator is not old, READY_TIMEOUT, "the rebuild")
    assert node._navigator.localizer.search.config.map_upsample == 1.0
    old = node._navigator
    results = node.set_parameters(
        [Parameter("revisit_capacity", value=8), Parameter("revisit_min_sigma", value=20.0)]
    )
    assert all(r.successful for r in results)
    spin_until(executor, lambda: node.ready and node._navigator is not old, READY_TIMEOUT, "the rebuild")
    assert node._navigator.memory.config.capacity == 8 and node._navigator.memory.config.min_sigma_m == 20.0
    old = node._navigator
    assert node.set_parameters([Parameter("revisit", value=False)])[0].successful
    spin_until(executor, lambda: node.ready and node._navigator is not old, READY_TIMEOUT, "the rebuild")
    assert node._navigator.memory is None
    for name, default, bad, good in (
        ("fix_height_sigma", 0.05, -0.1, 0.1),
        ("whole_map_interval_s", 3.0, -1.0, 1.0e9),
        ("whole_map_budget_s", 0.0, -1.0, 20.0),
    ):
        assert getattr(node._navigator.config, name) == default
        refused = node.set_parameters([Parameter(name, value=bad)])[0]
        assert not refused.successful and name in refused.reason
        old = node._navigator
        assert node.set_parameters([Parameter(name, value=good)])[0].successful
        spin_until(
            executor, lambda old=old: node.ready and node._navigator is not old, READY_TIMEOUT, "the rebuild"
        )
        assert getattr(node._navigator.config, name) == good
    assert node._navigator.fallback is not None  # akaze by default
    refused = node.set_parameters([Parameter("fallback_matcher", value="no-such-matcher")])[0]
    assert not refused.successful and "not in the zoo" in refused.reason
    old = node._navigator
    assert node.set_parameters([Parameter("fallback_matcher", value="")])[0].successful
    spin_until(executor, lambda: node.ready and node._navigator is not old, READY_TIMEOUT, "the rebuild")
    assert node._navigator.fallback is None
    answer, pose, _, _ = pilot.answer_to(executor, frames[0], frames[0].stamp)
    assert answer.pose_published, answer.pose_status
