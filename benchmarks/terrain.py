"""DEM-aware map fixes over relief (issue 13): one simulated flight, localised three ways.

    python benchmarks/terrain.py --out out/terrain/bench.json     # make bench-terrain

The procedural map (2048 x 2048 px at 0.5 m/px, a geodetic origin given) is flown twice along the same
plan (random waypoints, random heading, roll/pitch up to 5°, moderate appearance changes, altitude input
= the true height above ground, attitude input = the truth): over flat ground (the reference), and at
constant altitude over synthetic smooth hills of +-50 m (``terrain.synthetic_relief``; written as a UTM
GeoTIFF DEM and read back through ``load_dem``, as a user's DEM would be). The relief flight is
localised (a) with the DEM and (b) as flat ground (no DEM). Each frame goes through ``MapLocalizer``
(search around the last fix, homography, pose, every check); the first frame's prior is 20 m off.
Errors: horizontal distance of each fix's camera position from the truth, and its height above ground
against the true one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from feature_matching_ros.core.maps.georef import GeoMap, GeoReference, with_terrain
from feature_matching_ros.core.maps.terrain import synthetic_relief, write_dem
from feature_matching_ros.core.matching.registry import build
from feature_matching_ros.core.navigation.localizer import MapLocalizer
from feature_matching_ros.core.navigation.search_types import Prior
from feature_matching_ros.core.simulation.aerial_texture import procedural_map
from feature_matching_ros.core.simulation.flight_sim import (
    APPEARANCES,
    CameraSpec,
    FlightPlan,
    fly,
    over_terrain,
    random_waypoints,
    render,
)


def _localise(pipeline, render_map: GeoMap, nav_map: GeoMap, states: list, seed: int) -> dict:
    camera = CameraSpec()
    rng = np.random.default_rng(seed)
    localizer = MapLocalizer(pipeline, nav_map)
    first = states[0]
    localizer.set_prior(Prior(first.t, first.position[:2] + np.array([14.0, -14.0]), 25.0))
    rows = []
    for state in states:
        frame, _ = render(render_map, camera, state, APPEARANCES["moderate"], rng)
        start = time.perf_counter()
        fix = localizer.localize(
            frame, camera.K, state.t, R_map_body=state.R_map_body, height=float(state.position[2])
        ).fix
        ms = (time.perf_counter() - start) * 1e3
        row = {"t": state.t, "accepted": fix.accepted, "failed": fix.failed, "ms": ms}
        if fix.pose is not None:
            row["horizontal_m"] = float(np.linalg.norm(fix.pose.position[:2] - state.position[:2]))
            row["height_m"] = float(fix.pose.position[2] - state.position[2])
            row["sigma_m"] = fix.pose.horizontal_sigma
        rows.append(row)
    return {"frames": rows, **_stats(rows)}


def _stats(rows: list[dict]) -> dict:
    out = {"frames_total": len(rows), "accepted_count": sum(r["accepted"] for r in rows)}
    out["rejections"] = sorted({r["failed"] for r in rows if not r["accepted"] and r["failed"]})
    for subset, pick in (("accepted", lambda r: r["accepted"]), ("solved", lambda r: "horizontal_m" in r)):
        chosen = [r for r in rows if pick(r) and "horizontal_m" in r]
        if not chosen:
            continue
        h = np.array([r["horizontal_m"] for r in chosen])
        z = np.abs([r["height_m"] for r in chosen])
        out[subset] = {
            "count": len(chosen),
            "horizontal_median_m": float(np.median(h)),
            "horizontal_p95_m": float(np.percentile(h, 95)),
            "horizontal_max_m": float(h.max()),
            "height_abs_median_m": float(np.median(z)),
            "height_abs_max_m": float(z.max()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/terrain/bench.json"))
    p.add_argument("--frames", type=int, default=50)
    p.add_argument("--relief", type=float, default=50.0, help="+- m of the synthetic hills")
    p.add_argument("--wavelength", type=float, default=600.0, help="hill spacing, m")
    p.add_argument("--altitude", type=float, default=120.0, help="m above ground (flat) / the median level")
    p.add_argument("--matcher", default="sift")
    p.add_argument("--seed", type=int, default=0)
    options = p.parse_args(argv)

    base = procedural_map(2048, 2048, 0.5, options.seed)
    georef = GeoReference(base.georef.affine, (47.0, 8.0, 500.0))
    flat = GeoMap(base.image, base.valid, georef, base.name)
    relief = synthetic_relief(georef, flat.extent(), options.relief, options.wavelength, seed=options.seed)
    with tempfile.TemporaryDirectory() as folder:  # the DEM through a GeoTIFF in UTM, as a user's would be
        dem = write_dem(relief, Path(folder) / "dem.tif")
        hilly = with_terrain(flat, dem)
    rendered = dataclasses.replace(flat, terrain=relief)
    camera = CameraSpec()
    highest = options.altitude * 1.1 + options.relief
    waypoints = random_waypoints(flat, camera, highest, 5.0, 8, options.seed)
    plan = FlightPlan(waypoints, 15.0, options.altitude, 0.1, 5.0, "random", 2.0, options.seed)
    states = fly(plan, options.frames)
    relief_states = over_terrain(states, relief)
    pipeline = build(options.matcher)
    cases = {
        "flat map (reference)": _localise(pipeline, flat, flat, states, options.seed),
        "relief, with DEM": _localise(pipeline, rendered, hilly, relief_states, options.seed),
        "relief, flat ground (no DEM)": _localise(pipeline, rendered, flat, relief_states, options.seed),
    }
    heights = np.array([s.position[2] for s in relief_states])
    header = (
        "| case | accepted | horizontal median / p95 / max m | |height| median / max m "
        "| all solved: horizontal median / max m |"
    )
    print(header)
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, case in cases.items():
        a, s = case.get("accepted"), case.get("solved")
        acc = (
            f"{a['horizontal_median_m']:.3f} / {a['horizontal_p95_m']:.3f} / {a['horizontal_max_m']:.3f}"
            if a
            else "-"
        )
        hgt = f"{a['height_abs_median_m']:.3f} / {a['height_abs_max_m']:.3f}" if a else "-"
        sol = f"{s['horizontal_median_m']:.2f} / {s['horizontal_max_m']:.2f} ({s['count']})" if s else "-"
        print(f"| {name} | {case['accepted_count']}/{case['frames_total']} | {acc} | {hgt} | {sol} |")
        if case["rejections"]:
            print(f"|   rejected by | {', '.join(case['rejections'])} | | | |")
    result = {
        "settings": vars(options) | {"out": str(options.out)},
        "relief_m": [float(relief.heights.min()), float(relief.heights.max())],
        "dem_coverage": hilly.terrain.coverage,
        "height_above_ground_m": [float(heights.min()), float(heights.max())],
        "cases": cases,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"relief {result['relief_m']} m, heights above ground {result['height_above_ground_m']} m")
    print(f"benchmark: {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
