"""Re-localisation against earlier frames placed on the map.

After a turn at the end of a survey line the new line's frames overlap the last line's (the side
overlap of a survey), at the camera's own resolution, season and lens, where the coarser map often
matches nothing. Every frame with an accepted map fix or re-localisation is remembered with its
pose, and so is a frame odometry carried from one while it is still placed well enough for a
re-localisation against it to pass the fix checks (the last frames before a turn). A frame
whose predicted position is uncertain is registered to the remembered frames nearest that
prediction; the remembered pose puts the inliers on the ground, and planar PnP gives the frame's
own pose, as for a map fix. Its covariance adds the remembered frame's uncertainty
(position, height and attitude), so the result is a measurement relative to the map like a fix,
and ``FixGate`` judges it with the same checks. A chain of re-localisations carries every link's
uncertainty, and the next map fix ends it.

    memory = FrameMemory()
    memory.remember(stamp, features, K, position, R_map_camera, covariance)   # after a map fix
    revisit = memory.relocalize(pipeline, features, K, stamp, prediction, gate=gate)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import GeometryResult
from ..geometry.ground_pose import GroundPose, ground_points, horizontal_sigma, solve_ground_pose
from ..matching.pipeline import Pipeline
from ..matching.types import Features
from ..odometry.keyframe_odometry import OdometryFrame
from .fix import FixGate, MapFix, Prediction, check


@dataclass(frozen=True)
class RevisitConfig:
    """capacity: frames remembered (the oldest are forgotten first); spacing: a frame remembered
    closer than this fraction of its footprint's reach to earlier ones replaces them, so the memory
    spreads over the area flown rather than over the last seconds (unless one of them is placed
    more certainly: the new frame is then not kept); keypoints: the strongest kept
    of each; candidates: remembered frames tried per frame, nearest the prediction first;
    min_sigma_m: tried only when the prediction's horizontal standard deviation is larger (a
    confident prediction gains little, and it already holds the remembered fix's information);
    search_sigmas: how many standard deviations of the prediction a remembered frame's footprint
    may lie away."""

    capacity: int = 64
    spacing: float = 0.25
    keypoints: int = 2000
    candidates: int = 12
    min_sigma_m: float = 10.0
    search_sigmas: float = 3.0


@dataclass(eq=False)
class Remembered:
    """A fixed frame: its features (the strongest ``keypoints``; of a frame registered by optical
    flow, extracted from ``source`` on first use: most remembered frames are replaced by the next
    before a re-localisation needs them; the source is let go then), its image size, camera
    matrix, pose (camera centre in map metres, z = height above ground; orientation) and the 6x6
    covariance of that pose (x y z, rotations)."""

    stamp: float
    source: OdometryFrame | None
    image_size: tuple[int, int]
    K: np.ndarray
    position: np.ndarray
    R_map_camera: np.ndarray
    covariance: np.ndarray
    keypoints: int
    _features: Features | None = None

    @property
    def features(self) -> Features:
        if self._features is None:
            self._features = _strongest(self.source.features, self.keypoints)
            self.source = None
        return self._features

    def reach(self) -> float:
        """Ground distance from the nadir to the farthest corner of the footprint, metres."""
        w, h = self.image_size
        fx, fy, cx, cy = self.K[0, 0], self.K[1, 1], self.K[0, 2], self.K[1, 2]
        half = math.hypot(max(cx, w - cx) / fx, max(cy, h - cy) / fy)
        return float(self.position[2]) * half


@dataclass(frozen=True, eq=False)
class Revisit:
    """The best attempt of one frame: ``fix`` (accepted or why not; its pose covariance includes the
    remembered frame's), ``reference`` the stamp of the remembered frame it registered to, and
    ``tried`` how many were tried. ``fix`` is None when none was near enough to try."""

    fix: MapFix | None
    reference: float | None
    tried: int

    @property
    def accepted(self) -> bool:
        return self.fix is not None and self.fix.accepted


class FrameMemory:
    """The remembered fixed frames (see the module docstring)."""

    def __init__(self, config: RevisitConfig | None = None) -> None:
        self.config = config or RevisitConfig()
        self._frames: deque[Remembered] = deque(maxlen=self.config.capacity)

    def __len__(self) -> int:
        return len(self._frames)

    def remember(
        self,
        stamp: float,
        features: Features | OdometryFrame,
        K: np.ndarray,
        position: np.ndarray,
        R_map_camera: np.ndarray,
        covariance: np.ndarray,
    ) -> None:
        if isinstance(features, OdometryFrame) and features.extracted:
            features = features.features  # its strongest are kept now, not its image and all of them
        strongest = _strongest(features, self.config.keypoints) if isinstance(features, Features) else None
        frame = Remembered(
            stamp,
            None if strongest is not None else features,
            features.image_size if isinstance(features, Features) else features.size,
            np.asarray(K, np.float64).copy(),
            np.asarray(position, np.float64).copy(),
            np.asarray(R_map_camera, np.float64).copy(),
            np.asarray(covariance, np.float64).copy(),
            self.config.keypoints,
            strongest,
        )
        spacing = self.config.spacing * frame.reach()
        close = [f for f in self._frames if np.linalg.norm(f.position[:2] - frame.position[:2]) < spacing]
        sigma = horizontal_sigma(frame.covariance[:2, :2])
        if any(horizontal_sigma(f.covariance[:2, :2]) < sigma for f in close):
            return  # a re-localised frame must not displace a better-placed one
        for old in close:
            self._frames.remove(old)
        self._frames.append(frame)

    def near(self, prediction: Prediction) -> list[Remembered]:
        """Remembered frames whose footprint may overlap the predicted one, nearest first."""
        centre = np.asarray(prediction.position, np.float64)[:2]
        radius = self.config.search_sigmas * horizontal_sigma(prediction.covariance)
        scored = []
        for frame in self._frames:
            distance = float(np.linalg.norm(frame.position[:2] - centre))
            if distance <= radius + 2.0 * frame.reach():
                scored.append((distance, frame))
        scored.sort(key=lambda item: item[0])
        return [frame for _, frame in scored[: self.config.candidates]]

    def relocalize(
        self,
        pipeline: Pipeline,
        features: Features,
        K: np.ndarray,
        stamp: float,
        prediction: Prediction,
        *,
        gate: FixGate | None = None,
        dist: np.ndarray | None = None,
        previous: MapFix | None = None,
        measured_height: float | None = None,
        measured_R_map_body: np.ndarray | None = None,
    ) -> Revisit:
        """The pose of the frame with ``features`` from the remembered frames near ``prediction``:
        the first accepted one, else the attempt with the most inliers."""
        gate = gate or FixGate()
        candidates = self.near(prediction)
        best: tuple[MapFix, float] | None = None
        for frame in candidates:
            fix = self._register(pipeline, frame, features, K, stamp, dist)
            if fix.pose is not None:
                failed = check(
                    gate,
                    fix.geometry,
                    fix.pose,
                    stamp,
                    previous,
                    measured_height,
                    measured_R_map_body,
                    prediction,
                )
                if failed is None:
                    return Revisit(
                        MapFix(stamp, True, "", fix.geometry, fix.pose), frame.stamp, len(candidates)
                    )
                fix = MapFix(stamp, False, failed[1], fix.geometry, fix.pose, failed[0])
            if best is None or fix.geometry.num_inliers > best[0].geometry.num_inliers:
                best = (fix, frame.stamp)
        if best is None:
            return Revisit(None, None, 0)
        return Revisit(best[0], best[1], len(candidates))

    def _register(
        self,
        pipeline: Pipeline,
        frame: Remembered,
        features: Features,
        K: np.ndarray,
        stamp: float,
        dist: np.ndarray | None,
    ) -> MapFix:
        result = pipeline.match(frame.features, features, geometry="Homography")
        geometry = result.geometry
        if geometry is None or not geometry.success:
            reason = "no homography" if geometry is None else f"no homography: {geometry.reason}"
            return MapFix(stamp, False, reason, geometry or _no_geometry(len(result.matches)), None)
        mask = np.asarray(geometry.inlier_mask, bool)
        ground = ground_points(result.matches.points0[mask], frame.K, frame.R_map_camera, frame.position)
        pose = None if ground is None else solve_ground_pose(ground, result.matches.points1[mask], K, dist)
        if pose is None:
            return MapFix(stamp, False, "no camera pose above the ground fits the inliers", geometry, None)
        return MapFix(stamp, False, "", geometry, _with_reference_error(pose, frame))


def _with_reference_error(pose: GroundPose, frame: Remembered) -> GroundPose:
    """The pose with the remembered frame's own error added: its position shifts every ground
    point, its tilt shifts them by height x angle, and its height error scales them about its nadir."""
    height = max(float(frame.position[2]), 1e-6)
    offset = float(np.linalg.norm(pose.position[:2] - frame.position[:2]))
    c = frame.covariance
    tilt_variance = max(float(c[3, 3]), float(c[4, 4]))
    added = np.zeros((6, 6))
    added[:3, :3] = c[:3, :3]
    added[:2, :2] += (height**2 * tilt_variance + float(c[2, 2]) * (offset / height) ** 2) * np.eye(2)
    added[3:, 3:] = c[3:, 3:]
    return GroundPose(
        pose.position, pose.R_map_camera, pose.covariance + added, pose.num_points, pose.residual_rms_px
    )


def _strongest(features: Features, count: int) -> Features:
    """The ``count`` highest-scoring features (all of them if the matcher needs extras per image)."""
    if len(features) <= count or features.extras:
        return features
    keep = np.argsort(-features.scores.detach().cpu().numpy(), kind="stable")[:count]
    index = torch.from_numpy(keep).to(features.keypoints.device)
    return Features(
        features.keypoints[index], features.descriptors[index], features.scores[index], features.image_size
    )


def _no_geometry(num_matches: int) -> GeometryResult:
    return GeometryResult.failure("Homography", "", "no geometry estimated", num_matches)
