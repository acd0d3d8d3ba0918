"""Absolute localisation of camera frames on a georeferenced map: search, match, fix, check.

    localizer = MapLocalizer(build("xfeat(sparse)"), load_map("ortho.png"))
    result = localizer.localize(frame, K, stamp, R_map_body=attitude, height=agl)
    if result.fix.accepted: ...   # result.fix.pose.position: map metres, z = height above ground

The ROS nodes split this in two (the frontend searches and matches, the geometry node estimates
and checks); this class runs both halves in one place for evaluation and for tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ..geometry import GeometryResult, RobustParams
from ..maps.features import MapFeatures
from ..maps.georef import GeoMap
from ..matching.pipeline import Pipeline
from .fix import FixGate, MapFix, Prediction, estimate_fix
from .search import MapSearch
from .search_types import MapMatch, Prior, SearchConfig


@dataclass(frozen=True, eq=False)
class Localization:
    match: MapMatch
    fix: MapFix
    total_ms: float


class MapLocalizer:
    def __init__(
        self,
        pipeline: Pipeline,
        geomap: GeoMap,
        *,
        search: SearchConfig | None = None,
        gate: FixGate | None = None,
        robust: RobustParams | None = None,
        tile: int = 512,
        warm: bool = True,
    ) -> None:
        self.search = MapSearch.over(pipeline, geomap, search, tile)
        if warm:
            self.features.warm()  # map features once, up front, not during flight
        self.gate = gate or FixGate()
        self.robust = robust
        self.last_fix: MapFix | None = None

    @property
    def features(self) -> MapFeatures:
        """The map features of the search grid in use."""
        return self.search.features

    @property
    def geomap(self) -> GeoMap:
        return self.features.geomap

    def set_prior(self, prior: Prior) -> None:
        """An external position prior (e.g. the last GNSS fix before it was lost)."""
        self.search.set_prior(prior)

    def localize(
        self,
        image: np.ndarray,
        K: np.ndarray,
        stamp: float,
        *,
        dist: np.ndarray | None = None,
        R_map_body: np.ndarray | None = None,
        height: float | None = None,
        prediction: Prediction | None = None,
    ) -> Localization:
        """Search, match and check one frame; ``prediction``: where a navigation solution expects it
        (the fix must agree with it within their combined covariance). The search's candidates are
        checked in turn until one gives an accepted fix; else the first to give a pose (or the
        last) says why there is none."""
        start = time.perf_counter()
        correlate = prediction is not None
        match, fix = self._search(image, K, stamp, dist, R_map_body, height, prediction, correlate)
        self.accept(fix)
        return Localization(match, fix, (time.perf_counter() - start) * 1e3)

    def localize_whole_map(
        self,
        image: np.ndarray,
        K: np.ndarray,
        stamp: float,
        *,
        dist: np.ndarray | None = None,
        R_map_body: np.ndarray | None = None,
        height: float | None = None,
        prediction: Prediction | None = None,
        deadline: float | None = None,
    ) -> Localization:
        """``localize`` over the whole map as if there were no prior: a last resort for a frame the
        search around the prior found no fix in. The fix passes the same checks (the agreement with
        ``prediction`` included); only an accepted one changes the search's state. ``deadline`` (a
        ``time.perf_counter()`` value): no further heading or height is tried once it has passed."""
        start = time.perf_counter()
        search = self.search
        saved = search.prior, search.config
        search.prior, search.config = None, replace(search.config, acquire=False)
        try:
            match, fix = self._search(image, K, stamp, dist, R_map_body, height, prediction, False, deadline)
        finally:
            search.prior, search.config = saved
        if fix.accepted:
            self.accept(fix)
        return Localization(match, fix, (time.perf_counter() - start) * 1e3)

    def _search(
        self,
        image: np.ndarray,
        K: np.ndarray,
        stamp: float,
        dist: np.ndarray | None,
        R_map_body: np.ndarray | None,
        height: float | None,
        prediction: Prediction | None,
        correlate: bool,
        deadline: float | None = None,
    ) -> tuple[MapMatch, MapFix]:
        """The search's candidates checked in turn until one gives an accepted fix; else the first
        to give a pose (or the last) says why there is none."""
        reported: tuple[MapMatch, MapFix] | None = None
        candidates = self.search.candidates(
            image, K, stamp, R_map_body, height, correlate=correlate, deadline=deadline
        )
        for match in candidates:
            fix = self._fix(match, K, stamp, dist, R_map_body, height, prediction)
            if fix.accepted:
                return match, fix
            if reported is None or reported[1].pose is None:
                reported = (match, fix)
        return reported

    def _fix(
        self,
        match: MapMatch,
        K: np.ndarray,
        stamp: float,
        dist: np.ndarray | None,
        R_map_body: np.ndarray | None,
        height: float | None,
        prediction: Prediction | None,
    ) -> MapFix:
        if len(match) < 4:
            geometry = GeometryResult.failure("Homography", "", f"no matches: {match.strategy}", len(match))
            failed = "agreement" if match.agreement is not None else ""
            return MapFix(stamp, False, geometry.reason, geometry, None, failed, match.agreement)
        return estimate_fix(
            match.map_points,
            match.image_points,
            self.geomap.georef,
            K,
            stamp,
            dist=dist,
            robust=self.robust,
            gate=self.gate,
            previous=self.last_fix,
            measured_height=height,
            measured_R_map_body=R_map_body,
            prediction=prediction,
            agreement=match.agreement,
            from_prior=match.from_prior,
            terrain=self.geomap.terrain,
        )

    def forget(self) -> None:
        """No prior and no last fix: the next frame is searched over the whole map."""
        self.last_fix = None
        self.search.set_prior(None)

    def follow(self, other: MapLocalizer) -> None:
        """Search the frame ``other`` just failed on as it did: the same prior, radius and last fix."""
        self.search.prior = other.search.prior
        self.search.failures = max(other.search.failures - 1, 0)  # not counting that frame's failure
        self.last_fix = other.last_fix

    def accept(self, fix: MapFix) -> None:
        """Update the search and the jump check with the outcome of a frame."""
        if fix.accepted and fix.pose is not None:
            self.last_fix = fix
            pose = fix.pose
            self.search.set_prior(
                Prior(fix.stamp, pose.position[:2], pose.horizontal_sigma, pose.R_map_body, pose.height)
            )
        else:
            self.search.record_failure()
