"""Sub-pixel map correspondences by direct alignment, after a feature match found the homography.

Keypoint matchers place points to about a pixel of the coarser image, and over a narrow field of
view a pixel of noise tilts the camera and moves the fix by metres. Once a homography maps the
map into the frame, the map is rendered as the camera should see it, corners are picked on that
rendering, and pyramidal Lucas-Kanade tracks each into the real frame (checked forwards and
backwards) on locally normalised images, so gain, contrast and colour changes do not bias it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..geometry import RobustParams, estimate, warp_points
from ..image import as_gray
from ..maps.features import Window
from ..maps.georef import GeoMap, GeoReference

WINDOW = 21
MAX_CORNERS = 500
MIN_DISTANCE = 10
# Forward-backward disagreement beyond this (pixels) drops a point.
MAX_ROUNDTRIP_PX = 0.5


def _normalised(gray: np.ndarray, sigma: float = 6.0) -> np.ndarray:
    """Local zero-mean, unit-contrast image scaled to uint8 (invariant to local gain and offset)."""
    g = gray.astype(np.float32)
    mean = cv2.GaussianBlur(g, (0, 0), sigma)
    centred = g - mean
    std = np.sqrt(cv2.GaussianBlur(centred * centred, (0, 0), sigma)) + 2.0
    return np.clip(centred / std * 48.0 + 128.0, 0, 255).astype(np.uint8)


def refine_on_map(
    map_image: np.ndarray,
    map_valid: np.ndarray,
    frame: np.ndarray,
    H_map_to_frame: np.ndarray,
    *,
    blur_frame: float = 0.0,
    max_corners: int = MAX_CORNERS,
) -> tuple[np.ndarray, np.ndarray]:
    """(map points [N x 2] map px, frame points [N x 2] frame px), aligned to a fraction of a pixel.

    ``blur_frame``: Gaussian sigma (frame pixels) that brings the frame down to the map's
    resolution when the camera sees finer detail than the map holds. Empty arrays when nothing
    can be tracked.
    """
    frame_gray = as_gray(frame)
    h, w = frame_gray.shape
    H = np.asarray(H_map_to_frame, np.float64)
    # render only the part of the map the frame sees, not the whole map, every frame
    seen = Window.seen_by(H, (w, h), map_valid.shape[::-1], 4)
    to_frame = H @ seen.shift()
    crop = (slice(seen.y0, seen.y1), slice(seen.x0, seen.x1))
    view = cv2.warpPerspective(as_gray(map_image[crop]), to_frame, (w, h), flags=cv2.INTER_LINEAR)
    covered = map_valid[crop].astype(np.uint8) * 255
    covered = cv2.warpPerspective(covered, to_frame, (w, h), flags=cv2.INTER_NEAREST)
    covered = cv2.erode(covered, np.ones((WINDOW, WINDOW), np.uint8))
    if blur_frame > 0.3:
        frame_gray = cv2.GaussianBlur(frame_gray, (0, 0), blur_frame)
    view_n, frame_n = _normalised(view), _normalised(frame_gray)
    corners = cv2.goodFeaturesToTrack(view_n, max_corners, 0.01, MIN_DISTANCE, mask=covered, blockSize=7)
    empty = np.zeros((0, 2))
    if corners is None or len(corners) < 4:
        return empty, empty
    start = corners.astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)
    lk = {"winSize": (WINDOW, WINDOW), "maxLevel": 2, "criteria": criteria}
    ahead, ok1, _ = cv2.calcOpticalFlowPyrLK(
        view_n, frame_n, start, start.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk
    )
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(
        frame_n, view_n, ahead, start.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk
    )
    roundtrip = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
    keep = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (roundtrip < MAX_ROUNDTRIP_PX)
    if keep.sum() < 4:
        return empty, empty
    view_points = start.reshape(-1, 2)[keep].astype(np.float64)
    map_points = warp_points(np.linalg.inv(H), view_points)
    return map_points, ahead.reshape(-1, 2)[keep].astype(np.float64)


def refine_matches(
    geomap: GeoMap,
    image: np.ndarray,
    K: np.ndarray,
    height: float,
    map_points: np.ndarray,
    image_points: np.ndarray,
    min_matches: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The matches replaced by direct alignment on the map through their homography; None when
    fewer than ``min_matches`` survive (or there is no homography)."""
    coarse = estimate("Homography", map_points, image_points, RobustParams())
    if not coarse.success:
        return None
    blur = frame_blur(geomap.georef, K, height)
    refined = refine_on_map(geomap.image, geomap.valid, image, coarse.model, blur_frame=blur)
    return refined if len(refined[0]) >= min_matches else None


def frame_blur(georef: GeoReference, K: np.ndarray, height: float) -> float:
    """Gaussian sigma (frame pixels) that brings the frame down to the map's resolution."""
    ratio = georef.ground_sample_distance / (height / float(K[0, 0]))
    return 0.5 * math.sqrt(ratio * ratio - 1.0) if ratio > 1.0 else 0.0
