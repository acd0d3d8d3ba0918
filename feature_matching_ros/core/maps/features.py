"""Features of a large map, extracted once per tile and served for any window of it.

Each tile owns a square of the map and is extracted with a margin of context around it, keeping
only keypoints inside its own square, so overlapping tiles never duplicate a keypoint. Keypoints
on or next to no-data pixels are dropped. Tiles are extracted on first use and then cached.

Features can be extracted from the map upsampled by ``scale``: a camera several times finer than
the map keeps more of its detail when it is matched on a finer grid than the map's own. Windows,
keypoints and sizes are then in pixels of that "search grid"; ``to_map``/``from_map`` convert.

A map read window by window (``map_raster.RasterMap``) is never held whole: each tile reads its own
crop and the mask around it, and only the ``CACHED_TILES`` most recently used tiles stay in memory.
With a ``map_cache.FeatureCache``, ``warm`` builds (or finds) the grid's entry on disk instead of
holding every tile, and tiles are loaded from it as searches touch them (a grid without an entry,
such as the x2 grid the first searches extract, re-extracts a tile it evicted).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from ..matching.types import Features
from .georef import GeoMap

if TYPE_CHECKING:
    from .feature_cache import FeatureCache, Progress, TileStore

_log = logging.getLogger(__name__)

# Keypoints closer than this to missing map are dropped: their descriptors see the no-data edge.
NODATA_MARGIN_PX = 4
# Tiles with less map than this are not extracted.
MIN_VALID_FRACTION = 0.05
# Tiles loaded from the on-disk cache that are kept in memory (about 1 MB each with 2000 SIFT keypoints).
CACHED_TILES = 256


@dataclass(frozen=True)
class Window:
    """A map-pixel box [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def size(self) -> tuple[int, int]:
        return self.x1 - self.x0, self.y1 - self.y0

    @property
    def offset(self) -> np.ndarray:
        return np.array([self.x0, self.y0], np.float64)

    @staticmethod
    def around(centre: np.ndarray, half_width: float, half_height: float, bounds: tuple[int, int]) -> Window:
        """The box around ``centre`` clipped to a map of ``bounds`` (width, height) pixels."""
        cx, cy = float(centre[0]), float(centre[1])
        x0, x1 = int(np.floor(cx - half_width)), int(np.ceil(cx + half_width))
        y0, y1 = int(np.floor(cy - half_height)), int(np.ceil(cy + half_height))
        return Window(max(x0, 0), max(y0, 0), min(max(x1, 0), bounds[0]), min(max(y1, 0), bounds[1]))

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    @staticmethod
    def seen_by(
        H_map_to_frame: np.ndarray, frame_size: tuple[int, int], bounds: tuple[int, int], margin: int
    ) -> Window:
        """The part of a map of ``bounds`` (width, height) px that a frame of ``frame_size`` sees
        through the homography, plus ``margin`` px; the whole map if the frame sees the horizon."""
        w, h = frame_size
        corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], np.float64)
        back = (np.linalg.inv(np.asarray(H_map_to_frame, np.float64)) @ corners.T).T
        if not np.all(back[:, 2] > 1e-9):
            return Window(0, 0, *bounds)
        xy = back[:, :2] / back[:, 2:]
        lo, hi = xy.min(axis=0) - margin, xy.max(axis=0) + margin
        centre, half = (lo + hi) / 2, np.minimum((hi - lo) / 2, 1e7)
        return Window.around(centre, half[0], half[1], bounds)

    def shift(self) -> np.ndarray:
        """The homography from pixels of this window to pixels of the whole map."""
        return np.array([[1.0, 0.0, self.x0], [0.0, 1.0, self.y0], [0.0, 0.0, 1.0]])


class MapFeatures:
    """Lazily extracted, cached features of ``geomap`` upsampled by ``scale``, in tiles of ``tile``
    search-grid pixels."""

    def __init__(
        self,
        geomap: GeoMap,
        extract: Callable[[np.ndarray], Features],
        tile: int = 512,
        margin: int = 32,
        scale: float = 1.0,
        cache: FeatureCache | None = None,
    ) -> None:
        if not (np.isfinite(scale) and 1.0 <= scale <= 8.0):
            raise ValueError(f"map upsampling must be between 1 and 8, got {scale}")
        self.geomap = geomap
        self.extract = extract
        self.tile = int(tile)
        self.margin = int(margin)
        self.scale = float(scale)
        width, height = self.size
        self.grid = (-(-width // self.tile), -(-height // self.tile))
        self._usable: np.ndarray | None = None  # a windowed map's is computed per tile
        if isinstance(geomap.valid, np.ndarray):
            self._usable = cv2.erode(geomap.valid.astype(np.uint8), _KERNEL, borderValue=1).astype(bool)
        self._tiles: OrderedDict[tuple[int, int], Features | None] = OrderedDict()
        self._lock = threading.Lock()
        self.cache = cache
        self.store: TileStore | None = cache.open(self) if cache is not None else None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the search grid, pixels."""
        width, height = self.geomap.size
        return int(round(width * self.scale)), int(round(height * self.scale))

    def to_map(self, points: np.ndarray) -> np.ndarray:
        """Search-grid pixels -> map pixels (pixel centres stay pixel centres)."""
        return (np.asarray(points, np.float64) + 0.5) / self.scale - 0.5

    def from_map(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) + 0.5) * self.scale - 0.5

    @property
    def extracted_tiles(self) -> int:
        """Tiles holding features: extracted in memory, or in the cache entry in use."""
        if self.store is not None:
            return sum(1 for _, count in self.store.index.values() if count >= 0)
        return sum(1 for f in self._tiles.values() if f is not None)

    def window(self, window: Window) -> Features:
        """Features inside ``window``, keypoints relative to its top-left corner, image size its size."""
        parts = [self._tile(i, j) for i, j in self._tiles_touching(window)]
        parts = [p for p in parts if p is not None and len(p)]
        if not parts:
            return _empty_like(window.size)
        keypoints = torch.cat([p.keypoints for p in parts])
        offset = torch.tensor([window.x0, window.y0], dtype=keypoints.dtype, device=keypoints.device)
        inside = (
            (keypoints[:, 0] >= window.x0)
            & (keypoints[:, 0] < window.x1)
            & (keypoints[:, 1] >= window.y0)
            & (keypoints[:, 1] < window.y1)
        )
        extras = {
            name: torch.cat([p.extras[name] for p in parts])[inside]
            for name in parts[0].extras
            if all(name in p.extras and p.extras[name].shape[0] == len(p) for p in parts)
        }
        return Features(
            keypoints[inside] - offset,
            torch.cat([p.descriptors for p in parts])[inside],
            torch.cat([p.scores for p in parts])[inside],
            window.size,
            extras,
        )

    def warm(self, window: Window | None = None, progress: Progress | None = None) -> None:
        """Extract every tile of ``window`` (the whole map when None) now; with a cache, the whole
        map's entry is found or built on disk (``progress(done, total)`` per tile built)."""
        if self.cache is not None:
            if self.store is None:
                try:
                    self.store = self.cache.prepare(self, progress)
                except OSError as exc:  # a read-only or full disk: the map still works, slower at first
                    _log.warning(
                        "map feature cache unusable (%s): tiles are extracted as searches reach them", exc
                    )
            return
        window = window or Window(0, 0, *self.size)
        for i, j in self._tiles_touching(window):
            self._tile(i, j)

    def _tiles_touching(self, window: Window) -> list[tuple[int, int]]:
        if window.empty:
            return []
        i0, i1 = window.x0 // self.tile, (window.x1 - 1) // self.tile
        j0, j1 = window.y0 // self.tile, (window.y1 - 1) // self.tile
        return [(i, j) for j in range(j0, j1 + 1) for i in range(i0, i1 + 1)]

    def _tile(self, i: int, j: int) -> Features | None:
        bounded = self._usable is None  # a windowed map's tiles are reloaded (or re-extracted) when evicted
        with self._lock:
            if (i, j) in self._tiles:
                if bounded:
                    self._tiles.move_to_end((i, j))
                return self._tiles[i, j]
        store = self.store
        features = store.load(i, j) if store is not None and store.has(i, j) else self._extract_tile(i, j)
        with self._lock:
            self._tiles[i, j] = features
            while bounded and len(self._tiles) > CACHED_TILES:
                self._tiles.popitem(last=False)
        return features

    def _extract_tile(self, i: int, j: int) -> Features | None:
        width, height = self.size
        x0, y0 = i * self.tile, j * self.tile
        x1, y1 = min(x0 + self.tile, width), min(y0 + self.tile, height)
        own_map = self.to_map(np.array([[x0, y0], [x1 - 1, y1 - 1]]))
        mx0, my0 = np.floor(own_map[0]).astype(int).clip(0)
        mx1, my1 = np.ceil(own_map[1]).astype(int) + 1
        map_w, map_h = self.geomap.size
        margin = int(np.ceil(self.margin / self.scale))
        cx0, cy0 = max(mx0 - margin, 0), max(my0 - margin, 0)
        cx1, cy1 = min(mx1 + margin, map_w), min(my1 + margin, map_h)
        usable, ux, uy = self._usable_around(cx0, cy0, cx1, cy1)
        if usable[my0 - uy : my1 - uy, mx0 - ux : mx1 - ux].mean() < MIN_VALID_FRACTION:
            return None
        crop = self.geomap.image[cy0:cy1, cx0:cx1]
        if min(crop.shape[:2]) * self.scale < 16:
            return None
        if self.scale != 1.0:
            crop = cv2.resize(crop, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_CUBIC)
        found = self.extract(np.ascontiguousarray(crop))
        # crop pixel j is search-grid pixel cx0 * scale + j (cv2.resize keeps pixel centres aligned)
        shift_np = np.array([cx0, cy0], np.float64) * self.scale
        points = found.keypoints.detach().cpu().numpy().astype(np.float64) + shift_np
        on_map = np.round(self.to_map(points)).astype(int)
        col, row = np.clip(on_map[:, 0], 0, map_w - 1), np.clip(on_map[:, 1], 0, map_h - 1)
        own = (points[:, 0] >= x0 - 0.5) & (points[:, 0] < x1 - 0.5)
        own &= (points[:, 1] >= y0 - 0.5) & (points[:, 1] < y1 - 0.5)
        keep = torch.from_numpy(own & usable[row - uy, col - ux]).to(found.keypoints.device)
        shift = torch.tensor(shift_np, dtype=found.keypoints.dtype, device=found.keypoints.device)
        extras = {k: v[keep] for k, v in found.extras.items() if v.shape[0] == len(found)}
        return Features(
            found.keypoints[keep] + shift,
            found.descriptors[keep],
            found.scores[keep],
            self.size,
            extras,
        )

    def _usable_around(self, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, int, int]:
        """(usable mask covering map pixels [x0 - 1, x1 + 1) x [y0 - 1, y1 + 1) within the map, its
        column and row offsets): the whole map's mask, or a windowed map's computed for the crop alone
        (eroded with the margin of its neighbours read too, so it equals the whole map's)."""
        if self._usable is not None:
            return self._usable, 0, 0
        map_w, map_h = self.geomap.size
        ux0, uy0 = max(x0 - 1, 0), max(y0 - 1, 0)
        ux1, uy1 = min(x1 + 1, map_w), min(y1 + 1, map_h)
        pad = NODATA_MARGIN_PX
        rx0, ry0 = max(ux0 - pad, 0), max(uy0 - pad, 0)
        rx1, ry1 = min(ux1 + pad, map_w), min(uy1 + pad, map_h)
        valid = np.asarray(self.geomap.valid[ry0:ry1, rx0:rx1], np.uint8)
        # outside the map counts as valid (borderValue=1), as for the whole map
        eroded = cv2.erode(valid, _KERNEL, borderValue=1).astype(bool)
        return eroded[uy0 - ry0 : uy1 - ry0, ux0 - rx0 : ux1 - rx0], ux0, uy0


_KERNEL = np.ones((2 * NODATA_MARGIN_PX + 1,) * 2, np.uint8)


def _empty_like(size: tuple[int, int]) -> Features:
    return Features(torch.zeros((0, 2)), torch.zeros((0, 64)), torch.zeros((0,)), size)
