"""The navigator and mavlink_bridge together over real DDS on a simulated straight flight, with a
pymavlink receiver on loopback standing in for the autopilot: GPS_INPUT and ODOMETRY decoded and
checked against the simulator's ground truth (position, velocity, and the accuracies they claim).

Measured (30 frames at 5 Hz, 15 m/s on a straight line, ±24 m of climb): 129 GPS_INPUT with a fix,
horizontal error median 0.010, max 0.034 m (at most 0.03 horiz_accuracy: that includes the map's
1 m georeference sigma); 107 with a velocity, error median 0.008, max 0.017 m/s (at most 1.2
speed_accuracy); vertical velocity 1.085 m/s off the truth at the fix's stamp but 0.040 off it at the
fit window's mean stamp, 1 s earlier; ODOMETRY positions within 0.028 m, 26 of 30 with a velocity."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from ..conftest import spin_until
from .test_navigator_node import GEODETIC_ORIGIN, running_navigator
from .test_navigator_velocity import SPEED, straight_flight, truth_velocity  # noqa: F401 (a fixture)

pytestmark = pytest.mark.ros

from ...conftest import require_module  # noqa: E402

os.environ["MAVLINK20"] = "1"  # before pymavlink loads a dialect: ODOMETRY is MAVLink 2 only
mavutil = require_module("pymavlink.mavutil", " (install_requires has it)")

EARTH_RADIUS_M = 6_378_137.0
WINDOW_S = 2.0  # velocity_window of navigation.yaml


def north_east_error(lat_e7: int, lon_e7: int, lat: float, lon: float) -> np.ndarray:
    """(north, east) metres from (lat, lon) to a MAVLink position in 1e-7 degrees (small distances)."""
    d_lat = math.radians(lat_e7 * 1e-7 - lat)
    d_lon = math.radians(lon_e7 * 1e-7 - lon)
    return np.array([d_lat * EARTH_RADIUS_M, d_lon * EARTH_RADIUS_M * math.cos(math.radians(lat))])


def test_mavlink_from_a_simulated_flight_against_ground_truth(ros_context, straight_flight):  # noqa: F811
    from rclpy.parameter import Parameter

    from feature_matching_ros.core.maps.georef import GeoReference
    from feature_matching_ros.ros.nodes.mavlink_bridge_node import MavlinkBridgeNode

    from .test_mavlink_bridge import free_port

    out, frames = straight_flight
    georef = GeoReference(np.eye(2, 3), GEODETIC_ORIGIN)  # only to_geodetic of map metres is used
    by_stamp = {round(f.stamp * 1e6): f for f in frames}
    port = free_port()
    receiver = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", dialect="common")
    navigation = running_navigator(ros_context, out / "map.png", frames)
    node, pilot, executor, _ = next(navigation)
    overrides = {"connection": f"udpout:127.0.0.1:{port}", "rate": 10.0, "diagnostics_period": 0.2}
    bridge = MavlinkBridgeNode(
        context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    received: list = []

    def read() -> None:
        while (msg := receiver.recv_match(blocking=False)) is not None:
            if msg.get_type() != "BAD_DATA":
                received.append(msg)

    try:
        executor.add_node(bridge)
        spin_until(
            executor,
            lambda: (
                node.odometry_pub.get_subscription_count() >= 2 and node.fix_pub.get_subscription_count() >= 2
            ),
            what="the bridge to subscribe to the navigator",
        )
        for frame in frames:
            status, _, _, _ = pilot.answer_to(executor, frame, frame.stamp)
            assert status.pose_published, status.pose_status
            read()
        spin_until(
            executor,
            lambda: read() or len([m for m in received if m.get_type() == "ODOMETRY"]) >= len(frames),
            what="an ODOMETRY per solution",
        )
    finally:
        bridge.destroy_node()
        navigation.close()
        receiver.close()

    gps = [m for m in received if m.get_type() == "GPS_INPUT" and m.fix_type == 3]
    assert gps, {m.get_type() for m in received}
    horizontal, normalised, speed_errors, speed_normalised, vertical, lagged = [], [], [], [], [], []
    for m in gps:
        frame = by_stamp[m.time_usec]  # a fix is sent with its own stamp
        lat, lon, alt = georef.to_geodetic(*frame.truth_position)
        error = north_east_error(m.lat, m.lon, lat, lon)
        horizontal.append(float(np.linalg.norm(error)))
        normalised.append(float(np.linalg.norm(error)) / m.horiz_accuracy)
        assert abs(m.alt - alt) < 3 * m.vert_accuracy + 0.05
        if m.ignore_flags & 8:  # GPS_INPUT_IGNORE_FLAG_VEL_HORIZ: no velocity yet
            continue
        truth = truth_velocity(frames, frame.stamp)
        speed_error = float(np.hypot(m.vn - truth[1], m.ve - truth[0]))
        speed_errors.append(speed_error)
        speed_normalised.append(speed_error / m.speed_accuracy)
        vertical.append(abs(-m.vd - truth[2]))
        if frame.stamp - frames[0].stamp >= WINDOW_S:  # a full window: its mean stamp is WINDOW_S / 2 ago
            lagged.append(abs(-m.vd - truth_velocity(frames, frame.stamp - WINDOW_S / 2)[2]))
    odometry = [m for m in received if m.get_type() == "ODOMETRY"]
    position_errors = []
    for m in odometry:
        frame = by_stamp[m.time_usec]
        east, north, up = frame.truth_position
        position_errors.append(float(np.linalg.norm([m.x - north, m.y - east, m.z + up])))
    with_velocity = [m for m in odometry if math.isfinite(m.vx)]
    summary = (
        f"{len(gps)} GPS_INPUT with a fix: horizontal error median {np.median(horizontal):.3f} max "
        f"{max(horizontal):.3f} m, at most {max(normalised):.2f} horiz_accuracy; {len(speed_errors)} with a "
        f"velocity: error median {np.median(speed_errors):.3f} max {max(speed_errors):.3f} m/s, at most "
        f"{max(speed_normalised):.1f} speed_accuracy, vertical error max {max(vertical):.3f} m/s "
        f"({max(lagged):.3f} against the truth at the fit window's mean stamp); "
        f"{len(odometry)} ODOMETRY: position error max {max(position_errors):.3f} m, "
        f"{len(with_velocity)} with a velocity"
    )
    print(summary)
    assert max(horizontal) < 0.5 and max(normalised) < 3.0, summary
    assert speed_errors and max(speed_errors) < 0.1 and max(speed_normalised) < 3.0, summary
    # The velocity is the mean over the last 2 s of solutions: the vertical, changing by up to
    # ~1 m/s per second on this flight (±24 m of climb), lags the fix's stamp by 1 s.
    assert max(vertical) < 1.5 and max(lagged) < 0.1, summary
    assert max(position_errors) < 0.5, summary
    assert len(with_velocity) >= len(frames) - 5, summary
    for m in with_velocity:  # nose along the track: forward speed ~ SPEED (FRD body frame)
        assert math.hypot(m.vx, m.vy) == pytest.approx(SPEED, abs=0.2), summary
