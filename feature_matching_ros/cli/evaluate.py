"""fm-eval: run navigation over a recorded or simulated flight and score it against ground truth.

    fm-eval out/flight                      # an fm-simulate folder: bag/ and map.png + map.yaml
    fm-eval flight.bag --map ortho.png      # any bag with camera, camera_info and ground_truth/pose
    fm-eval out/flight --mode keyframe      # keyframe odometry instead of map fixes
    fm-eval IMAGES/ --gps gps.csv --mode keyframe --fx 557.5 --cx 400 --cy 300 --ground 220
    fm-eval IMAGES/ --gps gps.csv --map ortho.png --fx 557.5 --ground 220 --out eval  # navigation

--via ros (default) runs both nodes in this process over DDS, frame by frame; --via direct calls
the core without ROS. Writes report.md, report.json, frames.csv, trajectory.png and errors.png.

An image folder in map mode runs the continuous navigation (``core.navigation.navigator.Navigator``: map fixes
carried by keyframe odometry) over the images in log order, on the core, and scores its fixes and
its solution (error, NEES) against the GPS. The GPS comes from --gps (a CSV; the map frame must be
the log's east_m/north_m) or, without it, from the images' EXIF (GPS, DateTimeOriginal and focal
length), expressed in the map frame through the map georeference's geodetic_origin. The height
above ground given to the navigator is the GPS altitude minus --ground (none with --no-altitude).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from feature_matching_ros.cli.eval_inputs import (
    bag_and_map,
    bag_frames,
    find_bag,
    folder_frames,
    is_image_folder,
    navigation_frames,
)
from feature_matching_ros.cli.eval_runs import (
    run_direct,
    run_keyframe_direct,
    run_keyframe_ros,
    run_navigation,
    run_ros,
)
from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.evaluation.report import write_report
from feature_matching_ros.core.evaluation.scoring import Run

WRONG_BOUND_M = 15.0
WRONG_BOUND_NAV_M = 30.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fm-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("flight", type=Path, help="fm-simulate output folder, a rosbag2 bag, or an image folder")
    p.add_argument("--map", type=Path, help="georeferenced map (default: FLIGHT/map.png)")
    p.add_argument(
        "--dem",
        type=Path,
        help="map mode: elevation model GeoTIFF of the ground (fm-simulate --relief writes FLIGHT/dem.tif); "
        "default: flat ground",
    )
    p.add_argument(
        "--geoid-separation", type=float, default=0.0, help="added to every --dem value, m (default 0)"
    )
    p.add_argument("--matcher", default="sift", help="zoo name (default sift)")
    p.add_argument(
        "--fallback-matcher",
        default="akaze",
        help="navigation: zoo name of the matcher that searches again where --matcher finds no fix, as the "
        "navigator's fallback_matcher (default akaze; none: no fallback)",
    )
    p.add_argument("--via", choices=("ros", "direct"), default="ros", help="nodes over DDS, or the core")
    p.add_argument("--out", type=Path, help="report folder (default: FLIGHT/eval-MATCHER)")
    p.add_argument("--limit", type=int, help="evaluate the first N frames only")
    p.add_argument("--first", type=int, default=0, help="image folder: skip the first N frames of the log")
    p.add_argument(
        "--wrong-bound",
        type=float,
        help=f"an accepted fix off by more is wrong, m (default {WRONG_BOUND_M:g}; image folder map mode "
        f"{WRONG_BOUND_NAV_M:g})",
    )
    p.add_argument("--good-bound", type=float, default=15.0, help="navigation: a good fix is this close, m")
    p.add_argument("--mode", choices=("map", "keyframe"), default="map", help="absolute fixes or odometry")
    p.add_argument("--gps", type=Path, help="GPS CSV of an image folder (default: the images' EXIF)")
    p.add_argument("--fx", type=float, help="focal length, px (image folder; default: from EXIF)")
    p.add_argument("--fy", type=float, help="focal length, px (default: --fx)")
    p.add_argument("--cx", type=float, help="principal point, px (image folder; default: image centre)")
    p.add_argument("--cy", type=float, help="principal point, px (image folder; default: image centre)")
    p.add_argument("--ground", type=float, default=0.0, help="terrain elevation for GPS altitudes, m")
    p.add_argument("--no-altitude", action="store_true", help="navigation: no height input (it is measured)")
    p.add_argument("--map-sigma", type=float, default=1.0, help="navigation: map georeference accuracy, m")
    p.add_argument(
        "--fix-height-sigma",
        type=float,
        default=0.05,
        help="navigation: relative sigma of a map fix's height beyond its fit's (default 0.05; the "
        "navigator node's fix_height_sigma)",
    )
    p.add_argument(
        "--whole-map-interval",
        type=float,
        default=3.0,
        help="navigation: a frame no matcher fixes around the prediction is searched again over the whole "
        "map when it came at least this long after the one before, s (default 3; inf: never; the "
        "navigator node's whole_map_interval_s)",
    )
    p.add_argument(
        "--whole-map-budget",
        type=float,
        default=0.0,
        help="navigation: that search tries no further heading or height once the frame's step has taken "
        "this long, s (default 0: the time since the frame before; the navigator node's "
        "whole_map_budget_s)",
    )
    p.add_argument(
        "--background-search",
        action="store_true",
        help="navigation: a frame whose map search would end after the next frame is due is searched on "
        "a thread of its own, its fix fused at its frame's stamp when it ends (the navigator node's "
        "background_search); frames are then replayed at their timestamps, as a camera delivers them",
    )
    p.add_argument(
        "--no-odometry", action="store_true", help="navigation: no keyframe odometry between fixes"
    )
    p.add_argument("--max-keypoints", type=int, default=8000, help="keyframe mode keypoints (default 8000)")
    return p


class Progress:
    def __init__(self) -> None:
        self.bar = None

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="fm-eval", unit="frame", file=sys.stderr)

    def frame(self, _: object) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    progress = Progress()
    start = time.perf_counter()
    map_path = None
    meta: dict = {}
    folder = is_image_folder(options)
    wrong_bound = options.wrong_bound
    if wrong_bound is None:
        wrong_bound = WRONG_BOUND_NAV_M if folder and options.mode == "map" else WRONG_BOUND_M
    try:
        if options.first and not folder:
            raise FeatureMatchingError("--first needs an image folder")
        if options.mode == "map" and folder:
            from feature_matching_ros.core.maps.georef import load_map

            map_path = options.map
            if map_path is None:
                raise FeatureMatchingError("map mode on an image folder needs the map: pass --map")
            geomap = load_map(map_path, dem=options.dem, geoid_separation=options.geoid_separation)
            frames, truth_frame = navigation_frames(options, geomap)
            meta = {
                "gps": str(options.gps) if options.gps else "image EXIF",
                "truth frame": truth_frame,
                "frames": f"{len(frames)} from log index {options.first}",
                "height input": "none (measured)"
                if options.no_altitude
                else f"GPS alt - {options.ground:g} m",
                "odometry": not options.no_odometry,
                "fallback matcher": options.fallback_matcher,
                "map_sigma_m": options.map_sigma,
                "fix_height_sigma": options.fix_height_sigma,
                "whole_map_interval_s": options.whole_map_interval,
                "whole_map_budget_s": options.whole_map_budget,
                "background_search": options.background_search,
                "K": np.round(frames[0][2], 3).tolist(),
            }
            records = run_navigation(frames, geomap, options, progress)
        elif options.mode == "keyframe":
            if folder:
                end = None if options.limit is None else options.first + options.limit
                frames = folder_frames(options)[options.first : end]
                records = run_keyframe_direct(frames, options.matcher, options.max_keypoints, progress)
            elif options.via == "ros":
                bag = find_bag(options.flight)
                records = run_keyframe_ros(bag, options.matcher, options.max_keypoints, progress)[
                    : options.limit
                ]
            else:
                frames = bag_frames(find_bag(options.flight))[: options.limit]
                records = run_keyframe_direct(frames, options.matcher, options.max_keypoints, progress)
        else:
            bag, map_path = bag_and_map(options)
            if options.via == "ros":
                terrain = None
                if options.dem is not None:
                    terrain = {"map_dem": str(options.dem), "map_geoid_separation": options.geoid_separation}
                records = run_ros(bag, map_path, options.matcher, options.limit, progress, terrain)
            else:
                records = run_direct(bag, map_path, options, progress)
                meta["fallback matcher"] = options.fallback_matcher
                meta["background_search"] = options.background_search
            nav_map = options.flight / "nav_map.json"
            if nav_map.is_file():  # fm-simulate --nav-map: the map differs from the rendered world
                meta["nav_map"] = json.loads(nav_map.read_text())
    except FeatureMatchingError as exc:
        print(f"fm-eval: {exc}", file=sys.stderr)
        return 2
    finally:
        progress.close()
    if not records:
        print("fm-eval: the bag has no camera frames", file=sys.stderr)
        return 2
    from feature_matching_ros.core.maps.georef import load_map

    via = "direct" if folder else options.via
    name = f"eval-{options.mode}-{options.matcher}-{via}"
    # a navigation report goes to the working directory, not into the (possibly shared) image folder
    default_out = (
        Path(f"{name}-{options.flight.name}") if folder and options.mode == "map" else options.flight / name
    )
    out = options.out or default_out
    meta = {"flight": str(options.flight), "map": str(map_path), "via": via, **meta}
    if options.dem is not None:
        meta["dem"] = str(options.dem)
    meta["wall_s"] = time.perf_counter() - start
    run = Run(
        options.mode,
        options.matcher,
        records,
        meta,
        wrong_fix_bound_m=wrong_bound,
        good_fix_bound_m=options.good_bound,
    )
    report = write_report(run, out, load_map(map_path) if map_path else None)
    print(report.summary)
    print(f"fm-eval: report in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
