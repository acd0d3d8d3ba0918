"""Independent evidence for a map fix: does the map, seen through the fix, look like the frame?

The inliers of a wrong fix agree with each other by construction (that is how they were chosen),
so the check looks at the whole picture instead: the map is rendered into the frame through the
fix's homography, both are brought to the map's resolution, and their gradient fields are
correlated (doubled gradient angles weighted by magnitude, so contrast inversions between a
near-infrared frame and a colour map do not matter). A correct fix is a sharp peak: rendering the
map a few metres off in any direction must correlate clearly worse. A fix over featureless or
repetitive ground, or a wrong fix, has no such peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import RobustParams, estimate
from ..image import as_gray
from ..maps.features import Window
from ..maps.georef import GeoMap

# Shifts of the map (map pixels) at which the correlation must be clearly lower than at the fix.
SHIFT_PX = 4.0
DIRECTIONS = 8
# The rendered frame is at most this wide (pixels) at map resolution.
MAX_WIDTH = 320
MIN_WIDTH = 96
MIN_COVERED = 0.3


@dataclass(frozen=True)
class Agreement:
    """score: gradient correlation at the fix (1: identical structure); best_shifted: the highest
    correlation a few metres off; peak: score / best_shifted; covered: fraction of the frame the
    map covers."""

    score: float
    best_shifted: float
    peak: float
    covered: float


def map_agreement(
    map_image: np.ndarray,
    map_valid: np.ndarray,
    frame: np.ndarray,
    H_map_to_frame: np.ndarray,
    map_px_per_frame_px: float,
    shift_px: float = SHIFT_PX,
) -> Agreement:
    """How well the map seen through ``H_map_to_frame`` explains ``frame`` (see the module doc);
    ``map_px_per_frame_px``: the map's resolution relative to the frame's (below 1: a coarser map)."""
    h, w = frame.shape[:2]
    scale = min(float(np.clip(map_px_per_frame_px, MIN_WIDTH / w, MAX_WIDTH / w)), 1.0)
    size = (max(int(round(w * scale)), 8), max(int(round(h * scale)), 8))
    down = np.diag([size[0] / w, size[1] / h, 1.0])
    small = cv2.resize(as_gray(frame), size, interpolation=cv2.INTER_AREA)
    frame_field = gradient_field(small.astype(np.float32))
    # only the part of the map the frame sees (and the shifts reach) is rendered, not the whole map
    seen = Window.seen_by(H_map_to_frame, (w, h), map_valid.shape[::-1], int(math.ceil(shift_px)) + 4)
    gray_map = as_gray(map_image[seen.y0 : seen.y1, seen.x0 : seen.x1]).astype(np.float32)
    valid = map_valid[seen.y0 : seen.y1, seen.x0 : seen.x1].astype(np.uint8)
    to_frame = down @ np.asarray(H_map_to_frame, np.float64) @ seen.shift()

    def render(dx: float, dy: float) -> tuple[float, float]:
        shift = np.array([[1.0, 0.0, -dx], [0.0, 1.0, -dy], [0.0, 0.0, 1.0]])
        H = to_frame @ shift
        view = cv2.warpPerspective(gray_map, H, size, flags=cv2.INTER_LINEAR)
        seen = cv2.warpPerspective(valid, H, size, flags=cv2.INTER_NEAREST)
        seen = cv2.erode(seen, np.ones((5, 5), np.uint8)) > 0
        return _correlation(gradient_field(view), frame_field, seen), float(seen.mean())

    score, covered = render(0.0, 0.0)
    shifted = [
        render(shift_px * math.cos(a), shift_px * math.sin(a))[0]
        for a in np.linspace(0.0, 2 * math.pi, DIRECTIONS, endpoint=False)
    ]
    best = max(shifted)
    peak = score / best if best > 1e-6 else (math.inf if score > 0 else 0.0)
    return Agreement(score, best, peak, covered)


def gradient_field(gray: np.ndarray) -> np.ndarray:
    """Doubled-angle gradient field (complex), lightly smoothed, of a grey image."""
    g = cv2.GaussianBlur(gray, (0, 0), 1.0)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    z = (gx + 1j * gy).astype(np.complex64)
    return z * z / (np.abs(z) + 1e-3)


def _correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    if mask.mean() < MIN_COVERED:
        return 0.0
    x, y = a[mask], b[mask]
    norm = math.sqrt(float(np.sum(np.abs(x) ** 2)) * float(np.sum(np.abs(y) ** 2)))
    return float(np.real(np.sum(x * np.conj(y)))) / norm if norm > 0 else 0.0


def check_agreement(
    map_image: np.ndarray,
    map_valid: np.ndarray,
    frame: np.ndarray,
    H_map_to_frame: np.ndarray,
    map_px_per_frame_px: float,
    min_agreement: float,
    min_peak: float,
) -> tuple[Agreement, str]:
    """The agreement and, if it is not enough, why (else '')."""
    found = map_agreement(map_image, map_valid, frame, H_map_to_frame, map_px_per_frame_px)
    if found.score < min_agreement:
        return found, f"the map seen through the match does not look like the frame ({found.score:.2f})"
    if found.peak < min_peak:
        return found, f"the map agrees as well a few metres off (peak {found.peak:.2f} < {min_peak:g})"
    return found, ""


def verify_matches(
    geomap: GeoMap,
    image: np.ndarray,
    K: np.ndarray,
    height: float,
    map_points: np.ndarray,
    image_points: np.ndarray,
    min_agreement: float,
    min_peak: float,
) -> tuple[Agreement | None, str]:
    """Whether the map seen through the matches' homography looks like the whole frame."""
    model = estimate("Homography", map_points, image_points, RobustParams())
    if not model.success:
        return None, ""  # too few consistent points: the fix's own checks will say so
    resolution = height / float(K[0, 0]) / geomap.georef.ground_sample_distance
    return check_agreement(
        geomap.image, geomap.valid, image, model.model, resolution, min_agreement, min_peak
    )
