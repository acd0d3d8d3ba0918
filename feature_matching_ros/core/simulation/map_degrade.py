"""A navigation map that differs from the world the camera sees, as a real orthophoto does.

``degrade(geomap, MapDegradation(...))`` turns the map frames are rendered from into the map a
user would have been given to navigate against: coarser (``gsd_factor``), taken in another season
(smooth per-channel curves, a low-frequency gain field, a hue shift of the vegetation), blurred and
JPEG-compressed, georeferenced with errors it does not know about (a constant ``offset_m``, a small
``rotation_deg`` about the map's centre and a smooth, orthorectification-like displacement field of
peak ``warp_m``), and with ``changed_fraction`` of its area changed since (new buildings, other
crops, texture from elsewhere). Deterministic for a given ``seed``.

The returned georeference is the nominal one: the render map's, scaled by ``gsd_factor`` (same map
frame, same geodetic origin). A ground feature truly at ``q`` (map metres) shows in the degraded map
at the nominal position ``p = centre + R(rotation) (q - centre) + offset + warp(p)``;
``Degraded.error_m`` holds ``p - q`` for every pixel of the degraded map.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

from ..maps.georef import GeoMap, GeoReference


@dataclass(frozen=True)
class MapDegradation:
    """How the navigation map differs from the rendered world.

    gsd_factor: navigation map pixel size / render map pixel size (>= 1).
    season: strength of the radiometric change, 0 (none) .. 1 (another season entirely).
    blur_sigma: Gaussian blur, navigation map pixels (0: none).
    jpeg_quality: JPEG quality 1..100 the map went through (None: lossless).
    offset_m: constant georeference error (east, north), metres.
    rotation_deg: georeference rotation error about the map's centre, degrees counter-clockwise.
    warp_m: peak magnitude of the smooth non-rigid displacement field, metres.
    warp_scale_m: spacing of the displacement field's random control points, metres.
    changed_fraction: fraction of the map area that changed (0 .. 0.9).
    seed: seed of every random choice.
    """

    gsd_factor: float = 1.0
    season: float = 0.0
    blur_sigma: float = 0.0
    jpeg_quality: int | None = None
    offset_m: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    warp_m: float = 0.0
    warp_scale_m: float = 150.0
    changed_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "offset_m", tuple(float(v) for v in self.offset_m))
        checks = [
            (
                math.isfinite(self.gsd_factor) and 1.0 <= self.gsd_factor <= 32.0,
                "gsd_factor must be in [1, 32]",
            ),
            (0.0 <= self.season <= 1.0, "season must be in [0, 1]"),
            (0.0 <= self.blur_sigma <= 20.0, "blur_sigma must be in [0, 20] px"),
            (self.jpeg_quality is None or 1 <= self.jpeg_quality <= 100, "jpeg_quality must be in [1, 100]"),
            (
                len(self.offset_m) == 2 and all(map(math.isfinite, self.offset_m)),
                "offset_m must be (east, north)",
            ),
            (abs(self.rotation_deg) <= 10.0, "rotation_deg must be within [-10, 10]"),
            (0.0 <= self.warp_m <= 100.0, "warp_m must be in [0, 100] m"),
            (self.warp_scale_m > 0.0, "warp_scale_m must be positive"),
            (0.0 <= self.changed_fraction <= 0.9, "changed_fraction must be in [0, 0.9]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"MapDegradation: {message}")

    @property
    def is_identity(self) -> bool:
        return self == replace(MapDegradation(), seed=self.seed, warp_scale_m=self.warp_scale_m)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["offset_m"] = list(self.offset_m)
        return out


PRESETS: dict[str, MapDegradation] = {
    "none": MapDegradation(),
    "realistic": MapDegradation(
        gsd_factor=3.0,
        season=0.5,
        blur_sigma=1.0,
        jpeg_quality=75,
        offset_m=(2.4, -1.8),  # 3 m
        rotation_deg=0.0,
        warp_m=2.0,
        changed_fraction=0.05,
    ),
    "harsh": MapDegradation(
        gsd_factor=4.0,
        season=1.0,
        blur_sigma=1.5,
        jpeg_quality=50,
        offset_m=(-4.8, 3.6),  # 6 m
        rotation_deg=0.2,
        warp_m=4.0,
        changed_fraction=0.15,
    ),
}


@dataclass(frozen=True, eq=False)
class Degraded:
    """The degraded map, where its content truly is, and what changed.

    error_m: H x W x 2, nominal minus true map position of each pixel's content (metres).
    changed: H x W bool, pixels whose content was changed.
    """

    map: GeoMap
    error_m: np.ndarray
    changed: np.ndarray
    config: MapDegradation = field(default_factory=MapDegradation)

    def summary(self) -> dict:
        """Measured figures over the valid pixels (for a flight's metadata)."""
        valid = self.map.valid
        error = np.linalg.norm(self.error_m[valid], axis=1) if valid.any() else np.zeros(1)
        return {
            "size_px": list(self.map.size),
            "gsd_m": self.map.georef.ground_sample_distance,
            "changed_fraction": float(self.changed[valid].mean()) if valid.any() else 0.0,
            "georef_error_m": {
                "median": float(np.median(error)),
                "p95": float(np.percentile(error, 95)),
                "max": float(error.max()),
            },
        }


def scaled_georeference(georef: GeoReference, factor: float) -> GeoReference:
    """The georeference of a map downsampled by ``factor``: new pixel (c, r) covers the old pixels
    around (factor c + (factor - 1) / 2, factor r + (factor - 1) / 2); same map frame."""
    offset = (factor - 1.0) / 2.0
    scale = np.array([[factor, 0.0, offset], [0.0, factor, offset], [0.0, 0.0, 1.0]])
    return GeoReference((georef.matrix @ scale)[:2], georef.geodetic_origin)


def _smooth_field(
    rng: np.random.Generator, shape: tuple[int, int], cell_px: float, channels: int = 1
) -> np.ndarray:
    """Zero-mean smooth random field (H x W x channels, float32) with features of ``cell_px``."""
    h, w = shape
    gh, gw = int(math.ceil(h / cell_px)) + 3, int(math.ceil(w / cell_px)) + 3
    coarse = rng.normal(0.0, 1.0, (gh, gw, channels)).astype(np.float32)
    # Upsample the control grid so that one cell spans cell_px output pixels, then crop at a
    # random phase: the field does not line up with the map's edges.
    big = cv2.resize(coarse, (int(gw * cell_px), int(gh * cell_px)), interpolation=cv2.INTER_CUBIC).reshape(
        int(gh * cell_px), int(gw * cell_px), channels
    )
    y0 = int(rng.integers(0, max(1, big.shape[0] - h - int(cell_px)))) + int(cell_px // 2)
    x0 = int(rng.integers(0, max(1, big.shape[1] - w - int(cell_px)))) + int(cell_px // 2)
    out = big[y0 : y0 + h, x0 : x0 + w]
    return out - out.mean(axis=(0, 1))


def _season(
    image: np.ndarray, valid: np.ndarray, strength: float, cell_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Per-channel gain and gamma curves, a low-frequency gain field and a vegetation hue shift."""
    if strength <= 0:
        return image
    out = image.astype(np.float32) / 255.0
    # a common curve and a milder per-channel one: another sun and atmosphere, not a colour cast
    gamma = 1.0 + strength * (rng.uniform(-0.3, 0.3) + rng.uniform(-0.08, 0.08, 3))
    gain = 1.0 + strength * (rng.uniform(-0.2, 0.2) + rng.uniform(-0.06, 0.06, 3))
    out = np.clip(out, 0.0, 1.0) ** gamma.astype(np.float32) * gain.astype(np.float32)
    field_ = _smooth_field(rng, image.shape[:2], cell_px)[..., 0]
    field_ /= max(float(np.abs(field_).max()), 1e-6)
    out *= (1.0 + 0.25 * strength * field_)[..., None]
    # Vegetation (green hues, some saturation) turns towards yellow/brown or a deeper green.
    hsv = cv2.cvtColor(np.clip(out, 0.0, 1.0), cv2.COLOR_RGB2HSV)  # float: H in degrees [0, 360)
    hue, sat = hsv[..., 0], hsv[..., 1]
    vegetation = np.clip(1.0 - np.abs(hue - 100.0) / 50.0, 0.0, 1.0) * np.clip((sat - 0.1) / 0.2, 0.0, 1.0)
    direction = -1.0 if rng.random() < 0.7 else 1.0  # mostly towards autumn
    hsv[..., 0] = np.mod(hue + direction * 35.0 * strength * vegetation, 360.0)
    hsv[..., 1] = sat * (1.0 - 0.3 * strength * vegetation * (direction < 0))
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    result = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
    result[~valid] = image[~valid]
    return result


def _patch_polygon(rng: np.random.Generator, centre: np.ndarray, size_px: float) -> np.ndarray:
    if rng.random() < 0.6:  # a rotated rectangle (a building, a field)
        dims = rng.uniform(0.5, 1.0, 2) * size_px
        box = cv2.boxPoints(
            (
                (float(centre[0]), float(centre[1])),
                (float(dims[0]), float(dims[1])),
                float(rng.uniform(0, 180)),
            )
        )
        return box.astype(np.float32)
    n = int(rng.integers(5, 9))  # a convex-ish polygon (a field, a clearing)
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = size_px / 2 * rng.uniform(0.6, 1.0, n)
    return (centre + np.column_stack([np.cos(angles), np.sin(angles)]) * radii[:, None]).astype(np.float32)


def _changes(
    image: np.ndarray, valid: np.ndarray, fraction: float, gsd: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Patches covering ``fraction`` of the valid area, each recoloured as a new crop, a new
    roof with its shadow, or replaced by texture from elsewhere on the map."""
    h, w = valid.shape
    changed = np.zeros((h, w), bool)
    if fraction <= 0 or not valid.any():
        return image, changed
    out = image.copy()
    target = fraction * valid.sum()
    rows, cols = np.nonzero(valid)
    covered = 0
    for _ in range(10000):
        if covered >= target:
            break
        i = int(rng.integers(len(rows)))
        centre = np.array([cols[i], rows[i]], np.float32)
        size_px = max(4.0, rng.uniform(15.0, 60.0) / gsd)
        polygon = _patch_polygon(rng, centre, size_px)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
        inside = (mask == 1) & valid
        if not inside.any():
            continue
        kind = rng.random()
        yy, xx = np.nonzero(inside)
        if kind < 0.4:  # new crop: flat colour with rows
            colour = rng.uniform([70, 90, 40], [200, 185, 130])
            angle = rng.uniform(0, np.pi)
            period = max(2.0, rng.uniform(2.0, 6.0) / gsd)
            rows_ = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
            values = colour[None, :] * (1.0 + 0.1 * rows_)[:, None] + rng.normal(0, 4, (len(xx), 3))
            out[yy, xx] = np.clip(values, 0, 255).astype(np.uint8)
        elif kind < 0.7:  # new building: a roof and its shadow
            shift = np.round(0.25 * size_px * np.array([1.0, 1.0])).astype(np.int32)
            shadow = np.zeros((h, w), np.uint8)
            cv2.fillPoly(shadow, [np.round(polygon).astype(np.int32) + shift], 1)
            shadow_in = (shadow == 1) & valid
            out[shadow_in] = (out[shadow_in] * 0.35).astype(np.uint8)
            inside = inside | shadow_in
            out[yy, xx] = np.clip(rng.uniform([110, 60, 50], [235, 210, 200]), 0, 255).astype(np.uint8)
        else:  # texture from elsewhere on the map (from map data only)
            for _ in range(20):
                dy, dx = rng.integers(-h // 2, h // 2 + 1), rng.integers(-w // 2, w // 2 + 1)
                sy, sx = yy + dy, xx + dx
                if sy.min() >= 0 and sx.min() >= 0 and sy.max() < h and sx.max() < w and valid[sy, sx].all():
                    out[yy, xx] = image[sy, sx]
                    break
            else:
                out[yy, xx] = np.clip(rng.uniform([70, 90, 40], [200, 185, 130]), 0, 255).astype(np.uint8)
        covered += int(np.count_nonzero(inside & ~changed))
        changed |= inside
    return out, changed


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def degrade(geomap: GeoMap, config: MapDegradation) -> Degraded:
    """The navigation map a user would have been given for the world ``geomap`` shows."""
    rng = np.random.default_rng(config.seed)
    rng_geometry, rng_season, rng_changes = (np.random.default_rng(s) for s in rng.integers(0, 2**63, 3))
    f = float(config.gsd_factor)
    src_w, src_h = geomap.size
    w, h = max(1, int(math.floor(src_w / f))), max(1, int(math.floor(src_h / f)))
    georef = scaled_georeference(geomap.georef, f)
    gsd = georef.ground_sample_distance

    # Where the content of every degraded pixel truly is: invert p = c + R (q - c) + offset + warp(p).
    cols, rows = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    nominal = georef.pixel_to_map(np.column_stack([cols.ravel(), rows.ravel()])).reshape(h, w, 2)
    lo, hi = geomap.extent()
    centre = (lo + hi) / 2.0
    displaced = nominal - np.asarray(config.offset_m)
    if config.warp_m > 0:
        warp = _smooth_field(rng_geometry, (h, w), config.warp_scale_m / gsd, 2).astype(np.float64)
        warp *= config.warp_m / max(float(np.linalg.norm(warp, axis=2).max()), 1e-9)
        displaced = displaced - warp
    theta = math.radians(config.rotation_deg)
    c, s = math.cos(theta), math.sin(theta)
    back = np.array([[c, s], [-s, c]])  # R(-theta)
    true = centre + (displaced - centre) @ back.T
    error = (nominal - true).astype(np.float32)
    source_px = geomap.georef.map_to_pixel(true.reshape(-1, 2)).reshape(h, w, 2).astype(np.float32)

    source = geomap.image
    if f > 1.0:  # low-pass against aliasing, as a coarser sensor would
        source = cv2.GaussianBlur(source, (0, 0), 0.5 * math.sqrt(f * f - 1.0))
    image = cv2.remap(
        source, source_px[..., 0], source_px[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    coverage = cv2.remap(
        geomap.valid.astype(np.float32),
        source_px[..., 0],
        source_px[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
    )
    valid = coverage > 0.999

    image = _season(image, valid, config.season, 300.0 / gsd, rng_season)
    image, changed = _changes(image, valid, config.changed_fraction, gsd, rng_changes)
    if config.blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), config.blur_sigma)
    if config.jpeg_quality is not None:
        image = _jpeg(image, config.jpeg_quality)
    image[~valid] = 0
    name = geomap.name if config.is_identity else f"{geomap.name}-degraded"
    return Degraded(GeoMap(image, valid, georef, name), error, changed, config)


def degrade_map(geomap: GeoMap, config: MapDegradation) -> GeoMap:
    """``degrade(...).map``."""
    return degrade(geomap, config).map
