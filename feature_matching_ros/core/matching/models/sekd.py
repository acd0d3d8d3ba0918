"""SEKD: Self-Evolving Keypoint Detection and Description (Song et al., arXiv 2006.05077).

A residual encoder (pre-activation blocks: batch norm, ReLU, 3x3 convolution) takes the grey image
to 1/4 resolution; the descriptor head is one more residual block there (128-D), and two grouped
transposed convolutions bring the features back to full resolution for a two-class
(background / keypoint) detector. Loading contract: the authors' ``sekd.pth``
(``{"state_dict": ...}``: conv0, resblock{0,1,2}.{0,1,2}, deconv{0,1}, detector, descriptor).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .keypoints import pad_to_multiple, sample_descriptors, select, soft_argmax_refine


class ResBlock(nn.Module):
    """x + convb(x), convb = batch norm, ReLU, 3x3 conv; a 1x1 conv on the shortcut when the
    width or the resolution changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.convb = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        )
        if c_in != c_out or stride != 1:
            self.conv_residual = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
        else:
            self.conv_residual = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_residual(x) + self.convb(x)


def _stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(ResBlock(c_in, c_out, stride), ResBlock(c_out, c_out), ResBlock(c_out, c_out))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    """Batch norm, ReLU, x2 transposed 3x3 convolution in groups of 8."""
    return nn.Sequential(
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, groups=8),
    )


class SEKD(nn.Module):
    default_conf: dict[str, Any] = {
        "nms_radius": 4,
        "keypoint_threshold": 0.5,
        "max_keypoints": -1,
        "remove_borders": 4,
        "refine_radius": 1,
        "skip_connections": True,
    }
    stride = 4

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = {**self.default_conf, **(conf or {})}
        self.conv0 = nn.Conv2d(1, 32, 5, padding=2)
        self.resblock0 = _stage(32, 32, 1)
        self.resblock1 = _stage(32, 64, 2)
        self.resblock2 = _stage(64, 128, 2)
        self.deconv0 = _up(128, 64)
        self.deconv1 = _up(64, 32)
        self.detector = nn.Conv2d(32, 2, 3, padding=1)
        self.descriptor = ResBlock(128, 128)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image [B x 1 x H x W] grey in [0, 1], H and W multiples of 4.

        Returns ``scores`` [B x H x W] keypoint probability and ``descriptors``
        [B x 128 x H/4 x W/4], L2-normalised along the channels.
        """
        x0 = self.resblock0(self.conv0(image))
        x1 = self.resblock1(x0)
        x2 = self.resblock2(x1)
        up = self.deconv0(x2)
        if self.conf["skip_connections"]:
            up = up + x1
        up = self.deconv1(up)
        if self.conf["skip_connections"]:
            up = up + x0
        scores = self.detector(up).softmax(1)[:, 1]
        descriptors = F.normalize(self.descriptor(x2), dim=1)
        return {"scores": scores, "descriptors": descriptors}

    def detect(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image [1 x 1 x H x W] of any size -> ``keypoints`` [N x 2] (x, y) px, ``scores`` [N],
        ``descriptors`` [N x 128]."""
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
        if self.conf["refine_radius"] > 0:
            keypoints = soft_argmax_refine(scores, keypoints, self.conf["refine_radius"], 0.1)
        descriptors = sample_descriptors(dense["descriptors"][0], keypoints, self.stride)
        return {"keypoints": keypoints, "scores": values, "descriptors": descriptors}
