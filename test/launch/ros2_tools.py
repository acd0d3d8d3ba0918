"""The real ROS 2 command-line tools (`ros2 launch`, `ros2 param`) run against this checkout.

scripts/test_tools.sh installs them into the venv (`make test` runs it). Without them the tests
skip, under CI=true they fail. An ament prefix made here (``overlay``) names this checkout's
launch/ and config/ and the node executables of the running interpreter, so the tests exercise the
working tree's launch files and never depend on the shell's AMENT_PREFIX_PATH.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "feature_matching_ros"
# node executable -> the module whose main() it runs (as CMakeLists.txt installs them)
EXECUTABLES = {
    "feature_matcher_node": "matcher_node",
    "geometry_node": "geometry_node",
    "navigator_node": "navigator_node",
    "nmea_output": "nmea_output_node",
    "mavlink_bridge": "mavlink_bridge_node",
}
TOOLS = ("launch", "launch_ros", "ros2launch", "ros2cli", "ros2param", "composition_interfaces")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_ros2_tools() -> str:
    """The `ros2` executable; skips (fails under CI=true) where the tools are not installed."""
    missing = [name for name in TOOLS if importlib.util.find_spec(name) is None]
    ros2 = shutil.which("ros2", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if ros2 is None:
        missing.append("the ros2 command")
    if missing:
        reason = (
            f"ROS 2 tools not installed ({', '.join(missing)}): run scripts/test_tools.sh (make test does)"
        )
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return ros2


def make_overlay(root: Path) -> str:
    """An ament prefix at ``root`` holding this checkout's package; returns the AMENT_PREFIX_PATH to use."""
    index = root / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True, exist_ok=True)
    (index / PACKAGE).touch()
    share = root / "share" / PACKAGE
    share.mkdir(exist_ok=True)
    # Files linked one by one: `ros2 launch` finds launch files by a walk that skips linked folders.
    for path in [ROOT / "package.xml", *(ROOT / "launch").iterdir(), *(ROOT / "config").iterdir()]:
        target = share / path.relative_to(ROOT)
        target.parent.mkdir(exist_ok=True)
        if not target.exists():
            target.symlink_to(path)
    lib = root / "lib" / PACKAGE
    lib.mkdir(parents=True, exist_ok=True)
    for executable, module in EXECUTABLES.items():
        script = lib / executable
        entry = f"from {PACKAGE}.ros.nodes.{module} import main"
        script.write_text(f"#!{sys.executable}\nimport sys\n{entry}\nsys.exit(main())\n")
        script.chmod(0o755)
    base = os.environ.get("AMENT_PREFIX_PATH") or sys.prefix
    return f"{root}{os.pathsep}{base}"


def tool_env(ament_prefix_path: str, domain_id: int) -> dict[str, str]:
    """The tools' environment: this interpreter's bin first, the overlay, one DDS domain on localhost."""
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        AMENT_PREFIX_PATH=ament_prefix_path,
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        OMP_WAIT_POLICY="PASSIVE",
        PYTHONUNBUFFERED="1",
        RCUTILS_COLORIZED_OUTPUT="0",
    )
    env.pop("ROS_STATIC_PEERS", None)
    return env


def group_pids(pgid: int) -> list[int]:
    """Live processes of the process group ``pgid`` (zombies excluded)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


class Launched:
    """A `ros2 launch` (or any command) in a process group of its own, its output in ``log``."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_for_output(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or not self.running():
                pytest.fail(f"no {text!r} in the output after {timeout} s:\n{self.output[-3000:]}")
            time.sleep(0.1)

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C as a terminal sends it (to the whole process group); the exit code."""
        if self.running():
            os.killpg(self.process.pid, signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running after {timeout} s:\n{self.output[-3000:]}")
        self._out.close()
        return code

    def kill(self) -> None:
        for pid in group_pids(self.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)
        self._out.close()

    def leftovers(self) -> list[int]:
        """Processes of the group still alive once the leader has exited (orphaned nodes)."""
        return group_pids(self.process.pid)
