"""The zoo file and the registry that resolves it."""

from __future__ import annotations

import pytest
import torch
import yaml

from feature_matching_ros.core import ConfigError, ZooError, availability, build, load_zoo
from feature_matching_ros.core.matching import weights as weights_mod
from feature_matching_ros.core.matching.registry import FEATURES, MATCHERS

from ...conftest import require_file


@pytest.fixture(scope="module")
def zoo():
    return load_zoo()


def test_defaults_keep_the_seed_values(zoo):
    assert zoo.defaults == {
        "max_keypoints": 2000,
        "keypoint_threshold": 0.05,
        "match_threshold": 0.2,
        "enable_ransac": True,
        "ransac_method": "CV2_USAC_MAGSAC",
        "ransac_reproj_threshold": 8,
        "ransac_confidence": 0.9999,
        "ransac_max_iter": 10000,
        "setting_geometry": "Homography",
    }


def test_every_seed_entry_is_in_the_zoo_with_its_schema(zoo, shared_data):
    seed = yaml.safe_load(require_file(shared_data.parent / "seed_matcher_zoo.yaml").read_text())[
        "matcher_zoo"
    ]
    seed.pop("Example")
    assert len(seed) == 42
    for name, raw in seed.items():
        entry = zoo[name]
        assert entry.dense == raw["dense"], name
        assert entry.enable == raw.get("enable", True), name
        if name != "xfeat+lightglue":  # renamed: the seed's entry runs LighterGlue, its info named OmniGlue
            assert entry.info["name"] == raw["info"]["name"], name
        assert set(entry.info) == {"name", "source", "github", "paper", "project", "display", "efficiency"}


def test_required_onboard_entries_run(zoo):
    required = {
        "sift", "xfeat(sparse)", "xfeat+lightglue", "xfeat(dense)", "disk", "disk+dualsoftmax",
        "disk+lightglue", "aliked+lightglue", "aliked", "aliked-n16rot", "orb", "akaze",
    }  # fmt: skip
    assert required <= set(zoo.runnable())


def test_each_entry_runs_or_says_exactly_why_not(zoo, seed_system_weights):
    for name, entry in zoo.entries.items():
        implemented = entry.feature in FEATURES and entry.matcher in MATCHERS
        if entry.unavailable:
            # an entry that cannot run must not secretly have an implementation
            assert not implemented, f"{name} is implemented but marked unavailable"
            assert len(entry.unavailable) > 30, name
            assert availability(entry) == (False, entry.unavailable)
        else:
            assert implemented, f"{name} has no implementation and no reason"
            assert entry.licence, name
            assert all(w in weights_mod.MANIFEST for w in entry.weights), name
            assert availability(entry) == (True, "")


def test_missing_weights_make_an_entry_unavailable_with_the_fix(zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    ok, reason = availability(zoo["xfeat(sparse)"], tmp_path)
    assert not ok
    assert "weights missing: xfeat" in reason and "fm-weights fetch xfeat" in reason


def test_missing_non_commercial_weights_name_the_acceptance(zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    ok, reason = availability(zoo["superpoint+superglue"], tmp_path)
    assert not ok
    assert reason == (
        "weights missing: superpoint-v1, superglue-outdoor; they are under a non-commercial licence "
        "(LicenseRef-MagicLeap-academic-non-commercial): to accept it, run "
        "`fm-weights fetch --accept-non-commercial superpoint-v1 superglue-outdoor`"
    )


def test_unknown_name_suggests_close_entries(zoo):
    with pytest.raises(ZooError, match=r"unknown matcher 'xfeat'.*xfeat\(sparse\)"):
        zoo["xfeat"]


def test_unavailable_entry_cannot_be_built():
    with pytest.raises(ZooError, match="cannot run here: weights not available: SuperPoint itself runs here"):
        build("superpoint+lightglue")


def test_seed_systems_run_and_state_their_licences(zoo):
    magic_leap = {"superpoint+mnn", "superpoint+dualsoftmax", "superpoint+superglue"}
    assert magic_leap | {"sekd", "alike", "alike-t"} <= set(zoo.runnable())
    for name in magic_leap:
        assert "non-commercial" in zoo[name].licence and "accepted" in zoo[name].licence, name
        assert all(weights_mod.non_commercial(weights_mod.MANIFEST[w]) for w in zoo[name].weights), name
    assert (zoo["sekd"].licence, zoo["alike"].licence, zoo["alike-t"].licence) == (
        "MIT",
        *["BSD-3-Clause"] * 2,
    )
    assert "release asset only" in zoo["superpoint+lightglue"].unavailable


def test_overrides_apply_per_call_and_reject_typos(graf):
    image0, _, _ = graf
    small = build("xfeat(sparse)", {"max_keypoints": 300})
    assert len(small.extract(image0)) == 300
    assert len(build("xfeat(sparse)").extract(image0)) == 2000  # the zoo itself is unchanged
    with pytest.raises(ConfigError, match="unknown settings.*max_keypoint"):
        build("xfeat(sparse)", {"max_keypoint": 300})
    with pytest.raises(ConfigError, match="invalid settings"):
        build("sift", {"matcher_conf": {"ratio": 0.8}})
    ransac = build("sift", {"ransac_method": "POSELIB", "ransac_reproj_threshold": 2.5})
    assert (ransac.robust.method, ransac.robust.reproj_threshold) == ("POSELIB", 2.5)


def test_device_resolution():
    assert build("orb", device="auto").extractor.device.type == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            build("orb", device="cuda")
    with pytest.raises(ConfigError, match="invalid device"):
        build("orb", device="gpu0")
