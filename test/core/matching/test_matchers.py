"""Matchers on constructed descriptors with known answers, and the LightGlue key mapping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from feature_matching_ros.core import ConfigError, Features
from feature_matching_ros.core.matching.matchers import (
    DualSoftmax,
    MutualNearestNeighbour,
    column_argbest,
    lightglue_state_dict,
    nearest_neighbours,
)


def features(descriptors, keypoints=None) -> Features:
    descriptors = torch.as_tensor(descriptors)
    n = descriptors.shape[0]
    if keypoints is None:
        keypoints = torch.stack([torch.arange(n, dtype=torch.float32), torch.zeros(n)], dim=1)
    return Features(torch.as_tensor(keypoints, dtype=torch.float32), descriptors, torch.ones(n), (100, 100))


@pytest.fixture()
def shuffled():
    rng = np.random.default_rng(0)
    d0 = rng.normal(size=(50, 32)).astype(np.float32)
    d0 /= np.linalg.norm(d0, axis=1, keepdims=True)
    perm = rng.permutation(50)
    d1 = d0[perm] + rng.normal(scale=0.01, size=d0.shape).astype(np.float32)
    return features(d0), features(d1), perm


def test_mutual_nearest_recovers_a_permutation(shuffled):
    f0, f1, perm = shuffled
    matches = MutualNearestNeighbour().match(f0, f1)
    assert len(matches) == 50
    # row j of image 1 is row perm[j] of image 0
    assert all(perm[i1] == i0 for i0, i1 in matches.indices)
    np.testing.assert_array_equal(matches.points0[:, 0], matches.indices[:, 0])


def test_ratio_test_drops_ambiguous_matches():
    d0 = np.array([[1, 0], [0, 1]], np.float32)
    d1 = np.array([[1, 0.02], [0.7, 0.7], [0.05, 1]], np.float32)
    plain = MutualNearestNeighbour().match(features(d0), features(d1))
    assert len(plain) == 2
    # best/second-best distance ratios: 0.02/0.76 = 0.026 for row 0, 0.05/0.76 = 0.066 for row 1
    strict = MutualNearestNeighbour(ratio_threshold=0.05).match(features(d0), features(d1))
    assert strict.indices.tolist() == [[0, 0]]
    assert len(MutualNearestNeighbour(ratio_threshold=0.02).match(features(d0), features(d1))) == 0
    with pytest.raises(ConfigError, match="ratio_threshold"):
        MutualNearestNeighbour(ratio_threshold=1.5)


def test_distance_threshold():
    d0 = np.array([[1, 0], [0, 1]], np.float32)
    d1 = np.array([[1, 0], [0.6, 0.8]], np.float32)
    assert len(MutualNearestNeighbour(distance_threshold=0.1).match(features(d0), features(d1))) == 1


def brute_force(d0: np.ndarray, d1: np.ndarray) -> np.ndarray:
    if d0.dtype == np.uint8:
        return (np.unpackbits(d0[:, None] ^ d1[None], axis=2)).sum(2).astype(np.float32)
    return np.linalg.norm(d0[:, None].astype(np.float64) - d1[None], axis=2)


@pytest.mark.parametrize("kind", ["binary", "unit", "unnormalised"])
def test_nearest_neighbours_agree_with_brute_force(kind):
    rng = np.random.default_rng(1)
    if kind == "binary":
        d0, d1 = (rng.integers(0, 256, (n, 32), dtype=np.uint8) for n in (40, 60))
    else:
        d0, d1 = (rng.normal(size=(n, 16)).astype(np.float32) for n in (40, 60))
        if kind == "unit":
            d0, d1 = (d / np.linalg.norm(d, axis=1, keepdims=True) for d in (d0, d1))
    dist = brute_force(d0, d1)
    nn01, best, second, nn10 = nearest_neighbours(torch.from_numpy(d0), torch.from_numpy(d1), second=True)
    np.testing.assert_allclose(best.numpy(), dist.min(1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(second.numpy(), np.sort(dist, axis=1)[:, 1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dist[np.arange(40), nn01.numpy()], dist.min(1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dist[nn10.numpy(), np.arange(60)], dist.min(0), rtol=1e-4, atol=1e-4)
    _, only_best, no_second, _ = nearest_neighbours(torch.from_numpy(d0), torch.from_numpy(d1))
    assert no_second is None
    np.testing.assert_allclose(only_best.numpy(), best.numpy(), rtol=1e-5)


@pytest.mark.parametrize("shape", [(1000, 700), (257, 3), (256, 5), (3000, 1)])
def test_column_argbest_is_argmax_and_argmin_over_the_first_dimension(shape):
    rng = np.random.default_rng(3)
    scores = torch.from_numpy(rng.integers(0, 50, shape).astype(np.float32))  # many ties: first index wins
    assert torch.equal(column_argbest(scores), scores.argmax(0))
    assert torch.equal(column_argbest(scores, largest=False), scores.argmin(0))
    assert torch.equal(column_argbest(scores, rows=7), scores.argmax(0))


def test_binary_mutual_matching_agrees_with_opencv_cross_check():
    rng = np.random.default_rng(2)
    b0 = rng.integers(0, 256, (40, 32), dtype=np.uint8)
    b1 = b0[::-1].copy()
    b1[:, 0] ^= 1  # one flipped bit everywhere
    ours = MutualNearestNeighbour().match(features(b0), features(b1))
    cv_matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(b0, b1)
    assert {tuple(r) for r in ours.indices} == {(m.queryIdx, m.trainIdx) for m in cv_matches}


def test_dual_softmax_threshold(shuffled):
    f0, f1, perm = shuffled
    matches = DualSoftmax(threshold=0.5, temperature=0.02).match(f0, f1)
    assert len(matches) == 50 and (matches.scores > 0.5).all()
    assert all(perm[i1] == i0 for i0, i1 in matches.indices)
    assert len(DualSoftmax(threshold=0.999999, temperature=1.0).match(f0, f1)) == 0


def test_empty_and_incompatible_inputs(shuffled):
    f0, _, _ = shuffled
    empty = features(np.zeros((0, 32), np.float32))
    assert len(MutualNearestNeighbour().match(f0, empty)) == 0
    assert len(DualSoftmax().match(empty, f0)) == 0
    with pytest.raises(ConfigError, match="descriptors do not match"):
        MutualNearestNeighbour().match(f0, features(np.zeros((3, 64), np.float32)))


def test_lightglue_key_mapping():
    raw = {
        "matcher.self_attn.0.Wqkv.weight": torch.zeros(1),
        "matcher.cross_attn.1.to_out.bias": torch.zeros(1),
        "matcher.log_assignment.0.final_proj.weight": torch.zeros(1),
        "extractor.model.net.skip1.1.weight": torch.zeros(1),
    }
    mapped = lightglue_state_dict(raw, n_layers=2)
    assert set(mapped) == {
        "transformers.0.self_attn.Wqkv.weight",
        "transformers.1.cross_attn.to_out.bias",
        "log_assignment.0.final_proj.weight",
    }
    stale = lightglue_state_dict({"log_assignment.3.r": torch.ones(1), "posenc.Wr.weight": torch.zeros(1)}, 9)
    assert set(stale) == {"posenc.Wr.weight"}
