"""A 25 km^2 orthophoto: open, prepare, search and localise, with peak memory and start-up times.

    python benchmarks/large_map.py [--size-m 5000] [--gsd 0.3] [--matcher sift] [--frames 3]
                                   [--work out/large_map] [--out out/large_map/bench.json]

1. Writes a synthetic GeoTIFF of ``--size-m`` x ``--size-m`` metres at ``--gsd`` m/px (5000 m at
   0.3 m/px: 16667 x 16667 px) in UTM 33N: procedural farmland
   (``core/simulation/aerial_texture``) generated in blocks of about 2100 px with seeds of their
   own, JPEG-compressed 512 px tiles, internal overviews (a COG layout). Kept in ``--work`` and
   reused while its parameters are the same.
2. First start, in a fresh process with an empty feature cache: ``open_map`` (headers only), the map
   localiser (``MapLocalizer``: every tile's features extracted and written to the cache), then
   ``--frames`` frames rendered from the map at random places (120 m above ground, 640 x 480, 60 deg)
   are localised around a prior 30 m off with 25 m sigma (the last GNSS fix before it was lost),
   with the attitude and height given (an IMU and an altimeter).
3. Second start, in another fresh process: the same, the features now read from the cache; then one
   more frame without any prior, found by searching the whole map (``--no-sweep`` skips it).

Each process reports its peak RSS (``ru_maxrss``: imports, map, features, search, everything) and
its times; "to first fix attempt" is from the process's start (``python`` launched, imports
included) to the moment the first frame is handed to the localiser. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BLOCK = 2100
HEIGHT_M = 120.0
TARGET_RSS_MB = 1536.0
TARGET_SECOND_START_S = 5.0


def write_map(path: Path, size_m: float, gsd: float, seed: int) -> dict:
    """The synthetic GeoTIFF (reused when its parameters match); what it is."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from feature_matching_ros.core.simulation.aerial_texture import aerial_texture

    side = int(round(size_m / gsd))
    spec = {"size_px": side, "gsd": gsd, "seed": seed, "crs": "EPSG:32633", "block": BLOCK}
    stamp = path.with_suffix(".json")
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()).get("spec") == spec:
        return json.loads(stamp.read_text())
    start = time.perf_counter()
    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 3,
        "dtype": "uint8",
        "crs": spec["crs"],
        "transform": from_origin(500000.0, 5300000.0, gsd, gsd),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "JPEG",
        "photometric": "YCBCR",
        "jpeg_quality": 90,
        "BIGTIFF": "IF_SAFER",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as ds:
        blocks = range(0, side, BLOCK)
        for n, (row, col) in enumerate((r, c) for r in blocks for c in blocks):
            h, w = min(BLOCK, side - row), min(BLOCK, side - col)
            block = aerial_texture(w, h, gsd, seed * 100003 + n)
            ds.write(np.moveaxis(block, -1, 0), window=Window(col, row, w, h))
            print(f"\rwriting the map: block {n + 1}/{len(blocks) ** 2}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        ds.build_overviews([2, 4, 8, 16, 32], Resampling.average)
    info = {"spec": spec, "write_s": round(time.perf_counter() - start, 1), "bytes": path.stat().st_size}
    stamp.write_text(json.dumps(info))
    return info


def run_phase(args: argparse.Namespace) -> dict:
    """One start of the localiser on the map (runs in its own process)."""
    t_process = float(os.environ["FM_BENCH_LAUNCHED"])
    import torch

    from feature_matching_ros.core.geometry.frames import rotation_from_euler
    from feature_matching_ros.core.maps.georef import GeoMap, GeoReference
    from feature_matching_ros.core.maps.raster import open_map
    from feature_matching_ros.core.matching.registry import build
    from feature_matching_ros.core.navigation.localizer import MapLocalizer
    from feature_matching_ros.core.navigation.search_types import Prior
    from feature_matching_ros.core.simulation.flight_sim import Appearance, CameraSpec, FlightState, render

    torch.set_num_threads(2)
    t_imports = time.time() - t_process
    pipeline = build(args.matcher)
    start = time.perf_counter()
    geomap = open_map(args.map, cache_dir=args.cache)
    t_open = time.perf_counter() - start
    start = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 10 or done == total:
            last[0] = time.perf_counter()
            print(f"  preparing: {done}/{total} tiles", file=sys.stderr, flush=True)

    localizer = MapLocalizer(pipeline, geomap, warm=False)
    localizer.features.warm(progress=progress)
    t_prepare = time.perf_counter() - start
    cache = localizer.features.cache
    store = localizer.features.store

    camera = CameraSpec()
    rng = np.random.default_rng(args.seed)
    lo, hi = geomap.extent()
    results, t_first = [], None
    for k in range(args.frames):
        east, north = rng.uniform(lo + 300, hi - 300)
        yaw = rng.uniform(-math.pi, math.pi)
        state = FlightState(float(k), np.array([east, north, HEIGHT_M]), rotation_from_euler(0.0, 0.0, yaw))
        frame = _render(geomap, camera, state, rng, GeoMap, GeoReference, render, Appearance)
        off = rng.normal(size=2)
        off *= 30.0 / np.linalg.norm(off)
        localizer.search.set_prior(Prior(float(k) - 0.1, np.array([east, north]) + off, 25.0))
        localizer.last_fix = None  # frames far apart: each is a first fix, not a jump from the last
        if t_first is None:
            t_first = time.time() - t_process
        start = time.perf_counter()
        found = localizer.localize(frame, camera.K, float(k), R_map_body=state.R_map_body, height=HEIGHT_M)
        ms = (time.perf_counter() - start) * 1e3
        fix = found.fix
        error = float(np.linalg.norm(fix.pose.position[:2] - [east, north])) if fix.pose is not None else None
        results.append(
            {
                "accepted": bool(fix.accepted),
                "error_m": error,
                "reason": fix.reason,
                "strategy": found.match.strategy,
                "ms": round(ms, 1),
            }
        )
    rss_frames = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    sweep = None
    if args.phase == "second" and args.sweep:
        # no prior at all: the whole map is searched window by window (sift: one heading hypothesis)
        east, north = rng.uniform(lo + 300, hi - 300)
        state = FlightState(10.0, np.array([east, north, HEIGHT_M]), rotation_from_euler(0.0, 0.0, 0.7))
        frame = _render(geomap, camera, state, rng, GeoMap, GeoReference, render, Appearance)
        localizer.search.set_prior(None)
        localizer.last_fix = None
        start = time.perf_counter()
        found = localizer.localize(frame, camera.K, 10.0, R_map_body=state.R_map_body, height=HEIGHT_M)
        fix = found.fix
        sweep = {
            "accepted": bool(fix.accepted),
            "error_m": float(np.linalg.norm(fix.pose.position[:2] - [east, north])) if fix.pose else None,
            "reason": fix.reason,
            "strategy": found.match.strategy,
            "s": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        }
    return {
        "map_size_px": list(geomap.size),
        "gsd_m": geomap.georef.ground_sample_distance,
        "imports_s": round(t_imports, 2),
        "open_s": round(t_open, 3),
        "prepare_s": round(t_prepare, 2),
        "cache": cache.last_event if cache is not None else "none",
        "cache_tiles": len(store) if store is not None else 0,
        "cache_keypoints": store.count if store is not None else 0,
        "to_first_fix_attempt_s": round(t_first, 2) if t_first is not None else None,
        "frames": results,
        "peak_rss_mb": round(rss_frames, 1),
        "whole_map_search": sweep,
    }


def _render(geomap, camera, state, rng, GeoMap, GeoReference, render, Appearance) -> np.ndarray:
    """The frame a camera in ``state`` takes, rendered from the part of the map it sees."""
    reach = camera.footprint_radius(HEIGHT_M) + 20.0
    centre = geomap.georef.map_to_pixel(state.position[:2])[0]
    half = int(math.ceil(reach / geomap.georef.ground_sample_distance))
    x0, y0 = int(centre[0]) - half, int(centre[1]) - half
    image, valid = geomap.read(x0, y0, x0 + 2 * half, y0 + 2 * half)
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    crop = GeoMap(image, valid, GeoReference((geomap.georef.matrix @ shift)[:2]))
    appearance = Appearance(gain=(0.8, 1.2), contrast=(0.8, 1.1), noise=(1.0, 3.0))
    return render(crop, camera, state, appearance, rng)[0]


def _child(args: argparse.Namespace, phase: str) -> dict:
    env = dict(os.environ, FM_BENCH_LAUNCHED=repr(time.time()), OMP_WAIT_POLICY="PASSIVE")
    command = [sys.executable, __file__, "--phase", phase, "--map", str(args.map), "--cache", str(args.cache)]
    command += ["--matcher", args.matcher, "--frames", str(args.frames), "--seed", str(args.seed)]
    command += [] if args.sweep else ["--no-sweep"]
    out = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-m", type=float, default=5000.0, help="map side, metres")
    parser.add_argument("--gsd", type=float, default=0.3, help="map metres per pixel")
    parser.add_argument("--matcher", default="sift")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--no-sweep", dest="sweep", action="store_false", help="skip the whole-map search without a prior"
    )
    parser.add_argument("--work", type=Path, default=REPO / "out" / "large_map")
    parser.add_argument("--out", type=Path, default=None, help="JSON report (default: WORK/bench.json)")
    parser.add_argument("--phase", choices=("first", "second"), help=argparse.SUPPRESS)
    parser.add_argument("--map", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        print(json.dumps(run_phase(args)))
        return 0
    args.map = args.work / f"synthetic_{int(args.size_m)}m_{args.gsd:g}.tif"
    args.cache = args.work / "feature_cache"
    written = write_map(args.map, args.size_m, args.gsd, args.seed)
    shutil.rmtree(args.cache, ignore_errors=True)
    print("first start (empty cache) ...", file=sys.stderr)
    first = _child(args, "first")
    print("second start (cache filled) ...", file=sys.stderr)
    second = _child(args, "second")
    sweep_rss = (second["whole_map_search"] or {}).get("peak_rss_mb", 0.0)
    report = {
        "map": {"path": str(args.map), "size_m": args.size_m, **written},
        "matcher": args.matcher,
        "first_start": first,
        "second_start": second,
        "targets": {
            "peak_rss_mb": TARGET_RSS_MB,
            "second_start_to_first_fix_attempt_s": TARGET_SECOND_START_S,
        },
        "met": {
            "peak_rss": max(first["peak_rss_mb"], second["peak_rss_mb"], sweep_rss) <= TARGET_RSS_MB,
            "second_start": second["to_first_fix_attempt_s"] <= TARGET_SECOND_START_S,
        },
        "cache_bytes": sum(f.stat().st_size for f in args.cache.rglob("*") if f.is_file()),
    }
    out = args.out or args.work / "bench.json"
    out.write_text(json.dumps(report, indent=2))
    _print_table(report)
    sweep = second["whole_map_search"]
    if sweep:
        outcome = f"{sweep['error_m']:.2f} m" if sweep["accepted"] else f"rejected ({sweep['reason']})"
        print(
            f"whole-map search (no prior, second start): {sweep['s']} s, {outcome}, "
            f"peak RSS {sweep['peak_rss_mb']} MiB"
        )
    print(f"report: {out}")
    return 0


def _print_table(report: dict) -> None:
    first, second = report["first_start"], report["second_start"]
    w, h = first["map_size_px"]
    print(
        f"map {w} x {h} px at {first['gsd_m']:.3f} m/px ({report['map']['bytes'] / 2**20:.0f} MiB on disk), "
        f"matcher {report['matcher']}, feature cache {report['cache_bytes'] / 2**20:.0f} MiB"
    )
    print(
        "| start | cache | imports s | open s | prepare s | to first fix attempt s | peak RSS MiB | fixes |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, r in (("first", first), ("second", second)):
        fixes = ", ".join(
            f"{f['error_m']:.2f} m" if f["accepted"] else f"rejected ({f['reason'][:40]})"
            for f in r["frames"]
        )
        print(
            f"| {name} | {r['cache'][:20]} | {r['imports_s']} | {r['open_s']} | {r['prepare_s']} | "
            f"{r['to_first_fix_attempt_s']} | {r['peak_rss_mb']} | {fixes} |"
        )


if __name__ == "__main__":
    sys.exit(main())
