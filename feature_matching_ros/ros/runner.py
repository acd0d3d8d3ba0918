"""Run nodes in one process on one executor: the node executables and ``fm-navigate``.

``fm-navigate --params config/navigation.yaml`` starts the frontend and the geometry node with the
same parameter file the launch file uses; it is how the pipeline runs where ``ros2 launch`` is absent.
``--mode navigation`` starts the navigator node alone (the launch file's ``mode:=navigation``).
"""

from __future__ import annotations

import argparse
import sys

from feature_matching_ros.core.errors import FeatureMatchingError

from .infrastructure.spin import run_nodes


def navigate(argv: list[str] | None = None) -> int:
    """Entry point of ``fm-navigate``."""
    parser = argparse.ArgumentParser(
        prog="fm-navigate",
        description="Run the package's nodes in one process (the launch file's pipeline): feature_matcher "
        "and geometry, or with --mode navigation the navigator alone.",
        epilog="Arguments after --ros-args go to ROS (remapping, -p name:=value, --log-level ...).",
    )
    parser.add_argument("--params", action="append", default=[], help="ROS 2 parameter file (repeatable)")
    parser.add_argument(
        "--mode",
        choices=("pipeline", "navigation"),
        default="pipeline",
        help="pipeline: feature_matcher + geometry (default); navigation: the navigator node alone, "
        "the continuous navigation solution (map fixes and keyframe odometry)",
    )
    parser.add_argument("--no-geometry", action="store_true", help="run the frontend only (--mode pipeline)")
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        split = argv.index("--ros-args")
        argv, ros_args = argv[:split], argv[split + 1 :]
    options = parser.parse_args(argv)
    if options.mode == "navigation" and options.no_geometry:
        print("fm-navigate: --no-geometry applies to --mode pipeline only", file=sys.stderr)
        return 2
    for path in options.params:
        try:
            check_params_file(path)
        except FeatureMatchingError as exc:
            print(f"fm-navigate: {exc}", file=sys.stderr)
            return 2
    rcl_args = [
        "fm-navigate",
        "--ros-args",
        *[a for p in options.params for a in ("--params-file", p)],
        *ros_args,
    ]

    if options.mode == "navigation":
        from .nodes.navigator_node import NavigatorNode

        return run_nodes([NavigatorNode], rcl_args)

    from .nodes.geometry_node import GeometryNode
    from .nodes.matcher_node import FeatureMatcherNode

    classes: list[type] = [FeatureMatcherNode] if options.no_geometry else [FeatureMatcherNode, GeometryNode]
    return run_nodes(classes, rcl_args)


def check_params_file(path: str) -> None:
    """Every parameter in a ROS 2 params file must belong to one of the package's nodes."""
    from pathlib import Path

    import yaml

    from .params import BUILTIN, NODES

    file = Path(path)
    if not file.is_file():
        raise FeatureMatchingError(f"parameter file not found: {file}")
    try:
        content = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise FeatureMatchingError(f"parameter file {file} is not valid YAML: {exc}") from exc
    if not isinstance(content, dict):
        raise FeatureMatchingError(f"parameter file {file}: expected a mapping of node names")
    known = {n.name for specs in NODES.values() for n in specs} | BUILTIN
    for node, section in content.items():
        values = (section or {}).get("ros__parameters") if isinstance(section, dict) else None
        if not isinstance(values, dict):
            raise FeatureMatchingError(f"parameter file {file}: {node!r} has no ros__parameters mapping")
        name = str(node).rsplit("/", 1)[-1]
        specs = NODES.get(name)
        allowed = known if specs is None else {s.name for s in specs} | BUILTIN
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise FeatureMatchingError(f"parameter file {file}: unknown parameters for {node!r}: {unknown}")


def main() -> None:
    sys.exit(navigate())
