"""Keyframe visual odometry over flat ground, metric from the height above ground.

Each frame is registered to the current keyframe by a robust homography: from the optical flow
of the keyframe's corners when frames come a video camera's fraction of a second apart, else (or
when the flow loses them) from matched keypoints. The keyframe's inliers
are put on the ground plane from the keyframe's pose (its height above ground is a measurement),
and the frame's pose is solved against those ground points by planar PnP (``ground_pose``), so the
chained trajectory is metric and each step has a covariance from its own geometry. The ``odom``
frame is x, y horizontal and z up with the ground at z = 0; a track starts level and heading east
unless an attitude is given.

A frame that does not register (no overlap: the aircraft turned; or an implausible motion) gets
no pose, ever. The next frame that does register against a new keyframe starts a new track,
anchored where the last one ended (its true offset is unknown: a map fix corrects it).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..geometry import GeometryResult, estimate_homography
from ..geometry.frames import body_rotation, camera_rotation, tilt
from ..geometry.ground_pose import ground_points, solve_ground_pose
from ..image import equalized
from ..matching.pipeline import MatchResult, Pipeline
from ..matching.types import Features
from .keyframe import Keyframe, KeyframePolicy, KeyframeTrack, overlap_fraction
from .optical_flow import FlowConfig, FlowTracks

CACHE = 64  # keyframe poses remembered by stamp


@dataclass(frozen=True)
class OdometryConfig:
    """Registration checks: min_inliers, min_inlier_ratio, min_overlap (of the frame covered by the
    keyframe); plausible motion between keyframe and frame: max_tilt_change_deg, max_height_change
    (relative); flow: optical flow of a keyframe's corners registers frames at most
    flow_max_interval_s apart (a video camera's; None: descriptors register every frame)."""

    min_inliers: int = 20
    min_inlier_ratio: float = 0.3
    min_overlap: float = 0.05
    max_tilt_change_deg: float = 30.0
    max_height_change: float = 0.35
    keyframes: KeyframePolicy = field(
        default_factory=lambda: KeyframePolicy(min_inliers=150, min_overlap=0.6)
    )
    flow: FlowConfig | None = field(default_factory=FlowConfig)
    flow_max_interval_s: float = 0.5


@dataclass(frozen=True, eq=False)
class OdometryStep:
    """The outcome of one frame. ``position`` (odom metres, z = height above ground), ``R_odom_body``
    and ``covariance`` (6x6, x y z and small rotations about odom x y z) are None when the frame
    did not register; ``reason`` says why."""

    stamp: float
    registered: bool
    reason: str
    track: int
    position: np.ndarray | None = None
    R_odom_body: np.ndarray | None = None
    covariance: np.ndarray | None = None
    num_inliers: int = 0
    inlier_ratio: float = 0.0
    overlap: float = 0.0
    origin: np.ndarray | None = None  # set on a track's first frame: where the track starts (not a fix)


@dataclass(frozen=True, eq=False)
class _Anchor:
    position: np.ndarray
    R_odom_camera: np.ndarray
    covariance: np.ndarray
    height: float
    track: int


class OdometryTracker:
    """Chains registrations to keyframes identified by their stamps (as the ROS nodes exchange them)."""

    def __init__(self, config: OdometryConfig | None = None) -> None:
        self.config = config or OdometryConfig()
        self.track = 0
        self._anchors: OrderedDict[float, _Anchor] = OrderedDict()
        self._last: _Anchor | None = None

    def anchor(self, stamp: float, height: float, R_map_body: np.ndarray | None = None) -> None:
        """Start a new track at the keyframe taken at ``stamp`` (``height`` m above ground)."""
        self.track += 1
        if self._last is not None:
            position = np.array([*self._last.position[:2], height])
            R = self._last.R_odom_camera if R_map_body is None else camera_rotation(R_map_body)
            covariance = self._last.covariance
        else:
            position = np.array([0.0, 0.0, height])
            R = camera_rotation(np.eye(3) if R_map_body is None else R_map_body)
            covariance = np.zeros((6, 6))
        self._remember(stamp, _Anchor(position, R, covariance, height, self.track))

    def knows(self, stamp: float) -> bool:
        return stamp in self._anchors

    def origin(self, stamp: float) -> np.ndarray | None:
        anchor = self._anchors.get(stamp)
        return None if anchor is None else anchor.position.copy()

    def covariance(self, stamp: float) -> np.ndarray | None:
        """The 6x6 covariance of the keyframe taken at ``stamp`` (as its track carried it there)."""
        anchor = self._anchors.get(stamp)
        return None if anchor is None else anchor.covariance.copy()

    def attitude(self, stamp: float) -> np.ndarray | None:
        """R_odom_body of the keyframe taken at ``stamp``."""
        anchor = self._anchors.get(stamp)
        return None if anchor is None else body_rotation(anchor.R_odom_camera)

    def register(
        self,
        stamp: float,
        keyframe_stamp: float,
        geometry: GeometryResult,
        keyframe_points: np.ndarray,
        frame_points: np.ndarray,
        K: np.ndarray,
        sizes: tuple[tuple[int, int], tuple[int, int]],
        height: float | None = None,
    ) -> OdometryStep:
        """The pose of the frame at ``stamp`` from its homography to the keyframe at ``keyframe_stamp``."""
        anchor = self._anchors.get(keyframe_stamp)
        if anchor is None:
            return OdometryStep(stamp, False, "keyframe unknown (its own registration failed)", self.track)
        reason, step = self._check(geometry, sizes)
        if reason:
            return OdometryStep(stamp, False, reason, anchor.track, num_inliers=step[0], inlier_ratio=step[1])
        mask = np.asarray(geometry.inlier_mask, bool)
        c = anchor
        # The keyframe's inliers lie on the ground plane seen from the keyframe pose: solve the
        # frame's pose against those ground points (metric, with its own covariance).
        ground = ground_points(keyframe_points[mask], K, c.R_odom_camera, c.position)
        pose = solve_ground_pose(ground, frame_points[mask], K) if ground is not None else None
        if pose is None:
            return OdometryStep(stamp, False, "no plausible motion over the ground plane", c.track)
        position, R_odom_camera = pose.position.copy(), pose.R_map_camera
        why = self._implausible(c, position, R_odom_camera, height)
        if why:
            return OdometryStep(stamp, False, why, c.track, num_inliers=geometry.num_inliers)
        covariance = c.covariance + pose.covariance
        if height is not None and height > 0:
            position[2] = height  # the altimeter knows height better than the chain
        self._remember(stamp, _Anchor(position, R_odom_camera, covariance, position[2], c.track))
        return OdometryStep(
            stamp,
            True,
            "",
            c.track,
            position.copy(),
            body_rotation(R_odom_camera),
            covariance,
            geometry.num_inliers,
            geometry.inlier_ratio,
            step[2],
        )

    def _check(self, geometry: GeometryResult, sizes: tuple) -> tuple[str, tuple[int, float, float]]:
        c = self.config
        if not geometry.success:
            return f"no homography: {geometry.reason}", (0, 0.0, 0.0)
        stats = (geometry.num_inliers, geometry.inlier_ratio, overlap_fraction(geometry.model, *sizes))
        if stats[0] < c.min_inliers:
            return f"too few inliers: {stats[0]} < {c.min_inliers}", stats
        if stats[1] < c.min_inlier_ratio:
            return f"inlier ratio {stats[1]:.2f} < {c.min_inlier_ratio:.2f}", stats
        if stats[2] < c.min_overlap:
            return f"overlap {stats[2]:.2f} < {c.min_overlap:.2f}", stats
        return "", stats

    def _implausible(
        self, keyframe: _Anchor, position: np.ndarray, R: np.ndarray, height: float | None
    ) -> str:
        c = self.config
        change = abs(math.degrees(tilt(R) - tilt(keyframe.R_odom_camera)))
        if change > c.max_tilt_change_deg:
            return f"tilt changed by {change:.0f}° since the keyframe"
        reference = height if height is not None and height > 0 else keyframe.height
        if abs(position[2] - reference) > c.max_height_change * keyframe.height:
            return f"height {position[2]:.0f} m is implausible (expected {reference:.0f} m)"
        return ""

    def _remember(self, stamp: float, anchor: _Anchor) -> None:
        self._anchors[stamp] = anchor
        self._last = anchor
        while len(self._anchors) > CACHE:
            self._anchors.popitem(last=False)


class OdometryFrame:
    """One frame as odometry sees it: the image, and the features ``extract`` finds in it, extracted
    on first use (optical flow needs none)."""

    def __init__(self, image: np.ndarray, extract: Callable[[np.ndarray], Features]) -> None:
        self.image = image
        self.size = (int(image.shape[1]), int(image.shape[0]))
        self._extract = extract
        self._features: Features | None = None

    @property
    def features(self) -> Features:
        if self._features is None:
            self._features = self._extract(self.image)
        return self._features

    @property
    def extracted(self) -> bool:
        return self._features is not None


class KeyframeOdometry:
    """Frames in, odometry out. A frame that follows the last one closely enough in time
    (``config.flow_max_interval_s``) is registered by the optical flow of the flow keyframe's
    corners; otherwise, or when that fails, by matching ``pipeline``'s features to the current
    keyframe (and, failing that, to the last registered frame). Keyframes are renewed by
    ``config.keyframes``; a new track starts when registration fails."""

    def __init__(
        self, pipeline: Pipeline, config: OdometryConfig | None = None, equalize: bool = True
    ) -> None:
        self.pipeline = pipeline
        self.tracker = OdometryTracker(config)
        self.equalize = equalize
        self._keys: KeyframeTrack[OdometryFrame] = KeyframeTrack(self.tracker.config.keyframes)
        self._flow: tuple[Keyframe[OdometryFrame], FlowTracks] | None = None
        self._last_stamp: float | None = None

    def frame(self, image: np.ndarray) -> OdometryFrame:
        """The frame ``image`` prepared for ``step`` (and its features for other uses)."""
        return OdometryFrame(image, self._extract)

    def _extract(self, image: np.ndarray) -> Features:
        return self.pipeline.extract(equalized(image, clip_limit=4.0) if self.equalize else image)

    def step(
        self,
        image: np.ndarray,
        stamp: float,
        K: np.ndarray,
        height: float,
        R_map_body: np.ndarray | None = None,
        frame: OdometryFrame | None = None,
    ) -> OdometryStep:
        """The odometry of the frame ``image`` taken at ``stamp`` (s), ``height`` m above ground;
        ``frame``: the frame, if already prepared by ``frame``."""
        frame = self.frame(image) if frame is None else frame
        interval = math.inf if self._last_stamp is None else stamp - self._last_stamp
        self._last_stamp = stamp
        if self._keys.keyframe is None:
            return self._new_track(stamp, frame, height, R_map_body, "first frame: a new track")
        if self._flow is not None and interval <= self.tracker.config.flow_max_interval_s:
            step = self._follow(stamp, frame, K, height)
            if step.registered:
                return step
        key = self._keys.keyframe
        result, step = self._register(stamp, key, frame, K, height)
        fallback = self._keys.fallback()
        if not step.registered and fallback is not None:
            key = fallback
            result, step = self._register(stamp, key, frame, K, height)
        if not step.registered:
            lost = self._new_track(stamp, frame, height, R_map_body, "")
            reason = f"track lost: {step.reason}"
            return OdometryStep(
                stamp, False, reason, lost.track, num_inliers=step.num_inliers, origin=lost.origin
            )
        self._keys.registered(stamp, frame, key, result.geometry, (key.frame.size, frame.size))
        self._start_flow(stamp, frame)
        return step

    def _follow(self, stamp: float, frame: OdometryFrame, K: np.ndarray, height: float) -> OdometryStep:
        """The frame registered to the flow keyframe by the optical flow of its corners."""
        key, tracks = self._flow
        key_points, points = tracks.follow(frame.image)
        robust, needed = self.pipeline.robust, tracks.config.min_inliers
        geometry = estimate_homography(key_points, points, robust) if len(points) >= needed else None
        if geometry is None or (geometry.success and geometry.num_inliers < needed):
            kept = len(points) if geometry is None else geometry.num_inliers
            reason = f"the optical flow kept {kept} of the keyframe's corners (< {needed})"
            geometry = GeometryResult.failure("Homography", robust.method, reason, len(points))
        step = self.tracker.register(
            stamp, key.stamp, geometry, key_points, points, K, (key.frame.size, frame.size), height
        )
        if not step.registered:
            self._flow = None  # the descriptors take over; the flow restarts where they register
            return step
        sizes = (key.frame.size, frame.size)
        if self._keys.registered(stamp, frame, key, geometry, sizes, adopt=False).replace:
            self._start_flow(stamp, frame)
        return step

    def _start_flow(self, stamp: float, frame: OdometryFrame) -> None:
        flow = self.tracker.config.flow
        self._flow = None if flow is None else (Keyframe(stamp, frame), FlowTracks(frame.image, flow))

    def _register(
        self, stamp: float, key: Keyframe[OdometryFrame], frame: OdometryFrame, K: np.ndarray, height: float
    ) -> tuple[MatchResult, OdometryStep]:
        result = self.pipeline.match(key.frame.features, frame.features, geometry="Homography")
        m = result.matches
        step = self.tracker.register(
            stamp, key.stamp, result.geometry, m.points0, m.points1, K, (key.frame.size, frame.size), height
        )
        return result, step

    def _new_track(
        self,
        stamp: float,
        frame: OdometryFrame,
        height: float,
        R_map_body: np.ndarray | None,
        reason: str,
    ) -> OdometryStep:
        self.tracker.anchor(stamp, height, R_map_body)
        self._keys.restart(stamp, frame)
        self._start_flow(stamp, frame)
        return OdometryStep(stamp, False, reason, self.tracker.track, origin=self.tracker.origin(stamp))
