"""feature_matcher_node: camera frames in, matches against a reference (map, keyframe or topic) out.

The callbacks only queue the newest frame; one worker thread converts, matches and publishes, so a
slow matcher drops stale frames instead of queueing them. Everything that can go wrong with an
input is logged (throttled), counted in /diagnostics, and the input is dropped.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.image import load_image
from feature_matching_ros.core.maps.georef import find_georeference
from feature_matching_ros.core.matching import inference, registry
from feature_matching_ros.core.matching.pipeline import MatchResult, Pipeline
from feature_matching_ros.core.matching.types import Features
from feature_matching_ros.core.matching.zoo import load_zoo
from feature_matching_ros.core.odometry.keyframe import Keyframe, KeyframePolicy, KeyframeTrack
from feature_matching_ros.msg import GeometryEstimate, MatchArray

from .. import params
from ..conversions.aids import stamp_seconds
from ..conversions.camera import camera_from_info
from ..conversions.frame_size import decode_frame, fit_frame, to_frame_pixels
from ..conversions.images import compressed_to_array, image_to_core
from ..conversions.messages import ReferenceInfo, map_match_array, match_array
from ..infrastructure import topics
from ..infrastructure.diagnostics import Monitor, ThrottledLog, steady_timer, to_status
from ..infrastructure.latest import LatestWorker
from ..infrastructure.qos import LATCHED, RELIABLE
from ..infrastructure.sync import PairingWatch
from ..params.checks import change_problem
from .camera_input import Frame, subscribe_camera
from .debug_matches import DebugMatches
from .map_inputs import MapInputs

# Settings that need a new pipeline when they change.
PIPELINE_PARAMS = (
    "matcher",
    "device",
    "backend",
    "max_keypoints",
    "keypoint_threshold",
    "match_threshold",
    "max_image_edge",
    "weights_dir",
)
REFERENCE_PARAMS = (
    "reference_mode",
    "map_image",
    "map_frame_id",
    "map_georef",
    "map_tile_size",
    "search_margin",
    "search_max_speed",
    "default_height",
    "map_refine",
    "map_upsample",
    "guided",
)


@dataclass
class Reference:
    info: ReferenceInfo
    image: np.ndarray
    features: Features | None  # None for a georeferenced map: its MapSearch holds the features


class FeatureMatcherNode(Node):
    def __init__(self, node_name: str = "feature_matcher", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        params.declare(self, params.MATCHER_NODE)
        self.monitor = Monitor()
        self._log = ThrottledLog(self.get_logger().error)
        self._zoo = load_zoo()
        self._lock = threading.Lock()
        self._dirty_pipeline = True
        self._dirty_reference = True
        self._pending_reference: Image | CompressedImage | None = None
        self._pipeline: Pipeline | None = None
        self._reference: Reference | None = None  # a map or a topic's image
        self._keyframes: KeyframeTrack[Reference] = KeyframeTrack(KeyframePolicy())
        self._pairing: PairingWatch | None = None

        threads = self.get_parameter("num_threads").value
        if threads:
            import torch

            torch.set_num_threads(threads)

        self.matches_pub = self.create_publisher(MatchArray, topics.MATCHES, RELIABLE)
        self.debug_pub = self.create_publisher(Image, topics.DEBUG_MATCHES, RELIABLE)
        self.debug = DebugMatches(self, self.debug_pub)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, RELIABLE)
        self.create_subscription(GeometryEstimate, topics.GEOMETRY, self._on_geometry, RELIABLE)
        with_info = self.get_parameter("use_camera_info").value
        self._camera_subs, self._pairing = subscribe_camera(self, self._on_frame, with_info)
        self._reference_sub = None
        self._follow_reference_mode()
        self.map_inputs = MapInputs(self, self._error)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(lambda _: self._follow_reference_mode())
        steady_timer(self, self.get_parameter("diagnostics_period").value, self._publish_diagnostics)
        self.worker: LatestWorker[Frame | None] = LatestWorker(
            self._process, self._on_worker_error, "feature-matcher"
        )
        if self._check_configuration():
            self.worker.submit(None)  # build and warm up the matcher now, not on the first frame

    # ---- input -------------------------------------------------------------------------------
    def _on_frame(self, image: Image | CompressedImage, info: CameraInfo | None = None) -> None:
        self.monitor.input()
        if self.worker.submit(Frame(image, info, time.monotonic())):
            self.monitor.drop()  # a newer frame replaced one the worker had not reached

    def _follow_reference_mode(self) -> None:
        """reference/image is subscribed in reference_mode topic only, the one mode that uses it."""
        wanted = self.get_parameter("reference_mode").value == "topic"
        if wanted and self._reference_sub is None:
            self._reference_sub = self.create_subscription(
                Image, topics.REFERENCE_IMAGE, self._on_reference, LATCHED
            )
        elif not wanted and self._reference_sub is not None:
            self.destroy_subscription(self._reference_sub)
            self._reference_sub = None

    def _on_reference(self, msg: Image) -> None:
        with self._lock:
            self._pending_reference = msg
            self._dirty_reference = True

    # ---- parameters --------------------------------------------------------------------------
    def _on_set_parameters(self, changed: list[rclpy.parameter.Parameter]) -> SetParametersResult:
        values = {p.name: p.value for p in changed if p.name != "use_sim_time"}
        reason = params.check_all(params.MATCHER_NODE, values)
        if reason is None and "matcher" in values:
            reason = self._matcher_unavailable(values["matcher"], values.get("weights_dir"))
        if reason is None:
            reason = change_problem(values)
        if reason is not None:
            self.get_logger().warning(f"parameter change refused: {reason}")
            return SetParametersResult(successful=False, reason=reason)
        with self._lock:
            if any(name in values for name in PIPELINE_PARAMS):
                self._dirty_pipeline = True
            if any(name in values for name in REFERENCE_PARAMS):
                self._dirty_reference = True
        return SetParametersResult(successful=True)

    def _matcher_unavailable(self, name: str, weights_dir: str | None) -> str | None:
        wdir = weights_dir if weights_dir is not None else self.get_parameter("weights_dir").value
        return registry.unavailable(self._zoo, name, wdir or None)

    def _check_configuration(self) -> bool:
        """Report what keeps the node from matching, before the first frame arrives."""
        reason = self._matcher_unavailable(self.get_parameter("matcher").value, None)
        if reason:
            self._error("matcher", reason, persistent=True)
        return reason is None

    @property
    def reference(self) -> Reference | None:
        """What frames are matched against now: the map or topic image, or the keyframe."""
        keyframe = self._keyframes.keyframe
        return self._reference if keyframe is None else keyframe.frame

    @property
    def ready(self) -> bool:
        """The matcher is built and warmed up (and the map loaded in map mode)."""
        if self._pipeline is None or self._dirty_pipeline:
            return False
        return self.get_parameter("reference_mode").value != "map" or self._reference is not None

    # ---- worker ------------------------------------------------------------------------------
    def _process(self, frame: Frame | None) -> None:
        self._apply_configuration()
        if frame is None:
            return
        if self._pipeline is None:
            self.monitor.drop()
            return
        try:
            image = self._decode(frame)
        except FeatureMatchingError as exc:
            self.monitor.drop()
            self._error("bad image", str(exc))
            return
        header = frame.image.header
        keyframe_mode = self.get_parameter("reference_mode").value == "keyframe"
        if keyframe_mode and self._keyframes.keyframe is None:
            first = self._make_reference(image, header.stamp, header.frame_id, "keyframe")
            self._keyframes.restart(stamp_seconds(header.stamp), first)
            self.monitor.done((time.monotonic() - frame.received) * 1e3)
            return
        if not keyframe_mode and self._reference is None:
            self.monitor.drop()
            self.monitor.failure("no reference image yet")
            return
        try:
            self._match(frame, image, None if keyframe_mode else self._reference)
        except FeatureMatchingError as exc:
            self.monitor.drop()
            self._error("frame not matched", str(exc))

    def _match(self, frame: Frame, image: np.ndarray, reference: Reference | None) -> None:
        """Match ``frame`` to the map or topic ``reference``, or (None) to the keyframe."""
        header = frame.image.header
        query_size = (image.shape[1], image.shape[0])
        if reference is not None and self.map_inputs.search is not None:
            self._process_on_map(frame, image, reference)
            return
        start = time.perf_counter()
        key = None
        if reference is None:
            result, key = self._match_keyframe(image)
            reference = key.frame
        else:
            result = self._pipeline.match(reference.features, image, geometry=None)
        total_ms = (time.perf_counter() - start) * 1e3
        msg = match_array(result, header, reference.info, query_size, total_ms)
        self.matches_pub.publish(msg)
        self.monitor.done((time.monotonic() - frame.received) * 1e3)
        if len(result.matches) == 0:
            self.monitor.failure("no matches")
        if self.debug.wanted:
            m = result.matches
            self.debug.remember(
                header.stamp, image, reference.image, reference.info.frame_id, m.points0, m.points1
            )
        if key is not None:
            info = ReferenceInfo("keyframe", header.stamp, header.frame_id, query_size)
            current = Reference(info, image, result.features1)
            sizes = (reference.info.size, query_size)
            stamp = stamp_seconds(header.stamp)
            decision = self._keyframes.registered(stamp, current, key, result.geometry, sizes)
            if decision.replace:
                self.get_logger().info(
                    f"new keyframe at {header.stamp.sec}.{header.stamp.nanosec:09d}: {decision.reason}"
                )

    def _match_keyframe(self, image: np.ndarray) -> tuple[MatchResult, Keyframe[Reference]]:
        """``image`` matched to the keyframe; or to the last frame, when the keyframe gives fewer
        inliers than the policy wants and the last frame more (the keyframe slipped away faster
        than the policy expected)."""
        keyframes = self._keyframes
        keyframes.policy = self._policy()
        key = keyframes.keyframe
        result = self._pipeline.match(key.frame.features, image, geometry="Homography")
        fallback = keyframes.fallback()
        if fallback is not None and result.num_inliers < keyframes.policy.min_inliers:
            retry = self._pipeline.match(fallback.frame.features, result.features1, geometry="Homography")
            if retry.num_inliers > result.num_inliers:
                return retry, fallback
        return result, key

    def _process_on_map(self, frame: Frame, image: np.ndarray, reference: Reference) -> None:
        """Georeferenced map: search around the prior, match, publish map <-> frame points."""
        header = frame.image.header
        if frame.info is None:
            self.monitor.drop()
            self._error("map", "map navigation needs camera_info (use_camera_info: true)")
            return
        start = time.perf_counter()
        fitted, camera = fit_frame(
            image, camera_from_info(frame.info), self.get_parameter("max_image_edge").value
        )
        found = self.map_inputs.match(fitted, camera.K, stamp_seconds(header.stamp))
        total_ms = (time.perf_counter() - start) * 1e3
        query_size = (image.shape[1], image.shape[0])
        if fitted is not image:
            points = to_frame_pixels(found.image_points, (camera.width, camera.height), query_size)
            found = dataclasses.replace(found, image_points=points)
        msg = map_match_array(found, header, reference.info, query_size, self._pipeline.name, total_ms)
        self.matches_pub.publish(msg)
        self.monitor.done((time.monotonic() - frame.received) * 1e3)
        if len(found) == 0:
            self.monitor.failure(found.strategy)
        if self.debug.wanted:
            frame_id = reference.info.frame_id
            self.debug.remember(
                header.stamp, image, reference.image, frame_id, found.map_points, found.image_points
            )

    def _decode(self, frame: Frame) -> np.ndarray:
        image = decode_frame(frame.image, self.get_parameter("max_frame_pixels").value)
        if frame.info is not None:
            camera = camera_from_info(frame.info)
            camera.check_size(image.shape[1], image.shape[0])
        return image

    def _policy(self) -> KeyframePolicy:
        return KeyframePolicy(
            self.get_parameter("keyframe_min_inliers").value,
            self.get_parameter("keyframe_min_overlap").value,
            self.get_parameter("keyframe_max_frames").value,
        )

    def _apply_configuration(self) -> None:
        with self._lock:
            rebuild, renew, pending = self._dirty_pipeline, self._dirty_reference, self._pending_reference
            self._dirty_pipeline = self._dirty_reference = False
        if rebuild:
            self._build_pipeline()
            renew = True
        if renew and self._pipeline is not None:
            self._load_reference(pending)

    def _build_pipeline(self) -> None:
        name = self.get_parameter("matcher").value
        reason = self._matcher_unavailable(name, None)
        if reason is None:
            try:
                pipeline = registry.build(
                    name,
                    self._overrides(),
                    device=self.get_parameter("device").value,
                    weights_dir=self.get_parameter("weights_dir").value or None,
                    backend=self.get_parameter("backend").value,
                )
            except FeatureMatchingError as exc:
                reason = f"cannot build matcher {name!r}: {exc}"
        if reason is not None:
            kept = f"; still running {self._pipeline.name!r}" if self._pipeline is not None else ""
            self._error("matcher", reason + kept, persistent=self._pipeline is None)
            return
        pipeline.warm_up()
        self._pipeline = pipeline
        self.monitor.set_persistent_error(None)
        if inference.status(pipeline):
            self._error("backend", inference.status(pipeline))  # torch runs instead
        self.get_logger().info(f"matcher {name!r} ready on {self.get_parameter('device').value}")

    def _overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.get_parameter("max_keypoints").value > 0:
            out["max_keypoints"] = self.get_parameter("max_keypoints").value
        for name in ("keypoint_threshold", "match_threshold"):
            if self.get_parameter(name).value >= 0:
                out[name] = self.get_parameter(name).value
        if self.get_parameter("max_image_edge").value > 0:
            out["max_image_edge"] = self.get_parameter("max_image_edge").value
        return out

    def _load_reference(self, pending: Image | CompressedImage | None) -> None:
        mode = self.get_parameter("reference_mode").value
        self._reference = None
        self._keyframes.clear()
        self.map_inputs.search = None
        try:
            if mode == "map":
                path = self.get_parameter("map_image").value
                if not path:
                    raise FeatureMatchingError("reference_mode is 'map' but the map_image parameter is empty")
                if find_georeference(path) or self.get_parameter("map_georef").value:
                    geomap, tiles, seconds = self.map_inputs.load(self._pipeline, path, self)
                    info = ReferenceInfo(
                        geomap.name, Time(), self.get_parameter("map_frame_id").value, geomap.size
                    )
                    self._reference = Reference(info, geomap.image, None)
                    self.get_logger().info(
                        f"map {path} ({geomap.size[0]}x{geomap.size[1]} px, "
                        f"{geomap.georef.ground_sample_distance:.3f} m/px): {tiles} tiles in {seconds:.1f} s"
                    )
                else:
                    self.get_logger().info(f"map {path} has no georeference: matching the whole image")
                    image = load_image(path)
                    self._reference = self._make_reference(
                        image, Time(), self.get_parameter("map_frame_id").value, path
                    )
            elif mode == "topic" and pending is not None:
                image = image_to_core(pending) if isinstance(pending, Image) else compressed_to_array(pending)
                header = pending.header
                self._reference = self._make_reference(image, header.stamp, header.frame_id, "topic")
        except FeatureMatchingError as exc:
            self._error("reference", str(exc), persistent=True)
            return
        if mode == "map":
            self.monitor.set_persistent_error(None)

    def _make_reference(self, image: np.ndarray, stamp: Time, frame_id: str, ref_id: str) -> Reference:
        features = self._pipeline.extract(image)
        size = (image.shape[1], image.shape[0])
        self.get_logger().info(f"reference {ref_id!r} ({size[0]}x{size[1]}): {len(features)} keypoints")
        return Reference(ReferenceInfo(ref_id, stamp, frame_id, size), image, features)

    def _on_worker_error(self, frame: Frame, exc: Exception) -> None:
        if not self.context.ok():
            return  # shut down (Ctrl-C) mid-frame: its publish failed, nothing is wrong
        self.monitor.drop()
        self._error("internal", f"{type(exc).__name__}: {exc}")

    def _error(self, category: str, message: str, *, persistent: bool = False) -> None:
        self.monitor.error(category, message)
        if persistent:
            self.monitor.set_persistent_error(f"{category}: {message}")
        self._log(category, message)

    def _on_geometry(self, msg: GeometryEstimate) -> None:
        self.map_inputs.on_geometry(msg)
        if self.get_parameter("publish_debug").value:
            self.debug.on_geometry(msg)

    # ---- diagnostics -------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        problem = self._pairing.problem() if self._pairing is not None else None
        if problem is not None:
            self._error("camera_info", problem)
        report = self.monitor.report()
        active = self._pipeline.name if self._pipeline is not None else "none"
        report.values["matcher"] = active
        reference = self.reference
        report.values["reference"] = reference.info.id if reference is not None else "none"
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [to_status(report, f"{self.get_name()}: feature matching", active)]
        self.diagnostics_pub.publish(msg)

    def destroy_node(self) -> None:
        self.worker.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    from ..infrastructure.spin import run_nodes

    sys.exit(run_nodes([FeatureMatcherNode], args))
