"""Conversions between the core's results and the package's messages (one place for each)."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import (
    PoseStamped,
    PoseWithCovarianceStamped,
    TwistWithCovariance,
    TwistWithCovarianceStamped,
)
from nav_msgs.msg import Odometry
from sensor_msgs.msg import NavSatFix, NavSatStatus
from std_msgs.msg import Header

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.geometry import GeometryResult
from feature_matching_ros.core.geometry.ground_pose import GroundPose
from feature_matching_ros.core.geometry.pose import RelativePose, quaternion_from_matrix
from feature_matching_ros.core.maps.georef import GeoReference
from feature_matching_ros.core.matching.pipeline import MatchResult
from feature_matching_ros.core.navigation.search_types import MapMatch
from feature_matching_ros.core.navigation.velocity import VelocityFit
from feature_matching_ros.msg import GeometryEstimate, MatchArray

# Variance of what a twist does not estimate: angular rates, (rad/s)^2, and an unfitted vertical, (m/s)^2.
UNKNOWN_TWIST_VARIANCE = 1.0e3

MODEL_TYPES = (
    GeometryEstimate.MODEL_HOMOGRAPHY,
    GeometryEstimate.MODEL_FUNDAMENTAL,
    GeometryEstimate.MODEL_ESSENTIAL,
)


class MessageError(FeatureMatchingError):
    """A message whose content is inconsistent (array lengths, sizes, non-finite values)."""


@dataclass(frozen=True)
class ReferenceInfo:
    """What a MatchArray says about the reference image."""

    id: str
    stamp: Time
    frame_id: str
    size: tuple[int, int]  # (width, height)


def float32_array(values: np.ndarray) -> array:
    """A float32[] field value; array.array is taken without a per-element conversion."""
    return array("f", np.ascontiguousarray(values, np.float32).tobytes())


def _match_array(
    header: Header,
    reference: ReferenceInfo,
    query_size: tuple[int, int],
    matcher: str,
    points: tuple[np.ndarray, np.ndarray, np.ndarray],
    keypoints: tuple[int, int],
    times_ms: tuple[float, float, float],
) -> MatchArray:
    """points: (query [N x 2], reference [N x 2], confidence [N]); keypoints: (query, reference);
    times_ms: (extract, match, total)."""
    msg = MatchArray(header=header, reference_id=reference.id, reference_stamp=reference.stamp)
    msg.reference_frame_id = reference.frame_id
    msg.matcher = matcher
    msg.query_width, msg.query_height = (int(v) for v in query_size)
    msg.reference_width, msg.reference_height = (int(v) for v in reference.size)
    msg.query_points, msg.reference_points, msg.confidence = (float32_array(p) for p in points)
    msg.num_keypoints_query, msg.num_keypoints_reference = (int(k) for k in keypoints)
    msg.extract_ms, msg.match_ms, msg.total_ms = (float(t) for t in times_ms)
    return msg


def match_array(
    result: MatchResult,
    header: Header,
    reference: ReferenceInfo,
    query_size: tuple[int, int],
    total_ms: float,
) -> MatchArray:
    """MatchArray of a pipeline call that matched the reference (image 0) to the query (image 1)."""
    m, t = result.matches, result.times
    return _match_array(
        header,
        reference,
        query_size,
        result.matcher,
        (m.points1, m.points0, m.scores),
        (len(result.features1), len(result.features0)),
        (t.extract_ms, t.match_ms, total_ms),
    )


def map_match_array(
    found: MapMatch,
    header: Header,
    reference: ReferenceInfo,
    query_size: tuple[int, int],
    matcher: str,
    total_ms: float,
) -> MatchArray:
    """MatchArray of a map search: reference points in map pixels, query points in frame pixels."""
    times = found.times_ms
    return _match_array(
        header,
        reference,
        query_size,
        matcher,
        (found.image_points, found.map_points, found.scores),
        (found.num_frame_keypoints, found.num_map_keypoints),
        (times.get("extract", 0.0), times.get("match", 0.0) + times.get("refine", 0.0), total_ms),
    )


@dataclass(frozen=True)
class MatchData:
    """The arrays of a validated MatchArray: [N x 2] float64 points and [N] confidences."""

    query_points: np.ndarray
    reference_points: np.ndarray
    confidence: np.ndarray
    query_size: tuple[int, int]
    reference_size: tuple[int, int]


def match_data(msg: MatchArray, max_matches: int | None = None) -> MatchData:
    """The matches of ``msg`` as arrays, or MessageError saying what is inconsistent or, beyond
    ``max_matches``, too many (checked before anything is converted)."""
    count = max(len(msg.confidence), len(msg.query_points) // 2, len(msg.reference_points) // 2)
    if max_matches is not None and count > max_matches:
        raise MessageError(f"MatchArray has {count} matches, more than max_matches {max_matches}: refused")
    q = np.asarray(msg.query_points, np.float64)
    r = np.asarray(msg.reference_points, np.float64)
    c = np.asarray(msg.confidence, np.float64)
    if q.size % 2:
        raise MessageError(f"query_points has odd length {q.size}; expected 2 values per match")
    n = q.size // 2
    if r.size != q.size:
        raise MessageError(f"reference_points has {r.size} values but query_points has {q.size}")
    if c.size != n:
        raise MessageError(f"confidence has {c.size} values for {n} matches")
    sizes = (msg.query_width, msg.query_height, msg.reference_width, msg.reference_height)
    if n and min(sizes) == 0:
        raise MessageError(f"image sizes must be non-zero, got query {sizes[:2]} and reference {sizes[2:]}")
    if not (np.isfinite(q).all() and np.isfinite(r).all()):
        raise MessageError("match coordinates contain NaN or infinite values")
    return MatchData(q.reshape(n, 2), r.reshape(n, 2), c, (msg.query_width, msg.query_height), sizes[2:])


def geometry_estimate(
    result: GeometryResult, header: Header, pose_published: bool = False, pose_status: str = ""
) -> GeometryEstimate:
    msg = GeometryEstimate(header=header, model_type=result.model_type)
    if result.success and result.model is not None:
        msg.model = np.asarray(result.model, np.float64).reshape(9).tolist()
    msg.inlier_mask = np.asarray(result.inlier_mask, np.uint8).tobytes()
    msg.num_matches = int(result.num_matches)
    msg.num_inliers = int(result.num_inliers)
    msg.inlier_ratio = float(result.inlier_ratio)
    for name in ("residual_mean_px", "residual_median_px", "residual_max_px"):
        value = float(getattr(result, name))
        setattr(msg, name, value if math.isfinite(value) else 0.0)
    msg.success = bool(result.success)
    msg.failure_reason = "" if result.success else result.reason
    msg.pose_published = bool(pose_published)
    msg.pose_status = "" if pose_published else pose_status
    return msg


def pose_message(pose: RelativePose, header: Header, covariance: np.ndarray) -> PoseWithCovarianceStamped:
    """The query camera's pose in the reference camera's optical frame (header.frame_id)."""
    position, orientation = pose.query_in_reference()
    msg = PoseWithCovarianceStamped(header=header)
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = (float(v) for v in position)
    q.x, q.y, q.z, q.w = (float(v) for v in quaternion_from_matrix(orientation))
    msg.pose.covariance = np.asarray(covariance, np.float64).reshape(36).tolist()
    return msg


def ground_pose_message(pose: GroundPose, header: Header) -> PoseWithCovarianceStamped:
    """The body pose of a map fix in the map frame (header.frame_id), REP 103 axes."""
    return map_pose_message(pose.position, pose.R_map_body, pose.covariance, header)


def stamped_pose(msg: PoseWithCovarianceStamped) -> PoseStamped:
    return PoseStamped(header=msg.header, pose=msg.pose.pose)


def navsatfix_message(pose: GroundPose, georef: GeoReference, header: Header) -> NavSatFix:
    """WGS84 position of a map fix (over a DEM, its altitude the terrain's plus the height above it); needs
    the map's geodetic origin. Covariance in ENU, m^2."""
    return position_navsatfix(pose.map_position, pose.covariance[:3, :3], georef, header)


def position_navsatfix(
    position: np.ndarray, covariance: np.ndarray, georef: GeoReference, header: Header
) -> NavSatFix:
    """WGS84 position of a map-frame point with its 3x3 ENU covariance (m^2); needs the map's
    geodetic origin."""
    lat, lon, alt = georef.to_geodetic(*(float(v) for v in position))
    msg = NavSatFix(header=header, latitude=lat, longitude=lon, altitude=alt)
    msg.status.status = NavSatStatus.STATUS_FIX
    msg.status.service = 0
    msg.position_covariance = np.asarray(covariance, np.float64).reshape(9).tolist()
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_KNOWN
    return msg


def no_fix_navsatfix(header: Header) -> NavSatFix:
    """A NavSatFix saying there is no position (STATUS_NO_FIX; latitude, longitude, altitude NaN)."""
    nan = float("nan")
    msg = NavSatFix(header=header, latitude=nan, longitude=nan, altitude=nan)
    msg.status.status = NavSatStatus.STATUS_NO_FIX
    msg.status.service = 0
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_UNKNOWN
    return msg


def map_pose_message(
    position: np.ndarray, R_map_body: np.ndarray, covariance: np.ndarray, header: Header
) -> PoseWithCovarianceStamped:
    """A body pose in the map frame (header.frame_id) with its 6x6 covariance (x y z, rotations
    about x y z)."""
    msg = PoseWithCovarianceStamped(header=header)
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = (float(v) for v in position)
    q.x, q.y, q.z, q.w = (float(v) for v in quaternion_from_matrix(R_map_body))
    msg.pose.covariance = np.asarray(covariance, np.float64).reshape(36).tolist()
    return msg


def odometry_message(
    pose: PoseWithCovarianceStamped, child_frame_id: str, twist: TwistWithCovariance | None = None
) -> Odometry:
    """nav_msgs/Odometry of a pose (same header and covariance) with ``twist`` in the child frame, or,
    without one, a twist that is not estimated (twist.covariance[0] = -1)."""
    msg = Odometry(header=pose.header, child_frame_id=child_frame_id)
    msg.pose = pose.pose
    if twist is None:
        msg.twist.covariance[0] = -1.0
    else:
        msg.twist = twist
    return msg


def twist_of(fit: VelocityFit, rotation: np.ndarray | None = None) -> TwistWithCovariance:
    """The linear velocity of ``fit`` (map ENU) with its covariance, in the map frame or, given
    ``rotation`` (R_map_body), in the body frame: v_body = R^T v_map, C_body = R^T C R. Angular rates
    are not estimated: zero with UNKNOWN_TWIST_VARIANCE; so is an unfitted vertical velocity."""
    velocity = np.where(np.isfinite(fit.velocity), fit.velocity, 0.0)
    covariance = np.array(fit.covariance, np.float64)
    if not fit.vertical_known:
        covariance[2, :] = covariance[:, 2] = 0.0
        covariance[2, 2] = UNKNOWN_TWIST_VARIANCE
    if rotation is not None:
        R = np.asarray(rotation, np.float64)
        velocity, covariance = R.T @ velocity, R.T @ covariance @ R
    full = np.zeros((6, 6))
    full[:3, :3] = (covariance + covariance.T) / 2.0
    full[3:, 3:] = UNKNOWN_TWIST_VARIANCE * np.eye(3)
    msg = TwistWithCovariance()
    v = msg.twist.linear
    v.x, v.y, v.z = (float(x) for x in velocity)
    msg.covariance = full.reshape(36).tolist()
    return msg


def velocity_message(fit: VelocityFit, frame_id: str) -> TwistWithCovarianceStamped:
    """The fitted velocity in the map frame ``frame_id`` (ENU), stamped ``fit.mid_stamp``: the moment
    the window's mean velocity is the velocity of."""
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(int(round(fit.mid_stamp * 1e9)), 1_000_000_000)
    return TwistWithCovarianceStamped(header=header, twist=twist_of(fit))
