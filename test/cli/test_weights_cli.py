"""``fm-weights``: in-process through ``main`` and once through the installed script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feature_matching_ros.cli.weights import main
from feature_matching_ros.core.matching import weights

SCRIPT = Path(sys.executable).with_name("fm-weights")


@pytest.fixture(scope="module")
def fetched_cache(tmp_path_factory):
    """An XDG cache home into which `fm-weights fetch xfeat` downloaded xfeat.pt once."""
    xdg = tmp_path_factory.mktemp("cli-xdg")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(xdg))
        mp.delenv(weights.ENV_WEIGHTS_DIR, raising=False)
        assert main(["fetch", "xfeat"]) == 0
    return xdg


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv(weights.ENV_WEIGHTS_DIR, raising=False)


def test_list_shows_every_id_with_status_and_licence(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.split()[0] in weights.MANIFEST}
    assert set(rows) == set(weights.MANIFEST)
    for weight_id, spec in weights.MANIFEST.items():
        assert "missing" in rows[weight_id]
        assert spec.licence in rows[weight_id] and spec.carrier in rows[weight_id]
    assert f"cache: {weights.cache_dir()}" in out


def test_fetch_downloads_once_then_skips_quickly(fetched_cache, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(fetched_cache))
    cached = weights.cache_dir() / "xfeat.pt"
    assert weights.check_file(cached, weights.MANIFEST["xfeat"]) is None

    start = time.perf_counter()
    assert main(["fetch", "xfeat"]) == 0
    assert time.perf_counter() - start < 2.0
    out = capsys.readouterr().out
    assert f"xfeat: already present at {cached} (skipped)" in out
    assert "downloading" not in out

    assert main(["list"]) == 0
    assert any(line.split()[:2] == ["xfeat", "ok"] for line in capsys.readouterr().out.splitlines())


def test_fetch_into_dir_copies_from_the_cache(fetched_cache, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(fetched_cache))
    target = tmp_path / "flight-weights"
    assert main(["fetch", "xfeat", "--dir", str(target)]) == 0
    assert "xfeat: copied from the cache" in capsys.readouterr().out
    assert weights.status("xfeat", target).path == target / "xfeat.pt"

    assert main(["fetch", "xfeat", "--dir", str(target)]) == 0
    assert "already present" in capsys.readouterr().out


def test_fetch_into_the_environment_dir(fetched_cache, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(fetched_cache))
    monkeypatch.setenv(weights.ENV_WEIGHTS_DIR, str(tmp_path / "env-weights"))
    assert main(["fetch", "xfeat"]) == 0
    assert (tmp_path / "env-weights" / "xfeat.pt").is_file()
    assert f"verified in {tmp_path / 'env-weights'}" in capsys.readouterr().out


def test_unknown_id_exits_2_with_one_line(tmp_path, capsys):
    assert main(["fetch", "xfeat", "nosuch", "--dir", str(tmp_path / "w")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("fm-weights: unknown weight id 'nosuch'; known ids: xfeat, ")
    assert not (tmp_path / "w").exists()


def test_fetch_needs_ids_or_all(capsys):
    for argv in (["fetch"], ["fetch", "xfeat", "--all"]):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
    assert "give weight ids or --all" in capsys.readouterr().err


def test_failure_prints_one_block_and_exits_1(tmp_path, capsys):
    target = tmp_path / "weights"
    target.mkdir()
    (target / "xfeat.pt").write_bytes(b"not the weights")
    assert main(["fetch", "xfeat", "--dir", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("weights 'xfeat' (xfeat.pt) not available:\n")
    assert f"explicit dir {target}: size mismatch" in err and "not overwritten" in err
    assert (target / "xfeat.pt").read_bytes() == b"not the weights"

    assert main(["list", "--dir", str(target)]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:3] == ["xfeat", "bad", "checksum"] for line in out.splitlines())
    assert f"xfeat: {target / 'xfeat.pt'}: size mismatch" in out


def test_licences_prints_the_markdown_table(capsys):
    assert main(["licences"]) == 0
    assert capsys.readouterr().out.strip() == weights.weights_licence_table()


def test_installed_script(fetched_cache):
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: run `make setup`"
    env = {**os.environ, "XDG_CACHE_HOME": str(fetched_cache)}
    env.pop(weights.ENV_WEIGHTS_DIR, None)
    done = subprocess.run(
        [str(SCRIPT), "fetch", "xfeat"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "xfeat: already present at" in done.stdout
