"""Procedural test imagery: an aerial-like texture, random homographies and photometric changes.

Everything is seeded, so a pair made here is the same on every machine; the demo and the
synthetic homography suite are built from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def procedural_texture(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """An RGB uint8 image with structure at many scales: fields, roads, buildings, trees."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.float32)
    for cell in (160, 80, 40, 16):
        noise = rng.random((height // cell + 2, width // cell + 2, 3)).astype(np.float32)
        image += cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) * (cell / 160.0)
    image = cv2.normalize(image, None, 40, 200, cv2.NORM_MINMAX)
    for _ in range(6):  # roads
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(image, p0, p1, (90.0, 90.0, 95.0), int(rng.integers(3, 9)), cv2.LINE_AA)
    for _ in range(60):  # buildings
        cx, cy = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(6, 30, size=2)
        angle = float(rng.uniform(0, 180))
        box = cv2.boxPoints(((float(cx), float(cy)), (float(w), float(h)), angle)).astype(np.int32)
        cv2.fillConvexPoly(image, box, tuple(float(v) for v in rng.uniform(120, 255, 3)), cv2.LINE_AA)
    for _ in range(150):  # trees
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(
            image, centre, int(rng.integers(2, 7)), (30.0, float(rng.uniform(60, 120)), 30.0), -1, cv2.LINE_AA
        )
    return np.clip(image, 0, 255).astype(np.uint8)


def random_homography(
    rng: np.random.Generator,
    width: int,
    height: int,
    *,
    max_rotation_deg: float = 180.0,
    scale_range: tuple[float, float] = (0.5, 2.0),
    perspective: float = 0.0005,
    max_shift: float = 0.1,
) -> np.ndarray:
    """A homography about the image centre: rotation, log-uniform scale, perspective and shift."""
    angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    scale = float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1]))))
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    centre = np.array([[1, 0, -width / 2], [0, 1, -height / 2], [0, 0, 1]])
    similarity = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    proj = np.eye(3)
    proj[2, :2] = rng.uniform(-perspective, perspective, 2)
    shift = rng.uniform(-max_shift, max_shift, 2) * (width, height)
    back = np.array([[1, 0, width / 2 + shift[0]], [0, 1, height / 2 + shift[1]], [0, 0, 1]])
    homography = back @ proj @ similarity @ centre
    return homography / homography[2, 2]


@dataclass(frozen=True)
class Photometric:
    """Appearance change applied after warping: gain, offset, Gaussian noise sigma, blur sigma."""

    gain: float = 1.0
    offset: float = 0.0
    noise: float = 0.0
    blur: float = 0.0

    @staticmethod
    def random(rng: np.random.Generator) -> Photometric:
        return Photometric(
            gain=float(rng.uniform(0.6, 1.4)),
            offset=float(rng.uniform(-30, 30)),
            noise=float(rng.uniform(0, 6)),
            blur=float(rng.uniform(0, 1.5)),
        )

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = image.astype(np.float32) * self.gain + self.offset
        if self.blur > 0.3:
            out = cv2.GaussianBlur(out, (0, 0), self.blur)
        if self.noise > 0:
            out += rng.normal(0, self.noise, out.shape).astype(np.float32)
        return np.clip(out, 0, 255).astype(np.uint8)


def warp(image: np.ndarray, homography: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """``image`` seen through ``homography`` (image pixels -> output pixels), black outside."""
    size = size or (image.shape[1], image.shape[0])
    return cv2.warpPerspective(
        image, homography, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def make_pair(
    image: np.ndarray, seed: int, **homography_kwargs: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, warped copy with a random photometric change, homography image -> copy)."""
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    homography = random_homography(rng, width, height, **homography_kwargs)
    warped = Photometric.random(rng).apply(warp(image, homography), rng)
    return image, warped, homography
