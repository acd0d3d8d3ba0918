"""Map features cached on disk, so that a large map is extracted once, not at every start.

An entry holds the features of every tile of one search grid of one map (``MapFeatures``), for one
extractor with all its settings. It is found by a key, the sha256 of everything the features depend
on (``FeatureCache.description``):

- the map files' identity: resolved path, size in bytes, modification time (ns) and a sha256 of the
  first and last 64 KiB of each file (``RasterFile.identity``), plus the map's no-data colour and the
  8-bit stretch of 16-bit data. Hashing a 25 km^2 orthophoto whole (0.5-1 GB) would take seconds at
  every start; a rewritten file changes its mtime (and size, header or tail) in practice, and a copy
  keeps its content but not its path, so it is prepared again rather than trusted;
- the pipeline and extractor (name, class and every scalar setting: keypoint count, threshold,
  device, ``max_image_edge``);
- the grid: tile size, margin, upsampling, the no-data margin and least valid fraction of a tile;
- the code: the package version, a sha256 of the source of the modules that compute the features
  (``FEATURE_CODE``) and the versions of OpenCV, torch, kornia and numpy.

Any change of those gives another key, hence a miss and a new entry; the old entry of the same map
files, extractor and grid is then deleted as stale. An entry is written into a temporary directory
and renamed into place when complete, with a manifest that records every array's dtype, shape, size
and CRC-32; at open the manifest must match the key and every array file its size and checksum
(about 1 s per GB), else the entry is reported, deleted and rebuilt, never used. A tile's rows are
then read from the files when a search first touches it (positional reads, not memory maps, so that
the pages of tiles read once do not stay in the process's resident set).

Location: ``$FEATURE_MATCHING_MAP_CACHE``, else ``$XDG_CACHE_HOME/feature_matching_ros/map_features``
(``~/.cache/...``); ``open_map(..., cache_dir=...)`` and ``fm-map prepare --cache-dir`` override it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import zlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..matching.types import Features

if TYPE_CHECKING:
    from ..matching.pipeline import Pipeline
    from .features import MapFeatures

_log = logging.getLogger(__name__)

ENV_MAP_CACHE = "FEATURE_MATCHING_MAP_CACHE"
FORMAT = 1
# The modules whose code decides what a tile's features are, relative to the core package.
FEATURE_CODE = (
    "maps/features.py",
    "maps/raster.py",
    "maps/feature_cache.py",
    "matching/extractors.py",
    "image.py",
    "matching/pipeline.py",
)
_CHUNK = 16 * 2**20
_MANIFEST = "manifest.json"

Progress = Callable[[int, int], None]


def default_cache_dir() -> Path:
    """``$FEATURE_MATCHING_MAP_CACHE``, else the user cache's ``feature_matching_ros/map_features``."""
    env = os.environ.get(ENV_MAP_CACHE, "")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "feature_matching_ros" / "map_features"


@lru_cache(maxsize=1)
def code_identity() -> dict[str, str]:
    """Package and library versions and a digest of the feature code."""
    import cv2
    import kornia

    from ... import __version__

    core = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name in FEATURE_CODE:
        digest.update(name.encode())
        digest.update((core / name).read_bytes())
    return {
        "package": __version__,
        "feature_code_sha256": digest.hexdigest(),
        "opencv": cv2.__version__,
        "torch": torch.__version__,
        "kornia": kornia.__version__,
        "numpy": np.__version__,
    }


def extractor_identity(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline's name, its extractor's class and every scalar setting of it."""
    extractor = pipeline.extractor
    settings = {
        k: (v if not isinstance(v, tuple) else list(v))
        for k, v in sorted(vars(extractor).items())
        if not k.startswith("_") and isinstance(v, (bool, int, float, str, tuple))
    }
    return {
        "pipeline": pipeline.name,
        "class": f"{type(extractor).__module__}.{type(extractor).__qualname__}",
        "settings": settings,
        "device": str(getattr(extractor, "device", "cpu")),
        "max_image_edge": pipeline.max_image_edge,
    }


class CacheError(Exception):
    """An entry that cannot be used (missing, incomplete, stale or corrupt); the reason is the message."""


class FeatureCache:
    """The cache of one map's features for one pipeline, under ``root``; one entry per search grid."""

    def __init__(self, root: str | Path, map_identity: dict[str, Any], extractor: dict[str, Any]) -> None:
        self.root = Path(root)
        self.map_identity = map_identity
        self.extractor = extractor
        self.device = torch.device(extractor.get("device", "cpu"))
        self.last_event = ""  # "hit", "built", or "rebuilt: <why the old entry was refused>"

    @staticmethod
    def for_map(geomap: Any, pipeline: Pipeline) -> FeatureCache | None:
        """The cache of a windowed map (``map_raster.RasterMap``) with a cache directory, else None:
        maps held in memory are small and extracted at start as before."""
        root = getattr(geomap, "cache_dir", None)
        if root is None or not hasattr(geomap, "identity"):
            return None
        return FeatureCache(root, geomap.identity(), extractor_identity(pipeline))

    def description(self, features: MapFeatures) -> dict[str, Any]:
        """Everything the features of ``features``' grid depend on."""
        from .features import MIN_VALID_FRACTION, NODATA_MARGIN_PX

        grid = {
            "tile": features.tile,
            "margin": features.margin,
            "scale": features.scale,
            "grid": list(features.grid),
            "nodata_margin_px": NODATA_MARGIN_PX,
            "min_valid_fraction": MIN_VALID_FRACTION,
        }
        # a tile crop no longer than max_image_edge is extracted as it is: such an edge changes nothing
        extractor = dict(self.extractor)
        edge = extractor.get("max_image_edge")
        if edge and edge >= features.tile + 2 * features.margin + 4 * math.ceil(features.scale):
            extractor["max_image_edge"] = None
        return {
            "format": FORMAT,
            "map": self.map_identity,
            "extractor": extractor,
            "grid": grid,
            "code": code_identity(),
        }

    def entry(self, features: MapFeatures) -> tuple[Path, str, str, dict[str, Any]]:
        """(directory, key, slot, description) of the entry of ``features``' grid; the slot names the
        map files, extractor and grid regardless of their state: entries sharing it are one's versions."""
        description = self.description(features)
        key = _digest(description)
        slot = _digest(
            {
                "paths": [f["path"] for f in self.map_identity["files"]],
                "extractor": description["extractor"],
                "grid": description["grid"],
            }
        )
        return self.root / key[:32], key, slot, description

    def open(self, features: MapFeatures) -> TileStore | None:
        """The verified entry of ``features``' grid, or None when there is none; a corrupt or
        incomplete entry is deleted (and logged) so that it is rebuilt."""
        path, key, _, description = self.entry(features)
        if not path.exists():
            self.last_event = "miss"
            return None
        try:
            store = TileStore(path, key, description, self.device)
        except CacheError as exc:
            _log.warning("map feature cache entry %s refused (%s): rebuilding it", path, exc)
            self.last_event = f"rebuilt: {exc}"
            shutil.rmtree(path, ignore_errors=True)
            return None
        self.last_event = "hit"
        return store

    def prepare(self, features: MapFeatures, progress: Progress | None = None) -> TileStore:
        """The entry of ``features``' grid, built (every tile extracted, written as it comes) if missing."""
        store = self.open(features)
        if store is not None:
            return store
        refused = self.last_event
        store = self.build(features, progress)
        self.last_event = refused if refused.startswith("rebuilt") else "built"
        return store

    def build(self, features: MapFeatures, progress: Progress | None = None) -> TileStore:
        path, key, slot, description = self.entry(features)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{path.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        start = time.perf_counter()
        try:
            tiles = _write_tiles(features, tmp, progress)
            manifest = {
                "key": key,
                "slot": slot,
                "description": description,
                "complete": True,
                "build_seconds": round(time.perf_counter() - start, 3),
                "created_unix": time.time(),
                **tiles,
            }
            (tmp / _MANIFEST).write_text(json.dumps(manifest))
            try:
                os.rename(tmp, path)
            except OSError:  # built meanwhile by another process: keep that one
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune(slot, path)
        return TileStore(path, key, description, self.device)

    def _prune(self, slot: str, keep: Path) -> None:
        """Delete the stale entries of the same map files, extractor and grid."""
        for other in self.root.iterdir():
            if other == keep or not other.is_dir() or other.name.startswith("."):
                continue
            try:
                if json.loads((other / _MANIFEST).read_text()).get("slot") == slot:
                    _log.info("deleting stale map feature cache entry %s", other)
                    shutil.rmtree(other, ignore_errors=True)
            except (OSError, ValueError):
                continue


class TileStore:
    """A verified, memory-mapped cache entry: the features of each tile of one grid."""

    def __init__(self, path: Path, key: str, description: dict[str, Any], device: torch.device) -> None:
        self.path = path
        self.device = device
        try:
            manifest = json.loads((path / _MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise CacheError(f"no readable manifest: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("key") != key or not manifest.get("complete"):
            raise CacheError("manifest of another key, or incomplete")
        if _digest(manifest.get("description")) != key:
            raise CacheError("manifest description does not match its key")
        self.manifest = manifest
        self.size = tuple(description["grid"]["grid"])
        self.image_size: tuple[int, int] | None = None
        self.arrays: dict[str, _Rows] = {}
        try:
            total = int(manifest["count"])
            for name, spec in manifest["arrays"].items():
                self.arrays[name] = _Rows(path / f"{name}.bin", spec, total)
            index = {}
            for i, j, first, count in manifest["tiles"]:
                if count >= 0 and not (0 <= first and first + count <= total):
                    raise CacheError(f"tile ({i}, {j}) lies outside the arrays")
                index[int(i), int(j)] = (int(first), int(count))
            self.image_size = tuple(manifest["image_size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CacheError(f"malformed manifest: {exc!r}") from None
        if {"keypoints", "descriptors", "scores"} - set(self.arrays):
            raise CacheError("keypoints, descriptors or scores missing")
        self.index = index
        self.extras = [n for n in self.arrays if n.startswith("extra-")]

    def __len__(self) -> int:
        return len(self.index)

    @property
    def count(self) -> int:
        return int(self.manifest["count"])

    def has(self, i: int, j: int) -> bool:
        return (i, j) in self.index

    def load(self, i: int, j: int) -> Features | None:
        """The features of tile (i, j) (None: a tile without enough map)."""
        first, count = self.index[i, j]
        if count < 0:
            return None
        part = {name: torch.from_numpy(rows.read(first, count)) for name, rows in self.arrays.items()}
        to = self.device
        return Features(
            part["keypoints"].to(to),
            part["descriptors"].to(to),
            part["scores"].to(to),
            self.image_size,
            {name[len("extra-") :]: part[name].to(to) for name in self.extras},
        )


def _write_tiles(features: MapFeatures, folder: Path, progress: Progress | None) -> dict[str, Any]:
    """Extract every tile of ``features`` into raw arrays in ``folder``; the manifest's tile part."""
    grid_w, grid_h = features.grid
    total_tiles = grid_w * grid_h
    files: dict[str, Any] = {}
    specs: dict[str, dict[str, Any]] = {}
    crcs: dict[str, int] = {}
    tiles: list[list[int]] = []
    count = 0
    extras: list[str] | None = None
    try:
        for n, (j, i) in enumerate((j, i) for j in range(grid_h) for i in range(grid_w)):
            found = features._extract_tile(i, j)
            if found is None:
                tiles.append([i, j, count, -1])
            else:
                if extras is None and len(found):
                    extras = sorted(k for k, v in found.extras.items() if v.shape[0] == len(found))
                arrays = {
                    "keypoints": found.keypoints,
                    "descriptors": found.descriptors,
                    "scores": found.scores,
                }
                for name in extras or []:
                    if name not in found.extras and len(found):
                        raise CacheError(f"tile ({i}, {j}) lacks the extra {name!r} the others have")
                    arrays[f"extra-{name}"] = found.extras.get(name)
                for name, tensor in arrays.items():
                    if tensor is None:
                        continue
                    data = np.ascontiguousarray(tensor.detach().cpu().numpy())
                    spec = specs.setdefault(name, {"dtype": data.dtype.str, "shape": list(data.shape[1:])})
                    if len(data) and (
                        data.dtype.str != spec["dtype"] or list(data.shape[1:]) != spec["shape"]
                    ):
                        if spec.get("written"):
                            raise CacheError(f"tile ({i}, {j}): {name} {data.dtype}{data.shape} differs")
                        spec.update(dtype=data.dtype.str, shape=list(data.shape[1:]))
                    if not len(data):
                        continue
                    spec["written"] = True
                    if name not in files:
                        files[name] = open(folder / f"{name}.bin", "wb")
                    raw = data.tobytes()
                    files[name].write(raw)
                    crcs[name] = zlib.crc32(raw, crcs.get(name, 0))
                tiles.append([i, j, count, len(found)])
                count += len(found)
            if progress is not None:
                progress(n + 1, total_tiles)
    finally:
        for handle in files.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
    for name in ("keypoints", "descriptors", "scores"):
        specs.setdefault(
            name, {"dtype": "<f4", "shape": [2] if name == "keypoints" else [] if name == "scores" else [64]}
        )
    arrays = {}
    for name, spec in specs.items():
        file = folder / f"{name}.bin"
        if not file.exists():
            file.touch()
        arrays[name] = {"dtype": spec["dtype"], "shape": spec["shape"], "crc32": crcs.get(name, 0)}
    return {"count": count, "arrays": arrays, "tiles": tiles, "image_size": list(features.size)}


class _Rows:
    """The rows of one array file, verified whole at open and read by position."""

    def __init__(self, file: Path, spec: dict[str, Any], count: int) -> None:
        self.dtype = np.dtype(spec["dtype"])
        self.row_shape = tuple(int(s) for s in spec["shape"])
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        expected = count * self.row_bytes
        try:
            actual = file.stat().st_size
        except OSError:
            raise CacheError(f"{file.name} is missing") from None
        if actual != expected:
            raise CacheError(f"{file.name} holds {actual} bytes, not {expected}")
        crc = 0
        with open(file, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                crc = zlib.crc32(chunk, crc)
        if crc != int(spec["crc32"]):
            raise CacheError(f"{file.name} fails its CRC-32 (corrupt)")
        self._fd = os.open(file, os.O_RDONLY)

    def read(self, first: int, count: int) -> np.ndarray:
        size = count * self.row_bytes
        raw = os.pread(self._fd, size, first * self.row_bytes) if size else b""
        if len(raw) != size:
            raise CacheError("a cache file was truncated while in use")
        return np.frombuffer(bytearray(raw), self.dtype).reshape(count, *self.row_shape)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
