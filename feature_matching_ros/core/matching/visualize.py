"""Match pictures: both images side by side, inliers green, outliers red, the reference outline."""

from __future__ import annotations

import cv2
import numpy as np

from ..image import as_rgb

INLIER = (40, 220, 40)
OUTLIER = (230, 40, 40)
OUTLINE = (255, 200, 0)


def draw_matches(
    image0: np.ndarray,
    image1: np.ndarray,
    points0: np.ndarray,
    points1: np.ndarray,
    inlier_mask: np.ndarray | None = None,
    homography: np.ndarray | None = None,
    *,
    max_lines: int = 1000,
) -> np.ndarray:
    """RGB uint8 canvas [max(H0, H1) x (W0 + W1) x 3]. Unknown inlier status draws every match red."""
    left, right = as_rgb(image0), as_rgb(image1)
    height = max(left.shape[0], right.shape[0])
    canvas = np.zeros((height, left.shape[1] + right.shape[1], 3), np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] :] = right
    offset = np.array([left.shape[1], 0.0])
    mask = np.zeros(len(points0), bool) if inlier_mask is None else np.asarray(inlier_mask, bool)
    order = np.argsort(mask, kind="stable")  # outliers first, so inliers are drawn on top
    if len(order) > max_lines:
        order = order[np.linspace(0, len(order) - 1, max_lines).astype(int)]
    for i in order:
        colour = INLIER if mask[i] else OUTLIER
        p0 = tuple(int(round(v)) for v in points0[i])
        p1 = tuple(int(round(v)) for v in points1[i] + offset)
        cv2.line(canvas, p0, p1, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, p0, 2, colour, -1, cv2.LINE_AA)
        cv2.circle(canvas, p1, 2, colour, -1, cv2.LINE_AA)
    if homography is not None:
        h0, w0 = left.shape[:2]
        corners = np.array([[0, 0], [w0 - 1, 0], [w0 - 1, h0 - 1], [0, h0 - 1]], np.float64)
        warped = cv2.perspectiveTransform(corners[None], np.asarray(homography, np.float64))[0] + offset
        if np.isfinite(warped).all() and np.abs(warped).max() < 1e6:
            cv2.polylines(canvas, [np.round(warped).astype(np.int32)], True, OUTLINE, 2, cv2.LINE_AA)
    return canvas


def draw_overlay(
    image: np.ndarray,
    query_points: np.ndarray,
    reference_points: np.ndarray,
    inlier_mask: np.ndarray | None,
    homography: np.ndarray | None,
    reference_size: tuple[int, int],
) -> np.ndarray:
    """The camera image (RGB uint8) with the reference outline mapped by H (reference -> query) and
    the matches: inliers green with a line to where H puts their reference point, outliers red."""
    canvas = as_rgb(image).copy()
    mask = np.zeros(len(query_points), bool) if inlier_mask is None else np.asarray(inlier_mask, bool)
    projected = None
    if homography is not None and len(reference_points):
        projected = cv2.perspectiveTransform(
            np.asarray(reference_points, np.float64).reshape(-1, 1, 2), np.asarray(homography, np.float64)
        ).reshape(-1, 2)
    for i in np.argsort(mask, kind="stable"):
        q = tuple(int(round(v)) for v in query_points[i])
        colour = INLIER if mask[i] else OUTLIER
        if mask[i] and projected is not None and np.isfinite(projected[i]).all():
            cv2.line(canvas, q, tuple(int(round(v)) for v in projected[i]), colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, q, 2, colour, -1, cv2.LINE_AA)
    if homography is not None:
        w, h = reference_size
        corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
        warped = cv2.perspectiveTransform(corners[None], np.asarray(homography, np.float64))[0]
        if np.isfinite(warped).all() and np.abs(warped).max() < 1e6:
            cv2.polylines(canvas, [np.round(warped).astype(np.int32)], True, OUTLINE, 2, cv2.LINE_AA)
    return canvas
