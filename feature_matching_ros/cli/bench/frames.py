"""The benchmark's images: the reference and the query frames warped from it."""

from __future__ import annotations

import numpy as np

from ...core import load_image
from ...core.evaluation.homography_suite import CASE_SIZE, fit_to_size
from ...core.simulation.synthetic import Photometric, procedural_texture, random_homography, warp


def reference_image(path: str | None, seed: int) -> np.ndarray:
    if path:
        return fit_to_size(load_image(path), CASE_SIZE)
    return procedural_texture(*CASE_SIZE, seed=seed)


def query_frame(reference: np.ndarray, index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``index`` of the sequence and its true homography reference -> frame."""
    rng = np.random.default_rng((seed, index))
    height, width = reference.shape[:2]
    homography = random_homography(
        rng, width, height, max_rotation_deg=10.0, scale_range=(0.9, 1.1), perspective=1e-4, max_shift=0.05
    )
    return Photometric.random(rng).apply(warp(reference, homography), rng), homography
