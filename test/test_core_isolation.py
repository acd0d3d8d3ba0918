"""feature_matching_ros.core must import without ROS: no rclpy, no message packages.

A fresh interpreter installs an import hook that refuses every ROS Python module, then imports
feature_matching_ros.core and each of its modules.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import importlib
    import importlib.abc
    import pkgutil
    import sys

    BLOCKED_EXACT = {"rclpy", "builtin_interfaces", "rosidl_runtime_py", "feature_matching_ros.msg"}


    def blocked(name):
        top = name.split(".")[0]
        return (
            name.endswith("_msgs")
            or top.endswith("_msgs")
            or top in BLOCKED_EXACT
            or any(name == b or name.startswith(b + ".") for b in BLOCKED_EXACT)
        )


    class NoRos(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ImportError(f"{name} is ROS, which feature_matching_ros.core must not import")
            return None


    already = sorted(m for m in sys.modules if blocked(m))
    assert not already, f"imported before the hook was installed: {already}"
    sys.meta_path.insert(0, NoRos())

    import feature_matching_ros.core as core


    def onerror(name):
        raise


    names = [core.__name__]
    for info in pkgutil.walk_packages(core.__path__, core.__name__ + ".", onerror=onerror):
        importlib.import_module(info.name)
        names.append(info.name)
    leaked = sorted(m for m in sys.modules if blocked(m))
    assert not leaked, leaked
    print("\\n".join(names))
    """
)


def test_core_imports_without_ros():
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    imported = proc.stdout.split()
    assert "feature_matching_ros.core" in imported
    assert len(imported) == len(set(imported))
