"""From map matches to an absolute fix, and the checks that keep a wrong fix from being published.

The homography between map pixels and frame pixels is estimated robustly (MAGSAC by default);
its inliers, taken to the map frame in metres, give the camera pose over the ground plane
(``ground_pose``), or, with an elevation model (``terrain``), over the terrain: the matches lifted onto
it, PnP on the 3-D points from the homography's inliers, then on the matches that pose explains. A fix
is accepted only if every check of ``FixGate`` passes; otherwise the result says which one failed, and
nothing is published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import TerrainError
from ..geometry import GeometryResult, RobustParams, estimate
from ..geometry.frames import euler_from_rotation, wrap_angle
from ..geometry.ground_pose import GroundPose, horizontal_sigma, solve_ground_pose
from ..maps.georef import GeoReference
from ..maps.terrain import Terrain, solve_terrain_pose
from .verify import Agreement


@dataclass(frozen=True)
class FixGate:
    """Acceptance checks of a map fix.

    min_inliers / min_inlier_ratio: homography support; height_range: plausible height above
    ground (m); max_tilt_deg: optical axis from straight down; max_height_error: relative
    disagreement with a measured height; max_yaw_error_deg: with a measured heading, which may be a
    course over ground (a crab angle of 30° is common in wind), and only for a fix that is not
    strong (twice the inliers and inlier ratio, half the residual allowed): a heading aid never
    overrules geometry that every other check accepts by a margin;
    max_speed: m/s, bounds the jump from the previous accepted fix (plus ``jump_margin_m`` and
    three standard deviations of both fixes); max_sigma_m: horizontal standard deviation;
    max_innovation: Mahalanobis distance allowed between a fix and a navigation prediction (in
    standard deviations of both combined). The map-agreement check of the matches themselves is
    part of the search (``SearchConfig.verify``).

    A fix with fewer than ``min_inliers`` but at least ``min_inliers_confirmed`` inliers is still
    accepted when two independent sources confirm it: the map seen through it agrees with the whole
    frame (an ``Agreement`` from the search), and it lies within ``confirm_innovation`` standard
    deviations of a navigation prediction that is itself good to ``confirm_max_sigma_m``. Such a
    fix can then be at most ``confirm_innovation * hypot(confirm_max_sigma_m, max_sigma_m)`` metres
    from a prediction that is right.
    """

    min_inliers: int = 30
    min_inlier_ratio: float = 0.25
    height_range: tuple[float, float] = (5.0, 3000.0)
    max_tilt_deg: float = 25.0
    max_height_error: float = 0.25
    max_yaw_error_deg: float = 40.0
    max_speed: float = 60.0
    jump_margin_m: float = 10.0
    max_sigma_m: float = 5.0
    max_residual_px: float = 4.0
    max_innovation: float = 4.0
    min_inliers_confirmed: int = 15
    confirm_max_sigma_m: float = 10.0
    confirm_innovation: float = 3.0


@dataclass(frozen=True, eq=False)
class Prediction:
    """Where the navigation solution expects the camera: map (x, y) metres and their 2x2 covariance;
    optionally its height above ground (m), where no altitude input measures the height (a fix
    must then agree with it as with an altitude input)."""

    position: np.ndarray
    covariance: np.ndarray
    height: float | None = None


@dataclass(frozen=True, eq=False)
class MapFix:
    """accepted: the fix passed every check; reason: why not, else ''; failed: the name of the
    failed check ("inliers", "innovation", ...; '' if accepted or no pose). ``pose`` is set whenever
    a pose could be solved (also for a rejected fix, for diagnostics — never publish it then)."""

    stamp: float
    accepted: bool
    reason: str
    geometry: GeometryResult
    pose: GroundPose | None
    failed: str = ""
    agreement: Agreement | None = None

    @property
    def position(self) -> np.ndarray | None:
        return None if self.pose is None else self.pose.position


def estimate_fix(
    map_points: np.ndarray,
    image_points: np.ndarray,
    georef: GeoReference,
    K: np.ndarray,
    stamp: float,
    *,
    dist: np.ndarray | None = None,
    robust: RobustParams | None = None,
    gate: FixGate | None = None,
    previous: MapFix | None = None,
    measured_height: float | None = None,
    measured_R_map_body: np.ndarray | None = None,
    prediction: Prediction | None = None,
    agreement: Agreement | None = None,
    from_prior: bool = False,
    terrain: Terrain | None = None,
) -> MapFix:
    """The fix of one frame from its map matches (map pixels <-> frame pixels); ``agreement``: the
    map-agreement check the matches passed, if they were checked; ``from_prior``: the matches were
    placed around the prior (``MapMatch.from_prior``), so however many, the prediction must confirm
    the fix; ``terrain``: the ground's elevation model (None: the plane z = 0). A DEM without data
    under the camera or the inliers rejects the fix (failed "terrain", the reason says where)."""
    gate = gate or FixGate()
    geometry = estimate("Homography", map_points, image_points, robust or RobustParams())
    if not geometry.success:
        return MapFix(stamp, False, f"no homography: {geometry.reason}", geometry, None, agreement=agreement)
    mask = np.asarray(geometry.inlier_mask, bool)
    if terrain is None:
        pose = solve_ground_pose(
            georef.pixel_to_map(np.asarray(map_points)[mask]), np.asarray(image_points)[mask], K, dist
        )
    else:  # from the homography's inliers, then the points the 3-D pose explains
        try:
            ground = georef.pixel_to_map(np.asarray(map_points))
            pose = solve_terrain_pose(ground, image_points, K, terrain, dist, seed=mask)
        except TerrainError as exc:
            return MapFix(stamp, False, str(exc), geometry, None, "terrain", agreement)
    if pose is None:
        reason = "no camera pose above the ground fits the inliers"
        return MapFix(stamp, False, reason, geometry, None, agreement=agreement)
    confirmed = agreement is not None and prediction is not None
    failed = check(
        gate,
        geometry,
        pose,
        stamp,
        previous,
        measured_height,
        measured_R_map_body,
        prediction,
        confirmed,
        from_prior,
    )
    if failed is None:
        return MapFix(stamp, True, "", geometry, pose, agreement=agreement)
    return MapFix(stamp, False, failed[1], geometry, pose, failed[0], agreement)


def check(
    gate: FixGate,
    geometry: GeometryResult,
    pose: GroundPose,
    stamp: float,
    previous: MapFix | None,
    measured_height: float | None,
    measured_R_map_body: np.ndarray | None,
    prediction: Prediction | None = None,
    map_agrees: bool = False,
    from_prior: bool = False,
) -> tuple[str, str] | None:
    """The first failed check: (its name, what failed in words), or None. ``map_agrees``: the matches
    passed the map-agreement check (a fix below ``min_inliers`` may then be confirmed);
    ``from_prior``: the matches were placed around the prior and need that confirmation too."""
    if not (np.isfinite(pose.position).all() and np.isfinite(pose.covariance).all()):
        return "finite", "the pose is not finite"
    weak = geometry.num_inliers < gate.min_inliers or from_prior
    if from_prior:
        few = "placed around the prior, not matched"
    else:
        few = f"too few inliers: {geometry.num_inliers} < {gate.min_inliers}"
    if weak:
        confirmable = map_agrees and prediction is not None
        if not confirmable or geometry.num_inliers < gate.min_inliers_confirmed:
            return "inliers", few
        if horizontal_sigma(prediction.covariance) > gate.confirm_max_sigma_m:
            return "inliers", f"{few}, and the navigation prediction is too uncertain to confirm it"
    if geometry.inlier_ratio < gate.min_inlier_ratio:
        return "inlier_ratio", f"inlier ratio {geometry.inlier_ratio:.2f} < {gate.min_inlier_ratio:.2f}"
    if pose.residual_rms_px > gate.max_residual_px:
        return "residual", f"pose residual {pose.residual_rms_px:.1f} px > {gate.max_residual_px:.1f} px"
    lo, hi = gate.height_range
    if not lo <= pose.height <= hi:
        return "height", f"implausible height {pose.height:.1f} m (allowed {lo:g}..{hi:g} m)"
    if math.degrees(pose.tilt) > gate.max_tilt_deg:
        return "tilt", f"implausible tilt {math.degrees(pose.tilt):.1f}° > {gate.max_tilt_deg:g}°"
    if measured_height is not None and measured_height > 0:
        if _height_error(pose, measured_height) > gate.max_height_error:
            return (
                "altitude",
                f"height {pose.height:.1f} m disagrees with the measured {measured_height:.1f} m",
            )
    if measured_R_map_body is not None and not _strong(gate, geometry, pose):
        yaw_error = abs(wrap_angle(pose.yaw - euler_from_rotation(measured_R_map_body)[2]))
        if math.degrees(yaw_error) > gate.max_yaw_error_deg:
            return "heading", f"heading differs from the measured attitude by {math.degrees(yaw_error):.1f}°"
    sigma = pose.horizontal_sigma
    if sigma > gate.max_sigma_m:
        return "sigma", f"horizontal uncertainty {sigma:.1f} m > {gate.max_sigma_m:g} m"
    if previous is not None and previous.accepted and previous.pose is not None:
        dt = max(stamp - previous.stamp, 0.0)
        jump = float(np.linalg.norm(pose.position[:2] - previous.pose.position[:2]))
        bound = gate.max_speed * dt + gate.jump_margin_m + 3.0 * (sigma + previous.pose.horizontal_sigma)
        if jump > bound:
            return "jump", f"jump of {jump:.1f} m in {dt:.2f} s exceeds the motion bound {bound:.1f} m"
    if prediction is not None:
        d = pose.position[:2] - np.asarray(prediction.position, np.float64)[:2]
        S = np.asarray(prediction.covariance, np.float64)[:2, :2] + pose.covariance[:2, :2]
        distance = math.sqrt(max(float(d @ np.linalg.solve(S, d)), 0.0))
        # a weak fix the prediction does not confirm is no evidence against the prediction either
        if weak and distance > gate.confirm_innovation:
            return "inliers", f"{few}, and {np.linalg.norm(d):.1f} m ({distance:.1f} σ) from the prediction"
        if distance > gate.max_innovation:
            return "innovation", (
                f"{np.linalg.norm(d):.1f} m from the navigation prediction "
                f"({distance:.1f} σ > {gate.max_innovation:g} σ)"
            )
        if prediction.height is not None and prediction.height > 0:
            # fused, a height that disagrees would also pull the position along its correlation
            error = _height_error(pose, prediction.height)
            if error > gate.max_height_error:
                return "innovation", (
                    f"height {pose.height:.1f} m disagrees with the navigation prediction's "
                    f"{prediction.height:.1f} m by {100 * error:.0f} % (> {100 * gate.max_height_error:g} %)"
                )
    return None


def _height_error(pose: GroundPose, expected: float) -> float:
    """How far the pose's height is from an ``expected`` one, relative to it."""
    return abs(pose.height - expected) / expected


def _strong(gate: FixGate, geometry: GeometryResult, pose: GroundPose) -> bool:
    return (
        geometry.num_inliers >= 2 * gate.min_inliers
        and geometry.inlier_ratio >= 2 * gate.min_inlier_ratio
        and pose.residual_rms_px <= gate.max_residual_px / 2
    )
