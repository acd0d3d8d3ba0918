"""``fm-map``: what a map is (``info``), and its features extracted into the on-disk cache (``prepare``).

    fm-map info ortho.tif                      # one GeoTIFF / COG / GDAL VRT
    fm-map info tiles/*.tif                    # several GeoTIFF tiles on one grid: one map
    fm-map prepare ortho.tif --matcher sift    # the cache the nodes then find (same matcher settings)

A map given as several files is one map (``core/maps/raster.py``); the cache is the one the nodes and
``MapLocalizer`` use (``core/maps/feature_cache.py``): ``$FEATURE_MATCHING_MAP_CACHE``, else the user cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..core.errors import FeatureMatchingError
from ..core.maps.feature_cache import ENV_MAP_CACHE, default_cache_dir


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fm-map",
        description="Large georeferenced maps: describe them, and prepare their feature cache.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    georef_help = "YAML with geodetic_origin / nodata (one file: also a world file or YAML georeference)"
    info = commands.add_parser("info", help="extent, GSD, CRS, size and coverage of a map")
    info.add_argument(
        "maps", nargs="+", metavar="MAP", help="GeoTIFF(s) or a .vrt; several files are one map"
    )
    info.add_argument("--georef", help=georef_help)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    prepare = commands.add_parser("prepare", help="extract the map's features into the on-disk cache")
    prepare.add_argument(
        "maps", nargs="+", metavar="MAP", help="GeoTIFF(s) or a .vrt; several files are one map"
    )
    prepare.add_argument("--georef", help=georef_help)
    prepare.add_argument("--matcher", default="sift", help="zoo entry the nodes use (default sift)")
    prepare.add_argument(
        "--max-keypoints", type=int, default=0, help="per tile, as the nodes' max_keypoints (0: the zoo's)"
    )
    prepare.add_argument(
        "--upsample",
        type=float,
        default=1.0,
        help="search-grid pixels per map pixel (the nodes' map_upsample; 1: map resolution, the grid "
        "extracted at start; 2: the finer grid used for cameras 3x finer than the map)",
    )
    prepare.add_argument("--tile", type=int, default=512, help="tile size, search-grid pixels (default 512)")
    prepare.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    prepare.add_argument("--weights-dir", help="explicit weight directory")
    prepare.add_argument(
        "--cache-dir", help=f"cache directory (default ${ENV_MAP_CACHE}, else {default_cache_dir()})"
    )
    prepare.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def describe(maps: list[str], georef: str | None) -> dict:
    """The ``fm-map info`` record of a map."""
    import numpy as np
    from pyproj import CRS

    from ..core.maps.raster import open_map

    geomap = open_map(maps, georef, cache_dir=None)
    try:
        w, h = geomap.size
        georef_ = geomap.georef
        corners_px = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        corners = georef_.pixel_to_map(corners_px)
        lo, hi = geomap.extent()
        crs = CRS.from_wkt(geomap.crs) if geomap.crs else None
        wgs84 = None
        if georef_.geodetic_origin is not None:
            wgs84 = [list(georef_.to_geodetic(float(e), float(n), 0.0)[:2]) for e, n in corners]
        with_overviews = []
        for f, ds in zip(geomap.source.files, geomap.source._datasets, strict=True):
            with_overviews.append(
                {
                    "path": str(f.path),
                    "size_px": [f.width, f.height],
                    "at_px": [f.col, f.row],
                    "overviews": ds.overviews(1),
                    "dtype": ds.dtypes[0],
                }
            )
        area = abs(float(np.linalg.det(georef_.affine[:, :2]))) * w * h
        first = geomap.source._datasets[0]
        res = first.res
        left = first.transform.c - geomap.source.files[0].col * first.transform.a
        top = first.transform.f - geomap.source.files[0].row * first.transform.e
        bounds = [left, top + h * first.transform.e, left + w * first.transform.a, top]
        unit = crs.axis_info[0].unit_name if crs is not None and crs.axis_info else "unit"
        return {
            "name": geomap.name,
            "files": with_overviews,
            "size_px": [w, h],
            "gsd_m": georef_.ground_sample_distance,
            "pixel_size_crs": [float(res[0]), float(res[1]), unit],
            "crs": crs.name if crs is not None else "",
            "epsg": crs.to_epsg() if crs is not None else None,
            "bounds_crs": [float(v) for v in bounds] if not first.transform.b else None,
            "extent_m": {"min": [float(v) for v in lo], "max": [float(v) for v in hi]},
            "area_km2": area / 1e6,
            "corners_wgs84": wgs84,
            "geodetic_origin": list(georef_.geodetic_origin) if georef_.geodetic_origin else None,
            "coverage": geomap.coverage(),
        }
    finally:
        geomap.close()


def print_info(record: dict) -> None:
    w, h = record["size_px"]
    lo, hi = record["extent_m"]["min"], record["extent_m"]["max"]
    epsg = f" (EPSG:{record['epsg']})" if record["epsg"] else ""
    print(
        f"map:        {record['name']} ({len(record['files'])} file{'s' if len(record['files']) > 1 else ''})"
    )
    print(f"size:       {w} x {h} px ({w * h / 1e6:.1f} MP)")
    rx, ry, unit = record["pixel_size_crs"]
    print(f"GSD:        {record['gsd_m']:.4f} m/px on the ground (pixel {rx:g} x {ry:g} {unit} in the CRS)")
    print(f"CRS:        {record['crs'] or 'none (world file / YAML georeference)'}{epsg}")
    print(
        f"extent:     east {lo[0]:.1f} .. {hi[0]:.1f} m, north {lo[1]:.1f} .. {hi[1]:.1f} m "
        f"({hi[0] - lo[0]:.1f} x {hi[1] - lo[1]:.1f} m box, {record['area_km2']:.3f} km^2) in the map frame"
    )
    if record["bounds_crs"]:
        left, bottom, right, top = record["bounds_crs"]
        print(f"bounds:     x {left:.3f} .. {right:.3f}, y {bottom:.3f} .. {top:.3f} {unit} in the CRS")
    if record["geodetic_origin"]:
        lat, lon, alt = record["geodetic_origin"]
        print(f"origin:     lat {lat:.7f}, lon {lon:.7f}, alt {alt:.1f} m (map frame 0, 0)")
    if record["corners_wgs84"]:
        corners = ", ".join(f"({lat:.6f}, {lon:.6f})" for lat, lon in record["corners_wgs84"])
        print(f"corners:    {corners} (lat, lon; top-left clockwise)")
    print(f"coverage:   {100 * record['coverage']:.1f} % of the pixels hold map data")
    for f in record["files"]:
        overviews = ",".join(str(v) for v in f["overviews"]) or "none"
        print(
            f"file:       {f['path']} {f['size_px'][0]} x {f['size_px'][1]} px at {f['at_px']}, "
            f"{f['dtype']}, overviews {overviews}"
        )


def run_prepare(args: argparse.Namespace) -> int:
    from ..core.maps.feature_cache import FeatureCache
    from ..core.maps.features import MapFeatures
    from ..core.maps.raster import WINDOWED_MIN_PIXELS, open_map
    from ..core.matching.registry import build

    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    geomap = open_map(args.maps, args.georef, cache_dir=cache_dir)
    if len(args.maps) == 1 and geomap.size[0] * geomap.size[1] < WINDOWED_MIN_PIXELS:
        print(
            f"fm-map: note: a map under {WINDOWED_MIN_PIXELS / 1e6:.0f} MP is read whole by the nodes "
            "(load_map) and extracted at start, without this cache; open_map uses it",
            file=sys.stderr,
        )
    overrides = {"max_keypoints": args.max_keypoints} if args.max_keypoints else {}
    pipeline = build(args.matcher, overrides, device=args.device, weights_dir=args.weights_dir)
    cache = FeatureCache.for_map(geomap, pipeline)
    features = MapFeatures(geomap, pipeline.extract, tile=args.tile, scale=args.upsample, cache=cache)
    start = time.perf_counter()
    bar = None
    if features.store is None and not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(
            total=features.grid[0] * features.grid[1], desc="fm-map prepare", unit="tile", file=sys.stderr
        )

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    try:
        features.warm(progress=progress)
    finally:
        if bar is not None:
            bar.close()
    store = features.store
    event = "found" if cache.last_event == "hit" else cache.last_event
    print(
        f"{event}: {store.path} ({features.extracted_tiles} of {len(store)} tiles with features, "
        f"{store.count} keypoints, {time.perf_counter() - start:.1f} s)"
    )
    geomap.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "info":
            record = describe(args.maps, args.georef)
            if args.json:
                import json

                print(json.dumps(record, indent=2))
            else:
                print_info(record)
            return 0
        return run_prepare(args)
    except FeatureMatchingError as exc:
        print(f"fm-map: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
