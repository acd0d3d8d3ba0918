"""navigator_node: camera frames in; the continuous navigation solution in the map frame out.

A thin adapter over ``core.navigation.navigator.Navigator`` (map fixes carried between them by keyframe
odometry): the callbacks only hand the newest image + camera_info pair to one worker thread, which
converts it, takes the attitude and altitude aids of its stamp and steps the navigator. A frame
with a solution publishes ``pose`` (PoseWithCovarianceStamped), ``odometry`` (nav_msgs/Odometry)
and, when the map's georeference has a geodetic origin, ``fix`` (NavSatFix), all in the map frame;
once the solutions of ``velocity_window`` seconds give one (``core.navigation.velocity``), the velocity
on ``velocity`` (TwistWithCovarianceStamped, map frame ENU, stamped at the window's mean stamp) and
in the odometry's twist (child frame: the body, FLU, rotated by the pose's own orientation, so that
R v_body is the map velocity exactly; REP 103/105). Every processed frame publishes its status on
``geometry`` (GeometryEstimate: the fix attempt's geometry, ``pose_published``, and ``pose_status``
naming the solution's source and the fix's verdict). Before the first fix nothing but the status is
published. Bad input and any failure of a frame are a diagnostics ERROR; the node keeps running.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped, TwistWithCovarianceStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, NavSatFix
from std_msgs.msg import Header

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.maps.georef import GeoReference, load_map
from feature_matching_ros.core.matching import inference, registry
from feature_matching_ros.core.matching.zoo import load_zoo
from feature_matching_ros.core.navigation.background import NOT_SEARCHED
from feature_matching_ros.core.navigation.fix import MapFix
from feature_matching_ros.core.navigation.navigator import NavigationState, Navigator
from feature_matching_ros.core.navigation.velocity import SolutionVelocity, VelocityConfig
from feature_matching_ros.msg import GeometryEstimate

from .. import params
from ..conversions.aids import NavigationAids, stamp_seconds
from ..conversions.camera import CameraInfoError, CameraModel, camera_from_info
from ..conversions.frame_size import decode_frame, fit_frame
from ..conversions.messages import (
    geometry_estimate,
    map_pose_message,
    no_fix_navsatfix,
    odometry_message,
    position_navsatfix,
    twist_of,
    velocity_message,
)
from ..conversions.pose_check import MAX_HEIGHT_M, MAX_MAP_DISTANCE_M, pose_problem
from ..infrastructure import topics
from ..infrastructure.diagnostics import Monitor, ThrottledLog, steady_timer, to_status
from ..infrastructure.latest import LatestWorker
from ..infrastructure.qos import RELIABLE
from ..params.checks import change_problem
from .camera_input import Frame, subscribe_camera

# Variance (rad^2) of the rotation part of a pose that is not a fix: the attitude is then the
# attitude input or a level heading estimate, not a measurement of this frame.
UNKNOWN_ROTATION_VARIANCE = 1.0e3
# How long the worker waits for a frame's attitude/altitude to arrive after the frame itself, s.
AID_WAIT = 0.05
# Settings that need a new navigator (pipeline, map features, search, gate) when they change; the
# solution starts over then.
NAVIGATOR_PARAMS = tuple(
    s.name
    for s in params.NAVIGATOR_NODE
    if not s.read_only and s.name not in ("map_frame", "base_frame", "aid_max_age", "diagnostics_period")
)


class NavigatorNode(Node):
    def __init__(self, node_name: str = "navigator", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        params.declare(self, params.NAVIGATOR_NODE)
        self.monitor = Monitor()
        self._log = ThrottledLog(self.get_logger().error)
        self._zoo = load_zoo()
        self._lock = threading.Lock()
        self._dirty = True
        self._navigator: Navigator | None = None
        self._georef: GeoReference | None = None
        self._last: NavigationState | None = None
        self._published_once = False
        self._sources: Counter[str] = Counter()  # frames per solution source
        self._velocity = SolutionVelocity(
            VelocityConfig(
                window_s=self.get_parameter("velocity_window").value,
                max_sigma=self.get_parameter("velocity_max_sigma").value,
            )
        )
        self._velocities = 0  # velocities published

        threads = self.get_parameter("num_threads").value
        if threads:
            import torch

            torch.set_num_threads(threads)

        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, topics.POSE, RELIABLE)
        self.odometry_pub = self.create_publisher(Odometry, topics.ODOMETRY, RELIABLE)
        self.fix_pub = self.create_publisher(NavSatFix, topics.FIX, RELIABLE)
        self.velocity_pub = self.create_publisher(TwistWithCovarianceStamped, topics.VELOCITY, RELIABLE)
        self.status_pub = self.create_publisher(GeometryEstimate, topics.GEOMETRY, RELIABLE)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, RELIABLE)
        value = self.get_parameter
        self.aids = NavigationAids(
            self,
            value("attitude_input").value,
            value("use_altitude").value,
            value("aid_max_age").value,
            self._error,
        )
        self._camera_subs, self._pairing = subscribe_camera(self, self._on_frame)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if hasattr(self, "add_post_set_parameters_callback"):
            self.add_post_set_parameters_callback(self._on_parameters_set)
        steady_timer(self, value("diagnostics_period").value, self._publish_diagnostics)
        self.worker: LatestWorker[Frame | None] = LatestWorker(
            self._process, self._on_worker_error, "navigator"
        )
        if self._check_configuration():
            self.worker.submit(None)  # build the matcher and extract the map now, not on the first frame

    # ---- input -------------------------------------------------------------------------------
    def _on_frame(self, image: Image | CompressedImage, info: CameraInfo) -> None:
        self.monitor.input()
        if self.worker.submit(Frame(image, info, time.monotonic())):
            self.monitor.drop()  # a newer frame replaced one the worker had not reached

    # ---- parameters --------------------------------------------------------------------------
    def _on_set_parameters(self, changed: list[rclpy.parameter.Parameter]) -> SetParametersResult:
        values = {p.name: p.value for p in changed if p.name != "use_sim_time"}
        reason = params.check_all(params.NAVIGATOR_NODE, values)
        if reason is None and "matcher" in values:
            reason = self._matcher_unavailable(values["matcher"], values.get("weights_dir"))
        if reason is None and values.get("fallback_matcher"):  # '' turns the fallback off
            reason = self._matcher_unavailable(values["fallback_matcher"], values.get("weights_dir"))
        if reason is None:
            reason = change_problem(values)
        if reason is not None:
            self.get_logger().warning(f"parameter change refused: {reason}")
            return SetParametersResult(successful=False, reason=reason)
        if "aid_max_age" in values:
            self.aids.max_age = values["aid_max_age"]
        if not hasattr(self, "add_post_set_parameters_callback"):  # Humble: rebuild on the next frame
            self._on_parameters_set(changed)
        return SetParametersResult(successful=True)

    def _on_parameters_set(self, changed: list[rclpy.parameter.Parameter]) -> None:
        """After new values are in place: rebuild the navigator if a navigation setting changed."""
        if any(p.name in NAVIGATOR_PARAMS for p in changed):
            with self._lock:
                self._dirty = True
            if hasattr(self, "add_post_set_parameters_callback"):
                self.worker.submit(None)  # rebuild now with the new values, not on the next frame

    def _matcher_unavailable(self, name: str, weights_dir: str | None) -> str | None:
        wdir = weights_dir if weights_dir is not None else self.get_parameter("weights_dir").value
        return registry.unavailable(self._zoo, name, wdir or None)

    def _check_configuration(self) -> bool:
        """Report what keeps the node from navigating, before the first frame arrives."""
        reason = self._matcher_unavailable(self.get_parameter("matcher").value, None)
        fallback = self.get_parameter("fallback_matcher").value
        if reason is None and fallback:
            reason = self._matcher_unavailable(fallback, None)
        if reason is None and not self.get_parameter("map_image").value:
            reason = "the map_image parameter is empty: the navigator needs a georeferenced map"
        if reason:
            self._error("configuration", reason, persistent=True)
        return reason is None

    @property
    def ready(self) -> bool:
        """The navigator is built (matcher warmed up, map features extracted)."""
        with self._lock:
            return self._navigator is not None and not self._dirty

    # ---- worker ------------------------------------------------------------------------------
    def _process(self, frame: Frame | None) -> None:
        with self._lock:
            rebuild, self._dirty = self._dirty, False
        if rebuild:
            self._build()
        if frame is None:
            return
        navigator = self._navigator
        if navigator is None:
            self.monitor.drop()
            return
        try:
            image, camera = self._decode(frame)
        except FeatureMatchingError as exc:
            self.monitor.drop()
            self._error("bad camera_info" if isinstance(exc, CameraInfoError) else "bad image", str(exc))
            return
        header = frame.image.header
        stamp = stamp_seconds(header.stamp)
        attitude, height = self._aids_at(stamp)
        try:
            state = navigator.step(
                image, camera.K, stamp, dist=_distortion(camera), R_map_body=attitude, height=height
            )
        except FeatureMatchingError as exc:
            self.monitor.drop()
            at = f" at {height:g} m above ground" if height is not None else ""
            self._error("frame not navigated", f"frame{at}: {exc}")
            return
        self._last = state
        with self._lock:
            self._sources[state.source] += 1
        published, status = self._publish(state, header, attitude)
        fix = state.fix
        estimate = geometry_estimate(fix.geometry, header, published, status)
        estimate.pose_status = status  # also when published: the source and the fix's verdict
        self.status_pub.publish(estimate)
        if not published:
            self.monitor.failure(f"no solution: {fix.reason or state.source}")
        self.monitor.done((time.monotonic() - frame.received) * 1e3, fix.geometry.inlier_ratio)

    def _decode(self, frame: Frame) -> tuple[np.ndarray, CameraModel]:
        camera = camera_from_info(frame.info)
        image = decode_frame(frame.image, self.get_parameter("max_frame_pixels").value)
        camera.check_size(image.shape[1], image.shape[0])
        if camera.distortion_model == "equidistant" and camera.D.any():
            raise CameraInfoError(
                "equidistant (fisheye) distortion is not supported by map navigation: rectify the images"
            )
        return fit_frame(image, camera, self.get_parameter("max_image_edge").value)

    def _aids_at(self, stamp: float) -> tuple[np.ndarray | None, float | None]:
        """The attitude and height of ``stamp``; published with the frame, they may still be in flight."""
        value = self.get_parameter
        wants_attitude = value("attitude_input").value != "none"
        wants_height = bool(value("use_altitude").value)
        attitude, height = self.aids.attitude_at(stamp), self.aids.height_at(stamp)
        deadline = time.monotonic() + AID_WAIT
        while (
            (wants_attitude and attitude is None) or (wants_height and height is None)
        ) and time.monotonic() < deadline:
            time.sleep(0.005)
            attitude = attitude if attitude is not None else self.aids.attitude_at(stamp)
            height = height if height is not None else self.aids.height_at(stamp)
        return attitude, height

    def _publish(
        self, state: NavigationState, header: Header, attitude: np.ndarray | None
    ) -> tuple[bool, str]:
        """Publish the frame's solution, if any; (published, status)."""
        fix = state.fix
        verdict = _verdict(fix, "fix ")
        if state.late is not None:  # a search in the background of an earlier frame ended
            verdict += f"; {_late_verdict(state.late.fix)}"
        georef = self._georef
        map_header = Header(stamp=header.stamp, frame_id=self.get_parameter("map_frame").value)
        if state.position is None or state.covariance is None:
            self._velocity.reset()
            if self._published_once and georef is not None and georef.geodetic_origin is not None:
                self.fix_pub.publish(no_fix_navsatfix(self._fix_header(header)))  # the solution was lost
            return False, f"no solution ({state.source}); {verdict}"
        if state.source == "fix" and fix.pose is not None:
            rotation = fix.pose.R_map_body
            rotation_covariance = fix.pose.covariance[3:, 3:]
        else:
            rotation = attitude if attitude is not None else state.R_map_body
            rotation_covariance = UNKNOWN_ROTATION_VARIANCE * np.eye(3)
        if rotation is None:
            rotation = np.eye(3)
        covariance = np.zeros((6, 6))
        covariance[:3, :3] = state.covariance
        covariance[3:, 3:] = rotation_covariance
        problem = pose_problem(state.position, rotation, covariance, MAX_MAP_DISTANCE_M, (0.0, MAX_HEIGHT_M))
        if problem is not None:
            status = f"pose not published: {problem}"
            self._velocity.reset()
            self._error("invalid pose", status)
            return False, f"{status} ({state.source}); {verdict}"
        pose = map_pose_message(state.position, rotation, covariance, map_header)
        self.pose_pub.publish(pose)
        self._velocity.add(stamp_seconds(header.stamp), *state.position, covariance=state.covariance)
        fit = self._velocity.fit()
        twist = None
        if fit is not None:  # the twist of Odometry is in its child frame: the body, as oriented in the pose
            twist = twist_of(fit, rotation)
            self.velocity_pub.publish(velocity_message(fit, map_header.frame_id))
            self._velocities += 1
        self.odometry_pub.publish(odometry_message(pose, self.get_parameter("base_frame").value, twist))
        if georef is not None and georef.geodetic_origin is not None:
            self.fix_pub.publish(
                position_navsatfix(
                    self._map_point(state.position), state.covariance, georef, self._fix_header(header)
                )
            )
        self._published_once = True
        return True, f"{state.source}; {verdict}"

    def _map_point(self, position: np.ndarray) -> np.ndarray:
        """The solution (z above ground) as a map-frame point: z up from the map's origin, over a DEM."""
        terrain = self._navigator.geomap.terrain if self._navigator is not None else None
        if terrain is None:
            return position
        below = float(terrain.elevation(np.asarray(position)[None, :2])[0])
        if not np.isfinite(below):
            self._error("terrain", "map_dem has no elevation under the solution: NavSatFix altitude is off")
            return position
        return position + np.array([0.0, 0.0, below])

    def _fix_header(self, header: Header) -> Header:
        """NavSatFix is stamped in the frame of the receiver it stands in for: the body."""
        return Header(stamp=header.stamp, frame_id=self.get_parameter("base_frame").value)

    def _build(self) -> None:
        """A new navigator from the parameters (matcher, map, search, gate); the solution starts over."""
        if self._navigator is not None:
            self._navigator.close()
        self._navigator = None
        self._georef = None
        self._last = None
        self._published_once = False
        self._velocity.reset()
        value = lambda name: self.get_parameter(name).value  # noqa: E731
        name = value("matcher")
        fallback_name = value("fallback_matcher")
        try:
            reason = self._matcher_unavailable(name, None)
            if reason is None and fallback_name:
                reason = self._matcher_unavailable(fallback_name, None)
            if reason is not None:
                raise FeatureMatchingError(reason)
            path = value("map_image")
            if not path:
                raise FeatureMatchingError(
                    "the map_image parameter is empty: the navigator needs a georeferenced map"
                )
            georef = value("map_georef")
            if georef == "none":
                raise FeatureMatchingError(
                    "map_georef is 'none', but the navigator needs a georeferenced map"
                )
            start = time.perf_counter()
            geomap = load_map(
                path,
                georef or None,
                dem=value("map_dem") or None,
                geoid_separation=value("map_geoid_separation"),
            )
            options = {
                "device": value("device"),
                "weights_dir": value("weights_dir") or None,
                "backend": value("backend"),
            }
            overrides = {"max_keypoints": value("max_keypoints")} if value("max_keypoints") else {}
            pipeline = registry.build(name, overrides, **options)
            pipeline.warm_up()
            odometry_pipeline = None
            if value("odometry") and (value("odometry_keypoints") or value("background_search")):
                # with the search on a thread of its own, the odometry gets a pipeline of its own
                keypoints = value("odometry_keypoints")
                odometry_pipeline = registry.build(
                    name, {"max_keypoints": keypoints} if keypoints else {}, **options
                )
            fallback = registry.build(fallback_name, {}, **options) if fallback_name else None
            navigator = Navigator(
                pipeline,
                geomap,
                params.navigator_config(self),
                search=params.navigator_search_config(self),
                gate=params.navigator_fix_gate(self),
                odometry_pipeline=odometry_pipeline,
                fallback_pipeline=fallback,
            )
        except FeatureMatchingError as exc:
            self._error("configuration", str(exc), persistent=True)
            return
        self._navigator, self._georef = navigator, geomap.georef
        self.monitor.set_persistent_error(None)
        if inference.status(pipeline):
            self._error("backend", inference.status(pipeline))  # torch runs instead
        gsd = geomap.georef.ground_sample_distance
        self.get_logger().info(
            f"navigating on {path} ({geomap.size[0]}x{geomap.size[1]} px, {gsd:.3f} m/px) with {name!r} "
            f"on {value('device')}: ready in {time.perf_counter() - start:.1f} s"
        )

    def _on_worker_error(self, frame: Frame | None, exc: Exception) -> None:
        if not self.context.ok():
            return  # shut down (Ctrl-C) mid-frame: its publish failed, nothing is wrong
        if frame is not None:
            self.monitor.drop()
        self._error("internal", f"{type(exc).__name__}: {exc}")

    def _error(self, category: str, message: str, *, persistent: bool = False) -> None:
        self.monitor.error(category, message)
        if persistent:
            self.monitor.set_persistent_error(f"{category}: {message}")
        self._log(category, message)

    # ---- diagnostics -------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        problem = self._pairing.problem()
        if problem is not None:
            self._error("camera_info", problem)
        report = self.monitor.report()
        report.values["matcher"] = self.get_parameter("matcher").value
        report.values["ready"] = "yes" if self.ready else "no"
        last = self._last
        if last is not None:
            report.values["source"] = last.source
            report.values["fix"] = _verdict(last.fix)
            if last.late is not None:
                report.values["fix in the background"] = _late_verdict(last.late.fix)
            sigma = last.horizontal_sigma
            report.values["horizontal_sigma_m"] = "nan" if sigma is None else f"{sigma:.2f}"
        report.values["velocities published"] = str(self._velocities)
        with self._lock:
            sources = sorted(self._sources.items())
        for source, count in sources:
            report.values[f"frames: {source}"] = str(count)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [to_status(report, f"{self.get_name()}: navigation", report.values["matcher"])]
        self.diagnostics_pub.publish(msg)

    def destroy_node(self) -> None:
        self.worker.stop()
        if self._navigator is not None:
            self._navigator.close()
        super().destroy_node()


def _verdict(fix: MapFix, prefix: str = "") -> str:
    """What became of a frame's map fix: accepted, rejected and why, or why it was not searched yet."""
    if fix.failed in NOT_SEARCHED:
        return fix.reason
    return f"{prefix}accepted" if fix.accepted else f"{prefix}rejected: {fix.reason}"


def _late_verdict(fix: MapFix) -> str:
    """The same for a fix a background search found for an earlier frame."""
    return f"fix of the frame at {fix.stamp:.3f} s {_verdict(fix)}"


def _distortion(camera: CameraModel) -> np.ndarray | None:
    """The OpenCV distortion coefficients of a pinhole model, None when there are none."""
    if (
        camera.distortion_model in ("plumb_bob", "rational_polynomial", "")
        and camera.D.size
        and camera.D.any()
    ):
        return camera.D
    return None


def main(args: list[str] | None = None) -> None:
    from ..infrastructure.spin import run_nodes

    sys.exit(run_nodes([NavigatorNode], args))
