"""Where to look on the map, and matching a camera frame there.

The search is centred on a position prior: the last accepted fix, or an external prior (odometry,
GNSS before it was lost). Its radius grows with the time since that prior (a speed bound) and
doubles with every frame that failed to give a fix. Without a prior, or when the radius outgrows
the map, the whole map is swept window by window and the best window wins (global search); where
that finds nothing and the attitude is measured, the frame is placed by correlation over the whole
map, and two consecutive placements must agree before they are matched (acquisition).

Before matching, the frame is rectified onto the search grid (``rectify``): the map's pixel axes,
at the map's ground sample distance divided by ``map_upsample`` (a camera much finer than the map
loses its detail when shrunk all the way to map resolution). The attitude used is the best at
hand: the measured one; else the prior's heading over level flight while the prior is fresh; else,
once frames failed or the whole map is searched, every heading hypothesis (one suffices for a
rotation-invariant extractor). The height is the measured one, else the prior's, else
``default_height``, else each of ``height_hypotheses``. Matched points come back in map pixels and
in pixels of the original frame.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from ..errors import FeatureMatchingError
from ..geometry.frames import camera_rotation, euler_from_rotation, rotation_from_euler
from ..image import equalized
from ..maps.feature_cache import FeatureCache
from ..maps.features import MapFeatures, Window
from ..maps.georef import GeoMap, GeoReference
from ..matching.pipeline import Pipeline
from .correlate import Acquisition, place, place_anywhere
from .rectify import Rectified, rectify
from .refine import frame_blur, refine_matches, refine_on_map
from .search_types import MapMatch, Prior, SearchConfig
from .verify import Agreement, verify_matches
from .windows import match_window, sweep


class MapSearch:
    """Matches frames against ``features`` (a tiled map), keeping the search state between frames."""

    def __init__(self, pipeline: Pipeline, features: MapFeatures, config: SearchConfig | None = None) -> None:
        self.pipeline = pipeline
        self.features = features  # the search grid of the latest frame
        self._grids = {features.scale: features}
        self.config = config or SearchConfig()
        self.prior: Prior | None = None
        self.failures = 0
        self.acquisition = Acquisition(self.config.max_speed, self.config.correlate_exclusion_m)

    @classmethod
    def over(
        cls, pipeline: Pipeline, geomap: GeoMap, config: SearchConfig | None = None, tile: int = 512
    ) -> MapSearch:
        """A search over ``geomap`` whose tile features are extracted on the configured search grid
        (and cached on disk for a windowed map, ``map_cache``)."""
        config = config or SearchConfig()
        cache = FeatureCache.for_map(geomap, pipeline)
        scale = max(config.map_upsample, 1.0)
        features = MapFeatures(geomap, pipeline.extract, tile=tile, scale=scale, cache=cache)
        return cls(pipeline, features, config)

    def grid_scale(self, K: np.ndarray, height: float) -> float:
        """Search-grid pixels per map pixel for a camera ``height`` m above ground: the configured
        ``map_upsample``, or (0: auto) 2 when the map's pixel is 3 or more times the camera's ground
        sample distance, else 1. Upsampling further only interpolates: on a simulated flight against
        a blurred 1 m/px map (frames at 0.18 m/px) a x3 grid fixed 0 of 8 frames, x2 7 and x1 5."""
        if self.config.map_upsample > 0:
            return float(self.config.map_upsample)
        camera_gsd = height / float(K[0, 0])
        return float(np.clip(round(self.georef.ground_sample_distance / (2.0 * camera_gsd)), 1, 2))

    def _grid(self, scale: float) -> MapFeatures:
        if scale not in self._grids:  # tiles of a new grid are extracted as they are first searched
            base = self.features
            self._grids[scale] = MapFeatures(
                base.geomap, base.extract, base.tile, base.margin, scale, cache=base.cache
            )
        return self._grids[scale]

    @property
    def georef(self) -> GeoReference:
        return self.features.geomap.georef

    def set_prior(self, prior: Prior | None) -> None:
        """A fix or an external position; resets the failure count."""
        self.prior = prior
        self.failures = 0
        self.acquisition.reset()

    def record_failure(self) -> None:
        self.failures += 1

    def radius(self, stamp: float) -> float | None:
        """Search radius in metres at ``stamp``; None means search the whole map."""
        if self.prior is None:
            return None
        c = self.config
        elapsed = max(stamp - self.prior.stamp, 0.0)
        grown = (
            c.margin_m * c.widen ** min(self.failures, 30) + c.max_speed * elapsed + 3.0 * self.prior.sigma
        )
        lo, hi = self.features.geomap.extent()
        return None if grown > float(np.max(hi - lo)) else grown

    def match(
        self,
        image: np.ndarray,
        K: np.ndarray,
        stamp: float,
        R_map_body: np.ndarray | None = None,
        height: float | None = None,
        correlate: bool = False,
    ) -> MapMatch:
        """Match ``image`` (taken at ``stamp`` s by a camera with intrinsics K) against the map: the
        first usable one of ``candidates``, else the last (which says why there is none)."""
        last = None
        for last in self.candidates(image, K, stamp, R_map_body, height, correlate):
            if self._usable(last):
                break
        return last

    def candidates(
        self,
        image: np.ndarray,
        K: np.ndarray,
        stamp: float,
        R_map_body: np.ndarray | None = None,
        height: float | None = None,
        correlate: bool = False,
        deadline: float | None = None,
    ) -> Iterator[MapMatch]:
        """The matches of ``image``, most direct first, each computed only when asked for: the
        keypoint matches of the headings and heights tried, a tier of headings at a time
        (``_attitudes``), the usable ones by their support (none usable: the best one, which says
        why); then, where the prior is tilted, keypoints again on the frame rectified by that tilt;
        around a prior, the placement by correlation (``correlate``: the caller can confirm a match
        placed around the prior, see ``SearchConfig.correlate``); without one, the acquisition over
        the whole map (also a placement still waiting for the next frame). The later ones are
        yielded only when usable or, for the acquisition, waiting. ``deadline`` (a
        ``time.perf_counter()`` value): past it, no further heading or height is tried (the first
        always is)."""
        radius = self.radius(stamp)
        heights = self._heights(height)
        best: MapMatch | None = None
        for attitudes in self._attitudes(R_map_body, radius):
            found = []
            for h, R in itertools.product(heights, attitudes):
                if (best is not None or found) and deadline is not None and time.perf_counter() > deadline:
                    break
                found.append(self._match_one(image, K, R, h, stamp, radius))
            if not found:
                break
            ranked = sorted(found, key=lambda match: -match.support)  # stable: the first tried wins a tie
            if best is None or ranked[0].support > best.support:
                best = ranked[0]
            yield from (match for match in ranked if self._usable(match))
        if not self._usable(best):
            yield best
        tilted = self._tilted_prior(R_map_body, radius)
        if tilted is not None:  # rectified by the prior's tilt as well as its heading
            found = self._match_one(image, K, tilted, heights[0], stamp, radius)
            if self._usable(found):
                yield replace(found, strategy=found.strategy.replace("prior", "prior+tilted", 1))
        if correlate and self._correlatable(R_map_body, radius):
            # the prior's full attitude where it has one: a placement is sharper tilted than level
            attitude = R_map_body if R_map_body is not None else self.prior.R_map_body
            placed = self._correlated(image, K, attitude, heights[0], radius)
            if placed is not None:
                yield placed[0]
        if radius is None and not self._usable(best) and self._acquirable(R_map_body, height):
            acquired = self._acquire(image, K, R_map_body, heights[0], stamp)
            if acquired is not None:
                yield acquired

    def _usable(self, match: MapMatch) -> bool:
        verified = match.agreement is not None or not self.config.verify
        return verified and len(match) >= self.config.min_matches

    def _tilted_prior(self, R_map_body: np.ndarray | None, radius: float | None) -> np.ndarray | None:
        """The prior's attitude where the search used only its heading and it is tilted, else None."""
        prior = self.prior
        if R_map_body is not None or prior is None or prior.R_map_body is None or radius is None:
            return None
        if not prior.heading_known or self.failures != 0 or not self.config.tilted_retry:
            return None
        return prior.R_map_body if prior.R_map_body[2, 2] < math.cos(math.radians(1.0)) else None

    def _acquirable(self, R_map_body: np.ndarray | None, height: float | None) -> bool:
        c, geomap = self.config, self.features.geomap
        known_height = len(self._heights(height)) == 1
        height_px, width_px = geomap.valid.shape[:2]  # a windowed map has a shape, not a size
        small = height_px * width_px <= c.acquire_max_mpx * 1e6
        return c.acquire and c.verify and R_map_body is not None and known_height and small

    def _acquire(
        self, image: np.ndarray, K: np.ndarray, R_map_body: np.ndarray, height: float, stamp: float
    ) -> MapMatch | None:
        """The frame placed over the whole map, matched there once the next placement confirms it;
        a waiting placement says so; None when there is no clear placement."""
        placed = self._correlated(image, K, R_map_body, height, None)
        if placed is None:
            return None
        match, nadir = placed
        if self.acquisition.confirm(stamp, nadir):
            return match
        east, north = nadir
        return _nothing(
            f"placed by correlation at ({east:.0f}, {north:.0f}) m without a prior; the next frame must "
            "confirm it",
            match.times_ms,
        )

    def _correlatable(self, R_map_body: np.ndarray | None, radius: float | None) -> bool:
        prior, c = self.prior, self.config
        if not (c.correlate and c.verify) or prior is None or radius is None:
            return False  # a placement is only ever accepted with the map agreement
        if prior.sigma > c.correlate_max_sigma_m:
            return False
        return R_map_body is not None or (prior.R_map_body is not None and prior.heading_known)

    def _correlated(
        self, image: np.ndarray, K: np.ndarray, R_map_body: np.ndarray, height: float, radius: float | None
    ) -> tuple[MapMatch, np.ndarray] | None:
        """The frame placed by gradient correlation within ``radius`` m of the prior (None: over the
        whole map), its correspondences from direct alignment, verified like matches, and the map
        position (metres) of its nadir; None when no placement is clear enough."""
        times: dict[str, float] = {}
        start = time.perf_counter()
        georef, geomap, c = self.georef, self.features.geomap, self.config
        try:
            view = rectify(image, K, camera_rotation(R_map_body), height, georef.affine[:, :2])
        except FeatureMatchingError:
            return None
        gsd = georef.ground_sample_distance
        exclusion = max(int(round(c.correlate_exclusion_m / gsd)), 1)
        if radius is None:
            placement = place_anywhere(view.image, geomap.image, geomap.valid, exclusion)
            min_ratio, strategy = c.acquire_min_ratio, "acquired+correlated+refined"
        else:
            expected = georef.map_to_pixel(self.prior.position[:2])[0] - view.nadir
            margin = int(math.ceil(radius / gsd))
            placement = place(view.image, geomap.image, geomap.valid, expected, margin, exclusion)
            min_ratio, strategy = c.correlate_min_ratio, "prior+correlated+refined"
        times["correlate"] = (time.perf_counter() - start) * 1e3
        if placement is None or placement.ratio < min_ratio:
            return None
        shift = np.array([[1.0, 0.0, placement.offset[0]], [0.0, 1.0, placement.offset[1]], [0.0, 0.0, 1.0]])
        H_map_to_frame = np.linalg.inv(shift @ view.H)
        start = time.perf_counter()
        map_points, image_points = refine_on_map(
            geomap.image, geomap.valid, image, H_map_to_frame, blur_frame=frame_blur(georef, K, height)
        )
        times["refine"] = (time.perf_counter() - start) * 1e3
        if len(map_points) < c.min_matches:
            return None
        start = time.perf_counter()
        agreement, why = verify_matches(
            geomap, image, K, height, map_points, image_points, c.min_agreement, c.min_peak
        )
        times["verify"] = (time.perf_counter() - start) * 1e3
        if why:
            return None
        match = MapMatch(
            map_points,
            image_points,
            np.ones(len(map_points)),
            None,
            strategy,
            times_ms=times,
            support=len(map_points),
            agreement=agreement,
            from_prior=radius is not None,
        )
        return match, georef.pixel_to_map((placement.offset + view.nadir)[None])[0]

    def _heights(self, height: float | None) -> list[float]:
        for candidate in (height, self.prior.height if self.prior else None, self.config.default_height):
            if candidate is not None and math.isfinite(candidate) and candidate > 0:
                return [float(candidate)]
        return [float(h) for h in self.config.height_hypotheses]

    def _attitudes(self, R_map_body: np.ndarray | None, radius: float | None) -> list[list[np.ndarray]]:
        """The attitudes to rectify the frame by, in tiers: a later tier is tried only when no match
        of the earlier ones gave a fix."""
        if R_map_body is not None:
            return [[np.asarray(R_map_body, np.float64)]]
        known = self.prior is not None and self.prior.R_map_body is not None
        yaw = euler_from_rotation(self.prior.R_map_body)[2] if known else 0.0
        if known and self.prior.heading_known and radius is not None and self.failures == 0:
            return [[rotation_from_euler(0.0, 0.0, yaw)]]
        n = max(self.config.heading_hypotheses, 1)
        headings = [rotation_from_euler(0.0, 0.0, yaw + 2 * math.pi * k / n) for k in range(n)]
        if not getattr(self.pipeline.extractor, "rotation_invariant", False):
            return [headings]
        # a rotation-invariant extractor may still need the frame turned near its own heading (the
        # first frames of the real Seneca flight match the mosaic only so): over the whole map, the
        # other headings are the next tier
        return [headings[:1]] if radius is not None else [headings[:1], headings[1:]]

    def _match_one(
        self,
        image: np.ndarray,
        K: np.ndarray,
        R_map_body: np.ndarray,
        height: float,
        stamp: float,
        radius: float | None,
    ) -> MapMatch:
        times: dict[str, float] = {}
        self.features = self._grid(self.grid_scale(K, height))
        start = time.perf_counter()
        try:
            grid = self.georef.affine[:, :2] / self.features.scale
            view = rectify(image, K, camera_rotation(R_map_body), height, grid)
        except FeatureMatchingError as exc:
            return _nothing(str(exc))
        times["rectify"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        query = self.pipeline.extract(equalized(view.image) if self.config.equalize else view.image)
        times["extract"] = (time.perf_counter() - start) * 1e3
        if len(query) < self.config.min_matches:
            return _nothing(f"only {len(query)} keypoints in the frame", times)
        size = self.features.size
        half = np.array(view.image.shape[1::-1], np.float64) / 2
        start = time.perf_counter()
        guide = None
        if radius is not None:
            centre = self.features.from_map(self.georef.map_to_pixel(self.prior.position[:2])[0])
            extra = radius / self.georef.ground_sample_distance * self.features.scale
            windows = [Window.around(centre, half[0] + extra, half[1] + extra, size)]
            strategy = "prior"
            guide = self._guide(centre, view)
        else:
            windows = sweep(half, size, self.config.sweep_overlap)
            strategy = "sweep"
        best = None
        for window in windows:
            found = match_window(
                self.pipeline, self.features, self.config.min_matches, query, view, window, strategy, guide
            )
            if found is not None and (best is None or found.support > best.support):
                best = found
        times["match"] = (time.perf_counter() - start) * 1e3
        if best is None:
            return _nothing(f"no map features in the searched area ({strategy})", times)
        result = best
        strategy = result.strategy
        map_points, image_points, scores = result.map_points, result.image_points, result.scores
        if self.config.refine and len(map_points) >= 4:
            start = time.perf_counter()
            refined = refine_matches(
                self.features.geomap, image, K, height, map_points, image_points, self.config.min_matches
            )
            times["refine"] = (time.perf_counter() - start) * 1e3
            if refined is not None:
                map_points, image_points = refined
                scores = np.ones(len(map_points))
                strategy += "+refined"
        agreement = None
        if self.config.verify and len(map_points) >= 4:
            start = time.perf_counter()
            c = self.config
            agreement, why = verify_matches(
                self.features.geomap, image, K, height, map_points, image_points, c.min_agreement, c.min_peak
            )
            times["verify"] = (time.perf_counter() - start) * 1e3
            if why:
                return _nothing(why, times, agreement)
        return MapMatch(
            map_points,
            image_points,
            scores,
            result.window,
            strategy,
            result.num_map_keypoints,
            len(query),
            times,
            result.support,
            agreement,
        )

    def _guide(self, centre: np.ndarray, view: Rectified) -> tuple[np.ndarray, float] | None:
        """(search-grid offset of rectified pixels, radius in search-grid pixels) for guided matching."""
        c = self.config
        ratio = getattr(self.pipeline.matcher, "ratio_threshold", "n/a")
        if not c.guided or self.prior.sigma > c.guided_max_sigma_m or ratio == "n/a":
            return None
        if self.prior.R_map_body is None or not self.prior.heading_known:
            return None  # the rectified frame may be turned any way
        metres = 3.0 * self.prior.sigma + c.guided_margin_m
        return centre - view.nadir, metres / self.georef.ground_sample_distance * self.features.scale


def _nothing(
    reason: str, times: dict[str, float] | None = None, agreement: Agreement | None = None
) -> MapMatch:
    empty = np.zeros((0, 2))
    return MapMatch(empty, empty, np.zeros(0), None, reason, times_ms=times or {}, agreement=agreement)
