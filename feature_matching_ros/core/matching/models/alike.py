"""ALIKE: Accurate and Lightweight Keypoint Detection and Descriptor Extraction (Zhao et al.,
IEEE TMM 2022, arXiv 2112.02906).

A four-stage encoder (a plain two-convolution block at full resolution, then residual basic blocks
after 2x, 4x and 4x max pooling: 1/2, 1/8, 1/32), a 1x1 reduction of each stage to dim/4 channels,
bilinear upsampling to full resolution and concatenation, and a 1x1 head giving a dim-D descriptor
map plus one score map; keypoints are the local maxima of the score map, refined to sub-pixel
positions by a soft-argmax in their window. Loading contract: the authors' ``alike-{t,s,n,l}.pth``
(block1..block4, conv1..conv4, convhead2; alike-l also convhead1).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .keypoints import pad_to_multiple, sample_descriptors, select, soft_argmax_refine

# Widths (c1, c2, c3, c4, dim) and whether the head is a single 1x1 convolution, per released file.
VARIANTS: dict[str, dict[str, Any]] = {
    "alike-t": {"widths": (8, 16, 32, 64, 64), "single_head": True},
    "alike-s": {"widths": (8, 16, 48, 96, 96), "single_head": True},
    "alike-n": {"widths": (16, 32, 64, 128, 128), "single_head": True},
    "alike-l": {"widths": (32, 64, 128, 128, 128), "single_head": False},
}


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each followed by batch norm and the gate."""

    def __init__(self, c_in: int, c_out: int, gate: nn.Module) -> None:
        super().__init__()
        self.gate = gate
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.bn2(self.conv2(self.gate(self.bn1(self.conv1(x))))))


class BasicBlock(ConvBlock):
    """A ConvBlock with a 1x1-projected shortcut added before the last gate."""

    def __init__(self, c_in: int, c_out: int, gate: nn.Module) -> None:
        super().__init__(c_in, c_out, gate)
        self.downsample = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.gate(self.bn1(self.conv1(x)))))
        return self.gate(y + self.downsample(x))


class ALIKE(nn.Module):
    default_conf: dict[str, Any] = {
        "variant": "alike-n",
        "nms_radius": 2,
        "keypoint_threshold": 0.2,
        "max_keypoints": -1,
        "remove_borders": 2,
        "refine_temperature": 0.1,
    }
    multiple = 32

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = {**self.default_conf, **(conf or {})}
        spec = VARIANTS[self.conf["variant"]]
        c1, c2, c3, c4, dim = spec["widths"]
        self.gate = nn.ReLU(inplace=True)
        self.block1 = ConvBlock(3, c1, self.gate)
        self.block2 = BasicBlock(c1, c2, self.gate)
        self.block3 = BasicBlock(c2, c3, self.gate)
        self.block4 = BasicBlock(c3, c4, self.gate)
        self.conv1 = nn.Conv2d(c1, dim // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(c2, dim // 4, 1, bias=False)
        self.conv3 = nn.Conv2d(c3, dim // 4, 1, bias=False)
        self.conv4 = nn.Conv2d(c4, dim // 4, 1, bias=False)
        self.convhead1 = None if spec["single_head"] else nn.Conv2d(dim, dim, 1, bias=False)
        self.convhead2 = nn.Conv2d(dim, dim + 1, 1, bias=False)
        self.dim = dim

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image [B x 3 x H x W] RGB in [0, 1], H and W multiples of 32.

        Returns ``scores`` [B x H x W] in (0, 1) and ``descriptors`` [B x dim x H x W],
        L2-normalised along the channels.
        """
        x = self.features(image)
        if self.convhead1 is not None:
            x = self.gate(self.convhead1(x))
        x = self.convhead2(x)
        descriptors = F.normalize(x[:, : self.dim], dim=1)
        return {"scores": torch.sigmoid(x[:, self.dim]), "descriptors": descriptors}

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """The concatenated multi-scale features [B x dim x H x W] that the head maps."""
        x1 = self.block1(image)
        x2 = self.block2(F.max_pool2d(x1, 2))
        x3 = self.block3(F.max_pool2d(x2, 4))
        x4 = self.block4(F.max_pool2d(x3, 4))
        size = image.shape[-2:]
        levels = [self.gate(self.conv1(x1))]
        for conv, x in ((self.conv2, x2), (self.conv3, x3), (self.conv4, x4)):
            levels.append(F.interpolate(self.gate(conv(x)), size=size, mode="bilinear", align_corners=True))
        return torch.cat(levels, dim=1)

    def detect(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image [1 x 3 x H x W] of any size -> ``keypoints`` [N x 2] (x, y) px, ``scores`` [N],
        ``descriptors`` [N x dim].

        With a single 1x1 head (t, s, n) the head is linear, so it commutes with bilinear
        sampling: only its score row is applied densely, its descriptor rows at the keypoints.
        That skips a dim-channel full-resolution map (most of ALIKE-N's arithmetic); the
        descriptors differ from sampling ``forward``'s normalised map only by interpolating
        before rather than after the normalisation (identical at integer positions).
        """
        h, w = image.shape[-2:]
        padded = pad_to_multiple(image, self.multiple)
        if self.convhead1 is not None:
            dense = self(padded)
            scores, descriptor_map = dense["scores"][0, :h, :w], dense["descriptors"][0, :, :h, :w]
        else:
            x = self.features(padded)[0, :, :h, :w]
            head = self.convhead2.weight[:, :, 0, 0]  # [dim+1 x dim]
            scores = torch.sigmoid(torch.einsum("c,chw->hw", head[self.dim], x))
            descriptor_map = None
        radius = self.conf["nms_radius"]
        keypoints, values = select(
            scores,
            radius=radius,
            threshold=self.conf["keypoint_threshold"],
            max_keypoints=self.conf["max_keypoints"],
            border=self.conf["remove_borders"],
        )
        keypoints = soft_argmax_refine(scores, keypoints, radius, self.conf["refine_temperature"])
        if descriptor_map is not None:
            descriptors = sample_descriptors(descriptor_map, keypoints, 1)
        else:
            descriptors = F.normalize(sample_descriptors(x, keypoints, 1) @ head[: self.dim].T, dim=1)
        return {"keypoints": keypoints, "scores": values, "descriptors": descriptors}
