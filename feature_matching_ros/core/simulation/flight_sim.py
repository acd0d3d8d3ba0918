"""Simulated nadir-camera flights over a georeferenced map: trajectory, rendering, ground truth.

A frame is the map projected through the camera (a homography, since the ground is the plane
z = 0): map pixel -> image pixel is K [r1 r2 t] G, with G the map's pixel -> metres matrix, r1,
r2 the first columns of R_camera_map and t = -R_camera_map C. Over a map with an elevation model
(``GeoMap.terrain``) each pixel's ray is intersected with the terrain instead (``Terrain.intersect``)
and the map is sampled where it lands; ``over_terrain`` turns a flight at constant altitude into
heights above that terrain. Frames and rotations follow ``frames``. Appearance changes (illumination,
contrast, colour, noise, blur) come from presets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry.frames import camera_rotation, rotation_from_euler
from ..maps.georef import GeoMap, GeoReference
from ..maps.terrain import Terrain, bilinear

RAY_STRIDE = 4  # px between rays traced to the terrain; ground points interpolated in between


@dataclass(frozen=True)
class CameraSpec:
    """A pinhole camera of ``width`` x ``height`` px with ``hfov_deg`` horizontal field of view."""

    width: int = 640
    height: int = 480
    hfov_deg: float = 60.0

    @property
    def K(self) -> np.ndarray:
        f = self.width / 2 / math.tan(math.radians(self.hfov_deg) / 2)
        return np.array([[f, 0.0, (self.width - 1) / 2], [0.0, f, (self.height - 1) / 2], [0.0, 0.0, 1.0]])

    def footprint_radius(self, height: float, tilt_deg: float = 0.0) -> float:
        """Horizontal distance (m) from the nadir point to the farthest ground point seen."""
        half_diagonal = math.atan(math.hypot(self.width, self.height) / 2 / self.K[0, 0])
        return height * math.tan(min(half_diagonal + math.radians(tilt_deg), math.radians(80)))


@dataclass(frozen=True)
class Appearance:
    """Per-frame appearance change ranges: gain, gamma, contrast, colour cast (per channel gain),
    Gaussian noise sigma (grey levels) and blur sigma (px); each frame draws uniformly within them."""

    gain: tuple[float, float] = (1.0, 1.0)
    gamma: tuple[float, float] = (1.0, 1.0)
    contrast: tuple[float, float] = (1.0, 1.0)
    colour: float = 0.0
    noise: tuple[float, float] = (0.0, 0.0)
    blur: tuple[float, float] = (0.0, 0.0)

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = image.astype(np.float32) / 255.0
        mean = out.mean()
        out = (out - mean) * rng.uniform(*self.contrast) + mean
        out *= rng.uniform(*self.gain) * (1.0 + rng.uniform(-self.colour, self.colour, 3)).astype(np.float32)
        out = np.clip(out, 0.0, 1.0) ** rng.uniform(*self.gamma)
        sigma = rng.uniform(*self.blur)
        if sigma > 0.3:
            out = cv2.GaussianBlur(out, (0, 0), sigma)
        out = out * 255.0 + rng.normal(0.0, rng.uniform(*self.noise), out.shape).astype(np.float32)
        return np.clip(out, 0, 255).astype(np.uint8)


APPEARANCES = {
    "none": Appearance(),
    "moderate": Appearance((0.8, 1.2), (0.85, 1.15), (0.8, 1.1), 0.05, (1.0, 4.0), (0.0, 1.0)),
    "strong": Appearance((0.55, 1.5), (0.6, 1.6), (0.5, 1.3), 0.12, (3.0, 8.0), (0.5, 2.0)),
}


@dataclass(frozen=True)
class FlightPlan:
    """Waypoints [N x 2] (map metres) flown at ``speed`` m/s and ``altitude`` m above ground
    (varying by up to ``altitude_variation`` of it), roll and pitch disturbances up to ``tilt_deg``,
    heading along the track ("track"), wandering freely ("random") or fixed (degrees, REP 103 yaw)."""

    waypoints: np.ndarray
    speed: float = 15.0
    altitude: float = 120.0
    altitude_variation: float = 0.0
    tilt_deg: float = 5.0
    yaw: str | float = "track"
    rate: float = 5.0
    seed: int = 0


@dataclass(frozen=True, eq=False)
class FlightState:
    """Ground truth at time ``t`` (s): body position (map metres, z above ground) and R_map_body."""

    t: float
    position: np.ndarray
    R_map_body: np.ndarray


def _wander(rng: np.random.Generator, t: np.ndarray, period: float) -> np.ndarray:
    """A smooth random signal in [-1, 1] with features of about ``period`` seconds."""
    out = np.zeros_like(t)
    for k in range(1, 4):
        out += np.sin(2 * np.pi * t * rng.uniform(0.5, 1.5) * k / period + rng.uniform(0, 2 * np.pi)) / k
    return out / 1.84


def fly(plan: FlightPlan, frames: int) -> list[FlightState]:
    """``frames`` states at ``plan.rate`` Hz along the waypoints (looping back if they run out)."""
    rng = np.random.default_rng(plan.seed)
    points = np.asarray(plan.waypoints, np.float64).reshape(-1, 2)
    if len(points) < 2:
        raise ValueError("a flight plan needs at least two waypoints")
    loop = np.vstack([points, points[::-1][1:]])
    steps = np.diff(loop, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    t = np.arange(frames) / plan.rate
    s = (t * plan.speed) % cumulative[-1]
    index = np.clip(np.searchsorted(cumulative, s, side="right") - 1, 0, len(steps) - 1)
    along = (s - cumulative[index]) / np.maximum(lengths[index], 1e-9)
    xy = loop[index] + steps[index] * along[:, None]
    z = plan.altitude * (1.0 + plan.altitude_variation * _wander(rng, t, 40.0))
    tilt = math.radians(plan.tilt_deg)
    roll, pitch = tilt * _wander(rng, t, 6.0), tilt * _wander(rng, t, 8.0)
    if plan.yaw == "track":
        yaw = np.arctan2(steps[index, 1], steps[index, 0]) + math.radians(5) * _wander(rng, t, 10.0)
    elif plan.yaw == "random":
        yaw = rng.uniform(-np.pi, np.pi) + np.pi * _wander(rng, t, 60.0) * 2
    else:
        yaw = np.full_like(t, math.radians(float(plan.yaw)))
    return [
        FlightState(
            float(t[i]), np.array([xy[i, 0], xy[i, 1], z[i]]), rotation_from_euler(roll[i], pitch[i], yaw[i])
        )
        for i in range(frames)
    ]


def map_to_image(georef: GeoReference, K: np.ndarray, state: FlightState) -> np.ndarray:
    """The ground-truth homography map pixel -> image pixel of a frame taken in ``state``."""
    R_cam_map = camera_rotation(state.R_map_body).T
    t = -R_cam_map @ state.position
    H = K @ np.column_stack([R_cam_map[:, 0], R_cam_map[:, 1], t]) @ georef.matrix
    return H / H[2, 2]


def render(
    geomap: GeoMap, camera: CameraSpec, state: FlightState, appearance: Appearance, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """(frame RGB uint8, fraction of its pixels that see map data); black where there is no map."""
    source = geomap.image
    camera_gsd = state.position[2] / camera.K[0, 0]
    ratio = camera_gsd / geomap.georef.ground_sample_distance
    if ratio > 1.0:  # the camera sees coarser than the map holds: low-pass against aliasing
        source = cv2.GaussianBlur(source, (0, 0), 0.5 * math.sqrt(ratio * ratio - 1.0) + 1e-3)
    size = (camera.width, camera.height)
    if geomap.terrain is not None:
        frame, valid = _render_terrain(source, geomap, geomap.terrain, camera, state)
    else:
        H = map_to_image(geomap.georef, camera.K, state)
        frame = cv2.warpPerspective(source, H, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        valid = cv2.warpPerspective(geomap.valid.astype(np.uint8), H, size, flags=cv2.INTER_NEAREST)
    frame = appearance.apply(frame, rng)
    frame[valid == 0] = 0
    return frame, float(valid.mean())


def over_terrain(states: list[FlightState], terrain: Terrain, min_height: float = 10.0) -> list[FlightState]:
    """A flight whose z were heights above the terrain's median level (``Terrain.reference_height``),
    flown at that constant altitude over ``terrain``: z becomes the height above the ground below.
    ValueError where the ground below has no data or comes within ``min_height`` m."""
    level = terrain.reference_height()
    xy = np.array([s.position[:2] for s in states])
    ground = terrain.elevation(xy)
    out = []
    for state, h in zip(states, ground, strict=True):
        height = state.position[2] + level - h
        if not (np.isfinite(height) and height >= min_height):
            x, y = state.position[:2]
            raise ValueError(
                f"at t={state.t:.1f} s ({x:.0f}, {y:.0f}) m the flight is {height:.0f} m above the terrain "
                f"(or over no DEM data): fly higher than the relief"
            )
        out.append(FlightState(state.t, np.array([*state.position[:2], height]), state.R_map_body))
    return out


def _render_terrain(
    source: np.ndarray, geomap: GeoMap, terrain: Terrain, camera: CameraSpec, state: FlightState
) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's ray met with the terrain, the map sampled there (z of ``state``: above the ground).
    Rays are traced every RAY_STRIDE px and the ground points interpolated between them (smooth relief)."""
    below = float(terrain.elevation(state.position[None, :2])[0])
    centre = state.position + np.array([0.0, 0.0, below])
    R_map_camera = camera_rotation(state.R_map_body)
    us = np.arange(0, camera.width - 1 + RAY_STRIDE, RAY_STRIDE, dtype=np.float64)
    vs = np.arange(0, camera.height - 1 + RAY_STRIDE, RAY_STRIDE, dtype=np.float64)
    u, v = np.meshgrid(us, vs)
    rays = (
        np.column_stack([u.ravel(), v.ravel(), np.ones(u.size)]) @ (R_map_camera @ np.linalg.inv(camera.K)).T
    )
    ground = terrain.intersect(centre, rays)
    coarse = geomap.georef.map_to_pixel(np.nan_to_num(ground[:, :2], nan=-1e9))
    coarse[~np.isfinite(ground[:, 0])] = np.nan
    fu, fv = np.meshgrid(np.arange(camera.width) / RAY_STRIDE, np.arange(camera.height) / RAY_STRIDE)
    fu, fv = fu.ravel(), fv.ravel()
    shape = (len(vs), len(us))
    mx = bilinear(coarse[:, 0].reshape(shape), fu, fv)
    my = bilinear(coarse[:, 1].reshape(shape), fu, fv)
    outside = ~(np.isfinite(mx) & np.isfinite(my))
    mx[outside], my[outside] = -1e6, -1e6  # black, no map
    mx = mx.reshape(camera.height, camera.width).astype(np.float32)
    my = my.reshape(camera.height, camera.width).astype(np.float32)
    frame = cv2.remap(source, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    valid = cv2.remap(
        geomap.valid.astype(np.uint8), mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT
    )
    return frame, valid


def random_waypoints(
    geomap: GeoMap,
    camera: CameraSpec,
    altitude: float,
    tilt_deg: float,
    count: int,
    seed: int,
    coverage: float = 1.0,
) -> np.ndarray:
    """``count`` waypoints whose camera footprint (at ``altitude``, tilted) lies on map data out
    to ``coverage`` of its radius (1: the whole footprint)."""
    lo, hi = geomap.extent()
    margin = coverage * camera.footprint_radius(altitude, tilt_deg) + 2 * geomap.georef.ground_sample_distance
    if np.any(hi - lo <= 2 * margin):
        raise ValueError(
            f"the map ({hi[0] - lo[0]:.0f} x {hi[1] - lo[1]:.0f} m) is too small for the camera footprint "
            f"at {altitude:.0f} m (radius {margin:.0f} m): fly lower or use a larger map"
        )
    rng = np.random.default_rng(seed)
    radius_px = int(math.ceil(margin / geomap.georef.ground_sample_distance))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1,) * 2)
    # Outside the image is no map: erode with a zero border.
    inside = cv2.erode(geomap.valid.astype(np.uint8), disc, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    rows, cols = np.nonzero(inside)
    if len(rows) == 0:
        raise ValueError(f"no place on the map keeps the whole footprint (radius {margin:.0f} m) on map data")
    picks = rng.integers(0, len(rows), count)
    points = geomap.georef.pixel_to_map(np.column_stack([cols[picks], rows[picks]]).astype(np.float64))
    return points
