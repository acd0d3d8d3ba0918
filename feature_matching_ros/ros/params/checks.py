"""Checks of parameter changes that need the machine or the file system, made before a node accepts them.

A change a node accepts must take effect: a device that is not there, or a map file that cannot be
read, is refused with the reason, and the node keeps what it has.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from feature_matching_ros.core.errors import ConfigError
from feature_matching_ros.core.matching.registry import resolve_device


def device_problem(device: str) -> str | None:
    """Why torch cannot run on ``device`` here (CUDA absent, say), or None."""
    try:
        resolve_device(device)
    except ConfigError as exc:
        return str(exc)
    return None


def map_georef_problem(path: str) -> str | None:
    """Why ``path`` cannot be a map georeference file ('' and 'none' are no file), or None."""
    if path in ("", "none") or Path(path).expanduser().is_file():
        return None
    return f"map_georef {path}: no such file"


def map_image_problem(path: str) -> str | None:
    """Why ``path`` cannot be a map image (missing, not a file, no image OpenCV reads), or None."""
    if not path:
        return None
    file = Path(path).expanduser()
    if not file.exists():
        return f"map_image {path}: no such file"
    if not file.is_file():
        return f"map_image {path}: not a regular file"
    if not cv2.haveImageReader(str(file)):
        return f"map_image {path}: not an image file OpenCV can read"
    return None


def change_problem(values: dict[str, object]) -> str | None:
    """The first problem of a parameter change in ``values`` (name -> new value) that only the machine
    or the file system can tell: the device, the map image, the map georeference; else None."""
    checks = {"device": device_problem, "map_image": map_image_problem, "map_georef": map_georef_problem}
    for name, check in checks.items():
        if name in values:
            reason = check(str(values[name]))
            if reason is not None:
                return reason
    return None
