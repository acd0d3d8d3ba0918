"""The DDS settings camera images need: the package's Fast DDS profile for large samples.

Fast DDS's default shared-memory segment (512 KiB) is smaller than one 640x480 rgb8 frame; larger
samples go out as UDP fragments and, with best-effort sensor QoS, are mostly lost between processes.
``config/fastdds_large_images.xml`` gives the writer a 32 MiB segment.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from feature_matching_ros.core.errors import ConfigError
from feature_matching_ros.core.share import config_file

PROFILE_FILE = "fastdds_large_images.xml"
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
# Any of these means the user configured Fast DDS (or another middleware) on purpose.
USER_CHOICES = (
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    "FASTDDS_BUILTIN_TRANSPORTS",
)


def large_image_profile() -> str:
    """Path of the package's Fast DDS profile for camera images."""
    return str(config_file(PROFILE_FILE))


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
    env[PROFILE_VARIABLE] = path
    return path
