"""The DDS settings camera images need: the package's Fast DDS profile for large samples.

Fast DDS's default shared-memory segment (512 KiB) is smaller than one 640x480 rgb8 frame; larger
samples go out as UDP fragments and, with best-effort sensor QoS, are mostly lost between processes.
``config/fastdds_large_images.xml`` gives the writer a 32 MiB segment.

Fast DDS 3 (ROS 2 Kilted and later) reads the profile from ``FASTDDS_DEFAULT_PROFILES_FILE`` only,
Fast DDS 2 (Humble, Jazzy) from ``FASTRTPS_DEFAULT_PROFILES_FILE`` only (and Kilted's rmw warns that
the latter is deprecated): the variable set is the one of the Fast DDS that the ROS 2 prefixes hold.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from feature_matching_ros.core.errors import ConfigError
from feature_matching_ros.core.share import config_file

PROFILE_FILE = "fastdds_large_images.xml"
FAST_DDS_3_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
FAST_DDS_2_VARIABLE = "FASTRTPS_DEFAULT_PROFILES_FILE"
# Any of these means the user configured Fast DDS (or another middleware) on purpose.
USER_CHOICES = (
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    "FASTDDS_BUILTIN_TRANSPORTS",
)


def large_image_profile() -> str:
    """Path of the package's Fast DDS profile for camera images."""
    return str(config_file(PROFILE_FILE))


def profile_variable(environ: Mapping[str, str] | None = None) -> str:
    """The profile variable that this ROS 2's Fast DDS reads.

    Fast DDS 3 installs its CMake package as ``share/fastdds``, Fast DDS 2 as ``share/fastrtps``; the
    first ROS 2 prefix (``AMENT_PREFIX_PATH``, then the Python environment's, where the PyPI wheels
    install) holding either decides. Neither found: Fast DDS 3's.
    """
    env = os.environ if environ is None else environ
    prefixes = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    for prefix in prefixes:
        share = Path(prefix) / "share"
        if (share / "fastdds").is_dir():
            return FAST_DDS_3_VARIABLE
        if (share / "fastrtps").is_dir():
            return FAST_DDS_2_VARIABLE
    return FAST_DDS_3_VARIABLE


def use_large_image_profile(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Point Fast DDS at the large-image profile unless the user configured the middleware.

    Must run before the process creates its first ROS context. Returns the profile set, or None
    when nothing was changed (another RMW, the user's own profile, or a package without it).
    """
    env = os.environ if environ is None else environ
    if not env.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp").startswith("rmw_fastrtps"):
        return None
    if any(env.get(name) for name in USER_CHOICES):
        return None
    try:
        path = large_image_profile()
    except ConfigError:
        return None
    env[profile_variable(env)] = path
    return path
