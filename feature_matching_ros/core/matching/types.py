"""Typed results passed between the stages of the core."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Features:
    """Keypoints of one image, in pixels of the image as given to the pipeline.

    keypoints: [N x 2] float32 (x, y); descriptors: [N x D] (float32, or uint8 for binary
    descriptors); scores: [N] float32; image_size: (width, height). ``extras`` holds what a
    particular matcher needs beyond that (e.g. XFeat's dense scales), keyed by name.
    """

    keypoints: torch.Tensor
    descriptors: torch.Tensor
    scores: torch.Tensor
    image_size: tuple[int, int]
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def scaled(self, sx: float, sy: float, image_size: tuple[int, int]) -> Features:
        """The same features with keypoints multiplied by (sx, sy), for an image of ``image_size``."""
        factor = torch.tensor([sx, sy], dtype=self.keypoints.dtype, device=self.keypoints.device)
        return Features(self.keypoints * factor, self.descriptors, self.scores, image_size, self.extras)


@dataclass(frozen=True)
class Matches:
    """Correspondences between two feature sets.

    indices: [M x 2] int64 rows (i0, i1) into the keypoints of image 0 and image 1;
    points0, points1: [M x 2] float32 pixel coordinates (the keypoints, or refined positions
    for matchers that refine); scores: [M] float32 confidence in [0, 1] where the matcher gives
    one, else a similarity.
    """

    indices: np.ndarray
    points0: np.ndarray
    points1: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @staticmethod
    def empty() -> Matches:
        return Matches(
            np.zeros((0, 2), np.int64),
            np.zeros((0, 2), np.float32),
            np.zeros((0, 2), np.float32),
            np.zeros((0,), np.float32),
        )

    @staticmethod
    def from_indices(
        f0: Features, f1: Features, idx0: torch.Tensor, idx1: torch.Tensor, scores: torch.Tensor
    ) -> Matches:
        """Matches whose points are the matched keypoints themselves."""
        i0 = idx0.detach().cpu().long()
        i1 = idx1.detach().cpu().long()
        return Matches(
            torch.stack([i0, i1], dim=1).numpy().reshape(-1, 2),
            f0.keypoints.detach().cpu()[i0].float().numpy().reshape(-1, 2),
            f1.keypoints.detach().cpu()[i1].float().numpy().reshape(-1, 2),
            scores.detach().cpu().float().numpy().reshape(-1),
        )


@dataclass(frozen=True)
class StageTimes:
    """Wall-clock milliseconds per stage of one matching call."""

    extract_ms: float
    match_ms: float
    geometry_ms: float

    @property
    def total_ms(self) -> float:
        return self.extract_ms + self.match_ms + self.geometry_ms

    def as_dict(self) -> dict[str, float]:
        return {
            "extract": self.extract_ms,
            "match": self.match_ms,
            "geometry": self.geometry_ms,
            "total": self.total_ms,
        }
