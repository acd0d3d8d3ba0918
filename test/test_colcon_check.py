"""The README's ROS-machine section in a workspace, with real colcon and bash.

``scripts/colcon_check.sh`` follows the section (colcon build --packages-select, source
install/setup.bash, fm-weights fetch --all) over the venv's ROS 2 and checks the install space. One
real build per module; the other tests check copies of it (FM_SKIP_BUILD=1): broken ones must fail,
and a venv inside a directory named ``feature_matching_ros`` (the README's clone) must pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "colcon_check.sh"
BUILD_MSGS = ROOT / "scripts" / "build_msgs.sh"
PKG = "feature_matching_ros"
NODES = ("feature_matcher_node", "geometry_node", "navigator_node")
# Set by a sourced ROS workspace or by the ROS wheels' bootstrapper of this very process: not the
# environment of a fresh shell, which the script is written for.
INHERITED = (
    "AMENT_PREFIX_PATH",
    "CMAKE_PREFIX_PATH",
    "COLCON_PREFIX_PATH",
    "PYTHONPATH",
    "LD_LIBRARY_PATH",
    "_ROS_WHEELS_BOOTSTRAP_COMPLETE",
    "FM_WS",
    "FM_SKIP_BUILD",
    "FM_KEEP_WS",
)


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (required under CI=true)")
    pytest.skip(what)


def _venv() -> Path:
    if sys.prefix == sys.base_prefix:
        _missing("the tests do not run in a virtual environment")
    venv = Path(sys.prefix)
    for tool in ("colcon", "pip"):
        if not (venv / "bin" / tool).exists():
            _missing(f"{tool} is not installed in {venv} (pip install -r requirements/dev.txt)")
    if shutil.which("bash") is None:
        _missing("bash not found")
    return venv


def _env(venv: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _report(result: subprocess.CompletedProcess) -> str:
    out, err = result.stdout[-6000:], result.stderr[-6000:]
    return f"exit {result.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace built and checked by colcon_check.sh, as the README's section has it."""
    venv = _venv()
    ws = tmp_path_factory.mktemp("ws")
    result = _run(["bash", str(SCRIPT)], _env(venv, FM_WS=str(ws)))
    assert result.returncode == 0, _report(result)
    assert "colcon_check.sh: OK" in result.stdout, _report(result)
    assert "Traceback" not in result.stdout + result.stderr, _report(result)
    for step in (
        "pip install kornia poselib rosbags",
        f"colcon build --packages-select {PKG}",
        "source install/setup.bash",
        "fm-weights fetch --all",
    ):
        assert f"colcon_check.sh: {step}" in result.stdout, f"step '{step}' not run\n{_report(result)}"
    return ws


def _copy(workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(workspace / "install", copy / "install", symlinks=True)
    return copy


def _check(ws: Path, venv: Path) -> subprocess.CompletedProcess:
    return _run(["bash", str(SCRIPT)], _env(venv, FM_WS=str(ws), FM_SKIP_BUILD="1"))


def _site_packages(install: Path) -> Path:
    (site,) = install.glob("lib/python3*/site-packages")
    return site


def test_readme_section_installs_the_commands(workspace: Path) -> None:
    """After `source install/setup.bash`, fm-weights is the install space's, the venv's own wrapper
    script still finds its entry point, and every node executable is where `ros2 run` looks."""
    venv = _venv()
    install = workspace / "install" / PKG
    for name in NODES + ("fm-weights", "fm-navigate"):
        assert os.access(install / "lib" / PKG / name, os.X_OK), name
    script = f"""
        set -euo pipefail
        export AMENT_PREFIX_PATH="$VIRTUAL_ENV" CMAKE_PREFIX_PATH="$VIRTUAL_ENV"
        set +u; source "{workspace}/install/setup.bash"; set -u
        command -v fm-weights
        fm-weights list
        "$VIRTUAL_ENV/bin/fm-weights" list
    """
    result = _run(["bash", "-c", script], _env(venv))
    assert result.returncode == 0, _report(result)
    assert result.stdout.splitlines()[0] == str(install / "bin" / "fm-weights"), _report(result)
    assert "StopIteration" not in result.stderr, _report(result)


def test_generated_executables_are_executable(workspace: Path) -> None:
    """`colcon build --symlink-install` links lib/ and bin/ to the generated scripts themselves."""
    generated = sorted((workspace / "build" / PKG / "exe").iterdir())
    assert {p.name for p in generated} >= set(NODES) | {"fm-weights"}, generated
    assert all(os.access(p, os.X_OK) for p in generated), [oct(p.stat().st_mode) for p in generated]


def test_broken_message_import_fails(workspace: Path, tmp_path: Path) -> None:
    """A message module that does not import fails the check (the import check used to sit in a
    `( … ) || fail` list, where only its last command counted)."""
    ws = _copy(workspace, tmp_path)
    init = _site_packages(ws / "install" / PKG) / PKG / "msg" / "__init__.py"
    init.write_text(init.read_text() + '\nraise ImportError("broken on purpose")\n')
    result = _check(ws, _venv())
    assert result.returncode == 1, _report(result)
    assert "FAIL: the messages do not import from the install space" in result.stderr, _report(result)
    assert "broken on purpose" in result.stderr, _report(result)


def test_package_library_from_outside_the_workspace_fails(workspace: Path, tmp_path: Path) -> None:
    """A library of the package loaded from elsewhere (the venv's copy from build_msgs.sh) fails."""
    ws = _copy(workspace, tmp_path)
    lib = ws / "install" / PKG / "lib" / f"lib{PKG}__rosidl_typesupport_c.so"
    lib.unlink()
    venv = _venv()
    if not (venv / "lib" / lib.name).exists():
        _missing(f"{venv / 'lib' / lib.name} missing (scripts/build_msgs.sh installs it)")
    result = _check(ws, venv)
    assert result.returncode == 1, _report(result)
    assert "libraries loaded from outside the workspace" in result.stderr, _report(result)
    assert str(venv / "lib" / lib.name) in result.stderr, _report(result)


def test_venv_inside_a_checkout_named_feature_matching_ros(workspace: Path, tmp_path: Path) -> None:
    """The README clones into `feature_matching_ros`; a venv inside it must not make every ROS
    library look like the package's own (hard links keep the venv's files at that path)."""
    venv = _venv()
    copy = tmp_path / PKG / ".venv"
    copy.parent.mkdir()
    done = subprocess.run(["cp", "-al", str(venv), str(copy)], capture_output=True, text=True)
    if done.returncode != 0:
        _missing(f"cannot hard-link the venv into {copy}: {done.stderr.strip()}")
    result = _check(workspace, copy)
    assert result.returncode == 0, _report(result)
    assert "colcon_check.sh: OK" in result.stdout, _report(result)


def test_build_stamp_covers_what_the_install_copies(workspace: Path) -> None:
    """Every file the install copies from the checkout (share/: msg/, launch/, config/, package.xml)
    is an input of build_msgs.sh's stamp, so the venv's copies are rebuilt when it changes."""
    venv = _venv()
    result = _run(["bash", str(BUILD_MSGS), "--list-inputs"], _env(venv))
    assert result.returncode == 0, _report(result)
    inputs = set(result.stdout.split())
    share = workspace / "install" / PKG / "share" / PKG
    installed = (p.relative_to(share) for p in share.rglob("*") if p.is_file())
    copied = {str(p) for p in installed if (ROOT / p).is_file()}
    assert {d.split("/")[0] for d in copied} >= {"launch", "config", "msg", "package.xml"}, copied
    assert copied <= inputs, sorted(copied - inputs)
    assert {"CMakeLists.txt", "setup.py"} <= inputs
