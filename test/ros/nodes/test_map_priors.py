"""Map navigation over real DDS: a broken fix on `pose` or a broken NavSatFix prior is refused with a
diagnostics ERROR, and the frontend keeps navigating (the next frame still gives a fix)."""

import dataclasses
import math

import numpy as np
import pytest

from feature_matching_ros.core.simulation.aerial_texture import procedural_map, save_map
from feature_matching_ros.core.simulation.flight_sim import Appearance, CameraSpec, FlightPlan, fly, render

from ..conftest import spin_until
from ..harness import stamp

pytestmark = pytest.mark.ros
CAMERA = CameraSpec(640, 480, 60.0)
NAN, INF = float("nan"), float("inf")


def _bad_fixes():
    """(what is wrong, PoseWithCovarianceStamped) for each kind of broken fix."""
    from geometry_msgs.msg import PoseWithCovarianceStamped

    def fix(x=0.0, y=0.0, z=100.0, q=(0.0, 0.0, 0.0, 1.0), covariance=None):
        msg = PoseWithCovarianceStamped()
        msg.header.stamp = stamp(99.0)
        msg.header.frame_id = "map"
        p, o = msg.pose.pose.position, msg.pose.pose.orientation
        p.x, p.y, p.z = x, y, z
        o.x, o.y, o.z, o.w = q
        msg.pose.covariance = covariance if covariance is not None else (np.eye(6) * 4.0).reshape(36).tolist()
        return msg

    nan_cov = (np.eye(6) * 4.0).reshape(36)
    nan_cov[7] = NAN
    inf_cov = (np.eye(6) * 4.0).reshape(36)
    inf_cov[0] = INF
    negative = (np.eye(6) * 4.0).reshape(36)
    negative[0] = negative[7] = -9.0
    return [
        ("NaN position", fix(x=NAN)),
        ("NaN height", fix(z=NAN)),
        ("NaN covariance", fix(covariance=nan_cov.tolist())),
        ("infinite covariance", fix(covariance=inf_cov.tolist())),
        ("negative covariance", fix(covariance=negative.tolist())),
        ("zero quaternion", fix(q=(0.0, 0.0, 0.0, 0.0))),
    ]


def _bad_navsatfixes():
    from sensor_msgs.msg import NavSatFix

    def navsat(covariance):
        msg = NavSatFix(latitude=41.27, longitude=-81.75, altitude=350.0)
        msg.header.stamp = stamp(98.0)
        msg.position_covariance = [float(v) for v in covariance]
        msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
        return msg

    return [
        ("NaN", navsat([NAN, 0, 0, 0, NAN, 0, 0, 0, 4.0])),
        ("infinite", navsat([INF, 0, 0, 0, 4.0, 0, 0, 0, 4.0])),
        ("negative", navsat([-4.0, 0, 0, 0, -4.0, 0, 0, 0, 4.0])),
    ]


def _errors(harness, text):
    return [s for s in harness.diagnostics("feature_matcher") if s.level == b"\x02" and text in s.message]


def test_broken_fixes_and_priors_are_refused_and_navigation_goes_on(running, tmp_path):
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import NavSatFix

    geomap = procedural_map(1024, 1024, 0.5, seed=5)
    geomap = dataclasses.replace(
        geomap, georef=dataclasses.replace(geomap.georef, geodetic_origin=(41.27, -81.75, 250.0))
    )
    map_path = str(save_map(geomap, tmp_path / "map.png"))
    harness, executor, nodes = running(
        matcher={
            "reference_mode": "map",
            "map_image": map_path,
            "matcher": "sift",
            "max_keypoints": 2000,
            "prior_input": "navsatfix",
        },
        geometry={"mode": "map", "map_image": map_path, "publish_debug": False},
    )
    matcher = nodes["matcher"]
    spin_until(executor, lambda: matcher.ready, timeout=120.0, what="the map's features")
    fix_pub = harness.node.create_publisher(
        PoseWithCovarianceStamped, "pose", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    navsat_pub = harness.node.create_publisher(NavSatFix, "prior/fix", qos_profile_sensor_data)
    spin_until(
        executor,
        lambda: fix_pub.get_subscription_count() > 0 and navsat_pub.get_subscription_count() > 0,
        what="the fix and prior subscriptions",
    )

    for what, msg in _bad_fixes():
        before = len(_errors(harness, "fix on pose"))
        fix_pub.publish(msg)
        spin_until(
            executor,
            lambda before=before: len(_errors(harness, "fix on pose")) > before,
            what=f"a diagnostics ERROR for a fix with {what}",
        )
        assert matcher.map_inputs.search.prior is None, what
    for what, msg in _bad_navsatfixes():
        before = len(_errors(harness, "NavSatFix prior"))
        navsat_pub.publish(msg)
        spin_until(
            executor,
            lambda before=before: len(_errors(harness, "NavSatFix prior")) > before,
            what=f"a diagnostics ERROR for a NavSatFix prior with {what} covariance",
        )
        assert matcher.map_inputs.search.prior is None, what
    message = _errors(harness, "fix on pose")[-1].message
    assert "non-finite" in message or "negative" in message or "quaternion" in message, message

    # the next frame is searched and fixed as if nothing had happened
    plan = FlightPlan(np.array([[10.0, -20.0], [40.0, 10.0]]), altitude=120.0, tilt_deg=3.0, yaw=30.0)
    state = fly(plan, 1)[0]
    frame, _ = render(geomap, CAMERA, state, Appearance(), np.random.default_rng(1))
    harness.publish_frame(frame, 100.0, fx=float(CAMERA.K[0, 0]))
    estimate = harness.wait_for(executor, "geometry", 1, what="the frame's GeometryEstimate")
    assert estimate.pose_published, estimate.pose_status
    # the harness also hears its own broken fixes on `pose`: take the geometry node's, of this frame
    spin_until(
        executor,
        lambda: any(m.header.stamp.sec == 100 for m in harness.received["pose"]),
        what="the frame's fix on pose",
    )
    p = next(m for m in harness.received["pose"] if m.header.stamp.sec == 100).pose.pose.position
    assert math.hypot(p.x - state.position[0], p.y - state.position[1]) < 2.0
    assert not [s for s in harness.diagnostics("feature_matcher") if "internal" in s.message]
