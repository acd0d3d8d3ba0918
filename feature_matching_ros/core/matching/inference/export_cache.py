"""The export cache: where exported files live (``export_cache_dir``), what each one depends on
(``ExportKey``, whose digest names its folder) and how it compared with torch (``ExportRecord``)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

OPSET = 18
EXPORT_FORMAT = 1  # bump when the export code changes what it writes
ENV_EXPORT_CACHE = "FEATURE_MATCHING_EXPORT_CACHE"


def export_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$FEATURE_MATCHING_EXPORT_CACHE``, else the user cache's ``exported``."""
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get(ENV_EXPORT_CACHE):
        return Path(os.environ[ENV_EXPORT_CACHE])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "feature_matching_ros" / "exported"


def package_version() -> str:
    from .... import __version__

    return __version__


@dataclass(frozen=True)
class ExportKey:
    """What an exported file depends on; ``digest`` names its cache directory."""

    network: str
    weights_sha256: str
    shape: tuple[Any, ...]  # of the input, or of each input; -1 for a dynamic dimension
    backend: str
    backend_version: str
    torch_version: str
    package_version: str
    nhwc_outputs: tuple[int, ...] = ()
    opset: int = OPSET
    export_format: int = EXPORT_FORMAT

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def folder(self, cache_dir: Path) -> Path:
        return cache_dir / f"{self.network}-{shape_text(self.shape)}-{self.backend}-{self.digest()}"


@dataclass
class ExportRecord:
    """One exported, verified network: where it is and how it compared with torch."""

    key: ExportKey
    path: Path
    max_abs_diff: dict[str, float]
    tolerance: float
    export_s: float
    cache_hit: bool = False

    def meta(self) -> dict[str, Any]:
        return {
            "key": asdict(self.key),
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "export_s": self.export_s,
        }


def shape_text(shape: tuple[Any, ...]) -> str:
    """1x1x480x640, or 1x-1x256_1x-1x256 for several inputs (-1: dynamic)."""
    if shape and isinstance(shape[0], tuple):
        return "_".join(shape_text(s) for s in shape)
    return "x".join(str(s) for s in shape)
