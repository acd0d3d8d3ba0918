"""Corners of a keyframe followed from frame to frame by pyramidal Lucas-Kanade optical flow.

    tracks = FlowTracks(image, FlowConfig())     # corners of the keyframe
    key_points, points = tracks.follow(next_image)   # where those still followed are now

Each corner is followed forward from the previous frame and back again; one that does not come
back within ``max_round_trip_px`` of where it started is dropped for good. Lucas-Kanade assumes
that a point keeps its brightness, which a change of exposure breaks: every image is histogram-
equalised first (across the simulated flights' strongest exposure changes, 671-735 of 800 corners
were followed so, against 42-53 on images equalised locally by CLAHE). Between frames a video
camera takes (a few pixels of motion) this costs a few milliseconds where describing and matching
keypoints costs a hundred; frames seconds apart move too far for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class FlowConfig:
    """corners: at most this many detected on a keyframe (Shi-Tomasi), at least min_distance_px
    apart and of quality_level times the strongest corner's response; window_px and levels: the
    Lucas-Kanade window and pyramid depth (motion up to about window_px * 2**levels / 2 pixels);
    max_round_trip_px: forward-backward error beyond which a corner is dropped; min_inliers: a
    registration by flow needs this many homography inliers (fewer: the flow has lost most corners,
    and the keypoints are asked instead)."""

    corners: int = 800
    quality_level: float = 0.01
    min_distance_px: float = 8.0
    window_px: int = 21
    levels: int = 3
    max_round_trip_px: float = 1.0
    min_inliers: int = 100

    def __post_init__(self) -> None:
        if self.corners < 4:
            raise ConfigError(f"flow corners must be >= 4, got {self.corners}")
        if not 0.0 < self.quality_level < 1.0:
            raise ConfigError(f"flow quality_level must be in (0, 1), got {self.quality_level}")
        if self.window_px < 3 or self.levels < 0:
            raise ConfigError(
                f"flow window_px must be >= 3 and levels >= 0, got {self.window_px}, {self.levels}"
            )
        if self.min_inliers < 4:
            raise ConfigError(f"flow min_inliers must be >= 4 (a homography), got {self.min_inliers}")
        if not self.max_round_trip_px > 0:
            raise ConfigError(f"flow max_round_trip_px must be > 0, got {self.max_round_trip_px}")


class FlowTracks:
    """The corners of one keyframe and where they were last seen."""

    def __init__(self, image: np.ndarray, config: FlowConfig | None = None) -> None:
        self.config = c = config or FlowConfig()
        self._previous = _grey(image)
        corners = cv2.goodFeaturesToTrack(
            self._previous, c.corners, c.quality_level, c.min_distance_px, blockSize=7
        )
        self.key_points = np.zeros((0, 2), np.float32) if corners is None else corners.reshape(-1, 2)
        self._points = self.key_points.copy()

    def __len__(self) -> int:
        return len(self._points)

    def follow(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The keyframe corners still followed into ``image`` and their positions there (N x 2 each)."""
        grey = _grey(image)
        if grey.shape != self._previous.shape:
            self.key_points = self._points = np.zeros((0, 2), np.float32)
        if len(self._points):
            c = self.config
            lk = dict(winSize=(c.window_px, c.window_px), maxLevel=c.levels)
            forward, ok, _ = cv2.calcOpticalFlowPyrLK(self._previous, grey, self._points, None, **lk)
            back, ok_back, _ = cv2.calcOpticalFlowPyrLK(grey, self._previous, forward, None, **lk)
            round_trip = np.linalg.norm(back - self._points, axis=1)
            keep = (ok.ravel() == 1) & (ok_back.ravel() == 1) & (round_trip < c.max_round_trip_px)
            keep &= np.isfinite(forward).all(axis=1)
            self.key_points, self._points = self.key_points[keep], forward[keep]
        self._previous = grey
        return self.key_points.astype(np.float64), self._points.astype(np.float64)


def _grey(image: np.ndarray) -> np.ndarray:
    """Grey, histogram-equalised."""
    if image.ndim == 2 or image.shape[2] == 1:
        grey = np.ascontiguousarray(image.reshape(image.shape[:2]))
    else:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if grey.dtype != np.uint8:  # e.g. 16-bit: its range, in 8 bits
        grey = cv2.normalize(grey.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return cv2.equalizeHist(grey)
