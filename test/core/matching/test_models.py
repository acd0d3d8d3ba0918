"""The package's own networks (models/): their loading contract with the authors' weight files and
the pure helpers of keypoint selection, descriptor sampling and SuperGlue's assignment."""

from __future__ import annotations

import shutil

import pytest
import torch

from feature_matching_ros.core import build
from feature_matching_ros.core.errors import WeightsError
from feature_matching_ros.core.matching import weights
from feature_matching_ros.core.matching.extractors import load_into
from feature_matching_ros.core.matching.models import ALIKE, SEKD, SuperGlue, SuperPoint
from feature_matching_ros.core.matching.models.keypoints import sample_descriptors, select, soft_argmax_refine
from feature_matching_ros.core.matching.models.superglue import assignment, log_optimal_transport

from ...conftest import require_file

# weight id -> (network, its conf, number of tensors in the file)
NETWORKS = {
    "superpoint-v1": (SuperPoint, {}, 24),
    "superglue-outdoor": (SuperGlue, {}, 339),
    "superglue-indoor": (SuperGlue, {}, 339),
    "sekd": (SEKD, {}, 90),
    "alike-t": (ALIKE, {"variant": "alike-t"}, 59),
    "alike-s": (ALIKE, {"variant": "alike-s"}, 59),
    "alike-n": (ALIKE, {"variant": "alike-n"}, 59),
    "alike-l": (ALIKE, {"variant": "alike-l"}, 60),
}


@pytest.fixture(scope="module")
def mirror(shared_data):
    """The shared verified copies of the files only the authors' git repositories publish."""
    return require_file(shared_data.parent / "weights")


def state_of(weight_id, cache, mirror):
    where = mirror if weight_id in ("sekd", "alike-t", "alike-s", "alike-n", "alike-l") else cache
    state = weights.load_state_dict(weight_id, where, fetch=False)
    return state["state_dict"] if weight_id == "sekd" else state


@pytest.mark.parametrize("weight_id", sorted(NETWORKS))
def test_every_official_file_fills_its_network_exactly(weight_id, seed_system_weights, mirror):
    network, conf, tensors = NETWORKS[weight_id]
    state = state_of(weight_id, seed_system_weights, mirror)
    assert len(state) == tensors
    network(conf).load_state_dict(state, strict=True)  # every tensor name and shape is the contract


def test_a_file_of_another_network_is_a_weights_error_naming_the_problem(seed_system_weights, mirror):
    with pytest.raises(WeightsError, match=r"weights 'alike-t' do not fit ALIKE: .*size mismatch for block1"):
        load_into(ALIKE({"variant": "alike-n"}), state_of("alike-t", seed_system_weights, mirror), "alike-t")
    with pytest.raises(
        WeightsError, match=r"weights 'superpoint-v1' do not fit SEKD: missing \['conv0.weight'"
    ):
        load_into(SEKD(), state_of("superpoint-v1", seed_system_weights, mirror), "superpoint-v1")


def test_a_corrupt_file_is_a_weights_error_before_torch_reads_it(tmp_path, mirror):
    shutil.copy(mirror / "sekd.pth", tmp_path / "sekd.pth")
    data = bytearray((tmp_path / "sekd.pth").read_bytes())
    data[5000] ^= 0xFF
    (tmp_path / "sekd.pth").write_bytes(bytes(data))
    with pytest.raises(
        WeightsError, match=f"weights 'sekd' at {tmp_path / 'sekd.pth'} exist but failed .*sha256"
    ):
        build("sekd", weights_dir=tmp_path)
    (tmp_path / "alike-t.pth").write_bytes(b"\0" * 100)
    with pytest.raises(WeightsError, match=r"size mismatch \(got 100 bytes, expected 350644\)"):
        build("alike-t", weights_dir=tmp_path)


@pytest.mark.parametrize(
    ("name", "dim"), [("superpoint+mnn", 256), ("sekd", 128), ("alike", 128), ("alike-t", 64)]
)
def test_extractors_give_unit_descriptors_inside_the_image(name, dim, graf, seed_system_weights):
    image = graf[0][:301, :457]  # a size that is no multiple of any network's stride
    features = build(name, {"max_keypoints": 300}).extract(image)
    assert 50 < len(features) <= 300
    assert features.descriptors.shape == (len(features), dim)
    assert torch.allclose(features.descriptors.norm(dim=1), torch.ones(len(features)), atol=1e-4)
    xy = features.keypoints
    assert xy.min() >= 0 and xy[:, 0].max() <= 456 and xy[:, 1].max() <= 300
    assert bool((features.scores[:-1] >= features.scores[1:]).all())  # best first


def test_select_keeps_separated_maxima_inside_the_border():
    scores = torch.zeros(20, 30)
    scores[10, 10], scores[10, 12], scores[1, 1], scores[15, 25] = 0.9, 0.8, 0.95, 0.5
    keypoints, values = select(scores, radius=2, threshold=0.1, max_keypoints=-1, border=2)
    assert keypoints.tolist() == [[10.0, 10.0], [25.0, 15.0]]  # (1, 1) is in the border, (12, 10) suppressed
    assert values.tolist() == pytest.approx([0.9, 0.5])
    keypoints, _ = select(scores, radius=2, threshold=0.1, max_keypoints=1, border=2)
    assert keypoints.tolist() == [[10.0, 10.0]]


def test_soft_argmax_moves_towards_the_heavier_neighbour():
    scores = torch.zeros(9, 9)
    scores[4, 4], scores[4, 5] = 1.0, 1.0
    refined = soft_argmax_refine(scores, torch.tensor([[4.0, 4.0]]), radius=1, temperature=0.1)
    assert refined[0, 0].item() == pytest.approx(4.5, abs=1e-3) and refined[0, 1].item() == pytest.approx(4.0)


def test_sampling_at_cell_centres_returns_the_cell_descriptors():
    cells = torch.nn.functional.normalize(torch.randn(8, 3, 5), dim=0)  # [C x h x w], stride 4
    centres = torch.tensor([[4 * 2 + 1.5, 4 * 1 + 1.5], [1.5, 1.5]])  # cell (x=2, y=1) and (0, 0)
    sampled = sample_descriptors(cells, centres, stride=4)
    assert torch.allclose(sampled, torch.stack([cells[:, 1, 2], cells[:, 0, 0]]), atol=1e-5)


def test_superglue_assignment_is_mutual_and_thresholded():
    scores = torch.tensor([[[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 3.9, 0.0]]])
    log_prob = log_optimal_transport(scores, torch.tensor(1.0), iterations=100)
    assert log_prob.shape == (1, 4, 4)
    # rows and columns (without the dustbins) sum to at most one, the transport is normalised
    prob = log_prob.exp()[0]
    assert bool((prob[:-1].sum(1) <= 1.0 + 1e-4).all()) and bool((prob[:, :-1].sum(0) <= 1.0 + 1e-4).all())
    out = assignment(log_prob[:, :-1, :-1], threshold=0.2)
    assert out["matches0"].tolist() == [[0, 1, -1]]  # row 2 loses column 1 to row 1
    assert out["matches1"].tolist() == [[0, 1, -1]]
    assert out["matching_scores0"][0, 2] == 0
    assert assignment(log_prob[:, :-1, :-1], threshold=0.999)["matches0"].tolist() == [[-1, -1, -1]]


def test_superglue_matcher_needs_superpoint_descriptors(seed_system_weights, graf):
    from feature_matching_ros.core import ConfigError

    pipeline = build("superpoint+superglue")
    sekd = build("sekd").extract(graf[0][:200, :200])
    with pytest.raises(ConfigError, match="SuperGlue needs 256-D SuperPoint descriptors, got 128-D"):
        pipeline.matcher.match(sekd, sekd)


@pytest.mark.parametrize("variant", ["alike-t", "alike-n"])
def test_alike_sparse_head_gives_the_dense_heads_descriptors(variant, graf, mirror):
    from feature_matching_ros.core.matching.models.keypoints import pad_to_multiple

    network = ALIKE({"variant": variant, "max_keypoints": 400, "keypoint_threshold": 0.05})
    network.load_state_dict(weights.load_state_dict(variant, mirror, fetch=False))
    network.eval()
    image = torch.from_numpy(graf[0][:250, :333]).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        sparse = network.detect(image)
        dense = network(pad_to_multiple(image, 32))
    assert 200 < len(sparse["keypoints"]) <= 400
    # the keypoints' scores are local maxima of the dense score map
    scores = dense["scores"][0, :250, :333]
    assert bool((sparse["scores"] <= scores.max() + 1e-5).all()) and sparse["scores"].max() > 0.5
    assert torch.isclose(sparse["scores"][0], scores[2:-2, 2:-2].max(), atol=1e-5)
    reference = sample_descriptors(dense["descriptors"][0, :, :250, :333], sparse["keypoints"], 1)
    assert (reference * sparse["descriptors"]).sum(1).min() > 0.999
