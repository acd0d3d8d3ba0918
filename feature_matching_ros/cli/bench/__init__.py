"""``fm-bench``: the navigation-frontend workload per matcher: speed, memory and the core's overhead.

Workload: a 640x480 reference whose features are extracted once and cached, then query frames
(the reference under small random homographies and photometric noise) matched against it with
homography estimation.

Modules: ``command`` (arguments, worker processes, report), ``worker`` (one matcher's run),
``measure`` (per-frame record and statistics), ``frames`` (reference and query frames),
``direct`` (kornia/OpenCV reference implementations), ``backends`` (``--backend`` runs and table),
``tables`` (result tables and targets).
"""

from .command import main

__all__ = ["main"]
