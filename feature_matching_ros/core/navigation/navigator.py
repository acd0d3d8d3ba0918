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
"""

from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import FeatureMatchingError
from ..geometry import GeometryResult, RobustParams
from ..geometry.frames import camera_rotation, euler_from_rotation, rotation_from_euler
from ..geometry.ground_pose import GroundPose, horizontal_sigma
from ..maps.georef import GeoMap
from ..matching.pipeline import Pipeline
from ..odometry.keyframe_odometry import KeyframeOdometry, OdometryConfig, OdometryFrame, OdometryStep
from .fix import FixGate, MapFix, Prediction
from .localizer import Localization, MapLocalizer
from .revisit import FrameMemory, Revisit, RevisitConfig
from .search import MapMatch, Prior, SearchConfig

NOT_SEARCHED = ("pending", "busy")  # MapFix.failed of a frame whose search runs in the background, or none


@dataclass(frozen=True)
class NavigatorConfig:
    """odometry: carry the solution between fixes by keyframe odometry (else only coast);
    odometry_scale_sigma: relative scale error of an odometry displacement (its metric scale comes
    from the height above ground), and the height's drift relative to the distance flown;
    odometry_heading_sigma_deg: heading error of a displacement;
    coast_speed_sigma: m/s of position uncertainty per second without odometry, with a known
    velocity; unknown_velocity_sigma: the same while no velocity is known (after a fix that ended a
    coast, the speed itself is the uncertainty); max_speed: m/s, odometry implying more is ignored;
    map_sigma_m: horizontal accuracy of the map's georeference: the solution is tracked relative to
    the map (fixes, odometry) and this is added to the covariance it reports, since averaging fixes
    cannot remove an error the map itself has there; max_sigma_m: beyond this
    horizontal standard deviation the solution is dropped; reset_after: consecutive fixes that pass
    every other check but disagree with the prediction before the solution is dropped (it is the
    prediction that is wrong then); odometry_min_inliers: a registration with fewer homography
    inliers (the count a map fix needs) moves the solution, but its step is trusted only to its
    own length in any direction (on the real Seneca flight, a 26-inlier registration across a turn
    was 45 % long); revisit: re-localise an uncertain prediction against earlier map-fixed frames
    (``revisit``; None turns it off, as does ``odometry``, whose features it reuses);
    fix_height_sigma: relative standard deviation of a map fix's height beyond what its fit's pixel
    noise gives (the map's local scale, relief the ground plane leaves out, tilt traded for height):
    on the real Seneca flight the fits claimed 5-10 cm where the heights were 1-2 m off, 18 m at worst;
    whole_map_interval_s: a frame that neither matcher fixes around the prediction is searched again
    over the whole map (``MapLocalizer.localize_whole_map``; its fix must still agree with the
    prediction) when it came at least this long after the frame before: a survey camera's seconds
    between frames leave time for it, a video camera's frames do not (inf: never);
    whole_map_budget_s: once the frame's step has taken this long, that search tries no further
    heading or height (0: the time since the frame before, so that the step ends about when the
    next frame is due); background_search: never fall behind the camera: a frame whose search would
    end after the next frame is due (the last search around a prior took longer than the time left
    until then; a search of the whole map, without a prediction, is taken to) is searched on a
    thread of its own, and the step returns after the odometry; while that search runs, frames are
    not searched. Its fix is judged against its own frame's prediction and fused at that frame's
    stamp by a later step, which carries it to its own frame by odometry. Frames whose search fits
    between them are searched in the step, as without it. The odometry's pipeline then runs on the
    stepping thread while the search's runs on its own: give the odometry one of its own
    (``odometry_pipeline``)."""

    odometry: bool = True
    odometry_scale_sigma: float = 0.1
    odometry_heading_sigma_deg: float = 3.0
    coast_speed_sigma: float = 8.0
    unknown_velocity_sigma: float = 20.0
    max_speed: float = 60.0
    map_sigma_m: float = 1.0
    max_sigma_m: float = 300.0
    reset_after: int = 3
    odometry_keypoints: int | None = None
    odometry_min_inliers: int = 30
    revisit: RevisitConfig | None = field(default_factory=RevisitConfig)
    fix_height_sigma: float = 0.05
    whole_map_interval_s: float = 3.0
    whole_map_budget_s: float = 0.0
    background_search: bool = False


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


@dataclass(frozen=True, eq=False)
class _Attitude:
    """A full attitude known from a fix (or carried from one by odometry) and the 3x3 covariance
    of small rotations about the map's axes."""

    R_map_body: np.ndarray
    covariance: np.ndarray


@dataclass
class _Reference:
    """Where odometry displacements are measured from: a frame of odometry track ``track`` with odom
    position ``odom`` (and covariance ``odom_cov``), whose navigation solution was ``position``,
    ``covariance``; ``yaw_offset`` rotates odom into map."""

    track: int
    odom: np.ndarray
    odom_cov: np.ndarray
    position: np.ndarray
    covariance: np.ndarray
    yaw_offset: float
    heading_known: bool = True
    attitude: _Attitude | None = None  # the frame's attitude from its fix
    R_odom_body: np.ndarray | None = None  # and in odom


@dataclass(frozen=True, eq=False)
class _Search:
    """A frame's map search: its inputs (``aids``: the keyword inputs of ``MapLocalizer.localize``;
    ``whole_map``: the deadline of a search of the whole map, if one is due) and what its fix is
    fused with (the frame's prediction, odometry and odometry frame)."""

    image: np.ndarray
    K: np.ndarray
    stamp: float
    whole_map: float | None
    aids: dict
    prediction: _Solution | None
    odometry: OdometryStep | None
    frame: OdometryFrame | None


@dataclass
class _Solution:
    stamp: float
    position: np.ndarray
    covariance: np.ndarray
    yaw: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    velocity_known: bool = False
    reference: _Reference | None = None
    coast: tuple[float, np.ndarray, np.ndarray] | None = None  # (stamp, position, covariance) at its start
    attitude: _Attitude | None = None


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
        self._solution: _Solution | None = None
        self._disagreements = 0
        self._last_stamp: float | None = None
        self._background = None
        if self.config.background_search:
            self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="map_search")
        self._pending: tuple[_Search, Future] | None = None
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
            prediction = self._predict(stamp, odometry, R_map_body is not None, height is not None)
        if prediction is not None and horizontal_sigma(prediction.covariance) > self.config.max_sigma_m:
            prediction = self._drop()
        revisit = None
        if prediction is not None:
            revisit = self._revisit(frame, stamp, prediction, K, dist, height, R_map_body)
            if revisit is not None and revisit.accepted:
                prediction = self._fused(stamp, prediction, revisit.fix.pose, odometry)
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
        search = _Search(image, K, stamp, whole_map, aids, prediction, odometry, frame)
        behind = prediction is None or self._behind(started, interval)  # a search of the whole map is slow
        if self._background is not None and (self._pending is not None or behind):
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
        if self._background is None or self._pending is None:
            return None
        wait([self._pending[1]])
        return self._collect()

    def close(self) -> None:
        """Stop the background search (after the one running, if any)."""
        if self._background is not None:
            self._background.shutdown(wait=True, cancel_futures=True)

    def _set_prior(self, prediction: _Solution | None) -> None:
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

    def _submit(self, search: _Search) -> Localization:
        """Start the frame's map search in the background if none is running; its outcome is
        fused when a later step collects it."""
        if self._pending is not None:
            reason = "not searched: the map search is busy with an earlier frame"
            return _not_searched(search.stamp, NOT_SEARCHED[1], reason)
        self._set_prior(search.prediction)
        self._pending = (search, self._background.submit(self._localize, search))
        return _not_searched(search.stamp, NOT_SEARCHED[0], "searching the map in the background")

    def _collect(self) -> Localization | None:
        """A background search that has ended: its fix is judged against the prediction of its
        own frame and, if accepted, fused at that frame's stamp; the steps since then are redone by
        the odometry from there (``_predict``)."""
        if self._pending is None or not self._pending[1].done():
            return None
        (search, future), self._pending = self._pending, None
        try:
            result = future.result()
        except FeatureMatchingError as exc:  # the searched frame's outcome: no later step fails for it
            result = _not_searched(search.stamp, "search", f"the map search failed: {exc}")
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

    def _fuse_fix(self, search: _Search, fix: MapFix) -> None:
        self._solution = self._fused(search.stamp, search.prediction, fix.pose, search.odometry)
        self._remember(search.frame, search.stamp, search.K, fix.pose)

    def _localize(self, search: _Search) -> Localization:
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

    def _around(self, search: _Search) -> Localization:
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
        prediction: _Solution,
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
        if self._pending is not None:  # the search's state is the worker's until it ends
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

    def _predict(
        self, stamp: float, odometry: OdometryStep | None, attitude_input: bool, height_input: bool
    ) -> _Solution:
        s = self._solution
        c = self.config
        reference = s.reference
        if (
            odometry is not None
            and odometry.registered
            and reference is not None
            and odometry.track == reference.track
        ):
            rotation = _rot2(reference.yaw_offset)
            displacement = rotation @ (odometry.position[:2] - reference.odom[:2])
            position = reference.position.copy()
            position[:2] += displacement
            position[2] = odometry.position[2]
            grown = odometry.covariance[:3, :3] - reference.odom_cov[:3, :3]
            grown[:2, :2] = rotation @ grown[:2, :2] @ rotation.T
            across = np.array([-displacement[1], displacement[0]])
            grown[:2, :2] += c.odometry_scale_sigma**2 * np.outer(displacement, displacement)
            if not height_input:  # else the altitude input is the odometry's height
                # the height drifts as the distance flown does (registrations claimed centimetres where
                # the height ran metres off on the real Seneca flight)
                grown[2, 2] += c.odometry_scale_sigma**2 * float(displacement @ displacement)
            if reference.heading_known:
                grown[:2, :2] += math.radians(c.odometry_heading_sigma_deg) ** 2 * np.outer(across, across)
            else:  # a track begun after a turn without a fix or attitude input: any direction
                grown[:2, :2] += float(displacement @ displacement) * np.eye(2)
            covariance = reference.covariance + _psd(grown)
            yaw = euler_from_rotation(odometry.R_odom_body)[2] + reference.yaw_offset
            dt = stamp - s.stamp
            step = float(np.linalg.norm(position[:2] - s.position[:2]))
            if dt > 0 and step <= c.max_speed * dt + 3.0 * horizontal_sigma(s.covariance):
                if odometry.num_inliers < c.odometry_min_inliers:
                    return self._weak_step(s, odometry, position, yaw)
                measured = s.coast is None
                velocity = (position[:2] - s.position[:2]) / dt if measured else s.velocity
                attitude = self._carried_attitude(reference, odometry)
                return _Solution(
                    stamp, position, covariance, yaw, velocity, measured, reference, None, attitude
                )
            reference = None  # an implausible registration: this track is not to be trusted
        # No odometry for this frame: coast on the last velocity. The heading of a track that starts
        # here is known only from an attitude input.
        heading_known = attitude_input
        start = s.coast or (s.stamp, s.position, s.covariance)
        elapsed = max(stamp - start[0], 0.0)
        position = start[1].copy()
        rate = c.coast_speed_sigma if s.velocity_known else c.unknown_velocity_sigma
        if s.velocity_known:
            position[:2] += s.velocity * elapsed
        covariance = start[2].copy()
        covariance[:2, :2] += (rate * elapsed) ** 2 * np.eye(2)
        covariance[2, 2] += (0.1 * rate * elapsed) ** 2
        coasting = _Solution(stamp, position, covariance, s.yaw, s.velocity, s.velocity_known, None, start)
        unanchored = reference is None or (odometry is not None and odometry.track != reference.track)
        if odometry is not None and (odometry.origin is not None or (odometry.registered and unanchored)):
            # an odometry track starts (or is first seen) at this frame: measure later displacements from here
            coasting.reference = self._reference(odometry, position, covariance, s.yaw, heading_known)
        return coasting

    def _weak_step(
        self,
        s: _Solution,
        odometry: OdometryStep,
        position: np.ndarray,
        yaw: float,
    ) -> _Solution:
        """A weakly supported registration: its step from the last solution is uncertain by its
        own length in every direction, and later steps are measured from here, with the heading
        unknown (the registration's rotation is no more trusted than its translation)."""
        step = position[:2] - s.position[:2]
        covariance = s.covariance.copy()
        covariance[:2, :2] += float(step @ step) * np.eye(2)
        covariance[2, 2] += (self.config.odometry_scale_sigma * position[2]) ** 2
        weak = _Solution(odometry.stamp, position, covariance, yaw, s.velocity, False)
        weak.reference = self._reference(odometry, position, covariance, yaw, heading_known=False)
        return weak

    def _fused(
        self, stamp: float, prediction: _Solution | None, pose: GroundPose, odometry: OdometryStep | None
    ) -> _Solution:
        z = pose.position.copy()
        R = pose.covariance[:3, :3].copy()
        R[2, 2] += (self.config.fix_height_sigma * z[2]) ** 2
        velocity, known = np.zeros(2), False
        if prediction is None:
            position, covariance = z, R
        else:
            gain = prediction.covariance @ np.linalg.inv(prediction.covariance + R)
            position = prediction.position + gain @ (z - prediction.position)
            covariance = _psd((np.eye(3) - gain) @ prediction.covariance)
            if prediction.coast is None:  # moved by odometry: its velocity is a measurement, not a correction
                velocity, known = prediction.velocity, prediction.velocity_known
        yaw = pose.yaw
        attitude = _Attitude(pose.R_map_body, pose.covariance[3:, 3:].copy())
        solution = _Solution(stamp, position, covariance, yaw, velocity, known, attitude=attitude)
        if odometry is not None and (odometry.registered or odometry.origin is not None):
            solution.reference = self._reference(odometry, position, covariance, yaw, attitude=attitude)
        return solution

    @staticmethod
    def _carried_attitude(reference: _Reference, odometry: OdometryStep) -> _Attitude | None:
        """The reference frame's attitude turned by the odometry's rotation since that frame."""
        if reference.attitude is None or reference.R_odom_body is None:
            return None
        R_map_body = reference.attitude.R_map_body @ reference.R_odom_body.T @ odometry.R_odom_body
        turn = np.eye(3)
        turn[:2, :2] = _rot2(reference.yaw_offset)
        grown = turn @ (odometry.covariance[3:, 3:] - reference.odom_cov[3:, 3:]) @ turn.T
        return _Attitude(R_map_body, reference.attitude.covariance + _psd(grown))

    def _reference(
        self,
        odometry: OdometryStep,
        position: np.ndarray,
        covariance: np.ndarray,
        yaw: float,
        heading_known: bool = True,
        attitude: _Attitude | None = None,
    ) -> _Reference:
        if odometry.registered:
            odom, odom_cov = odometry.position, odometry.covariance
            R_odom_body = odometry.R_odom_body
        else:
            odom = odometry.origin
            odom_cov = self.odometry.tracker.covariance(odometry.stamp)
            R_odom_body = self.odometry.tracker.attitude(odometry.stamp)
        odom_yaw = euler_from_rotation(R_odom_body)[2]
        return _Reference(
            odometry.track,
            odom.copy(),
            odom_cov.copy(),
            position.copy(),
            covariance.copy(),
            yaw - odom_yaw,
            heading_known,
            attitude,
            R_odom_body.copy(),
        )


def _not_searched(stamp: float, failed: str, reason: str) -> Localization:
    geometry = GeometryResult.failure("Homography", "", reason, 0)
    nothing = np.zeros((0, 2))
    match = MapMatch(nothing, nothing, np.zeros(0), None, reason)
    return Localization(match, MapFix(stamp, False, reason, geometry, None, failed), 0.0)


def _rot2(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _psd(matrix: np.ndarray) -> np.ndarray:
    """The nearest symmetric positive semi-definite matrix (negative eigenvalues clipped to zero)."""
    symmetric = 0.5 * (matrix + matrix.T)
    values, vectors = np.linalg.eigh(symmetric)
    return (vectors * np.clip(values, 0.0, None)) @ vectors.T
