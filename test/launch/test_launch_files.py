"""The launch files name only what exists: executables, parameters, topics, config files.

Checked statically here (no `launch` package on PyPI); where ROS 2 `launch` is installed the
launch description is also built for real.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from feature_matching_ros.ros import params
from feature_matching_ros.ros.infrastructure import topics
from feature_matching_ros.ros.runner import check_params_file

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch"
NODE_TOPICS = {v for k, v in vars(topics).items() if k.isupper() and not k.endswith("_FRAME")}


def _literal(path: Path, name: str) -> object:
    """The value of the module-level constant ``name`` of a launch file, without importing it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.name} has no constant {name}")


def _declared_arguments(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            first = node.args[0]
            if isinstance(first, ast.Constant):
                names.add(first.value)
            elif isinstance(first, ast.Name) and first.id == "name":
                names.update(_literal(path, "FORWARDED"))
    return names


def _installed_executables() -> set[str]:
    """The console scripts of setup.py: pip installs them, and CMakeLists.txt reads the same list
    and installs every one into lib/feature_matching_ros/ for `ros2 run` and the launch files."""
    assert 'file(STRINGS "${CMAKE_CURRENT_SOURCE_DIR}/setup.py"' in (ROOT / "CMakeLists.txt").read_text()
    return set(re.findall(r'"([\w-]+) = feature_matching_ros\.[\w.]+:main"', (ROOT / "setup.py").read_text()))


def test_visual_navigation_names_only_what_exists():
    path = LAUNCH / "visual_navigation.launch.py"
    executables = _literal(path, "EXECUTABLES")
    assert set(executables) == set(params.NODES), "one launched node per parameter table"
    assert set(executables.values()) <= _installed_executables()
    for argument, targets in _literal(path, "ARGUMENT_PARAMETERS").items():
        for node, parameter in targets:
            assert parameter in {s.name for s in params.NODES[node]}, f"{argument} -> {node}.{parameter}"
    modes = _literal(path, "MODES")
    for mode, per_node in modes.items():
        assert per_node, f"mode:={mode} starts no node"
        for node, values in per_node.items():
            assert node in executables, f"mode:={mode} starts {node}, which has no executable"
            assert params.check_all(params.NODES[node], values) is None, f"mode:={mode} sets {node} {values}"
    assert set(_literal(path, "DEFAULT_NODES")) <= set(executables)
    assert set(modes["navigation"]) == {"navigator"}, "mode:=navigation runs the navigator alone"
    outputs = _literal(path, "OUTPUTS")
    launched = set(_literal(path, "DEFAULT_NODES")).union(*(set(n) for n in modes.values()), outputs)
    assert launched == set(executables), "every executable is launched by some mode or output argument"
    for argument, topic in _literal(path, "ARGUMENT_REMAPS").items():
        assert topic in NODE_TOPICS, f"{argument} remaps {topic}, which no node uses"
    for topic, target in _literal(path, "MAVROS_REMAPS").items():
        assert topic in NODE_TOPICS and target.startswith("/mavros/"), (topic, target)
    mavros_inputs = _literal(path, "MAVROS_INPUTS")
    assert (
        set(mavros_inputs) == set(_literal(path, "DEFAULT_TOPICS")) <= set(_literal(path, "ARGUMENT_REMAPS"))
    )
    arguments = _literal(path, "ARGUMENT_PARAMETERS")
    for argument in _literal(path, "INTEGER_ARGUMENTS"):
        for node, parameter in arguments[argument]:
            spec = next(s for s in params.NODES[node] if s.name == parameter)
            assert type(spec.default) is int, f"{argument} -> {node}.{parameter} is not an integer"
    declared = _declared_arguments(path)
    needed = (
        {"params_file", "use_sim_time", "rviz", "mode", "mavros"} | set(arguments) | set(outputs.values())
    )
    assert needed | set(_literal(path, "ARGUMENT_REMAPS")) <= declared
    text = path.read_text()
    for name in re.findall(r'"config", "([^"]+)"', text):
        assert (ROOT / "config" / name).is_file(), f"{path.name} names config/{name}"


def test_replay_forwards_only_arguments_of_the_navigation_launch():
    forwarded = set(_literal(LAUNCH / "replay.launch.py", "FORWARDED"))
    assert forwarded <= _declared_arguments(LAUNCH / "visual_navigation.launch.py")
    assert {"bag", "rate"} <= _declared_arguments(LAUNCH / "replay.launch.py")


def test_params_file_is_complete_and_valid():
    path = ROOT / "config" / "navigation.yaml"
    check_params_file(str(path))
    content = yaml.safe_load(path.read_text())
    assert set(content) == set(params.NODES)
    for node, specs in params.NODES.items():
        values = content[node]["ros__parameters"]
        assert set(values) == {s.name for s in specs}, f"{node}: every parameter, with its default"
        assert params.check_all(specs, values) is None
        for spec in specs:
            assert type(values[spec.name]) is type(spec.default), f"{node}.{spec.name} has the wrong type"


def test_rviz_config_shows_the_package_topics():
    config = yaml.safe_load((ROOT / "config" / "navigation.rviz").read_text())
    displays = config["Visualization Manager"]["Displays"]
    shown = {d["Topic"]["Value"].lstrip("/") for d in displays if "Topic" in d}
    assert shown == {
        topics.CAMERA_IMAGE,
        topics.DEBUG_MATCHES,
        topics.DEBUG_OVERLAY,
        topics.POSE,
        topics.PATH,
        topics.ODOMETRY,
        topics.MARKERS,
    }
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == topics.MAP_FRAME


def test_readme_launch_arguments_are_declared():
    """Every `name:=value` the README gives (but `-p name:=value` of --ros-args) is a launch argument."""
    readme = (ROOT / "README.md").read_text()
    used = set(re.findall(r"(?<![-\w])(?<!-p )([a-z_]+):=", readme))
    declared = _declared_arguments(LAUNCH / "visual_navigation.launch.py")
    declared |= _declared_arguments(LAUNCH / "replay.launch.py")
    assert used and used <= declared, f"README launch arguments not declared: {sorted(used - declared)}"


def test_package_xml_declares_what_the_launch_files_run():
    """ros2 launch, ros2 bag with both storage plugins fm-simulate writes, rviz2 (optional); no
    dependency on sensor_msgs_py, which nothing uses."""
    import xml.etree.ElementTree as ET

    exec_depends = {e.text for e in ET.parse(ROOT / "package.xml").getroot().iter("exec_depend")}
    assert {"ros2launch", "ros2bag", "rosbag2_storage_mcap", "rviz2"} <= exec_depends
    assert "sensor_msgs_py" not in exec_depends
    assert re.search(r'"ros2",\s*"bag"', (LAUNCH / "replay.launch.py").read_text())


def test_pytest_starts_with_launch_testing_installed():
    """launch_testing's pytest plugins break pytest >= 8 at start-up (ros2/launch#979): the
    project's pytest configuration leaves them out."""
    import importlib.util
    import subprocess
    import sys

    from .ros2_tools import require_ros2_tools

    require_ros2_tools()
    assert importlib.util.find_spec("launch_testing") is not None, "scripts/test_tools.sh installs it"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "test/test_core_isolation.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_launch_files_build_where_ros2_launch_is_installed(monkeypatch, tmp_path):
    # launch_ros first: without ROS 2 `launch`, `import launch` finds this repository's launch/ folder.
    from .ros2_tools import make_overlay, require_ros2_tools

    require_ros2_tools()
    # get_package_share_directory needs AMENT_PREFIX_PATH, which a venv's activate does not set.
    monkeypatch.setenv("AMENT_PREFIX_PATH", make_overlay(tmp_path))
    import importlib.util

    import launch

    for path in sorted(LAUNCH.glob("*.launch.py")):
        spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = module.generate_launch_description()
        assert isinstance(description, launch.LaunchDescription)
