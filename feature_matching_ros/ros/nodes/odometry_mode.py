"""The geometry node's keyframe odometry (mode=odometry): chained registrations as nav_msgs/Odometry.

The frontend matches each frame to its current keyframe; MatchArray.reference_stamp names that
keyframe. A keyframe the tracker has no pose for (the first one, or one taken after the track
was lost) starts a new track where the last one ended. Registrations that fail publish nothing
but a GeometryEstimate saying why. When an absolute fix of the same moment arrives on
``map_fix`` (PoseWithCovarianceStamped in the map frame, e.g. from a map-mode pipeline), the
map -> odom correction is published on ``map_to_odom`` (and on /tf where tf2_msgs is installed).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped, TransformStamped
from nav_msgs.msg import Odometry

from feature_matching_ros.core.geometry import estimate
from feature_matching_ros.core.geometry.pose import matrix_from_quaternion, quaternion_from_matrix
from feature_matching_ros.core.odometry.keyframe_odometry import OdometryStep, OdometryTracker
from feature_matching_ros.msg import MatchArray

from ..conversions.aids import NavigationAids, stamp_seconds
from ..conversions.camera import CameraModel
from ..conversions.messages import MatchData, geometry_estimate
from ..conversions.pose_check import MAX_HEIGHT_M, MAX_ODOMETRY_DISTANCE_M, pose_problem
from ..infrastructure import topics
from ..infrastructure.qos import RELIABLE

MAP_FIX = "map_fix"
MAP_TO_ODOM = "map_to_odom"
POSES_KEPT = 200


class OdometryMode:
    def __init__(self, node: Any) -> None:
        self.node = node
        value = node.get_parameter
        self.tracker = OdometryTracker()
        self.aids = NavigationAids(
            node,
            value("attitude_input").value,
            value("use_altitude").value,
            value("aid_max_age").value,
            node._error,
        )
        self.odometry_pub = node.create_publisher(Odometry, topics.ODOMETRY, RELIABLE)
        self.correction_pub = node.create_publisher(TransformStamped, MAP_TO_ODOM, RELIABLE)
        self.tf_pub = _tf_publisher(node)
        node.create_subscription(PoseWithCovarianceStamped, MAP_FIX, self._on_map_fix, RELIABLE)
        self._poses: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def on_matches(self, msg: MatchArray, data: MatchData, camera: CameraModel | None) -> OdometryStep | None:
        node = self.node
        if camera is None:
            node._error("odometry", "keyframe odometry needs camera_info, none received yet")
            return None
        if tuple(data.reference_size) != (camera.width, camera.height):
            node._error("odometry", f"the reference {data.reference_size} is not a frame of this camera")
            return None
        stamp, key_stamp = stamp_seconds(msg.header.stamp), stamp_seconds(msg.reference_stamp)
        height = self.aids.height_at(stamp) or node.get_parameter("default_height").value or None
        if not self.tracker.knows(key_stamp):
            key_height = self.aids.height_at(key_stamp) or height
            if key_height is None:
                node._error("odometry", "no height above ground: altitude input or default_height needed")
                return None
            self.tracker.anchor(key_stamp, key_height, self.aids.attitude_at(key_stamp))
        geometry = estimate("Homography", data.reference_points, data.query_points, node._robust)
        sizes = (tuple(data.reference_size), tuple(data.query_size))
        step = self.tracker.register(
            stamp, key_stamp, geometry, data.reference_points, data.query_points, camera.K, sizes, height
        )
        if step.registered:
            problem = pose_problem(
                step.position, step.R_odom_body, step.covariance, MAX_ODOMETRY_DISTANCE_M, (0.0, MAX_HEIGHT_M)
            )
            if problem is not None:
                step = dataclasses.replace(step, registered=False, reason=node._refuse_pose(problem))
        node.geometry_pub.publish(geometry_estimate(geometry, msg.header, step.registered, step.reason))
        if step.registered:
            self._publish(msg, step)
        return step

    def _publish(self, msg: MatchArray, step: OdometryStep) -> None:
        value = self.node.get_parameter
        out = Odometry()
        out.header.stamp = msg.header.stamp
        out.header.frame_id = value("odom_frame").value
        out.child_frame_id = value("base_frame").value
        p, q = out.pose.pose.position, out.pose.pose.orientation
        p.x, p.y, p.z = (float(v) for v in step.position)
        q.x, q.y, q.z, q.w = (float(v) for v in quaternion_from_matrix(step.R_odom_body))
        out.pose.covariance = np.asarray(step.covariance, np.float64).reshape(36).tolist()
        out.twist.covariance[0] = -1.0  # twist not estimated
        self.odometry_pub.publish(out)
        key = int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)
        self._poses[key] = (step.position.copy(), step.R_odom_body.copy())
        while len(self._poses) > POSES_KEPT:
            self._poses.popitem(last=False)

    def _on_map_fix(self, msg: PoseWithCovarianceStamped) -> None:
        """map -> odom = (map -> base at t) * (odom -> base at t)^-1, for a fix at an odometry stamp."""
        key = int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)
        odom = self._poses.get(key)
        if odom is None:
            return
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        R_map_base = matrix_from_quaternion(np.array([q.x, q.y, q.z, q.w]))
        R_map_odom = R_map_base @ odom[1].T
        t_map_odom = np.array([p.x, p.y, p.z]) - R_map_odom @ odom[0]
        value = self.node.get_parameter
        tf = TransformStamped()
        tf.header.stamp = msg.header.stamp
        tf.header.frame_id = value("map_frame").value
        tf.child_frame_id = value("odom_frame").value
        tr, rot = tf.transform.translation, tf.transform.rotation
        tr.x, tr.y, tr.z = (float(v) for v in t_map_odom)
        rot.x, rot.y, rot.z, rot.w = (float(v) for v in quaternion_from_matrix(R_map_odom))
        self.correction_pub.publish(tf)
        if self.tf_pub is not None:
            from tf2_msgs.msg import TFMessage

            self.tf_pub.publish(TFMessage(transforms=[tf]))


def _tf_publisher(node: Any) -> Any:
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:  # no tf2_msgs wheel on PyPI: map_to_odom carries the correction alone
        return None
    return node.create_publisher(TFMessage, "/tf", RELIABLE)
