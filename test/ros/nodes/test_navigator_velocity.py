"""The navigator's velocity over real DDS: a simulated straight flight (15 m/s, climbing and
descending) fed frame by frame; the velocity on ``velocity`` (TwistWithCovarianceStamped, map ENU)
against the simulator's ground truth at the message's stamp, its covariance's consistency (NEES),
and the same velocity in the body frame in the odometry's twist."""

from __future__ import annotations

import numpy as np
import pytest

from feature_matching_ros.cli import simulate
from feature_matching_ros.core.navigation.velocity import VelocityConfig

from ..conftest import spin_until
from .test_navigator_node import GEODETIC_ORIGIN, running_navigator

pytestmark = pytest.mark.ros

FRAMES = 30
VELOCITY_MIN_SAMPLES = VelocityConfig().min_samples
SPEED = 15.0
# Measured (26 velocities of this flight): horizontal error median 0.008, max 0.017 m/s; vertical max
# 0.040 m/s; horizontal NEES mean 1.07, all 26 within the chi2 95 % bound. The bounds leave room.
MAX_HORIZONTAL_ERROR = 0.1
MAX_VERTICAL_ERROR = 0.15
CHI2_2DOF_95 = 5.99
CHI2_2DOF_9999 = 18.42


@pytest.fixture(scope="module")
def straight_flight(tmp_path_factory):
    out = tmp_path_factory.mktemp("velocity-sim") / "flight"
    args = ["--out", str(out), "--frames", str(FRAMES), "--map-size", "1024", "--seed", "3"]
    args += ["--waypoints=-120,-90;130,80", "--speed", str(SPEED), "--yaw", "track", "--tilt", "5"]
    assert simulate.main([*args, "--altitude-variation", "0.2", "--appearance", "moderate"]) == 0
    origin = ", ".join(str(v) for v in GEODETIC_ORIGIN)
    (out / "map.yaml").write_text((out / "map.yaml").read_text() + f"geodetic_origin: [{origin}]\n")
    from feature_matching_ros.ros.bags.flight_bag import read_flight

    return out, list(read_flight(out / "bag"))


def truth_velocity(frames, t: float) -> np.ndarray:
    """The simulator's ENU velocity at ``t``: central differences of the true positions, interpolated."""
    stamps = np.array([f.stamp for f in frames])
    positions = np.array([f.truth_position for f in frames])
    velocities = np.gradient(positions, stamps, axis=0)
    return np.array([np.interp(t, stamps, velocities[:, k]) for k in range(3)])


@pytest.fixture
def navigator(ros_context, straight_flight):
    out, frames = straight_flight
    yield from running_navigator(ros_context, out / "map.png", frames)


def test_velocity_against_ground_truth_and_in_the_odometry_twist(navigator):
    from feature_matching_ros.core.geometry.pose import matrix_from_quaternion
    from feature_matching_ros.ros.conversions.aids import stamp_seconds

    node, pilot, executor, frames = navigator
    odometries = []
    for frame in frames:
        status, _, odometry, _ = pilot.answer_to(executor, frame, frame.stamp)
        assert status.pose_published, status.pose_status
        odometries.append(odometry)
    expected = FRAMES - VELOCITY_MIN_SAMPLES + 1  # one per solution from the fifth on
    spin_until(executor, lambda: len(pilot.received["velocity"]) >= expected, what="the velocities")
    velocities = pilot.received["velocity"]
    assert len(velocities) == expected
    # the first solutions give no velocity yet: no twist in their odometry
    assert all(o.twist.covariance[0] == -1.0 for o in odometries[: VELOCITY_MIN_SAMPLES - 1])
    assert all(o.twist.covariance[0] >= 0.0 for o in odometries[VELOCITY_MIN_SAMPLES - 1 :])
    horizontal, vertical, nees = [], [], []
    for msg in velocities:
        assert msg.header.frame_id == "map"
        t = stamp_seconds(msg.header.stamp)  # the window's mean stamp: between the first and last frame
        assert frames[0].stamp < t < frames[-1].stamp
        v = msg.twist.twist.linear
        velocity = np.array([v.x, v.y, v.z])
        covariance = np.array(msg.twist.covariance).reshape(6, 6)
        assert np.all(np.linalg.eigvalsh(covariance[:3, :3]) > 0), covariance[:3, :3]
        assert np.allclose(np.diag(covariance)[3:], 1e3)  # angular rates: not estimated
        error = velocity - truth_velocity(frames, t)
        horizontal.append(float(np.linalg.norm(error[:2])))
        vertical.append(abs(float(error[2])))
        nees.append(float(error[:2] @ np.linalg.solve(covariance[:2, :2], error[:2])))
        assert np.linalg.norm(velocity[:2]) == pytest.approx(SPEED, abs=MAX_HORIZONTAL_ERROR)
    summary = (
        f"{len(velocities)} velocities: horizontal error median {np.median(horizontal):.3f} max "
        f"{max(horizontal):.3f} m/s, vertical max {max(vertical):.3f} m/s, NEES mean {np.mean(nees):.2f}, "
        f"{np.mean(np.array(nees) <= CHI2_2DOF_95):.0%} within the chi2 95% bound"
    )
    print(summary)
    assert max(horizontal) <= MAX_HORIZONTAL_ERROR, summary
    assert max(vertical) <= MAX_VERTICAL_ERROR, summary
    assert np.mean(nees) <= 2 * 2.0 and max(nees) <= CHI2_2DOF_9999, summary
    assert np.mean(np.array(nees) <= CHI2_2DOF_95) >= 0.8, summary
    # the odometry's twist: the same velocity, in the body frame (its child frame) as oriented in its pose
    latest = velocities[-1]
    odometry = odometries[-1]
    q = odometry.pose.pose.orientation
    R = matrix_from_quaternion(np.array([q.x, q.y, q.z, q.w]))
    body = odometry.twist.twist.linear
    in_map = R @ np.array([body.x, body.y, body.z])
    v = latest.twist.twist.linear
    assert np.allclose(in_map, [v.x, v.y, v.z], atol=1e-6)
    body_covariance = np.array(odometry.twist.covariance).reshape(6, 6)[:3, :3]
    map_covariance = np.array(latest.twist.covariance).reshape(6, 6)[:3, :3]
    assert np.allclose(R @ body_covariance @ R.T, map_covariance, atol=1e-9)
    # the nose points along the track: the body's forward velocity is nearly the speed
    assert body.x == pytest.approx(SPEED, abs=2.0)

    def counted() -> bool:
        statuses = pilot.harness.diagnostics("navigator")
        return any(v.key == "velocities published" and int(v.value) > 0 for s in statuses for v in s.values)

    spin_until(executor, counted, what="diagnostics counting the velocities")
