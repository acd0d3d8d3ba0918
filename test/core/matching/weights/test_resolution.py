"""Resolution: the explicit directory before the cache, status, and the errors naming each place."""

from __future__ import annotations

import shutil

import pytest

from feature_matching_ros.core.errors import WeightsError
from feature_matching_ros.core.matching import weights


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


def test_status_without_fetching(tmp_path, isolated_cache):
    missing = weights.status("aliked-n16")
    assert (missing.available, missing.path, missing.state) == (False, None, "missing")
    assert str(isolated_cache) in missing.detail


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
