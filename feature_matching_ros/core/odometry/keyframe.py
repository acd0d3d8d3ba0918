"""Keyframes: the tracker of one track's keyframe and last registered frame, and the policy that
renews a keyframe from how well the current frame still matches it.

``KeyframeTrack`` is the one keyframe tracker: ``KeyframeOdometry`` (fm-eval, the navigator) and
the feature_matcher node's keyframe mode both keep their keyframes in it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import cv2
import numpy as np

from ..errors import ConfigError
from ..geometry import GeometryResult, warp_points

F = TypeVar("F")


def overlap_fraction(H: np.ndarray, reference_size: tuple[int, int], query_size: tuple[int, int]) -> float:
    """Fraction of the query image covered by the reference image mapped by H (reference -> query).

    Sizes are (width, height). 0 when H folds the reference outline (not a convex quadrilateral)
    or sends a corner to infinity.
    """
    w0, h0 = reference_size
    w1, h1 = query_size
    corners = np.array([[0, 0], [w0, 0], [w0, h0], [0, h0]], np.float64)
    warped = warp_points(H, corners)
    if not np.isfinite(warped).all() or np.abs(warped).max() > 1e7:
        return 0.0
    quad = warped.astype(np.float32)
    if not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
        return 0.0
    frame = np.array([[0, 0], [w1, 0], [w1, h1], [0, h1]], np.float32)
    area, _ = cv2.intersectConvexConvex(quad, frame)
    return float(np.clip(area / (w1 * h1), 0.0, 1.0))


@dataclass(frozen=True)
class KeyframeDecision:
    replace: bool
    reason: str


@dataclass(frozen=True)
class KeyframePolicy:
    """Replace the keyframe when inliers or overlap drop below thresholds, or after ``max_frames``.

    min_inliers: homography inliers the current frame needs against the keyframe;
    min_overlap: fraction of the current frame the keyframe must still cover, in [0, 1];
    max_frames: frames matched against one keyframe before it is renewed (0 = never by count).
    """

    min_inliers: int = 50
    min_overlap: float = 0.5
    max_frames: int = 0

    def __post_init__(self) -> None:
        if self.min_inliers < 0:
            raise ConfigError(f"keyframe min_inliers must be >= 0, got {self.min_inliers}")
        if not 0.0 <= self.min_overlap <= 1.0:
            raise ConfigError(f"keyframe min_overlap must be within [0, 1], got {self.min_overlap}")
        if self.max_frames < 0:
            raise ConfigError(f"keyframe max_frames must be >= 0 (0 = no limit), got {self.max_frames}")

    def decide(
        self,
        geometry: GeometryResult | None,
        reference_size: tuple[int, int],
        query_size: tuple[int, int],
        frames_matched: int,
    ) -> KeyframeDecision:
        """Whether the frame just matched (the ``frames_matched``-th against this keyframe) replaces it."""
        if geometry is None or not geometry.success:
            reason = geometry.reason if geometry is not None else "no geometry"
            return KeyframeDecision(True, f"lost the keyframe: {reason}")
        if geometry.num_inliers < self.min_inliers:
            return KeyframeDecision(True, f"inliers {geometry.num_inliers} < {self.min_inliers}")
        overlap = overlap_fraction(geometry.model, reference_size, query_size)
        if overlap < self.min_overlap:
            return KeyframeDecision(True, f"overlap {overlap:.2f} < {self.min_overlap:.2f}")
        if self.max_frames and frames_matched >= self.max_frames:
            return KeyframeDecision(True, f"{frames_matched} frames matched against this keyframe")
        return KeyframeDecision(False, "")


@dataclass
class Keyframe(Generic[F]):
    """A frame that later frames are registered against, taken at ``stamp`` (s)."""

    stamp: float
    frame: F
    matched: int = 0  # frames registered against it so far


Sizes = tuple[tuple[int, int], tuple[int, int]]  # (width, height) of the keyframe and of the frame


class KeyframeTrack(Generic[F]):
    """The current keyframe of a track and the last frame registered in it; ``policy`` decides when
    a registered frame replaces the keyframe. What a frame is (``F``) is up to the user."""

    def __init__(self, policy: KeyframePolicy) -> None:
        self.policy = policy
        self.keyframe: Keyframe[F] | None = None
        self.previous: Keyframe[F] | None = None

    def restart(self, stamp: float, frame: F) -> None:
        """Start over from ``frame``: it is the keyframe and the last registered frame."""
        self.keyframe = Keyframe(stamp, frame)
        self.previous = Keyframe(stamp, frame)

    def clear(self) -> None:
        self.keyframe = self.previous = None

    def fallback(self) -> Keyframe[F] | None:
        """The last registered frame, to register against when the keyframe no longer will (the
        aircraft moved on faster than the policy expected); None when that frame is the keyframe."""
        previous, keyframe = self.previous, self.keyframe
        if previous is None or keyframe is None or previous.stamp == keyframe.stamp:
            return None
        return Keyframe(previous.stamp, previous.frame)

    def registered(
        self,
        stamp: float,
        frame: F,
        against: Keyframe[F],
        geometry: GeometryResult | None,
        sizes: Sizes,
        adopt: bool = True,
    ) -> KeyframeDecision:
        """``frame`` registered against ``against`` (by ``geometry``): it becomes the last registered
        frame, and the keyframe when the policy says so; otherwise ``against`` stays the keyframe
        (with ``adopt``; without, the keyframe is left as it is)."""
        self.previous = Keyframe(stamp, frame)
        against.matched += 1
        decision = self.policy.decide(geometry, sizes[0], sizes[1], against.matched)
        if decision.replace:
            self.keyframe = Keyframe(stamp, frame)
        elif adopt:
            self.keyframe = against
        return decision
