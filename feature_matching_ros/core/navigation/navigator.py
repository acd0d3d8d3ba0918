"""A continuous navigation solution in the map frame: map fixes, carried between them by odometry.

    navigator = Navigator(build("sift"), load_map("ortho.png"))
    state = navigator.step(frame, K, stamp, height=agl)   # height and attitude inputs are optional
    if state.position is not None: ...                    # map metres, with state.covariance

Every frame is first registered to the keyframe odometry (``keyframe_odometry``), which moves the
solution from its last reference (a fix, or the frame a track started from) by the odometry's
displacement, rotated into the map. Its covariance grows with the odometry's own covariance and
with a relative scale error and heading error of that displacement. A frame without odometry
(turn, no texture) coasts on the last velocity, and the position uncertainty grows by
``coast_speed_sigma`` per second. The map search then looks around that prediction; a fix that
passes every check of ``FixGate`` (including agreement with the prediction within their combined
covariance) is fused by a Kalman update, which collapses the covariance to the fix's own plus the
map's georeference error. A frame the matcher finds no fix in is searched again by a fallback
matcher when one is given (another extractor finds other structure); where frames come seconds
apart (a survey camera), one neither fixes is then searched over the whole map, within the time
until the next frame is due, and its fix must still agree with the prediction. Before the first
fix there is no solution; after ``max_sigma_m`` of uncertainty the solution is dropped and the
search goes global again.

The solution's prediction and fusion are in ``solution``, the search on a thread of its own in
``background``, the settings in ``config``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from ..geometry import RobustParams
from ..geometry.frames import camera_rotation, rotation_from_euler
from ..geometry.ground_pose import GroundPose, horizontal_sigma
from ..maps.georef import GeoMap
from ..matching.pipeline import Pipeline
from ..odometry.keyframe_odometry import KeyframeOdometry, OdometryConfig, OdometryFrame, OdometryStep
from .background import NOT_SEARCHED, BackgroundSearch, FrameSearch, not_searched
from .config import NavigatorConfig
from .fix import FixGate, MapFix, Prediction
from .localizer import Localization, MapLocalizer
from .revisit import FrameMemory, Revisit
from .search_types import Prior, SearchConfig
from .solution import Solution, SolutionFilter


@dataclass(frozen=True, eq=False)
class NavigationState:
    """The outcome of one frame.

    position: map-frame (x, y, z) metres, z = height above ground, or None (no solution yet, or
    lost); covariance: its 3x3 covariance; source: "fix", "revisit" (registered to an earlier
    map-fixed frame), "odometry", "coast" or "none"; fix: this frame's map fix attempt (accepted
    or not; with ``background_search``, only that its search began or was skipped); odometry: its
    odometry step, if run; revisit: its re-localisation attempt, if made; R_map_body: the attitude
    estimate (heading from the last fix carried by odometry; level); late: a background search of an
    earlier frame (``late.fix.stamp``) that ended before this step (an accepted fix is fused at
    that frame and carried here: ``source`` is then "fix").
    """

    stamp: float
    position: np.ndarray | None
    covariance: np.ndarray | None
    source: str
    fix: MapFix
    odometry: OdometryStep | None
    localization: Localization
    R_map_body: np.ndarray | None = None
    revisit: Revisit | None = None
    late: Localization | None = None

    @property
    def horizontal_sigma(self) -> float | None:
        if self.covariance is None:
            return None
        return horizontal_sigma(self.covariance)


class Navigator:
    """Map localisation and keyframe odometry fused into one solution (see the module docstring)."""

    def __init__(
        self,
        pipeline: Pipeline,
        geomap: GeoMap,
        config: NavigatorConfig | None = None,
        *,
        search: SearchConfig | None = None,
        gate: FixGate | None = None,
        robust: RobustParams | None = None,
        odometry: OdometryConfig | None = None,
        odometry_pipeline: Pipeline | None = None,
        fallback_pipeline: Pipeline | None = None,
        warm: bool = True,
    ) -> None:
        self.config = config or NavigatorConfig()
        self.localizer = MapLocalizer(pipeline, geomap, search=search, gate=gate, robust=robust, warm=warm)
        # a second matcher for the frames the first finds no fix in (its own map features); the
        # acquisition by correlation does not depend on the matcher: the first search has done it
        self.fallback = None
        if fallback_pipeline is not None:
            fallback_search = dataclasses.replace(search or SearchConfig(), acquire=False)
            self.fallback = MapLocalizer(
                fallback_pipeline, geomap, search=fallback_search, gate=gate, robust=robust, warm=warm
            )
        self.odometry = (
            KeyframeOdometry(odometry_pipeline or pipeline, odometry) if self.config.odometry else None
        )
        self.memory = FrameMemory(self.config.revisit) if self.config.revisit and self.odometry else None
        self._filter = SolutionFilter(self.config, self.odometry)
        self._solution: Solution | None = None
        self._disagreements = 0
        self._last_stamp: float | None = None
        self._background = BackgroundSearch(self._localize) if self.config.background_search else None
        self._discard = False
        self._search_s: float | None = None  # how long the last search around a prior took

    @property
    def geomap(self) -> GeoMap:
        return self.localizer.geomap

    def step(
        self,
        image: np.ndarray,
        K: np.ndarray,
        stamp: float,
        *,
        dist: np.ndarray | None = None,
        R_map_body: np.ndarray | None = None,
        height: float | None = None,
    ) -> NavigationState:
        """Navigate one frame taken at ``stamp`` (s); ``height`` (m above ground) and ``R_map_body``
        are optional aids: without them the fix measures both."""
        started = time.perf_counter()
        late = self._collect()
        interval = math.inf if self._last_stamp is None else stamp - self._last_stamp
        self._last_stamp = stamp
        # the frame as odometry sees it: its features also serve re-localisation and the frame memory
        frame = self.odometry.frame(image) if self.odometry is not None else None
        odometry = self._odometry(image, frame, K, stamp, height, R_map_body)
        prediction = None
        if self._solution is not None:
            prediction = self._filter.predict(
                self._solution, stamp, odometry, R_map_body is not None, height is not None
            )
        if prediction is not None and horizontal_sigma(prediction.covariance) > self.config.max_sigma_m:
            prediction = self._drop()
        revisit = None
        if prediction is not None:
            revisit = self._revisit(frame, stamp, prediction, K, dist, height, R_map_body)
            if revisit is not None and revisit.accepted:
                prediction = self._filter.fuse(stamp, prediction, revisit.fix.pose, odometry)
        expected = None
        if prediction is not None:  # the map's error may differ between here and the last fix
            map_error = self.config.map_sigma_m**2 * np.eye(2)
            expected = Prediction(prediction.position[:2], prediction.covariance[:2, :2] + map_error)
            if height is None:  # the fix measures the height: it must agree with the predicted one
                expected = replace(expected, height=float(prediction.position[2]))
        whole_map = None  # the deadline of a search of the whole map, if one is due
        if expected is not None and interval >= self.config.whole_map_interval_s:
            whole_map = started + (self.config.whole_map_budget_s or interval)
        aids = dict(dist=dist, R_map_body=R_map_body, height=height, prediction=expected)
        search = FrameSearch(image, K, stamp, whole_map, aids, prediction, odometry, frame)
        behind = prediction is None or self._behind(started, interval)  # a search of the whole map is slow
        if self._background is not None and (self._background.busy or behind):
            result = self._submit(search)
            fix = result.fix
        else:
            self._set_prior(prediction)
            result = self._localize(search)
            fix = result.fix
            if self._judge(fix):
                prediction = None
        if fix.accepted and fix.pose is not None:
            self._fuse_fix(search, fix)
            source = "fix"
        elif prediction is not None:
            self._solution = prediction
            if revisit is not None and revisit.accepted:
                source = "revisit"
                self._remember(frame, stamp, K, revisit.fix.pose)
            elif late is not None and late.fix.accepted:
                source = "fix"  # of an earlier frame, carried here by odometry
            else:
                source = "odometry" if prediction.coast is None else "coast"
                if source == "odometry":
                    self._remember_carried(frame, stamp, K)
        else:
            source = "none"
        current = self._solution if source != "none" else None
        covariance = None
        if current is not None:  # relative to the map, plus the map's own error relative to the world
            covariance = current.covariance.copy()
            covariance[:2, :2] += self.config.map_sigma_m**2 * np.eye(2)
        return NavigationState(
            stamp,
            None if current is None else current.position.copy(),
            covariance,
            source,
            fix,
            odometry,
            result,
            None if current is None else rotation_from_euler(0.0, 0.0, current.yaw),
            revisit,
            late,
        )

    def finish(self) -> Localization | None:
        """Wait for a search still running in the background and fuse its fix: the last frames'
        outcome (None without one)."""
        if self._background is None or not self._background.busy:
            return None
        self._background.wait()
        return self._collect()

    def close(self) -> None:
        """Stop the background search (after the one running, if any)."""
        if self._background is not None:
            self._background.close()

    def _set_prior(self, prediction: Solution | None) -> None:
        """Centre the search on the prediction (in map coordinates: the map's error here may differ
        from the last fix's)."""
        if prediction is None:
            return
        sigma = math.hypot(horizontal_sigma(prediction.covariance), self.config.map_sigma_m)
        # after a turn without odometry the heading is unknown: the search then tries them all
        reference = prediction.reference
        heading_known = prediction.coast is None and (reference is None or reference.heading_known)
        # the tilt, where odometry carried it from a fix, sharpens a placement by correlation
        attitude = rotation_from_euler(0.0, 0.0, prediction.yaw)
        if prediction.attitude is not None and heading_known:
            attitude = prediction.attitude.R_map_body
        self.localizer.set_prior(
            Prior(
                prediction.stamp,
                prediction.position[:2],
                sigma,
                attitude,
                prediction.position[2],
                heading_known,
            )
        )

    def _behind(self, started: float, interval: float) -> bool:
        """Whether a search of the frame whose step began at ``started`` would end after the next
        frame is due, if it takes as long as the last search around a prior did."""
        last = self._search_s
        return last is None or time.perf_counter() - started + last > interval

    def _submit(self, search: FrameSearch) -> Localization:
        """Start the frame's map search in the background if none is running; its outcome is
        fused when a later step collects it."""
        if self._background.busy:
            reason = "not searched: the map search is busy with an earlier frame"
            return not_searched(search.stamp, NOT_SEARCHED[1], reason)
        self._set_prior(search.prediction)
        self._background.submit(search)
        return not_searched(search.stamp, NOT_SEARCHED[0], "searching the map in the background")

    def _collect(self) -> Localization | None:
        """A background search that has ended: its fix is judged against the prediction of its
        own frame and, if accepted, fused at that frame's stamp; the steps since then are redone by
        the odometry from there (``SolutionFilter.predict``)."""
        collected = self._background.collect() if self._background is not None else None
        if collected is None:
            return None
        search, result = collected
        if self._discard:  # the solution was dropped meanwhile: the search's prior no longer holds
            self._discard = False
            self._forget()
            return result
        fix = result.fix
        if not self._judge(fix) and fix.accepted and fix.pose is not None:
            self._fuse_fix(search, fix)
        return result

    def _judge(self, fix: MapFix) -> bool:
        """Count a fix that disagrees with the prediction: after ``reset_after`` in a row the
        prediction, not the map, is wrong, and the solution is dropped (True)."""
        if fix.failed == "innovation":
            self._disagreements += 1
            if self._disagreements >= self.config.reset_after:
                self._drop()
                return True
        elif fix.accepted:
            self._disagreements = 0
        return False

    def _fuse_fix(self, search: FrameSearch, fix: MapFix) -> None:
        self._solution = self._filter.fuse(search.stamp, search.prediction, fix.pose, search.odometry)
        self._remember(search.frame, search.stamp, search.K, fix.pose)

    def _localize(self, search: FrameSearch) -> Localization:
        """The map fix of a frame; where the matcher finds none (a fix that disagrees with the
        prediction aside), the fallback matcher searches the same frame around the same prior;
        then, with a ``whole_map`` deadline (``time.perf_counter()``), each searches the whole map."""
        started = time.perf_counter()
        result = self._around(search)
        self._search_s = time.perf_counter() - started  # what decides whether the next one runs in a step
        if result.fix.accepted or result.fix.failed == "innovation" or search.whole_map is None:
            return result
        image, K, stamp, whole_map, aids = search.image, search.K, search.stamp, search.whole_map, search.aids
        for localizer in (self.localizer, self.fallback):
            if localizer is None or time.perf_counter() > whole_map:
                continue
            wide = localizer.localize_whole_map(image, K, stamp, deadline=whole_map, **aids)
            if wide.fix.accepted:
                if localizer is not self.localizer:
                    self.localizer.accept(wide.fix)
                return wide
        return result

    def _around(self, search: FrameSearch) -> Localization:
        """The search around the prior, by the matcher and then by the fallback matcher."""
        image, K, stamp, aids = search.image, search.K, search.stamp, search.aids
        result = self.localizer.localize(image, K, stamp, **aids)
        if result.fix.accepted or result.fix.failed == "innovation":
            return result
        fallback = self.fallback
        if fallback is not None:
            fallback.follow(self.localizer)
            second = fallback.localize(image, K, stamp, **aids)
            if second.fix.accepted:
                self.localizer.accept(second.fix)
                return second
        return result

    def _revisit(
        self,
        frame: OdometryFrame | None,
        stamp: float,
        prediction: Solution,
        K: np.ndarray,
        dist: np.ndarray | None,
        height: float | None,
        R_map_body: np.ndarray | None,
    ) -> Revisit | None:
        """Re-localisation against remembered map-fixed frames, for an uncertain prediction."""
        memory = self.memory
        if memory is None or not len(memory) or frame is None:
            return None
        if horizontal_sigma(prediction.covariance) <= memory.config.min_sigma_m:
            return None
        expected = Prediction(prediction.position[:2], prediction.covariance[:2, :2])
        return memory.relocalize(
            self.odometry.pipeline,
            frame.features,
            K,
            stamp,
            expected,
            gate=self.localizer.gate,
            dist=dist,
            previous=self.localizer.last_fix,
            measured_height=height,
            measured_R_map_body=R_map_body,
        )

    def _remember(self, frame: OdometryFrame | None, stamp: float, K: np.ndarray, pose: GroundPose) -> None:
        """Keep a fixed frame with the fused solution's position and the fix's attitude, for later
        re-localisation."""
        if self.memory is None or frame is None:
            return
        solution = self._solution
        covariance = pose.covariance.copy()
        covariance[:3, :3] = solution.covariance
        self.memory.remember(stamp, frame, K, solution.position, pose.R_map_camera, covariance)

    def _remember_carried(self, frame: OdometryFrame | None, stamp: float, K: np.ndarray) -> None:
        """Keep a frame odometry carried from a fix, with its attitude, while it is placed certainly
        enough for a re-localisation against it to pass the fix checks: the frames just before a
        turn may be the only ones the next line overlaps."""
        solution = self._solution
        if self.memory is None or frame is None or solution.attitude is None:
            return
        if horizontal_sigma(solution.covariance) >= self.localizer.gate.max_sigma_m:
            return
        covariance = np.zeros((6, 6))
        covariance[:3, :3] = solution.covariance
        covariance[3:, 3:] = solution.attitude.covariance
        R_map_camera = camera_rotation(solution.attitude.R_map_body)
        self.memory.remember(stamp, frame, K, solution.position, R_map_camera, covariance)

    def _drop(self) -> None:
        """Forget the solution: the next fix starts a new one, found by a search of the whole map."""
        self._solution = None
        self._disagreements = 0
        if self._background is not None and self._background.busy:  # the search's state is the worker's
            self._discard = True
        else:
            self._forget()
        return None

    def _forget(self) -> None:
        self.localizer.forget()
        if self.fallback is not None:
            self.fallback.forget()

    def _odometry(
        self,
        image: np.ndarray,
        frame: OdometryFrame | None,
        K: np.ndarray,
        stamp: float,
        height: float | None,
        R_map_body: np.ndarray | None,
    ) -> OdometryStep | None:
        solution = self._solution
        if self.odometry is None:
            return None
        h = height if height is not None and height > 0 else (solution.position[2] if solution else None)
        if h is None or not math.isfinite(h) or h <= 0:
            return None  # no metric scale yet (and nothing to carry before the first fix)
        attitude = R_map_body
        if attitude is None and solution is not None:
            attitude = rotation_from_euler(0.0, 0.0, solution.yaw)
        return self.odometry.step(image, stamp, K, float(h), attitude, frame=frame)
