"""Guided matching: each query keypoint may only match reference keypoints near its expected place."""

import numpy as np
import torch

from feature_matching_ros.core.matching.types import Features
from feature_matching_ros.core.navigation.guided import guided_match, supports


def _features(points, descriptors):
    return Features(
        torch.tensor(np.asarray(points), dtype=torch.float32),
        torch.nn.functional.normalize(torch.tensor(np.asarray(descriptors), dtype=torch.float32), dim=1),
        torch.ones(len(points)),
        (1000, 1000),
    )


def test_a_look_alike_far_away_loses_to_the_true_match_nearby():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(3, 16))
    # reference: the true match at (100, 100), an exact look-alike of it at (800, 800), a distractor
    reference = _features([[100, 100], [800, 800], [400, 400]], [d[0] * 1.0, d[0] * 1.0, d[1]])
    query = _features([[10, 10], [20, 20]], [d[0] + 0.05 * d[2], d[1]])
    expected = torch.tensor([[102.0, 98.0], [900.0, 900.0]])  # the second lies nowhere near its twin
    matches = guided_match(reference, query, expected, radius=20.0, ratio=0.9)
    assert matches.indices.tolist() == [[0, 0]]
    np.testing.assert_allclose(matches.points0, [[100, 100]])


def test_ratio_test_runs_among_the_candidates_only():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(3, 16))
    reference = _features([[100, 100], [105, 100]], [d[0], d[0] + 0.01 * d[1]])  # two twins nearby
    query = _features([[0, 0]], [d[0] + 0.5 * d[2]])  # about as far from either twin
    ambiguous = guided_match(reference, query, torch.tensor([[102.0, 100.0]]), radius=10.0, ratio=0.9)
    assert len(ambiguous) == 0
    only_one = guided_match(reference, query, torch.tensor([[98.0, 100.0]]), radius=3.0, ratio=0.9)
    assert only_one.indices.tolist() == [[0, 0]]


def test_binary_descriptors_are_not_supported():
    binary = Features(torch.zeros((2, 2)), torch.zeros((2, 32), dtype=torch.uint8), torch.ones(2), (10, 10))
    assert not supports(binary)
