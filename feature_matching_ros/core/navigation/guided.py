"""Matching guided by a position prediction: each frame keypoint may only match map keypoints near
where the prediction puts it.

Over bare fields, furrows and tree rows a descriptor's nearest neighbour in a whole map window is
often a look-alike far away, and Lowe's ratio test then throws the true match away too. When the
navigation solution predicts where the frame lies, the candidates of each keypoint shrink to the
map keypoints within ``radius`` pixels of its predicted map position: mutual nearest neighbours and
the ratio test run among those. Float descriptors only (SIFT, XFeat, ALIKED, DISK); binary ones
(ORB, AKAZE) and learned matchers keep their own matching.
"""

from __future__ import annotations

import torch

from ..matching.types import Features, Matches

CHUNK = 512  # frame keypoints per block of the similarity matrix


def supports(features: Features) -> bool:
    return features.descriptors.is_floating_point()


@torch.inference_mode()
def guided_match(
    reference: Features,
    query: Features,
    expected: torch.Tensor,
    radius: float,
    ratio: float | None = 0.9,
) -> Matches:
    """Matches reference (map) -> query (frame); ``expected`` [N x 2]: where each query keypoint should
    lie in the reference's pixels; ``radius``: pixels around it that may hold its match."""
    if len(reference) == 0 or len(query) == 0:
        return Matches.empty()
    d_map = torch.nn.functional.normalize(reference.descriptors.float(), dim=1)
    d_frame = torch.nn.functional.normalize(query.descriptors.float(), dim=1)
    device = d_map.device
    where = expected.to(device).float()
    r2 = float(radius) ** 2
    n, m = len(query), len(reference)
    best_map = torch.full((n,), -1, dtype=torch.long, device=device)
    best_sim = torch.full((n,), -2.0, device=device)
    second_sim = torch.full((n,), -2.0, device=device)
    column_best = torch.full((m,), -2.0, device=device)
    column_arg = torch.full((m,), -1, dtype=torch.long, device=device)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        sim = d_frame[start:stop] @ d_map.T
        near = torch.cdist(where[start:stop], reference.keypoints.float()).square_() <= r2
        sim = torch.where(near, sim, torch.full_like(sim, -2.0))
        k = min(2, m)
        top, arg = sim.topk(k, dim=1)
        best_sim[start:stop], best_map[start:stop] = top[:, 0], arg[:, 0]
        if k == 2:
            second_sim[start:stop] = top[:, 1]
        block_best, block_arg = sim.max(0)
        better = block_best > column_best
        column_best = torch.where(better, block_best, column_best)
        column_arg = torch.where(better, block_arg + start, column_arg)
    valid = best_sim > -1.5
    rows = torch.arange(n, device=device)
    mutual = valid & (column_arg[best_map.clamp_min(0)] == rows)
    if ratio is not None:
        distance = (2.0 - 2.0 * best_sim).clamp_min(0).sqrt()
        runner_up = (2.0 - 2.0 * second_sim).clamp_min(0).sqrt()
        mutual &= (second_sim < -1.5) | (distance <= ratio * runner_up)
    idx_frame = torch.nonzero(mutual).flatten()
    idx_map = best_map[idx_frame]
    scores = (best_sim[idx_frame] + 1.0) / 2.0
    return Matches.from_indices(reference, query, idx_map, idx_frame, scores)
