"""geometry_node: matches in; robust two-view geometry, relative pose and an overlay picture out.

The pose is the query camera's pose in the reference camera's optical frame (REP 103: x right,
y down, z forward), published when the reference is an image of the same camera (keyframe or
reference topic at the camera_info size) and the model yields one. Its translation is up to
scale. Map references are georeferenced by the navigation layer instead.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo, Image, NavSatFix

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.geometry import (
    ROBUST_METHODS,
    GeometryResult,
    RobustParams,
    estimate,
)
from feature_matching_ros.core.geometry.pose import pose_covariance, pose_from_geometry
from feature_matching_ros.core.maps.georef import GeoReference, georeference_for
from feature_matching_ros.core.maps.terrain import Terrain, load_dem
from feature_matching_ros.core.matching.visualize import draw_overlay
from feature_matching_ros.core.navigation.fix import FixGate, MapFix, estimate_fix
from feature_matching_ros.msg import GeometryEstimate, MatchArray

from .. import params
from ..conversions.aids import NavigationAids, stamp_seconds
from ..conversions.camera import CameraModel, camera_from_info
from ..conversions.images import array_to_image, image_to_core
from ..conversions.messages import (
    MatchData,
    geometry_estimate,
    ground_pose_message,
    match_data,
    navsatfix_message,
    pose_message,
    stamped_pose,
)
from ..conversions.pose_check import MAX_HEIGHT_M, MAX_MAP_DISTANCE_M, MAX_RELATIVE_TRANSLATION, pose_problem
from ..infrastructure import topics
from ..infrastructure.diagnostics import Monitor, ThrottledLog, steady_timer, to_status
from ..infrastructure.qos import RELIABLE, SENSOR_DATA
from ..params.checks import map_image_problem
from .odometry_mode import OdometryMode

LAZY_CHECK_PERIOD = 0.5  # seconds between checks for overlay subscribers
# Match messages without any camera_info before that is reported (the first may beat camera_info).
NO_CAMERA_INFO_AFTER = 3
NO_CAMERA_INFO = (
    f"no pose published: no camera_info received on {topics.CAMERA_INFO}, and the pose needs the "
    "camera's intrinsics (the camera driver publishes it; feature_matcher's use_camera_info does not)"
)


class GeometryNode(Node):
    def __init__(self, node_name: str = "geometry", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        params.declare(self, params.GEOMETRY_NODE)
        self.monitor = Monitor()
        self._log = ThrottledLog(self.get_logger().error)
        self._camera: CameraModel | None = None
        self._without_camera = 0  # match messages that needed camera_info before any arrived
        self._images: OrderedDict[tuple[int, int], Image] = OrderedDict()
        self._robust = self._robust_params({})

        self.geometry_pub = self.create_publisher(GeometryEstimate, topics.GEOMETRY, RELIABLE)
        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, topics.POSE, RELIABLE)
        self.overlay_pub = self.create_publisher(Image, topics.DEBUG_OVERLAY, RELIABLE)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, RELIABLE)
        self.create_subscription(MatchArray, topics.MATCHES, self._on_matches, RELIABLE)
        self.create_subscription(CameraInfo, topics.CAMERA_INFO, self._on_camera_info, SENSOR_DATA)
        self._image_sub: Subscription | None = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        steady_timer(self, self.get_parameter("diagnostics_period").value, self._publish_diagnostics)
        steady_timer(self, LAZY_CHECK_PERIOD, self._update_image_subscription)
        self._update_image_subscription()
        self.mode = self.get_parameter("mode").value
        self._georef: GeoReference | None = None
        self._terrain: Terrain | None = None
        self._last_fix: MapFix | None = None
        if self.mode == "map":
            self._setup_map_mode()
        self._odometry = OdometryMode(self) if self.mode == "odometry" else None

    def _setup_map_mode(self) -> None:
        self.fix_pub = self.create_publisher(NavSatFix, topics.FIX, RELIABLE)
        self.path_pub = self.create_publisher(Path, topics.PATH, RELIABLE)
        self._path = Path()
        self._path.header.frame_id = self.get_parameter("map_frame").value
        self.aids = NavigationAids(
            self,
            self.get_parameter("attitude_input").value,
            self.get_parameter("use_altitude").value,
            self.get_parameter("aid_max_age").value,
            self._error,
        )
        try:
            georef = self._map_georeference(
                self.get_parameter("map_image").value, self.get_parameter("map_georef").value
            )
            # no fixes on flat ground when the DEM asked for cannot be used
            self._terrain, self._georef = self._map_terrain(georef), georef
        except FeatureMatchingError as exc:
            self._error("map", str(exc))
            self.monitor.set_persistent_error(f"map: {exc}")

    @staticmethod
    def _map_georeference(image: str, georef: str) -> GeoReference:
        """The georeference of map ``image``; FeatureMatchingError naming what is missing."""
        if not image:
            raise FeatureMatchingError("mode is 'map' but the map_image parameter is empty")
        problem = map_image_problem(image)
        if problem is not None:
            raise FeatureMatchingError(f"map image missing or unreadable: {problem}")
        return georeference_for(image, georef or None)[0]

    def _map_terrain(self, georef: GeoReference) -> Terrain | None:
        """The ground's elevation model (map_dem) in the frame of ``georef``, over the whole DEM; None
        without one. FeatureMatchingError (ConfigError, TerrainError) saying what is wrong with it."""
        dem = self.get_parameter("map_dem").value
        if not dem:
            return None
        separation = self.get_parameter("map_geoid_separation").value
        terrain = load_dem(dem, georef, geoid_separation=separation)
        self.get_logger().info(
            f"terrain from {dem}: {terrain.heights.shape[1]}x{terrain.heights.shape[0]} nodes at "
            f"{terrain.spacing:.1f} m, {terrain.coverage:.0%} with data"
        )
        return terrain

    def _gate(self) -> FixGate:
        return params.fix_gate(self)

    def _update_image_subscription(self) -> None:
        """Take camera images only while the overlay is enabled and somebody subscribes to it.

        A 30 Hz stream of full frames costs the executor thread CPU and GIL time the matcher needs.
        """
        wanted = self.get_parameter("publish_debug").value and self.overlay_pub.get_subscription_count() > 0
        if wanted and self._image_sub is None:
            self._image_sub = self.create_subscription(
                Image, topics.CAMERA_IMAGE, self._on_image, SENSOR_DATA
            )
        elif not wanted and self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
            self._image_sub = None
            self._images.clear()

    @property
    def takes_images(self) -> bool:
        """The camera image subscription exists (the overlay is wanted)."""
        return self._image_sub is not None

    def _robust_params(self, changes: dict[str, Any]) -> RobustParams:
        value = {
            n: changes.get(n, self.get_parameter(n).value)
            for n in ("method", "reproj_threshold", "confidence", "max_iter")
        }
        return RobustParams(
            value["method"], value["reproj_threshold"], value["confidence"], value["max_iter"]
        )

    def _on_set_parameters(self, changed: list[rclpy.parameter.Parameter]) -> SetParametersResult:
        values = {p.name: p.value for p in changed if p.name != "use_sim_time"}
        reason = params.check_all(params.GEOMETRY_NODE, values)
        if reason is None and "method" in values and values["method"] not in ROBUST_METHODS:
            reason = f"method must be one of {', '.join(ROBUST_METHODS)}; got {values['method']!r}"
        if reason is None:
            try:
                robust = self._robust_params(values)
                georef = self._new_georeference(values)
                terrain = self._map_terrain(georef) if georef is not None else self._terrain
            except FeatureMatchingError as exc:
                reason = str(exc)
        if reason is not None:
            self.get_logger().warning(f"parameter change refused: {reason}")
            return SetParametersResult(successful=False, reason=reason)
        self._robust = robust
        if georef is not None:
            self._georef, self._terrain = georef, terrain
            self._last_fix = None  # a fix on another map is no reference for the speed check
            self.monitor.set_persistent_error(None)
        return SetParametersResult(successful=True)

    def _new_georeference(self, values: dict[str, Any]) -> GeoReference | None:
        """Map mode: the georeference a change of map_image or map_georef gives (None: no change)."""
        if getattr(self, "mode", None) != "map" or not {"map_image", "map_georef"} & set(values):
            return None
        image = values.get("map_image", self.get_parameter("map_image").value)
        return self._map_georeference(image, values.get("map_georef", self.get_parameter("map_georef").value))

    # ---- inputs ------------------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self._camera = camera_from_info(msg)
        except FeatureMatchingError as exc:
            self._error("bad camera_info", str(exc))

    def _on_image(self, msg: Image) -> None:
        self._images[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
        while len(self._images) > self.get_parameter("image_buffer").value:
            self._images.popitem(last=False)

    def _on_matches(self, msg: MatchArray) -> None:
        self.monitor.input()
        start = time.perf_counter()
        try:
            data = match_data(msg, self.get_parameter("max_matches").value)
        except FeatureMatchingError as exc:
            self._error("bad matches", str(exc))
            return
        camera = self._camera
        if self.mode == "map":
            self._on_map_matches(msg, data, camera, start)
            return
        if self._odometry is not None:
            step = self._odometry.on_matches(msg, data, camera)
            if step is not None and not step.registered:
                self.monitor.failure(step.reason)
            self.monitor.done((time.perf_counter() - start) * 1e3, step.inlier_ratio if step else 0.0)
            return
        model = self.get_parameter("model").value
        try:
            result = self._estimate(model, data, camera)
        except FeatureMatchingError as exc:
            self._error("geometry", str(exc))
            return
        pose, why = (
            self._relative_pose(msg, data, result, camera) if result.success else (None, result.reason)
        )
        self.geometry_pub.publish(geometry_estimate(result, msg.header, pose is not None, why))
        if pose is not None:
            self.pose_pub.publish(pose)
        elif not result.success or why.startswith("no physically"):
            self.monitor.failure(why)
        self.monitor.done((time.perf_counter() - start) * 1e3, result.inlier_ratio)
        if self.get_parameter("publish_debug").value:
            self._publish_overlay(msg, data, result)

    def _on_map_matches(
        self, msg: MatchArray, data: MatchData, camera: CameraModel | None, start: float
    ) -> None:
        """Map mode: an absolute fix from matches between map pixels and frame pixels, if it passes."""
        if self._georef is None or camera is None:
            self._error(
                "map", "no georeference loaded" if self._georef is None else "no camera_info received yet"
            )
            return
        stamp = stamp_seconds(msg.header.stamp)
        attitude, height = self.aids.attitude_at(stamp), self.aids.height_at(stamp)
        distortion = camera.D if camera.distortion_model in ("plumb_bob", "rational_polynomial", "") else None
        fix = estimate_fix(
            data.reference_points,
            data.query_points,
            self._georef,
            camera.K,
            stamp,
            dist=distortion,
            robust=self._robust,
            gate=self._gate(),
            previous=self._last_fix,
            measured_height=height,
            measured_R_map_body=attitude,
            terrain=self._terrain,
        )
        accepted, reason = fix.accepted, fix.reason
        if accepted:
            pose = fix.pose
            problem = pose_problem(
                pose.position, pose.R_map_body, pose.covariance, MAX_MAP_DISTANCE_M, (0.0, MAX_HEIGHT_M)
            )
            if problem is not None:
                accepted, reason = False, self._refuse_pose(problem)
        self.geometry_pub.publish(geometry_estimate(fix.geometry, msg.header, accepted, reason))
        if accepted:
            self._last_fix = fix
            self._publish_fix(fix, msg)
        else:
            self.monitor.failure(reason)
        self.monitor.done((time.perf_counter() - start) * 1e3, fix.geometry.inlier_ratio)
        if self.get_parameter("publish_debug").value:
            self._publish_overlay(msg, data, fix.geometry)

    def _publish_fix(self, fix: MapFix, msg: MatchArray) -> None:
        header = msg.header.__class__(stamp=msg.header.stamp, frame_id=self.get_parameter("map_frame").value)
        pose_msg = ground_pose_message(fix.pose, header)
        self.pose_pub.publish(pose_msg)
        if self._georef.geodetic_origin is not None:
            fix_header = msg.header.__class__(
                stamp=msg.header.stamp, frame_id=self.get_parameter("base_frame").value
            )
            self.fix_pub.publish(navsatfix_message(fix.pose, self._georef, fix_header))
        self._path.header.stamp = msg.header.stamp
        self._path.poses.append(stamped_pose(pose_msg))
        del self._path.poses[: -self.get_parameter("path_length").value]
        self.path_pub.publish(self._path)

    def _estimate(self, model: str, data: MatchData, camera: CameraModel | None) -> GeometryResult:
        K = None
        if model == "Essential":
            if camera is None:
                raise FeatureMatchingError("the Essential model needs camera_info, none received yet")
            K = self._camera_matrix(camera, data.reference_size)
            if K is None:
                raise FeatureMatchingError(
                    "the Essential model needs a camera reference; the reference is "
                    f"{data.reference_size[0]}x{data.reference_size[1]}, "
                    f"the camera {camera.width}x{camera.height}"
                )
        result = estimate(model, data.reference_points, data.query_points, self._robust, K, K)
        floor = self.get_parameter("min_inlier_ratio").value
        if result.success and result.inlier_ratio < floor:
            reason = f"inlier ratio {result.inlier_ratio:.3f} < min_inlier_ratio {floor:.3f}"
            return GeometryResult.failure(model, result.method, reason, result.num_matches)
        return result

    @staticmethod
    def _camera_matrix(camera: CameraModel, reference_size: tuple[int, int]) -> np.ndarray | None:
        """K of the reference when it is an image of this camera (same size), else None."""
        return camera.K if tuple(reference_size) == (camera.width, camera.height) else None

    def _relative_pose(
        self, msg: MatchArray, data: MatchData, result: GeometryResult, camera: CameraModel | None
    ) -> tuple[PoseWithCovarianceStamped | None, str]:
        """The query camera's pose relative to the reference, or None and why not."""
        if not self.get_parameter("publish_pose").value:
            return None, "publish_pose is off"
        if camera is None:
            self._without_camera += 1
            if self._without_camera >= NO_CAMERA_INFO_AFTER:
                self._error("no camera_info", NO_CAMERA_INFO)
            return None, "no camera_info received yet"
        K = self._camera_matrix(camera, data.reference_size)
        if K is None:
            return None, "the reference is not an image of this camera"
        pose = pose_from_geometry(result, K, K, data.reference_points, data.query_points)
        if pose is None:
            return None, "no physically valid pose in the homography decomposition"
        covariance = pose_covariance(result, float(K[0, 0]))
        position, orientation = pose.query_in_reference()
        problem = pose_problem(position, orientation, covariance, MAX_RELATIVE_TRANSLATION)
        if problem is not None:
            return None, self._refuse_pose(problem)
        header = msg.header.__class__(stamp=msg.header.stamp, frame_id=msg.reference_frame_id)
        return pose_message(pose, header, covariance), ""

    def _publish_overlay(self, msg: MatchArray, data: MatchData, result: GeometryResult) -> None:
        image_msg = self._images.get((msg.header.stamp.sec, msg.header.stamp.nanosec))
        if image_msg is None:
            return
        try:
            image = image_to_core(image_msg)
        except FeatureMatchingError as exc:
            self._error("bad image", str(exc))
            return
        H = result.model if result.success and result.model_type == "Homography" else None
        canvas = draw_overlay(
            image, data.query_points, data.reference_points, result.inlier_mask, H, data.reference_size
        )
        out = array_to_image(canvas, "rgb8")
        out.header = msg.header
        self.overlay_pub.publish(out)

    def _refuse_pose(self, problem: str) -> str:
        """A diagnostics ERROR for a pose that must not be published; the GeometryEstimate's pose_status."""
        status = f"pose not published: {problem} (check camera_info and the inputs)"
        self._error("invalid pose", status)
        return status

    def _error(self, category: str, message: str) -> None:
        self.monitor.error(category, message)
        self._log(category, message)

    def _publish_diagnostics(self) -> None:
        report = self.monitor.report()
        report.values["model"] = self.get_parameter("model").value
        report.values["camera_info"] = "yes" if self._camera is not None else "no"
        report.values["mode"] = self.mode
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [to_status(report, f"{self.get_name()}: geometry", "")]
        self.diagnostics_pub.publish(msg)


def main(args: list[str] | None = None) -> None:
    from ..infrastructure.spin import run_nodes

    sys.exit(run_nodes([GeometryNode], args))
