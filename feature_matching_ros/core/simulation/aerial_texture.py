"""A procedural orthophoto: farmland, roads, buildings and trees, seeded and georeferenced.

Built for flight simulation without any files: structure at every scale (field patchwork, crop
rows, roads, roofs with shadows, tree crowns, soil grain), so that a camera anywhere over it sees
distinctive features, as over real farmland.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from ..maps.georef import GeoMap, GeoReference

CROP_COLOURS = (
    (96, 128, 52),
    (140, 150, 70),
    (170, 150, 95),
    (120, 100, 70),
    (80, 110, 60),
    (190, 175, 120),
    (110, 135, 85),
)


def _noise(rng: np.random.Generator, size: tuple[int, int], cell: int) -> np.ndarray:
    h, w = size
    coarse = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def aerial_texture(width: int, height: int, gsd: float = 0.5, seed: int = 0) -> np.ndarray:
    """An RGB uint8 farmland orthophoto of ``width`` x ``height`` px at ``gsd`` metres per pixel."""
    rng = np.random.default_rng(seed)
    px = 1.0 / gsd  # pixels per metre
    image = np.zeros((height, width, 3), np.float32)
    # Field patchwork: Voronoi cells of 60-150 m, each a crop colour with rows at its own angle.
    n_fields = max(4, int(width * height / (px * 100) ** 2))
    seeds = rng.uniform([0, 0], [width, height], (n_fields, 2)).astype(np.float32)
    subdivision = cv2.Subdiv2D((0, 0, width, height))
    for x, y in seeds:
        subdivision.insert((float(min(x, width - 1)), float(min(y, height - 1))))
    facets, _ = subdivision.getVoronoiFacetList([])
    for facet in facets:
        corners = facet.astype(np.int32)
        x0, y0 = np.maximum(corners.min(axis=0), 0)
        x1, y1 = np.minimum(corners.max(axis=0) + 1, [width, height])
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, corners - [x0, y0], 1)
        colour = np.array(CROP_COLOURS[int(rng.integers(len(CROP_COLOURS)))], np.float32)
        colour *= rng.uniform(0.85, 1.15)
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(2.0, 6.0) * px
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        rows = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        shade = 1.0 + rng.uniform(0.04, 0.15) * rows
        patch = image[y0:y1, x0:x1]
        inside = mask == 1
        patch[inside] = colour * shade[inside, None]
        cv2.polylines(image, [corners], True, (70, 85, 45), max(1, int(1.5 * px)), cv2.LINE_AA)
    # Soil and vegetation grain at several scales.
    for cell, strength in ((int(40 * px), 0.25), (int(8 * px), 0.15), (max(int(1.5 * px), 2), 0.12)):
        image *= (1.0 - strength / 2 + strength * _noise(rng, (height, width), max(cell, 2)))[..., None]
    # Roads: a few long polylines.
    for _ in range(max(2, n_fields // 6)):
        points = [rng.uniform([0, 0], [width, height])]
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(8):
            heading += rng.normal(0, 0.35)
            points.append(
                points[-1] + rng.uniform(60, 160) * px * np.array([np.cos(heading), np.sin(heading)])
            )
        line = np.array(points, np.int32)
        cv2.polylines(image, [line], False, (105, 100, 95), max(2, int(rng.uniform(5, 9) * px)), cv2.LINE_AA)
        cv2.polylines(image, [line], False, (200, 200, 190), max(1, int(0.3 * px)), cv2.LINE_AA)
    # Farmsteads: clusters of roofs with shadows.
    for _ in range(max(3, n_fields // 3)):
        centre = rng.uniform([0, 0], [width, height])
        for _ in range(int(rng.integers(2, 8))):
            c = centre + rng.normal(0, 20 * px, 2)
            size = rng.uniform(6, 25, 2) * px
            angle = float(rng.uniform(0, 180))
            box = cv2.boxPoints(((float(c[0]), float(c[1])), (float(size[0]), float(size[1])), angle))
            cv2.fillConvexPoly(image, (box + 0.25 * size.mean()).astype(np.int32), (45, 45, 40), cv2.LINE_AA)
            roof = tuple(float(v) for v in rng.uniform([120, 60, 50], [230, 200, 190]))
            cv2.fillConvexPoly(image, box.astype(np.int32), roof, cv2.LINE_AA)
            ridge = box[[0, 2]].mean(axis=0), box[[1, 3]].mean(axis=0)
            cv2.line(
                image, tuple(ridge[0].astype(int)), tuple(ridge[1].astype(int)), (60, 50, 45), 1, cv2.LINE_AA
            )
    # Trees: hedgerows along field borders and scattered crowns, each with a shadow.
    crowns = rng.uniform([0, 0], [width, height], (int(n_fields * 25), 2))
    for x, y in crowns:
        r = int(rng.uniform(1.5, 5.0) * px)
        cv2.circle(image, (int(x + 0.6 * r), int(y + 0.6 * r)), r, (35, 45, 30), -1, cv2.LINE_AA)
        green = (float(rng.uniform(30, 60)), float(rng.uniform(70, 110)), float(rng.uniform(25, 45)))
        cv2.circle(image, (int(x), int(y)), r, green, -1, cv2.LINE_AA)
    image += rng.normal(0, 4.0, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def procedural_map(width: int = 2048, height: int = 2048, gsd: float = 0.5, seed: int = 0) -> GeoMap:
    """The procedural orthophoto as a north-up GeoMap whose map-frame origin is its centre."""
    georef = GeoReference.north_up((-(width - 1) / 2 * gsd, (height - 1) / 2 * gsd), gsd)
    image = aerial_texture(width, height, gsd, seed)
    return GeoMap(image, np.ones((height, width), bool), georef, f"procedural-{seed}")


def save_map(geomap: GeoMap, path: str | Path) -> Path:
    """Write ``path`` (PNG, alpha 0 where there is no map) and the georeference YAML beside it."""
    path = Path(path)
    rgba = cv2.cvtColor(geomap.image, cv2.COLOR_RGB2BGRA)
    rgba[:, :, 3] = np.where(geomap.valid, 255, 0).astype(np.uint8)
    if not cv2.imwrite(str(path), rgba):
        raise OSError(f"cannot write {path}")
    g = geomap.georef
    affine = g.affine
    rotation = float(np.degrees(g.column_direction))
    description = {
        "origin": [float(affine[0, 2]), float(affine[1, 2])],
        "ground_sample_distance": g.ground_sample_distance,
        "rotation_deg": rotation,
    }
    if g.geodetic_origin is not None:
        description["geodetic_origin"] = list(g.geodetic_origin)
    path.with_suffix(".yaml").write_text(yaml.safe_dump(description, sort_keys=False))
    return path
