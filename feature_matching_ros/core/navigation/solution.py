"""The navigation solution between fixes: carried by keyframe odometry (or coasting without it) and
corrected by map fixes (a Kalman update), with its covariance (see ``navigator``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry.frames import euler_from_rotation
from ..geometry.ground_pose import GroundPose, horizontal_sigma
from ..odometry.keyframe_odometry import KeyframeOdometry, OdometryStep
from .config import NavigatorConfig


@dataclass(frozen=True, eq=False)
class Attitude:
    """A full attitude known from a fix (or carried from one by odometry) and the 3x3 covariance
    of small rotations about the map's axes."""

    R_map_body: np.ndarray
    covariance: np.ndarray


@dataclass
class OdometryReference:
    """Where odometry displacements are measured from: a frame of odometry track ``track`` with odom
    position ``odom`` (and covariance ``odom_cov``), whose navigation solution was ``position``,
    ``covariance``; ``yaw_offset`` rotates odom into map."""

    track: int
    odom: np.ndarray
    odom_cov: np.ndarray
    position: np.ndarray
    covariance: np.ndarray
    yaw_offset: float
    heading_known: bool = True
    attitude: Attitude | None = None  # the frame's attitude from its fix
    R_odom_body: np.ndarray | None = None  # and in odom


@dataclass
class Solution:
    stamp: float
    position: np.ndarray
    covariance: np.ndarray
    yaw: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    velocity_known: bool = False
    reference: OdometryReference | None = None
    coast: tuple[float, np.ndarray, np.ndarray] | None = None  # (stamp, position, covariance) at its start
    attitude: Attitude | None = None


class SolutionFilter:
    """Predicts the solution by odometry and fuses map fixes into it, by ``config``'s error model;
    ``odometry`` is the navigator's (its tracker knows where tracks start)."""

    def __init__(self, config: NavigatorConfig, odometry: KeyframeOdometry | None) -> None:
        self.config = config
        self.odometry = odometry

    def predict(
        self,
        s: Solution,
        stamp: float,
        odometry: OdometryStep | None,
        attitude_input: bool,
        height_input: bool,
    ) -> Solution:
        """The solution ``s`` carried to ``stamp`` by ``odometry``, or coasting on its velocity
        without (``attitude_input``, ``height_input``: whether the frame came with those aids)."""
        c = self.config
        reference = s.reference
        if (
            odometry is not None
            and odometry.registered
            and reference is not None
            and odometry.track == reference.track
        ):
            rotation = _rot2(reference.yaw_offset)
            displacement = rotation @ (odometry.position[:2] - reference.odom[:2])
            position = reference.position.copy()
            position[:2] += displacement
            position[2] = odometry.position[2]
            grown = odometry.covariance[:3, :3] - reference.odom_cov[:3, :3]
            grown[:2, :2] = rotation @ grown[:2, :2] @ rotation.T
            across = np.array([-displacement[1], displacement[0]])
            grown[:2, :2] += c.odometry_scale_sigma**2 * np.outer(displacement, displacement)
            if not height_input:  # else the altitude input is the odometry's height
                # the height drifts as the distance flown does (registrations claimed centimetres where
                # the height ran metres off on the real Seneca flight)
                grown[2, 2] += c.odometry_scale_sigma**2 * float(displacement @ displacement)
            if reference.heading_known:
                grown[:2, :2] += math.radians(c.odometry_heading_sigma_deg) ** 2 * np.outer(across, across)
            else:  # a track begun after a turn without a fix or attitude input: any direction
                grown[:2, :2] += float(displacement @ displacement) * np.eye(2)
            covariance = reference.covariance + _psd(grown)
            yaw = euler_from_rotation(odometry.R_odom_body)[2] + reference.yaw_offset
            dt = stamp - s.stamp
            step = float(np.linalg.norm(position[:2] - s.position[:2]))
            if dt > 0 and step <= c.max_speed * dt + 3.0 * horizontal_sigma(s.covariance):
                if odometry.num_inliers < c.odometry_min_inliers:
                    return self._weak_step(s, odometry, position, yaw)
                measured = s.coast is None
                velocity = (position[:2] - s.position[:2]) / dt if measured else s.velocity
                attitude = self._carried_attitude(reference, odometry)
                return Solution(
                    stamp, position, covariance, yaw, velocity, measured, reference, None, attitude
                )
            reference = None  # an implausible registration: this track is not to be trusted
        # No odometry for this frame: coast on the last velocity. The heading of a track that starts
        # here is known only from an attitude input.
        heading_known = attitude_input
        start = s.coast or (s.stamp, s.position, s.covariance)
        elapsed = max(stamp - start[0], 0.0)
        position = start[1].copy()
        rate = c.coast_speed_sigma if s.velocity_known else c.unknown_velocity_sigma
        if s.velocity_known:
            position[:2] += s.velocity * elapsed
        covariance = start[2].copy()
        covariance[:2, :2] += (rate * elapsed) ** 2 * np.eye(2)
        covariance[2, 2] += (0.1 * rate * elapsed) ** 2
        coasting = Solution(stamp, position, covariance, s.yaw, s.velocity, s.velocity_known, None, start)
        unanchored = reference is None or (odometry is not None and odometry.track != reference.track)
        if odometry is not None and (odometry.origin is not None or (odometry.registered and unanchored)):
            # an odometry track starts (or is first seen) at this frame: measure later displacements from here
            coasting.reference = self._reference(odometry, position, covariance, s.yaw, heading_known)
        return coasting

    def _weak_step(
        self,
        s: Solution,
        odometry: OdometryStep,
        position: np.ndarray,
        yaw: float,
    ) -> Solution:
        """A weakly supported registration: its step from the last solution is uncertain by its
        own length in every direction, and later steps are measured from here, with the heading
        unknown (the registration's rotation is no more trusted than its translation)."""
        step = position[:2] - s.position[:2]
        covariance = s.covariance.copy()
        covariance[:2, :2] += float(step @ step) * np.eye(2)
        covariance[2, 2] += (self.config.odometry_scale_sigma * position[2]) ** 2
        weak = Solution(odometry.stamp, position, covariance, yaw, s.velocity, False)
        weak.reference = self._reference(odometry, position, covariance, yaw, heading_known=False)
        return weak

    def fuse(
        self, stamp: float, prediction: Solution | None, pose: GroundPose, odometry: OdometryStep | None
    ) -> Solution:
        """The fix ``pose`` of the frame at ``stamp`` fused with its ``prediction`` (None: the fix alone)."""
        z = pose.position.copy()
        R = pose.covariance[:3, :3].copy()
        R[2, 2] += (self.config.fix_height_sigma * z[2]) ** 2
        velocity, known = np.zeros(2), False
        if prediction is None:
            position, covariance = z, R
        else:
            gain = prediction.covariance @ np.linalg.inv(prediction.covariance + R)
            position = prediction.position + gain @ (z - prediction.position)
            covariance = _psd((np.eye(3) - gain) @ prediction.covariance)
            if prediction.coast is None:  # moved by odometry: its velocity is a measurement, not a correction
                velocity, known = prediction.velocity, prediction.velocity_known
        yaw = pose.yaw
        attitude = Attitude(pose.R_map_body, pose.covariance[3:, 3:].copy())
        solution = Solution(stamp, position, covariance, yaw, velocity, known, attitude=attitude)
        if odometry is not None and (odometry.registered or odometry.origin is not None):
            solution.reference = self._reference(odometry, position, covariance, yaw, attitude=attitude)
        return solution

    @staticmethod
    def _carried_attitude(reference: OdometryReference, odometry: OdometryStep) -> Attitude | None:
        """The reference frame's attitude turned by the odometry's rotation since that frame."""
        if reference.attitude is None or reference.R_odom_body is None:
            return None
        R_map_body = reference.attitude.R_map_body @ reference.R_odom_body.T @ odometry.R_odom_body
        turn = np.eye(3)
        turn[:2, :2] = _rot2(reference.yaw_offset)
        grown = turn @ (odometry.covariance[3:, 3:] - reference.odom_cov[3:, 3:]) @ turn.T
        return Attitude(R_map_body, reference.attitude.covariance + _psd(grown))

    def _reference(
        self,
        odometry: OdometryStep,
        position: np.ndarray,
        covariance: np.ndarray,
        yaw: float,
        heading_known: bool = True,
        attitude: Attitude | None = None,
    ) -> OdometryReference:
        if odometry.registered:
            odom, odom_cov = odometry.position, odometry.covariance
            R_odom_body = odometry.R_odom_body
        else:
            odom = odometry.origin
            odom_cov = self.odometry.tracker.covariance(odometry.stamp)
            R_odom_body = self.odometry.tracker.attitude(odometry.stamp)
        odom_yaw = euler_from_rotation(R_odom_body)[2]
        return OdometryReference(
            odometry.track,
            odom.copy(),
            odom_cov.copy(),
            position.copy(),
            covariance.copy(),
            yaw - odom_yaw,
            heading_known,
            attitude,
            R_odom_body.copy(),
        )


def _rot2(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _psd(matrix: np.ndarray) -> np.ndarray:
    """The nearest symmetric positive semi-definite matrix (negative eigenvalues clipped to zero)."""
    symmetric = 0.5 * (matrix + matrix.T)
    values, vectors = np.linalg.eigh(symmetric)
    return (vectors * np.clip(values, 0.0, None)) @ vectors.T
