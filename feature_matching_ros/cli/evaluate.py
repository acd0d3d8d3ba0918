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
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.evaluation.report import write_report
from feature_matching_ros.core.evaluation.scoring import FrameRecord, Run

if TYPE_CHECKING:
    from feature_matching_ros.core.evaluation.flight_log import GpsTrack
    from feature_matching_ros.core.maps.georef import GeoMap
    from feature_matching_ros.core.navigation.localizer import Localization

WRONG_BOUND_M = 15.0
WRONG_BOUND_NAV_M = 30.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


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


def _bag(flight: Path) -> Path:
    bag = flight / "bag" if (flight / "bag").is_dir() else flight
    if not bag.exists():
        raise FeatureMatchingError(f"no bag at {bag}")
    return bag


def _inputs(options: argparse.Namespace) -> tuple[Path, Path]:
    flight: Path = options.flight
    bag = _bag(flight)
    map_path = options.map or flight / "map.png"
    if not map_path.is_file():
        raise FeatureMatchingError(f"no map at {map_path}: pass --map")
    return bag, map_path


def run_ros(
    bag: Path,
    map_path: Path,
    matcher: str,
    limit: int | None,
    progress: Progress,
    terrain: dict | None = None,
) -> list[FrameRecord]:
    from feature_matching_ros.ros.bags.flight_bag import read_truth
    from feature_matching_ros.ros.bags.pipeline_run import run_on_bag

    truth = read_truth(bag)
    parameters = {
        "feature_matcher": {
            "reference_mode": "map",
            "map_image": str(map_path),
            "matcher": matcher,
            "publish_debug": False,
        },
        "geometry": {"mode": "map", "map_image": str(map_path), "publish_debug": False, **(terrain or {})},
    }
    outcomes = run_on_bag(
        bag, parameters, exclude=["ground_truth/pose"], on_frame=progress.frame, on_ready=progress.start
    )
    records = []
    t0 = outcomes[0].stamp_ns if outcomes else 0
    for outcome in outcomes[:limit]:
        true = truth.at(outcome.stamp_ns)
        position = None
        if outcome.pose is not None:
            p = outcome.pose.pose.pose.position
            position = np.array([p.x, p.y, p.z])
        geometry = outcome.geometry
        reason = (
            "no answer" if geometry is None else ("" if outcome.pose is not None else geometry.pose_status)
        )
        t = (outcome.stamp_ns - t0) / 1e9
        truth_xyz = true[0] if true is not None else None
        records.append(FrameRecord(t, truth_xyz, position, position is not None, reason, outcome.latency_ms))
    return records


def run_direct(
    bag: Path, map_path: Path, options: argparse.Namespace, progress: Progress
) -> list[FrameRecord]:
    """The core's continuous navigation (map fixes carried by odometry) over a bag's frames, with
    the bag's attitude and altitude as aids."""
    from feature_matching_ros.core.maps.georef import load_map
    from feature_matching_ros.ros.bags.flight_bag import read_flight

    frames = list(read_flight(bag, options.limit))
    if not frames:
        return []
    t0 = frames[0].stamp
    inputs = [
        (lambda f=f: f.image, f.stamp - t0, f.K, f.height, f.truth_position, f.R_map_body, f.D)
        for f in frames
    ]
    geomap = load_map(map_path, dem=options.dem, geoid_separation=options.geoid_separation)
    return run_navigation(inputs, geomap, options, progress)


def run_keyframe_ros(bag: Path, matcher: str, max_keypoints: int, progress: Progress) -> list[FrameRecord]:
    """Keyframe odometry through both nodes; a track ends at every frame that did not register."""
    from feature_matching_ros.ros.bags.flight_bag import read_truth
    from feature_matching_ros.ros.bags.pipeline_run import run_on_bag

    truth = read_truth(bag)
    parameters = {
        "feature_matcher": {"reference_mode": "keyframe", "matcher": matcher, "max_keypoints": max_keypoints},
        "geometry": {"mode": "odometry"},
    }
    # the first frame only becomes the keyframe and gets no answer
    outcomes = run_on_bag(
        bag,
        parameters,
        exclude=["ground_truth/pose"],
        on_frame=progress.frame,
        on_ready=progress.start,
        first_answered=False,
    )
    records, track = [], 0
    t0 = outcomes[0].stamp_ns if outcomes else 0
    for outcome in outcomes:
        true = truth.at(outcome.stamp_ns)
        estimate = None
        if outcome.odometry is not None:
            p = outcome.odometry.pose.pose.position
            estimate = np.array([p.x, p.y, p.z])
        else:
            track += 1  # the frontend takes this frame as a new keyframe: the next track starts here
        geometry = outcome.geometry
        reason = "no answer" if geometry is None else geometry.pose_status
        t = (outcome.stamp_ns - t0) / 1e9
        records.append(
            FrameRecord(
                t,
                None if true is None else true[0],
                estimate,
                estimate is not None,
                reason,
                outcome.latency_ms,
                track,
            )
        )
    return records


def run_keyframe_direct(
    frames: list, matcher: str, max_keypoints: int, progress: Progress
) -> list[FrameRecord]:
    """Keyframe odometry on the core; ``frames``: (image loader, t, K, height, truth xyz) tuples."""
    from feature_matching_ros.core.matching.registry import build
    from feature_matching_ros.core.odometry.keyframe_odometry import KeyframeOdometry

    odometry = KeyframeOdometry(build(matcher, {"max_keypoints": max_keypoints}))
    progress.start(len(frames))
    records = []
    for load, t, K, height, truth in frames:
        start = time.perf_counter()
        step = odometry.step(load(), t, K, height)
        latency = (time.perf_counter() - start) * 1e3
        estimate = step.position if step.registered else None  # a track's first frame has no pose
        records.append(FrameRecord(t, truth, estimate, step.registered, step.reason, latency, step.track))
        progress.frame(None)
    return records


def run_navigation(
    frames: list, geomap: GeoMap, options: argparse.Namespace, progress: Progress
) -> list[FrameRecord]:
    """The continuous navigation over ``frames``: (image path or loader, t, K, height or None, truth xyz
    [, R_map_body or None, distortion or None]) tuples."""
    from feature_matching_ros.core.image import load_image
    from feature_matching_ros.core.matching.registry import build
    from feature_matching_ros.core.navigation.config import NavigatorConfig
    from feature_matching_ros.core.navigation.navigator import Navigator

    if not 0.0 <= options.fix_height_sigma <= 1.0:
        raise FeatureMatchingError(f"--fix-height-sigma must be in [0, 1], got {options.fix_height_sigma:g}")
    if not options.whole_map_interval >= 0.0:  # NaN too
        raise FeatureMatchingError(f"--whole-map-interval must be >= 0 s, got {options.whole_map_interval:g}")
    if not options.whole_map_budget >= 0.0:
        raise FeatureMatchingError(f"--whole-map-budget must be >= 0 s, got {options.whole_map_budget:g}")
    config = NavigatorConfig(
        odometry=not options.no_odometry,
        map_sigma_m=options.map_sigma,
        fix_height_sigma=options.fix_height_sigma,
        whole_map_interval_s=options.whole_map_interval,
        whole_map_budget_s=options.whole_map_budget,
        background_search=options.background_search,
    )
    odometry = (
        None if options.no_odometry else build(options.matcher, {"max_keypoints": options.max_keypoints})
    )
    fallback = None if options.fallback_matcher in ("", "none") else build(options.fallback_matcher, {})
    navigator = Navigator(
        build(options.matcher, {}), geomap, config, odometry_pipeline=odometry, fallback_pipeline=fallback
    )
    progress.start(len(frames))
    records: list[FrameRecord] = []
    index: dict[float, int] = {}  # a frame's record by stamp, for a fix that comes in later
    replay = None  # with the search in the background, frames come as the camera took them
    try:
        for path, t, K, height, truth, *aids in frames:
            image = load_image(path) if isinstance(path, Path) else path()
            attitude, dist = (aids + [None, None])[:2]
            if options.background_search:
                replay = replay or (time.perf_counter() - t)
                time.sleep(max(0.0, replay + t - time.perf_counter()))
            start = time.perf_counter()
            state = navigator.step(image, K, t, dist=dist, R_map_body=attitude, height=height)
            latency = (time.perf_counter() - start) * 1e3  # the step: odometry, fusion (and search)
            records.append(
                FrameRecord(
                    t,
                    truth,
                    latency_ms=latency,
                    name=path.name if isinstance(path, Path) else f"{t:.3f}",
                    nav_source=state.source,
                    nav_position=state.position,
                    nav_covariance=state.covariance,
                    **_fix_fields(state.localization),
                )
            )
            index[t] = len(records) - 1
            _late_fix(records, index, state.late)
            progress.frame(None)
        _late_fix(records, index, navigator.finish())
    finally:
        navigator.close()
    return records


def _fix_fields(localization: Localization) -> dict:
    """A frame record's fields from the map fix of the frame (also a rejected fix's pose, not scored)."""
    fix = localization.fix
    accepted = bool(fix.accepted and fix.pose is not None)
    return {
        "estimate": None if fix.pose is None else fix.pose.position,
        "accepted": accepted,
        "reason": "" if accepted else fix.reason,
        "failed_check": "" if accepted else fix.failed,
        "matched_by": localization.match.strategy if len(localization.match) else "",
    }


def _late_fix(records: list[FrameRecord], index: dict[float, int], late: Localization | None) -> None:
    """A background search's outcome, into the record of the frame it searched."""
    if late is not None:
        k = index[late.fix.stamp]
        records[k] = dataclasses.replace(records[k], **_fix_fields(late))


def _bag_frames(bag: Path) -> list:
    from feature_matching_ros.ros.bags.flight_bag import read_flight

    return [(lambda f=f: f.image, f.stamp, f.K, f.height, f.truth_position) for f in read_flight(bag)]


def _is_image_folder(options: argparse.Namespace) -> bool:
    """An image folder (not a bag, nor an fm-simulate folder): --gps given, or a folder of images."""
    if options.gps is not None:
        return True
    folder: Path = options.flight
    if not folder.is_dir() or (folder / "bag").is_dir() or (folder / "metadata.yaml").is_file():
        return False
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _folder_log(options: argparse.Namespace, origin: tuple[float, float, float] | None = None) -> GpsTrack:
    """The folder's GpsTrack: the --gps CSV, or the images' EXIF (positions at ``origin``)."""
    from feature_matching_ros.core.evaluation.flight_log import read_exif_track, read_gps_csv

    if options.gps is not None:
        return read_gps_csv(options.gps)
    return read_exif_track(options.flight, origin)


def _camera(options: argparse.Namespace, first_image: Path) -> np.ndarray:
    """K from --fx/--fy/--cx/--cy; the focal length from the EXIF and the principal point at the
    image centre where not given."""
    fx, cx, cy = options.fx, options.cx, options.cy
    if fx is None or cx is None or cy is None:
        from feature_matching_ros.core.evaluation.flight_log import read_exif
        from feature_matching_ros.core.image import load_image

        if fx is None:
            fx = read_exif(first_image).focal_px
            if fx is None:
                raise FeatureMatchingError(
                    f"no focal length in the EXIF of {first_image.name}: pass --fx (and --fy, --cx, --cy)"
                )
        if cx is None or cy is None:
            h, w = load_image(first_image).shape[:2]
            cx = w / 2.0 if cx is None else cx
            cy = h / 2.0 if cy is None else cy
    fy = options.fy or fx
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _folder_frames(options: argparse.Namespace) -> list:
    from feature_matching_ros.core.evaluation.flight_log import image_folder_track
    from feature_matching_ros.core.image import load_image

    pairs = image_folder_track(options.flight, _folder_log(options))
    K = _camera(options, pairs[0][0])
    return [
        (lambda p=path: load_image(p), row.t, K, row.alt - options.ground, row.position)
        for path, row in pairs
    ]


def _navigation_frames(options: argparse.Namespace, geomap: GeoMap) -> tuple[list, str]:
    """(path, t, K, height, truth) of the frames to navigate, and how the truth is in the map frame."""
    from feature_matching_ros.core.evaluation.flight_log import image_folder_track

    if options.first < 0:
        raise FeatureMatchingError(f"--first must be >= 0, got {options.first}")
    if options.gps is not None:
        log = _folder_log(options)
        east_north = log.csv_en
        frame = f"GPS log east_m/north_m of {options.gps} (taken to be the map frame)"
    else:
        origin = geomap.georef.geodetic_origin
        if origin is None:
            raise FeatureMatchingError(
                "the map's georeference has no geodetic_origin: EXIF GPS cannot be put in its frame; "
                "give a GPS CSV in the map frame with --gps"
            )
        log = _folder_log(options, origin)
        east_north = log.enu[:, :2]
        frame = "EXIF GPS on the WGS84 tangent plane at the map's geodetic_origin"
    pairs = image_folder_track(options.flight, log)
    end = None if options.limit is None else options.first + options.limit
    chosen = list(enumerate(pairs))[options.first : end]
    if not chosen:
        raise FeatureMatchingError(f"no frames left after --first {options.first} of {len(pairs)}")
    K = _camera(options, chosen[0][1][0])
    frames = []
    for i, (path, row) in chosen:
        height = row.alt - options.ground
        truth = (east_north[i, 0], east_north[i, 1], height)
        frames.append((path, row.t, K, None if options.no_altitude else height, truth))
    return frames, frame


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
    folder = _is_image_folder(options)
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
            frames, truth_frame = _navigation_frames(options, geomap)
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
                frames = _folder_frames(options)[options.first : end]
                records = run_keyframe_direct(frames, options.matcher, options.max_keypoints, progress)
            elif options.via == "ros":
                bag = _bag(options.flight)
                records = run_keyframe_ros(bag, options.matcher, options.max_keypoints, progress)[
                    : options.limit
                ]
            else:
                frames = _bag_frames(_bag(options.flight))[: options.limit]
                records = run_keyframe_direct(frames, options.matcher, options.max_keypoints, progress)
        else:
            bag, map_path = _inputs(options)
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
