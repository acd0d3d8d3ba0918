"""SuperGlue (Sarlin, DeTone, Malisiewicz, Rabinovich, CVPR 2020, arXiv 1911.11763).

A keypoint encoder lifts (x, y, score) into the descriptor space, 18 attentional message-passing
layers alternate between self and cross attention, and a log-space Sinkhorn solves the optimal
transport with a learned dustbin score. Loading contract: Magic Leap's
``superglue_{outdoor,indoor}.pth`` (kenc.encoder.*, gnn.layers.{0..17}.{attn,mlp}.*,
final_proj, bin_score; 339 tensors). In the attention the 256 channels split into
(64 per head) x (4 heads) with the head index the fastest, as the released weights were trained.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def _mlp(channels: list[int]) -> nn.Sequential:
    """1x1 convolutions with batch norm and ReLU between them (not after the last)."""
    layers: list[nn.Module] = []
    for i in range(1, len(channels)):
        layers.append(nn.Conv1d(channels[i - 1], channels[i], 1))
        if i < len(channels) - 1:
            layers += [nn.BatchNorm1d(channels[i]), nn.ReLU()]
    return nn.Sequential(*layers)


class KeypointEncoder(nn.Module):
    def __init__(self, dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.encoder = _mlp([3, *hidden, dim])

    def forward(self, keypoints: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """keypoints [B x N x 2] normalised, scores [B x N] -> [B x D x N]."""
        return self.encoder(torch.cat([keypoints.transpose(1, 2), scores[:, None]], dim=1))


class MultiHeadAttention(nn.Module):
    def __init__(self, heads: int, dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.merge = nn.Conv1d(dim, dim, 1)
        self.proj = nn.ModuleList([nn.Conv1d(dim, dim, 1) for _ in range(3)])

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """[B x D x N] queries attend over [B x D x M] keys/values -> [B x D x N]."""
        b = query.shape[0]
        q, k, v = (
            proj(x).view(b, self.head_dim, self.heads, -1)
            for proj, x in zip(self.proj, (query, key, value), strict=True)
        )
        prob = torch.einsum("bdhn,bdhm->bhnm", q, k).div(math.sqrt(self.head_dim)).softmax(-1)
        out = torch.einsum("bhnm,bdhm->bdhn", prob, v)
        return self.merge(out.reshape(b, self.head_dim * self.heads, -1))


class AttentionalPropagation(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(heads, dim)
        self.mlp = _mlp([2 * dim, 2 * dim, dim])

    def forward(self, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """The update of x [B x D x N] from the messages of source [B x D x M]."""
        return self.mlp(torch.cat([x, self.attn(x, source, source)], dim=1))


class AttentionalGNN(nn.Module):
    def __init__(self, dim: int, layer_names: list[str], heads: int) -> None:
        super().__init__()
        self.names = list(layer_names)
        self.layers = nn.ModuleList([AttentionalPropagation(dim, heads) for _ in layer_names])

    def forward(self, d0: torch.Tensor, d1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer, name in zip(self.layers, self.names, strict=True):
            s0, s1 = (d1, d0) if name == "cross" else (d0, d1)
            d0, d1 = d0 + layer(d0, s0), d1 + layer(d1, s1)
        return d0, d1


def log_optimal_transport(scores: torch.Tensor, alpha: torch.Tensor, iterations: int) -> torch.Tensor:
    """Sinkhorn in log space on [B x M x N] scores with a dustbin row and column of score ``alpha``.

    Returns [B x M+1 x N+1] log assignment probabilities (rows and columns of the dustbins last).
    """
    b, m, n = scores.shape
    one = scores.new_tensor(1)
    ms, ns = (m * one), (n * one)
    bins0 = alpha.expand(b, m, 1)
    bins1 = alpha.expand(b, 1, n)
    alpha = alpha.expand(b, 1, 1)
    couplings = torch.cat([torch.cat([scores, bins0], -1), torch.cat([bins1, alpha], -1)], 1)
    norm = -(ms + ns).log()
    log_mu = torch.cat([norm.expand(m), ns.log()[None] + norm])
    log_nu = torch.cat([norm.expand(n), ms.log()[None] + norm])
    log_mu, log_nu = log_mu[None].expand(b, -1), log_nu[None].expand(b, -1)
    u, v = torch.zeros_like(log_mu), torch.zeros_like(log_nu)
    for _ in range(iterations):
        u = log_mu - torch.logsumexp(couplings + v[:, None], dim=2)
        v = log_nu - torch.logsumexp(couplings + u[:, :, None], dim=1)
    return couplings + u[:, :, None] + v[:, None] - norm


def normalise_keypoints(keypoints: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[B x N x 2] pixels -> centred on the image and divided by 0.7 x its longer side."""
    size = keypoints.new_tensor([width, height])
    return (keypoints - size / 2) / (size.max() * 0.7)


class SuperGlue(nn.Module):
    default_conf: dict[str, Any] = {
        "descriptor_dim": 256,
        "keypoint_encoder": [32, 64, 128, 256],
        "gnn_layers": ["self", "cross"] * 9,
        "heads": 4,
        "sinkhorn_iterations": 100,
        "match_threshold": 0.2,
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = {**self.default_conf, **(conf or {})}
        dim = self.conf["descriptor_dim"]
        self.kenc = KeypointEncoder(dim, self.conf["keypoint_encoder"])
        self.gnn = AttentionalGNN(dim, self.conf["gnn_layers"], self.conf["heads"])
        self.final_proj = nn.Conv1d(dim, dim, 1)
        self.bin_score = nn.Parameter(torch.tensor(1.0))

    def forward(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """data: ``keypoints0`` [B x M x 2] px, ``scores0`` [B x M], ``descriptors0`` [B x D x M],
        ``image_size0`` (width, height) [2], and the same for image 1.

        Returns ``matches0`` [B x M] (index into image 1, -1 unmatched), ``matching_scores0``
        [B x M], ``matches1`` [B x N], ``matching_scores1`` [B x N].
        """
        k0 = normalise_keypoints(data["keypoints0"], *[int(s) for s in data["image_size0"]])
        k1 = normalise_keypoints(data["keypoints1"], *[int(s) for s in data["image_size1"]])
        d0 = data["descriptors0"] + self.kenc(k0, data["scores0"])
        d1 = data["descriptors1"] + self.kenc(k1, data["scores1"])
        d0, d1 = self.gnn(d0, d1)
        m0, m1 = self.final_proj(d0), self.final_proj(d1)
        scores = torch.einsum("bdn,bdm->bnm", m0, m1) / math.sqrt(self.conf["descriptor_dim"])
        scores = log_optimal_transport(scores, self.bin_score, self.conf["sinkhorn_iterations"])
        return assignment(scores[:, :-1, :-1], self.conf["match_threshold"])


def assignment(log_prob: torch.Tensor, threshold: float) -> dict[str, torch.Tensor]:
    """Mutual best pairs of [B x M x N] log assignment probabilities whose probability exceeds
    ``threshold`` (see ``SuperGlue.forward`` for the keys)."""
    max0, max1 = log_prob.max(2), log_prob.max(1)
    idx0, idx1 = max0.indices, max1.indices
    arange0 = torch.arange(idx0.shape[1], device=log_prob.device)[None]
    arange1 = torch.arange(idx1.shape[1], device=log_prob.device)[None]
    mutual0 = arange0 == idx1.gather(1, idx0)
    mutual1 = arange1 == idx0.gather(1, idx1)
    zero = log_prob.new_tensor(0)
    score0 = torch.where(mutual0, max0.values.exp(), zero)
    score1 = torch.where(mutual1, score0.gather(1, idx1), zero)
    valid0 = mutual0 & (score0 > threshold)
    valid1 = mutual1 & valid0.gather(1, idx1)
    return {
        "matches0": torch.where(valid0, idx0, -1),
        "matches1": torch.where(valid1, idx1, -1),
        "matching_scores0": score0,
        "matching_scores1": score1,
    }
