"""Files the package ships beside its code: ``config/`` of a source checkout, or of an installed
``share/feature_matching_ros`` (pip data files or colcon)."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

PACKAGE = "feature_matching_ros"


def config_file(name: str) -> Path:
    """The installed or checked-out ``config/<name>``; ConfigError when the installation lacks it."""
    package_dir = Path(__file__).resolve().parents[1]
    for ancestor in package_dir.parents:
        for candidate in (ancestor / "config" / name, ancestor / "share" / PACKAGE / "config" / name):
            if candidate.is_file():
                return candidate
    raise ConfigError(f"config/{name} not found above {package_dir}; is the package installed completely?")
