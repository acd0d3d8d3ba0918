"""Keypoint selection and descriptor sampling shared by the dense networks of this folder."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """[B x C x H x W] zero-padded at the bottom and right to multiples of ``multiple``."""
    h, w = image.shape[-2:]
    return F.pad(image, (0, (-w) % multiple, 0, (-h) % multiple))


def nms_mask(scores: torch.Tensor, radius: int) -> torch.Tensor:
    """[B x H x W] bool: where a score is the maximum of its (2r+1)^2 window."""
    pooled = F.max_pool2d(scores[:, None], 2 * radius + 1, stride=1, padding=radius)[:, 0]
    return scores == pooled


def select(
    scores: torch.Tensor, *, radius: int, threshold: float, max_keypoints: int, border: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Local maxima of one [H x W] score map above ``threshold``, at least ``border`` px inside.

    Returns (keypoints [N x 2] integer (x, y) as float, scores [N]), best first; ``max_keypoints``
    <= 0 keeps all.
    """
    keep = nms_mask(scores[None], radius)[0] & (scores > threshold)
    if border > 0:
        keep[:border] = False
        keep[-border:] = False
        keep[:, :border] = False
        keep[:, -border:] = False
    ys, xs = torch.nonzero(keep, as_tuple=True)
    values = scores[ys, xs]
    if 0 < max_keypoints < values.shape[0]:
        values, order = values.topk(max_keypoints)
        ys, xs = ys[order], xs[order]
    else:
        values, order = values.sort(descending=True)
        ys, xs = ys[order], xs[order]
    return torch.stack([xs, ys], dim=-1).to(scores.dtype), values


def soft_argmax_refine(
    scores: torch.Tensor, keypoints: torch.Tensor, radius: int, temperature: float
) -> torch.Tensor:
    """Sub-pixel [N x 2] positions: the softmax-weighted mean offset in the (2r+1)^2 window of
    each integer keypoint of one [H x W] score map (scores divided by ``temperature``)."""
    if keypoints.shape[0] == 0:
        return keypoints
    h, w = scores.shape
    steps = torch.arange(-radius, radius + 1, device=scores.device)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    offsets = torch.stack([dx.flatten(), dy.flatten()], dim=-1)  # [K x 2]
    xy = keypoints.long()[:, None] + offsets[None]  # [N x K x 2]
    x = xy[..., 0].clamp(0, w - 1)
    y = xy[..., 1].clamp(0, h - 1)
    patch = scores[y, x]  # [N x K]
    weight = ((patch - patch.max(1, keepdim=True).values) / temperature).softmax(1)
    return keypoints + weight @ offsets.to(scores.dtype)


def sample_descriptors(descriptors: torch.Tensor, keypoints: torch.Tensor, stride: int) -> torch.Tensor:
    """Bilinear samples of one [C x h x w] descriptor map (one cell per ``stride`` pixels) at
    [N x 2] pixel positions; returns [N x C], L2-normalised."""
    c, h, w = descriptors.shape
    size = torch.tensor([w * stride, h * stride], device=keypoints.device, dtype=keypoints.dtype)
    grid = (keypoints + 0.5) / size * 2 - 1
    sampled = F.grid_sample(descriptors[None], grid[None, None], mode="bilinear", align_corners=False)
    return F.normalize(sampled[0, :, 0].T, dim=1)
