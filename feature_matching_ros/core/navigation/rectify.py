"""Warp a camera frame into a map-like view: map pixel axes and scale, from attitude and height.

Learned features are neither rotation- nor much scale-invariant, and an aircraft yaws freely and
changes height. Given the camera's attitude and its height above the ground, the frame is
projected onto the ground plane and resampled on the map's pixel grid (orientation and ground
sample distance), centred on the camera's nadir point. A rectified frame then differs from the
map by little more than a translation. Errors in attitude or height leave a small residual
rotation, scale or perspective, which the homography between the two absorbs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import FeatureMatchingError
from ..geometry import warp_points

# The optical axis must point at least this much downwards (cosine) to see the ground plane.
MIN_DOWN = 0.2
# A rectified frame narrower than this holds no usable features (and the low-pass filter before
# shrinking a frame that far would take seconds).
MIN_EDGE = 32


@dataclass(frozen=True, eq=False)
class Rectified:
    """image: the rectified frame; H: original pixels -> rectified pixels; nadir: the rectified
    pixel of the camera's nadir point (straight below it); scale: rectified px per original px
    near the image centre."""

    image: np.ndarray
    H: np.ndarray
    nadir: np.ndarray
    scale: float

    def to_original(self, points: np.ndarray) -> np.ndarray:
        return warp_points(np.linalg.inv(self.H), points)


def rectifying_homography(
    K: np.ndarray,
    R_map_camera: np.ndarray,
    height: float,
    map_linear: np.ndarray,
    image_size: tuple[int, int],
    max_edge: int = 1600,
) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    """(H original -> rectified px, rectified size, nadir pixel) for a camera at ``height`` m.

    ``map_linear`` is the 2x2 linear part of the map georeference (metres per map pixel), so the
    output has the map's pixel axes and scale. Raises FeatureMatchingError when the camera looks
    too far from the ground or the footprint exceeds ``max_edge`` pixels or is under ``MIN_EDGE``.
    """
    if not height > 0:
        raise FeatureMatchingError(f"height above ground must be positive, got {height}")
    R = np.asarray(R_map_camera, np.float64)
    if -R[2, 2] < MIN_DOWN:
        raise FeatureMatchingError("the camera does not look down at the ground: cannot rectify")
    # Pixel -> ground offset from the nadir point, in metres: intersect the ray with z = -height.
    to_ground = np.diag([1.0, 1.0, -1.0 / height]) @ R @ np.linalg.inv(np.asarray(K, np.float64))
    to_map_px = np.eye(3)
    to_map_px[:2, :2] = np.linalg.inv(np.asarray(map_linear, np.float64))
    H = to_map_px @ to_ground
    w, h = image_size
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    rays = (R @ np.linalg.inv(K) @ np.c_[corners, np.ones(4)].T).T
    if (rays[:, 2] > -0.05 * np.linalg.norm(rays, axis=1)).any():
        raise FeatureMatchingError("part of the frame looks above the horizon: cannot rectify")
    warped = warp_points(H, corners)
    lo, hi = np.floor(warped.min(axis=0)), np.ceil(warped.max(axis=0))
    size = (int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1)
    if max(size) > max_edge:
        raise FeatureMatchingError(
            f"rectified frame would be {size[0]}x{size[1]} px (> {max_edge}): "
            "height or tilt is implausible for this map"
        )
    if min(size) < MIN_EDGE:
        raise FeatureMatchingError(
            f"rectified frame would be {size[0]}x{size[1]} px (< {MIN_EDGE}) at {height:g} m above ground: "
            "too small to match on this map (the height is implausibly low for its resolution)"
        )
    shift = np.array([[1.0, 0.0, -lo[0]], [0.0, 1.0, -lo[1]], [0.0, 0.0, 1.0]])
    H = shift @ H
    return H / H[2, 2], size, -lo


def rectify(
    image: np.ndarray,
    K: np.ndarray,
    R_map_camera: np.ndarray,
    height: float,
    map_linear: np.ndarray,
    max_edge: int = 1600,
) -> Rectified:
    """The frame resampled on the map's grid (see the module docstring); black outside the frame."""
    size_in = (int(image.shape[1]), int(image.shape[0]))
    H, size, nadir = rectifying_homography(K, R_map_camera, height, map_linear, size_in, max_edge)
    centre = np.array([[size_in[0] / 2, size_in[1] / 2]])
    step = warp_points(H, np.vstack([centre, centre + [1.0, 0.0], centre + [0.0, 1.0]]))
    scale = float(np.sqrt(abs(np.linalg.det(np.stack([step[1] - step[0], step[2] - step[0]])))))
    source = image
    if scale < 0.8:  # shrinking: low-pass first so the resampling does not alias
        sigma = 0.5 * (1.0 / scale - 1.0) + 0.3
        source = cv2.GaussianBlur(image, (0, 0), sigma)
    out = cv2.warpPerspective(source, H, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return Rectified(out, H, nadir, scale)
