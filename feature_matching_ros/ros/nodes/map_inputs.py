"""The frontend's map navigation: the map search, and the inputs that steer it.

Those inputs: attitude and altitude aids for each frame, the geometry node's accepted fixes (the
next search centres on them), its rejections (the next search looks wider), and an optional
external position prior (odometry in the map frame, or NavSatFix).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import NavSatFix

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.geometry.pose import matrix_from_quaternion
from feature_matching_ros.core.maps.georef import GeoMap, load_map
from feature_matching_ros.core.matching.pipeline import Pipeline
from feature_matching_ros.core.navigation.search import MapSearch
from feature_matching_ros.core.navigation.search_types import MapMatch, Prior
from feature_matching_ros.msg import GeometryEstimate

from .. import params
from ..conversions.aids import NavigationAids, height_problem, stamp_seconds
from ..infrastructure import topics
from ..infrastructure.qos import RELIABLE, SENSOR_DATA

# An external position prior replaces the search's own (the last fix) only when this much newer, s.
EXTERNAL_PRIOR_AFTER = 1.0
# How long to wait for a frame's attitude/altitude to arrive after the frame itself, s.
AID_WAIT = 0.05


class MapInputs:
    """Subscriptions of ``node`` that feed map navigation; ``search`` is set once a map is loaded."""

    def __init__(self, node: Any, on_error: Callable[[str, str], None]) -> None:
        value = node.get_parameter
        self._on_error = on_error
        self.search: MapSearch | None = None
        self.aids = NavigationAids(
            node,
            value("attitude_input").value,
            value("use_altitude").value,
            value("aid_max_age").value,
            on_error,
        )
        node.create_subscription(PoseWithCovarianceStamped, topics.POSE, self._on_fix, RELIABLE)
        prior = value("prior_input").value
        if prior == "odometry":
            node.create_subscription(Odometry, topics.PRIOR_ODOMETRY, self._on_prior_odometry, RELIABLE)
        elif prior == "navsatfix":
            node.create_subscription(NavSatFix, topics.PRIOR_FIX, self._on_prior_fix, SENSOR_DATA)

    def load(self, pipeline: Pipeline, path: str, node: Any) -> tuple[GeoMap, int, float]:
        """Load the georeferenced map, extract its tile features; (map, tiles, seconds)."""
        value = node.get_parameter
        geomap = load_map(path, value("map_georef").value or None)
        search = MapSearch.over(
            pipeline, geomap, params.search_config(node), tile=value("map_tile_size").value
        )
        start = time.perf_counter()
        search.features.warm()
        self.search = search
        return geomap, search.features.extracted_tiles, time.perf_counter() - start

    def match(self, image: np.ndarray, K: np.ndarray, stamp: float) -> MapMatch:
        """Search the map for a frame taken at ``stamp`` (s), with the aids of that moment."""
        attitude, height = self.aids.attitude_at(stamp), self.aids.height_at(stamp)
        deadline = time.monotonic() + AID_WAIT
        while (attitude is None or height is None) and time.monotonic() < deadline:
            time.sleep(0.005)  # published with the frame, they may still be in flight
            attitude = attitude if attitude is not None else self.aids.attitude_at(stamp)
            height = height if height is not None else self.aids.height_at(stamp)
        try:
            return self.search.match(image, K, stamp, attitude, height)
        except FeatureMatchingError as exc:
            at = f" at {height:g} m above ground" if height is not None else ""
            raise FeatureMatchingError(f"map search{at}: {exc}") from exc

    def on_geometry(self, msg: GeometryEstimate) -> None:
        if self.search is not None and not msg.pose_published:
            self.search.record_failure()  # the next search looks wider

    def _on_fix(self, msg: PoseWithCovarianceStamped) -> None:
        if self.search is None:
            return
        try:
            prior = fix_prior(msg)
        except ValueError as exc:
            self._on_error("bad fix", f"fix on {topics.POSE} refused: {exc}")
            return
        self.search.set_prior(prior)

    def _on_prior_odometry(self, msg: Odometry) -> None:
        p = msg.pose.pose.position
        covariance = np.asarray(msg.pose.covariance, np.float64).reshape(6, 6)
        if not np.isfinite([p.x, p.y]).all() or not np.isfinite(covariance).all():
            self._on_error("prior", "odometry prior with non-finite position or covariance")
            return
        if min(covariance[0, 0], covariance[1, 1]) < 0.0:
            self._on_error("prior", "odometry prior with a negative horizontal variance")
            return
        sigma = float(np.sqrt(max(covariance[0, 0], covariance[1, 1])))
        self._external(stamp_seconds(msg.header.stamp), np.array([p.x, p.y]), sigma)

    def _on_prior_fix(self, msg: NavSatFix) -> None:
        if self.search is None:
            return
        if self.search.georef.geodetic_origin is None:
            self._on_error("prior", "a NavSatFix prior needs a map georeference with a geodetic_origin")
            return
        if not np.isfinite([msg.latitude, msg.longitude, msg.altitude]).all():
            self._on_error("prior", "NavSatFix prior with non-finite latitude/longitude/altitude")
            return
        covariance = np.asarray(msg.position_covariance, np.float64)
        if not np.isfinite(covariance).all() or min(covariance[0], covariance[4]) < 0.0:
            self._on_error(
                "prior",
                "NavSatFix prior with non-finite or negative position covariance "
                f"(east/north variances must be finite and >= 0): {covariance.tolist()}",
            )
            return
        east, north, _ = self.search.georef.from_geodetic(msg.latitude, msg.longitude, msg.altitude)
        sigma = float(np.sqrt(max(covariance[0], covariance[4])))
        self._external(stamp_seconds(msg.header.stamp), np.array([east, north]), sigma)

    def _external(self, stamp: float, position: np.ndarray, sigma: float) -> None:
        search = self.search
        if search is not None and (search.prior is None or stamp - search.prior.stamp > EXTERNAL_PRIOR_AFTER):
            try:
                prior = Prior(stamp, position, sigma)
            except ValueError as exc:  # the core's own checks, should the ones above miss a case
                self._on_error("prior", f"position prior refused: {exc}")
                return
            search.set_prior(prior)


def fix_prior(msg: PoseWithCovarianceStamped) -> Prior:
    """The search prior of an accepted fix, or ValueError saying why the message cannot be one.

    Position, orientation and covariance must be finite, the orientation a unit quaternion, the
    horizontal variances >= 0 and the height above ground (z) plausible (``aids.height_problem``).
    """
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    position = np.array([p.x, p.y, p.z], np.float64)
    quaternion = np.array([q.x, q.y, q.z, q.w], np.float64)
    covariance = np.asarray(msg.pose.covariance, np.float64).reshape(6, 6)
    if not np.isfinite(position).all():
        raise ValueError(f"non-finite position {position.tolist()}")
    problem = height_problem(float(position[2]))
    if problem is not None:
        raise ValueError(f"height above ground z = {problem}")
    norm = float(np.linalg.norm(quaternion))
    if not np.isfinite(quaternion).all() or not 0.9 < norm < 1.1:
        raise ValueError(f"orientation is not a unit quaternion: {quaternion.tolist()}")
    if not np.isfinite(covariance).all():
        raise ValueError("non-finite covariance (NaN or infinite entries)")
    horizontal = covariance[:2, :2]
    if min(horizontal[0, 0], horizontal[1, 1]) < 0.0:
        raise ValueError(f"negative horizontal variance ({horizontal[0, 0]:g}, {horizontal[1, 1]:g}) m^2")
    sigma = float(np.sqrt(max(np.linalg.eigvalsh(0.5 * (horizontal + horizontal.T)).max(), 0.0)))
    attitude = matrix_from_quaternion(quaternion / norm)
    # the core checks the prior once more (ValueError too)
    return Prior(stamp_seconds(msg.header.stamp), position[:2], sigma, attitude, float(position[2]))
