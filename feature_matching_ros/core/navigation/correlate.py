"""Placing a frame on the map around a confident prior, where keypoints find too little.

Over bare fields, or on a map much coarser than the camera, few keypoints survive on both sides,
but field edges, tracks, tree lines and tonal patches do. Around a prior good to a few metres the
frame, rectified to map resolution, is slid over the map and the doubled-angle gradient fields of
both (``map_verify.gradient_field``: blind to contrast inversion) are correlated. The best placement
must beat every placement more than ``exclusion_m`` away by ``min_ratio``; a road or a furrowed
field alone correlates as well anywhere along itself and gives no placement.

A placement only seeds a homography. The correspondences then come from direct alignment
(``map_refine``), and a fix built on them is accepted only when the navigation prediction
confirms it (``map_fix``): the placement is no evidence independent of the prior.

Without any prior but with a measured attitude, the same correlation runs over the whole map
(``place_anywhere``: acquisition, as a terrain-matching navigator acquires a scene). A whole map
offers many more chances of a chance peak, so the best placement must beat every other one by a
wider margin, and ``Acquisition`` accepts a placement only once the next frame lands where the
aircraft can have flown in between: one frame's placement alone is never a fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..image import as_gray
from .verify import gradient_field


@dataclass(frozen=True, eq=False)
class Placement:
    """offset: map pixels of the view's pixel (0, 0); score: normalised gradient correlation there;
    ratio: score over the best score more than the exclusion distance away."""

    offset: np.ndarray
    score: float
    ratio: float


def place(
    view: np.ndarray,
    map_image: np.ndarray,
    map_valid: np.ndarray,
    expected: np.ndarray,
    margin_px: int,
    exclusion_px: int,
) -> Placement | None:
    """Where ``view`` (a frame rectified onto the map's pixel grid, black outside the frame) lies on
    the map, searched ``margin_px`` around ``expected`` (map pixels of the view's pixel (0, 0)).
    None when the view or the map window has no structure to correlate."""
    gray = as_gray(view)
    h, w = gray.shape
    inside = cv2.erode((gray > 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
    template = gradient_field(gray.astype(np.float32)) * inside
    energy = float(np.sum(np.abs(template) ** 2))
    if energy <= 0.0 or inside.mean() < 0.3:
        return None
    x0, y0 = int(round(expected[0])) - margin_px, int(round(expected[1])) - margin_px
    size = (w + 2 * margin_px, h + 2 * margin_px)
    window, valid = _crop(map_image, map_valid, x0, y0, size)
    field = gradient_field(window.astype(np.float32)) * valid
    score = _match(field.real, template.real) + _match(field.imag, template.imag)
    coverage = cv2.matchTemplate(np.ascontiguousarray(np.abs(field) ** 2), inside, cv2.TM_CCORR)
    score = score / np.sqrt(np.maximum(coverage, 1e-9) * energy)
    score[coverage <= 1e-6] = 0.0
    iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)
    best = float(score[iy, ix])
    if not best > 0.0:
        return None
    elsewhere = score.copy()
    elsewhere[
        max(iy - exclusion_px, 0) : iy + exclusion_px + 1, max(ix - exclusion_px, 0) : ix + exclusion_px + 1
    ] = 0
    second = float(elsewhere.max())
    ratio = best / second if second > 1e-9 else float("inf")
    return Placement(np.array([x0 + ix, y0 + iy], np.float64), best, ratio)


def place_anywhere(
    view: np.ndarray, map_image: np.ndarray, map_valid: np.ndarray, exclusion_px: int
) -> Placement | None:
    """``place`` over the whole map (every placement where the view overlaps it)."""
    h, w = as_gray(view).shape
    H, W = map_valid.shape
    margin = int(math.ceil(max(W, H) / 2)) + max(w, h)
    expected = np.array([W / 2 - w / 2, H / 2 - h / 2])
    return place(view, map_image, map_valid, expected, margin, exclusion_px)


@dataclass
class Acquisition:
    """Placements without a prior waiting for confirmation: a placement is confirmed by the next
    one when it lies within what ``max_speed`` (m/s) allows in between, plus ``tolerance_m``, and
    comes at most ``max_gap_s`` later (a stale placement confirms nothing)."""

    max_speed: float
    tolerance_m: float
    max_gap_s: float = 10.0
    candidate: tuple[float, np.ndarray] | None = None

    def confirm(self, stamp: float, position: np.ndarray) -> bool:
        """Whether the placement at ``position`` (map metres) at ``stamp`` (s) confirms the waiting
        one; if not, it waits for the next frame in its place."""
        position = np.asarray(position, np.float64)[:2]
        if self.candidate is not None:
            before, where = self.candidate
            elapsed = stamp - before
            reach = self.max_speed * elapsed + self.tolerance_m
            near = float(np.linalg.norm(position - where)) <= reach
            if 0.0 < elapsed <= self.max_gap_s and near:
                self.candidate = None
                return True
        self.candidate = (stamp, position.copy())
        return False

    def reset(self) -> None:
        self.candidate = None


def _match(window: np.ndarray, template: np.ndarray) -> np.ndarray:
    return cv2.matchTemplate(
        np.ascontiguousarray(window, np.float32), np.ascontiguousarray(template, np.float32), cv2.TM_CCORR
    )


def _crop(
    image: np.ndarray, valid: np.ndarray, x0: int, y0: int, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Grey map and eroded validity over the box at (x0, y0) of ``size``; zero outside the map."""
    w, h = size
    gray = np.zeros((h, w), np.float32)
    mask = np.zeros((h, w), np.float32)
    H, W = valid.shape
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if xa < xb and ya < yb:
        gray[ya - y0 : yb - y0, xa - x0 : xb - x0] = as_gray(image[ya:yb, xa:xb])
        mask[ya - y0 : yb - y0, xa - x0 : xb - x0] = valid[ya:yb, xa:xb]
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8))
    return gray, mask
