"""Size and sha256 checks, and what a verified file may hold to be loaded."""

from __future__ import annotations

import datetime
import os
import shutil

import pytest
import torch

from feature_matching_ros.core.errors import WeightsError
from feature_matching_ros.core.matching import weights

from .conftest import custom_spec


def test_a_file_changed_in_place_is_hashed_again(xfeat_file, tmp_path):
    copy = tmp_path / "xfeat.pt"
    shutil.copy(xfeat_file, copy)
    spec = weights.MANIFEST["xfeat"]
    assert weights.check_file(copy, spec) is None
    data = bytearray(copy.read_bytes())
    data[1000] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert "sha256 mismatch" in weights.check_file(copy, spec)


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
