"""fm-simulate: render a nadir camera flight over a georeferenced map into a rosbag2.

Written into --out: bag/ (camera image and camera_info, imu/data attitude, altitude Range,
ground_truth/pose), map.png + map.yaml (the map to navigate against, georeferenced),
ground_truth.csv and simulation.yaml (every setting). Without --map it flies over the built-in
procedural map.

Terrain: --dem DEM.tif renders over that elevation model (each pixel's ray met with the ground), and
--relief M over synthetic smooth hills of +-M m, written as dem.tif (a UTM GeoTIFF of ellipsoidal
heights) beside map.png. Over terrain the flight holds a constant altitude (--altitude above the
terrain's median level), so its height above ground (the altitude input and ground truth z) varies.

By default the frames are rendered from the very map they are navigated against. --nav-map
realistic|harsh (and the --nav-* flags, which override the preset) makes map.png a degraded copy
(core.simulation.map_degrade: coarser, another season, blur, JPEG, unknown georeference errors, changed
patches) with its nominal georeference; the map the frames were rendered from is kept as
render_map.png + render_map.yaml and the degradation's settings and measured figures go into
nav_map.json and simulation.yaml. Ground truth stays in the true map frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.geometry.frames import euler_from_rotation, rotation_from_euler
from feature_matching_ros.core.maps.georef import GeoMap, GeoReference, load_map, with_terrain
from feature_matching_ros.core.maps.terrain import synthetic_relief, write_dem
from feature_matching_ros.core.simulation.aerial_texture import procedural_map, save_map
from feature_matching_ros.core.simulation.flight_sim import (
    APPEARANCES,
    CameraSpec,
    FlightPlan,
    fly,
    over_terrain,
    random_waypoints,
    render,
)
from feature_matching_ros.core.simulation.map_degrade import PRESETS, MapDegradation, degrade

EPOCH_NS = 1_700_000_000 * 10**9


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fm-simulate", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    p.add_argument("--map", type=Path, help="georeferenced map image (default: the procedural map)")
    p.add_argument("--gsd", type=float, help="m/px of a --map without georeference file (north-up)")
    p.add_argument("--map-size", type=int, default=2048, help="procedural map edge, px (default 2048)")
    p.add_argument("--seed", type=int, default=0, help="seed of map, flight and appearance")
    p.add_argument("--frames", type=int, default=100, help="frames to render (default 100)")
    p.add_argument("--rate", type=float, default=5.0, help="camera rate, Hz (default 5)")
    p.add_argument("--speed", type=float, default=15.0, help="ground speed, m/s (default 15)")
    p.add_argument("--altitude", type=float, default=120.0, help="height above ground, m (default 120)")
    p.add_argument("--altitude-variation", type=float, default=0.1, help="fraction of --altitude (0.1)")
    p.add_argument("--tilt", type=float, default=5.0, help="roll/pitch amplitude, degrees (default 5)")
    p.add_argument("--yaw", default="random", help="track | random | a fixed yaw in degrees (default random)")
    p.add_argument("--waypoints", help="x1,y1;x2,y2;... map metres (default: random on the map)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--hfov", type=float, default=60.0, help="horizontal field of view, degrees")
    p.add_argument("--appearance", choices=sorted(APPEARANCES), default="moderate")
    p.add_argument("--attitude-noise", type=float, default=0.0, help="attitude noise, degrees (1 sigma)")
    p.add_argument("--altitude-noise", type=float, default=0.0, help="altitude noise, metres (1 sigma)")
    p.add_argument(
        "--min-map-fraction",
        type=float,
        default=0.98,
        help="refuse a flight whose frames see less map data than this (default 0.98)",
    )
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    terrain = p.add_argument_group("terrain", "render over an elevation model instead of flat ground")
    terrain.add_argument("--dem", type=Path, help="elevation model GeoTIFF (ellipsoidal heights)")
    terrain.add_argument("--relief", type=float, help="synthetic smooth hills of +-this many m (-> dem.tif)")
    terrain.add_argument(
        "--relief-wavelength", type=float, default=600.0, help="hill spacing of --relief, m (default 600)"
    )
    terrain.add_argument(
        "--geodetic-origin",
        default="47.0,8.0,500.0",
        help="lat,lon,alt of a map without one, for a DEM (default 47.0,8.0,500.0)",
    )
    nav = p.add_argument_group(
        "navigation map", "navigate against a map that differs from the one the frames are rendered from"
    )
    nav.add_argument(
        "--nav-map",
        choices=sorted(PRESETS),
        help="degradation preset of the navigation map (default: none, unless a --nav-* flag is given)",
    )
    nav.add_argument("--nav-gsd-factor", type=float, help="navigation map pixel size / render map's (>= 1)")
    nav.add_argument("--nav-season", type=float, help="radiometric (season) change, 0..1")
    nav.add_argument("--nav-blur", type=float, help="blur sigma, navigation map px")
    nav.add_argument("--nav-jpeg", type=int, help="JPEG quality 1..100 (0: lossless)")
    nav.add_argument("--nav-offset", help="unknown georeference offset E,N in metres")
    nav.add_argument("--nav-rotation", type=float, help="unknown georeference rotation, degrees")
    nav.add_argument("--nav-warp", type=float, help="peak of the smooth non-rigid displacement, metres")
    nav.add_argument("--nav-changed", type=float, help="fraction of the map area changed, 0..0.9")
    nav.add_argument("--nav-seed", type=int, help="seed of the degradation (default: --seed)")
    return p


def nav_degradation(options: argparse.Namespace) -> MapDegradation | None:
    """The navigation map's degradation from --nav-map and the --nav-* overrides (None: same map)."""
    overrides = {
        "gsd_factor": options.nav_gsd_factor,
        "season": options.nav_season,
        "blur_sigma": options.nav_blur,
        "rotation_deg": options.nav_rotation,
        "warp_m": options.nav_warp,
        "changed_fraction": options.nav_changed,
    }
    if options.nav_jpeg is not None:
        overrides["jpeg_quality"] = options.nav_jpeg or None
    if options.nav_offset is not None:
        try:
            east, north = (float(v) for v in options.nav_offset.split(","))
        except ValueError:
            raise FeatureMatchingError(
                f"--nav-offset must be E,N metres, got {options.nav_offset!r}"
            ) from None
        overrides["offset_m"] = (east, north)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if options.nav_map is None and not overrides:
        return None
    base = PRESETS[options.nav_map or "none"]
    seed = options.seed if options.nav_seed is None else options.nav_seed
    try:
        return dataclasses.replace(base, **overrides, seed=seed)
    except ValueError as exc:
        raise FeatureMatchingError(f"--nav-*: {exc}") from None


def _check(options: argparse.Namespace) -> None:
    positive = {"frames": options.frames, "rate": options.rate, "speed": options.speed}
    positive |= {"altitude": options.altitude, "width": options.width, "height": options.height}
    for name, value in positive.items():
        if not value > 0:
            raise FeatureMatchingError(f"--{name} must be positive, got {value}")
    if not 1.0 <= options.hfov < 170.0:
        raise FeatureMatchingError(f"--hfov must be within [1, 170) degrees, got {options.hfov}")
    if not 0.0 <= options.altitude_variation < 1.0 or not 0.0 <= options.tilt < 45.0:
        raise FeatureMatchingError("--altitude-variation must be in [0, 1) and --tilt in [0, 45) degrees")


def _load(options: argparse.Namespace) -> GeoMap:
    if options.map is None:
        return procedural_map(options.map_size, options.map_size, 0.5, options.seed)
    georef = GeoReference.north_up((0.0, 0.0), options.gsd) if options.gsd else None
    return load_map(options.map, georef)


def _with_terrain(options: argparse.Namespace, geomap: GeoMap) -> GeoMap:
    """The map with its terrain: the --dem, or synthetic --relief (a geodetic origin given if it has none)."""
    georef = geomap.georef
    if georef.geodetic_origin is None:
        try:
            lat, lon, alt = (float(v) for v in options.geodetic_origin.split(","))
        except ValueError:
            raise FeatureMatchingError(
                f"--geodetic-origin must be lat,lon,alt, got {options.geodetic_origin!r}"
            ) from None
        georef = GeoReference(georef.affine, (lat, lon, alt))
        geomap = dataclasses.replace(geomap, georef=georef)
    if options.dem is not None and options.relief is not None:
        raise FeatureMatchingError("--dem and --relief exclude each other")
    if options.dem is not None:
        return with_terrain(geomap, options.dem)
    if not (0.0 < options.relief < 10000.0 and options.relief_wavelength > 0):
        raise FeatureMatchingError("--relief must be within (0, 10000) m and --relief-wavelength positive")
    relief = synthetic_relief(
        georef, geomap.extent(), options.relief, options.relief_wavelength, seed=options.seed
    )
    return dataclasses.replace(geomap, terrain=relief)


def _waypoints(options: argparse.Namespace, geomap: GeoMap, camera: CameraSpec) -> np.ndarray:
    if options.waypoints:
        try:
            return np.array([[float(v) for v in pair.split(",")] for pair in options.waypoints.split(";")])
        except ValueError:
            raise FeatureMatchingError(f"--waypoints must be x,y;x,y;... got {options.waypoints!r}") from None
    highest = options.altitude * (1 + options.altitude_variation)
    if geomap.terrain is not None:  # a constant altitude: highest above the lowest ground
        highest += geomap.terrain.reference_height() - float(np.nanmin(geomap.terrain.heights))
    try:
        coverage = 1.0 if options.min_map_fraction >= 0.98 else 0.5
        return random_waypoints(geomap, camera, highest, options.tilt, 8, options.seed, coverage)
    except ValueError as exc:
        raise FeatureMatchingError(str(exc)) from None


def simulate(options: argparse.Namespace) -> dict:
    from tqdm import tqdm

    from .flight_bag_writer import FlightBagWriter

    _check(options)
    degradation = nav_degradation(options)
    geomap = _load(options)
    if options.dem is not None or options.relief is not None:
        geomap = _with_terrain(options, geomap)
    camera = CameraSpec(options.width, options.height, options.hfov)
    yaw: str | float = options.yaw if options.yaw in ("track", "random") else float(options.yaw)
    plan = FlightPlan(
        _waypoints(options, geomap, camera),
        options.speed,
        options.altitude,
        options.altitude_variation,
        options.tilt,
        yaw,
        options.rate,
        options.seed,
    )
    states = fly(plan, options.frames)
    if geomap.terrain is not None:
        try:
            states = over_terrain(states, geomap.terrain)
        except ValueError as exc:
            raise FeatureMatchingError(str(exc)) from None
    out: Path = options.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if options.relief is not None:
        write_dem(geomap.terrain, out / "dem.tif")
    elif options.dem is not None:
        shutil.copyfile(options.dem, out / "dem.tif")
    nav_summary = None
    if degradation is None or degradation.is_identity:
        save_map(geomap, out / "map.png")
    else:
        degraded = degrade(geomap, degradation)
        save_map(degraded.map, out / "map.png")
        save_map(geomap, out / "render_map.png")
        nav_summary = {
            "preset": options.nav_map or "none",
            "degradation": degradation.as_dict(),
            "measured": degraded.summary(),
            "navigation_map": "map.png",
            "render_map": "render_map.png",
        }
        (out / "nav_map.json").write_text(json.dumps(nav_summary, indent=2) + "\n")
    rng = np.random.default_rng(options.seed + 1)
    appearance = APPEARANCES[options.appearance]
    rows = []
    with FlightBagWriter(out / "bag", options.storage) as writer:
        for state in tqdm(states, desc="fm-simulate", unit="frame", file=sys.stderr):
            frame, seen = render(geomap, camera, state, appearance, rng)
            if seen < options.min_map_fraction:
                raise FeatureMatchingError(
                    f"at t={state.t:.1f} s the camera sees only {seen:.0%} map: the flight leaves the map"
                )
            stamp = EPOCH_NS + int(round(state.t * 1e9))
            attitude = state.R_map_body
            if options.attitude_noise > 0:
                noise = np.radians(rng.normal(0.0, options.attitude_noise, 3))
                attitude = attitude @ rotation_from_euler(*noise)
            height = state.position[2] + (
                rng.normal(0.0, options.altitude_noise) if options.altitude_noise else 0
            )
            writer.write_frame(stamp, frame, camera.K, attitude, float(height), state, options)
            roll, pitch, yaw_angle = euler_from_rotation(state.R_map_body)
            rows.append([state.t, *state.position, roll, pitch, yaw_angle])
    np.savetxt(
        out / "ground_truth.csv",
        np.array(rows),
        delimiter=",",
        header="t_s,x_m,y_m,z_m,roll_rad,pitch_rad,yaw_rad",
        comments="",
        fmt="%.6f",
    )
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()}
    length = float(np.sum(np.linalg.norm(np.diff([s.position[:2] for s in states], axis=0), axis=1)))
    summary = {
        "frames": len(states),
        "duration_s": states[-1].t,
        "path_m": length,
        "map": geomap.name,
        "map_size_px": list(geomap.size),
        "gsd_m": geomap.georef.ground_sample_distance,
        "camera_K": camera.K.tolist(),
        "nav_map": nav_summary
        or {"preset": options.nav_map or "none", "navigation_map": "map.png (the render map)"},
    }
    if geomap.terrain is not None:
        heights = np.array([s.position[2] for s in states])
        summary["terrain"] = {
            "dem": "dem.tif",
            "source": str(options.dem) if options.dem else f"synthetic relief +-{options.relief:g} m",
            "relief_m": [float(np.nanmin(geomap.terrain.heights)), float(np.nanmax(geomap.terrain.heights))],
            "height_above_ground_m": [float(heights.min()), float(heights.max())],
        }
    (out / "simulation.yaml").write_text(
        yaml.safe_dump({"settings": settings, "summary": summary}, sort_keys=False)
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    try:
        summary = simulate(options)
    except (FeatureMatchingError, OSError) as exc:
        print(f"fm-simulate: {exc}", file=sys.stderr)
        return 2
    print(
        f"fm-simulate: {summary['frames']} frames, {summary['duration_s']:.1f} s, {summary['path_m']:.0f} m "
        f"over {summary['map']} ({summary['map_size_px'][0]}x{summary['map_size_px'][1]} px at "
        f"{summary['gsd_m']:.2f} m/px) -> {options.out}"
    )
    nav = summary["nav_map"]
    if "measured" in nav:
        m = nav["measured"]
        error = m["georef_error_m"]
        print(
            f"fm-simulate: navigation map {nav['preset']}: {m['size_px'][0]}x{m['size_px'][1]} px at "
            f"{m['gsd_m']:.2f} m/px, georeference error median {error['median']:.1f} m "
            f"(max {error['max']:.1f} m), {m['changed_fraction']:.0%} changed"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
