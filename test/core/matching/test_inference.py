"""Inference backends (core/matching/inference/): exported networks against torch on a real image, the
export cache, the fallback to torch, fm-export. Exports are cached for the whole session."""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from feature_matching_ros.core import ConfigError, build
from feature_matching_ros.core.evaluation.homography_suite import fit_to_size
from feature_matching_ros.core.matching import inference
from feature_matching_ros.core.matching.inference import backends
from feature_matching_ros.core.matching.types import Features
from test.conftest import require_module

for _name in ("onnx", "onnxscript", "onnxruntime", "openvino"):
    require_module(_name, " (the inference backends' tests; requirements/dev.txt)")

SIZE = (320, 240)


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One export cache for the session, where build() finds it."""
    folder = tmp_path_factory.mktemp("exported")
    before = os.environ.get(inference.ENV_EXPORT_CACHE)
    os.environ[inference.ENV_EXPORT_CACHE] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(inference.ENV_EXPORT_CACHE, None)
    else:
        os.environ[inference.ENV_EXPORT_CACHE] = before


@pytest.fixture(scope="session")
def image(graf: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    return fit_to_size(graf[0], SIZE)


def _same_keypoints(a: Features, b: Features, tolerance_px: float = 0.01) -> tuple[float, torch.Tensor]:
    """Share of ``a``'s keypoints with one of ``b`` within ``tolerance_px``, and the index pairs."""
    distances = torch.cdist(a.keypoints, b.keypoints, compute_mode="donot_use_mm_for_euclid_dist")
    nearest, index = distances.min(1)
    close = nearest <= tolerance_px
    return float(close.float().mean()), torch.stack([torch.nonzero(close)[:, 0], index[close]], 1)


# Measured on graf1 at 320x240 and 640x480: XFeat and SuperPoint give identical keypoint sets;
# ALIKED's sub-pixel keypoints (DKD's soft-argmax) move by < 1e-3 px, and near-ties at the
# top-k cut swapped 1 of 1426 keypoints at 640x480.
CASES = [
    ("xfeat(sparse)", "openvino", 1.0),
    ("xfeat(sparse)", "onnxruntime", 1.0),
    ("aliked+lightglue", "openvino", 0.99),
    ("superpoint+mnn", "openvino", 1.0),
]


@pytest.mark.parametrize(("matcher", "backend", "agreement"), CASES)
def test_exported_network_agrees_with_torch(
    matcher: str, backend: str, agreement: float, export_cache: Path, image: np.ndarray, request
) -> None:
    if matcher.startswith("superpoint"):
        request.getfixturevalue("seed_system_weights")
    reference = build(matcher)
    exported = build(matcher, backend=backend)
    expected = reference.extract(image)
    got = exported.extract(image)
    runner = exported.extractor.backend
    assert runner.status == ""
    (record,) = runner.records.values()
    assert not record.cache_hit or record.path.is_relative_to(export_cache)
    for name, diff in record.max_abs_diff.items():
        assert diff <= 1e-3, f"{name}: {diff}"  # measured 1e-7 .. 3e-4
    assert abs(len(got) - len(expected)) <= (1 - agreement) * len(expected)
    share, pairs = _same_keypoints(expected, got)
    assert share >= agreement
    assert _same_keypoints(got, expected)[0] >= agreement
    descriptors0, descriptors1 = expected.descriptors[pairs[:, 0]], got.descriptors[pairs[:, 1]]
    assert torch.allclose(descriptors0, descriptors1, atol=1e-3)
    # and the second pipeline of the same network finds the verified file in the cache
    again = build(matcher, backend=backend)
    again.extract(image)
    (hit,) = again.extractor.backend.records.values()
    assert hit.cache_hit and hit.path == record.path


class _Tiny(torch.nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return y.relu(), y.sigmoid().mean(1)


def _runner(module: torch.nn.Module, sha: str, cache: Path, backend: str = "onnxruntime"):
    return inference.BackendNetwork("tiny", module, module.forward, sha, backend, cache_dir=cache)


def test_cache_hit_and_misses(tmp_path: Path) -> None:
    x = torch.rand(1, 1, 40, 48)
    module = _Tiny()
    first = _runner(module, "a" * 64, tmp_path)
    out = first(x)
    assert torch.allclose(out[0], module(x)[0], atol=1e-5)
    assert not first.records[tuple(x.shape)].cache_hit
    hit = _runner(module, "a" * 64, tmp_path)
    hit(x)
    assert hit.records[tuple(x.shape)].cache_hit
    # other weights (another sha256) or another input shape: a new export in a folder of its own
    other = _Tiny(seed=1)
    changed = _runner(other, "b" * 64, tmp_path)
    assert torch.allclose(changed(x)[0], other(x)[0], atol=1e-5)
    assert not changed.records[tuple(x.shape)].cache_hit
    y = torch.rand(1, 1, 32, 32)
    hit(y)
    assert not hit.records[tuple(y.shape)].cache_hit
    folders = {
        r.path.parent for r in (*first.records.values(), *changed.records.values(), *hit.records.values())
    }
    assert len(folders) == 3
    # a file written by another backend version does not count
    key = first.key(tuple(x.shape))
    assert key.backend_version and key.weights_sha256 == "a" * 64 and key.shape == (1, 1, 40, 48)
    newer = _runner(module, "a" * 64, tmp_path)
    newer.backend_version += "-other"
    newer(x)
    assert not newer.records[tuple(x.shape)].cache_hit


def test_a_backend_that_fails_verification_falls_back(tmp_path: Path, caplog) -> None:
    x = torch.rand(1, 1, 40, 48)
    module = _Tiny()
    runner = _runner(module, "c" * 64, tmp_path, backend="openvino")
    runner.tolerance = -1.0  # nothing can pass
    with caplog.at_level(logging.WARNING):
        out = runner(x)
    assert "differs from torch" in runner.status and "running the torch network instead" in runner.status
    assert torch.equal(out[0], runner.function(x)[0])
    assert not any(tmp_path.iterdir()), "nothing unverified is cached"
    assert runner.status in caplog.text


def test_missing_backend_falls_back_to_torch(monkeypatch, image: np.ndarray, caplog) -> None:
    real_import = importlib.import_module

    def without_openvino(name: str, *args):
        if name == "openvino":
            raise ImportError("No module named 'openvino'")
        return real_import(name, *args)

    monkeypatch.setattr(backends.importlib, "import_module", without_openvino)
    assert "pip install openvino" in inference.backend_problem("openvino")
    with caplog.at_level(logging.WARNING):
        pipeline = build("xfeat(sparse)", backend="openvino")
    status = inference.status(pipeline.extractor)
    assert "xfeat: inference backend 'openvino' is not available here" in status
    assert "pip install openvino" in status and "running the torch network instead" in status
    assert status in caplog.text
    features = pipeline.extract(image)
    assert torch.equal(features.keypoints, build("xfeat(sparse)").extract(image).keypoints)


def test_backend_names_and_unsupported_extractors() -> None:
    from feature_matching_ros.ros import params

    assert params.BACKENDS == inference.BACKENDS
    for node in (params.MATCHER_NODE, params.NAVIGATOR_NODE):
        (spec,) = [s for s in node if s.name == "backend"]
        assert spec.default == "torch" and spec.choices == inference.BACKENDS
        assert spec.check("openvino") is None and "must be one of" in spec.check("openvin")
    with pytest.raises(ConfigError, match="unknown inference backend 'openvin'"):
        build("xfeat(sparse)", backend="openvin")
    sift = build("sift", backend="openvino")  # nothing to export: OpenCV runs as before
    assert not inference.supports(sift.extractor) and inference.status(sift.extractor) == ""


def test_fm_export_cli(export_cache: Path, shared_data: Path, capsys, monkeypatch) -> None:
    """On the session's cache: the XFeat export of the agreement test above, when it ran, is a hit.
    XFeat resizes 320x240 to 320x224 (multiples of 32) before its network."""
    from feature_matching_ros.cli import export

    monkeypatch.setenv(inference.ENV_EXPORT_CACHE, "")  # fm-export sets it from --cache-dir
    args = ["xfeat(sparse)", "sift", "--backend", "onnxruntime", "--size", f"{SIZE[0]}x{SIZE[1]}"]
    args += ["--image", str(shared_data / "pairs" / "graf1.png"), "--cache-dir", str(export_cache)]
    assert export.main(args) == 0
    out = capsys.readouterr().out
    assert "xfeat(sparse): xfeat 1x1x224x320 onnxruntime" in out and ("exported in" in out or "cached" in out)
    assert "max |diff| to torch out0" in out and "sift has no network for a backend" in out
    assert export.main([*args, "--json"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    record = json.loads(line)
    assert record["key"]["shape"] == [1, 1, 224, 320] and Path(record["path"]).is_file()
    assert record["key"]["backend"] == "onnxruntime" and record["tolerance"] == inference.TOLERANCE
    with pytest.raises(SystemExit):
        export.main(["xfeat(sparse)", "--backend", "torch"])


def test_lightglue_layer_runs_in_the_backend_for_any_keypoint_count(
    export_cache: Path, graf: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    """One layer of ALIKED's LightGlue on graf1/graf3 features: exported once with variable keypoint
    counts, it agrees with torch at full width and after pruning, without another export."""
    from feature_matching_ros.core.matching import weights
    from feature_matching_ros.core.matching.matchers import LIGHTGLUE_MODELS

    pipeline = build("aliked+lightglue", backend="openvino")  # nothing exported before a match
    runners = pipeline.matcher.backend_layers
    assert len(runners) == pipeline.matcher.model.conf.n_layers and inference.status(pipeline) == ""
    torch_pipeline = build("aliked+lightglue")
    layer = torch_pipeline.matcher.model.transformers[0]
    captured = []
    hook = layer.register_forward_pre_hook(lambda module, args: captured.append(args))
    try:
        torch_pipeline.match(fit_to_size(graf[0], SIZE), fit_to_size(graf[1], SIZE), geometry=None)
    finally:
        hook.remove()
    inputs = captured[0]
    sha = weights.spec_for(LIGHTGLUE_MODELS["aliked"]["weights"]).sha256
    runner = inference.BackendNetwork(
        "aliked-lightglue-layer0",
        layer,
        layer.forward,
        sha,
        "openvino",
        cache_dir=export_cache,
        dynamic=inference.LAYER_DYNAMIC,
    )
    m, n = inputs[0].shape[1], inputs[1].shape[1]
    pruned = (
        inputs[0][:, : m // 2],
        inputs[1][:, : n // 3],
        inputs[2][..., : m // 2, :],
        inputs[3][..., : n // 3, :],
    )
    for args in (inputs, tuple(x.contiguous() for x in pruned)):
        with torch.inference_mode():
            expected = layer(*args)
            got = runner(*args)
        for e, g in zip(expected, got, strict=True):
            assert e.shape == g.shape and torch.allclose(e, g, atol=1e-4)  # measured 4e-6
    assert runner.status == "" and len(runner.records) == 1
    (shape,) = runner.records
    assert shape == ((1, -1, 256), (1, -1, 256), (2, 1, 1, -1, 64), (2, 1, 1, -1, 64))
