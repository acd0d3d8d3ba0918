"""SuperPoint (DeTone, Malisiewicz, Rabinovich, CVPRW 2018, arXiv 1712.07629).

A VGG-style encoder to 1/8 resolution with two heads: a 65-way cell classifier (64 pixel
positions of an 8x8 cell plus "no keypoint") and a 256-D descriptor map. Loading contract: Magic
Leap's ``superpoint_v1.pth`` (conv1a ... conv4b, convPa/convPb, convDa/convDb, 24 tensors).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .keypoints import pad_to_multiple, sample_descriptors, select


class SuperPoint(nn.Module):
    default_conf: dict[str, Any] = {
        "nms_radius": 4,
        "keypoint_threshold": 0.005,
        "max_keypoints": -1,
        "remove_borders": 4,
    }
    stride = 8

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = {**self.default_conf, **(conf or {})}
        widths = [(1, 64), (64, 64), (64, 64), (64, 64), (64, 128), (128, 128), (128, 128), (128, 128)]
        names = ["conv1a", "conv1b", "conv2a", "conv2b", "conv3a", "conv3b", "conv4a", "conv4b"]
        for name, (c_in, c_out) in zip(names, widths, strict=True):
            setattr(self, name, nn.Conv2d(c_in, c_out, 3, padding=1))
        self.convPa = nn.Conv2d(128, 256, 3, padding=1)
        self.convPb = nn.Conv2d(256, 65, 1)
        self.convDa = nn.Conv2d(128, 256, 3, padding=1)
        self.convDb = nn.Conv2d(256, 256, 1)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image [B x 1 x H x W] grey in [0, 1], H and W multiples of 8.

        Returns ``scores`` [B x H x W] keypoint probability per pixel and ``descriptors``
        [B x 256 x H/8 x W/8], L2-normalised along the channels.
        """
        x = image
        for i, block in enumerate(("conv1", "conv2", "conv3", "conv4")):
            x = F.relu(getattr(self, f"{block}a")(x))
            x = F.relu(getattr(self, f"{block}b")(x))
            if i < 3:
                x = F.max_pool2d(x, 2)
        cells = self.convPb(F.relu(self.convPa(x))).softmax(1)[:, :-1]  # [B x 64 x H/8 x W/8]
        scores = F.pixel_shuffle(cells, self.stride)[:, 0]
        descriptors = F.normalize(self.convDb(F.relu(self.convDa(x))), dim=1)
        return {"scores": scores, "descriptors": descriptors}

    def detect(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image [1 x 1 x H x W] of any size -> ``keypoints`` [N x 2] (x, y) px, ``scores`` [N],
        ``descriptors`` [N x 256]."""
        h, w = image.shape[-2:]
        dense = self(pad_to_multiple(image, self.stride))
        scores = dense["scores"][0, :h, :w]
        keypoints, values = select(
            scores,
            radius=self.conf["nms_radius"],
            threshold=self.conf["keypoint_threshold"],
            max_keypoints=self.conf["max_keypoints"],
            border=self.conf["remove_borders"],
        )
        descriptors = sample_descriptors(dense["descriptors"][0], keypoints, self.stride)
        return {"keypoints": keypoints, "scores": values, "descriptors": descriptors}
