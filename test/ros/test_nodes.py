"""The frontend and geometry nodes over real rclpy and DDS, on the shared graf pair."""

from __future__ import annotations

import numpy as np
import pytest

from ..conftest import require_file
from .conftest import spin_until
from .harness import Harness

pytestmark = pytest.mark.ros

GRAF_BOUND_PX = 2.3  # the core's bound for xfeat(sparse) on graf1 -> graf3 (test/core/test_graf.py)


def test_graf_map_reference_through_dds(running, shared_data, graf):
    from feature_matching_ros.core.geometry import corner_error

    image0, image1, H_true = graf
    map_path = require_file(shared_data / "pairs" / "graf1.png")
    harness, executor, nodes = running(
        matcher={"reference_mode": "map", "map_image": str(map_path), "matcher": "xfeat(sparse)"},
        geometry={"model": "Homography", "reproj_threshold": 3.0},
    )
    harness.publish_frame(image1, 10.0)
    spin_until(executor, lambda: harness.received["geometry"] and harness.received["pose"], what="geometry and pose")

    matches = harness.received["matches"][0]
    assert matches.reference_id == str(map_path)
    assert matches.reference_frame_id == "map_image"
    assert (matches.reference_width, matches.reference_height) == (image0.shape[1], image0.shape[0])
    assert (matches.query_width, matches.query_height) == (image1.shape[1], image1.shape[0])
    assert (matches.header.stamp.sec, matches.header.frame_id) == (10, "camera_optical")
    n = len(matches.confidence)
    assert n > 200 and len(matches.query_points) == len(matches.reference_points) == 2 * n
    estimate = harness.received["geometry"][0]
    assert estimate.success, estimate.failure_reason
    assert estimate.num_matches == n and len(estimate.inlier_mask) == n
    assert estimate.num_inliers == sum(estimate.inlier_mask) > 100
    H = np.asarray(estimate.model).reshape(3, 3)
    error = corner_error(H, H_true, image0.shape[1], image0.shape[0])
    assert error < GRAF_BOUND_PX, f"corner error {error:.2f} px through DDS"

    pose = harness.received["pose"][0]
    assert pose.header.frame_id == "map_image" and pose.header.stamp.sec == 10
    q = pose.pose.pose.orientation
    assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1) < 1e-6
    spin_until(
        executor,
        lambda: harness.received["debug/matches"] and harness.received["debug/overlay"],
        what="debug pictures",
    )
    debug = harness.received["debug/matches"][0]
    assert (debug.width, debug.height, debug.encoding) == (image0.shape[1] + image1.shape[1], 640, "rgb8")
    overlay = harness.received["debug/overlay"][0]
    assert (overlay.width, overlay.height) == (image1.shape[1], image1.shape[0])
