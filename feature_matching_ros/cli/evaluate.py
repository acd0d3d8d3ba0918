"""fm-eval: run navigation over a recorded or simulated flight and score it against ground truth.

    fm-eval out/flight                      # an fm-simulate folder: bag/ and map.png + map.yaml
    fm-eval flight.bag --map ortho.png      # any bag with camera, camera_info and ground_truth/pose
    fm-eval out/flight --mode keyframe      # keyframe odometry instead of map fixes
    fm-eval IMAGES/ --gps gps.csv --mode keyframe --fx 557.5 --cx 400 --cy 300 --ground 220

--via ros (default) runs both nodes in this process over DDS, frame by frame; --via direct calls
the core without ROS. Writes report.md, report.json, frames.csv, trajectory.png and errors.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.report import FrameRecord, Run, write_report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fm-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("flight", type=Path, help="fm-simulate output folder, or a rosbag2 bag")
    p.add_argument("--map", type=Path, help="georeferenced map (default: FLIGHT/map.png)")
    p.add_argument("--matcher", default="sift", help="zoo name (default sift)")
    p.add_argument("--via", choices=("ros", "direct"), default="ros", help="nodes over DDS, or the core")
    p.add_argument("--out", type=Path, help="report folder (default: FLIGHT/eval-MATCHER)")
    p.add_argument("--limit", type=int, help="evaluate the first N frames only")
    p.add_argument("--wrong-bound", type=float, default=15.0, help="an accepted fix off by more is wrong, m")
    p.add_argument("--mode", choices=("map", "keyframe"), default="map", help="absolute fixes or odometry")
    p.add_argument("--gps", type=Path, help="GPS CSV of an image folder (keyframe mode, core only)")
    p.add_argument("--fx", type=float, help="focal length, px (image folder)")
    p.add_argument("--fy", type=float, help="focal length, px (default: --fx)")
    p.add_argument("--cx", type=float, help="principal point, px (image folder)")
    p.add_argument("--cy", type=float, help="principal point, px (image folder)")
    p.add_argument("--ground", type=float, default=0.0, help="terrain elevation for GPS altitudes, m")
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
    bag: Path, map_path: Path, matcher: str, limit: int | None, progress: Progress
) -> list[FrameRecord]:
    from feature_matching_ros.ros.flight_bag import read_truth
    from feature_matching_ros.ros.pipeline_run import run_on_bag

    truth = read_truth(bag)
    parameters = {
        "feature_matcher": {
            "reference_mode": "map",
            "map_image": str(map_path),
            "matcher": matcher,
            "publish_debug": False,
        },
        "geometry": {"mode": "map", "map_image": str(map_path), "publish_debug": False},
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
    bag: Path, map_path: Path, matcher: str, limit: int | None, progress: Progress
) -> list[FrameRecord]:
    from feature_matching_ros.core.georef import load_map
    from feature_matching_ros.core.map_localizer import MapLocalizer
    from feature_matching_ros.core.registry import build
    from feature_matching_ros.ros.flight_bag import read_flight

    localizer = MapLocalizer(build(matcher, {}), load_map(map_path))
    frames = list(read_flight(bag, limit))
    progress.start(len(frames))
    records = []
    for frame in frames:
        result = localizer.localize(
            frame.image, frame.K, frame.stamp, dist=frame.D, R_map_body=frame.R_map_body, height=frame.height
        )
        fix = result.fix
        position = fix.pose.position if fix.accepted else None
        t = frame.stamp - frames[0].stamp
        records.append(
            FrameRecord(t, frame.truth_position, position, fix.accepted, fix.reason, result.total_ms)
        )
        progress.frame(None)
    return records


def run_keyframe_ros(bag: Path, matcher: str, max_keypoints: int, progress: Progress) -> list[FrameRecord]:
    """Keyframe odometry through both nodes; a track ends at every frame that did not register."""
    from feature_matching_ros.ros.flight_bag import read_truth
    from feature_matching_ros.ros.pipeline_run import run_on_bag

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
    from feature_matching_ros.core.keyframe_odometry import KeyframeOdometry
    from feature_matching_ros.core.registry import build

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


def _bag_frames(bag: Path) -> list:
    from feature_matching_ros.ros.flight_bag import read_flight

    return [(lambda f=f: f.image, f.stamp, f.K, f.height, f.truth_position) for f in read_flight(bag)]


def _folder_frames(options: argparse.Namespace) -> list:
    from feature_matching_ros.core.flight_log import image_folder_track
    from feature_matching_ros.core.image import load_image

    if options.fx is None or options.cx is None or options.cy is None:
        raise FeatureMatchingError("an image folder needs the camera: --fx, --cx, --cy (and --fy)")
    fy = options.fy or options.fx
    K = np.array([[options.fx, 0.0, options.cx], [0.0, fy, options.cy], [0.0, 0.0, 1.0]])
    pairs = image_folder_track(options.flight, options.gps)
    return [
        (lambda p=path: load_image(p), row.t, K, row.alt - options.ground, row.position)
        for path, row in pairs
    ]


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
    try:
        if options.mode == "keyframe":
            if options.gps is not None:
                frames = _folder_frames(options)[: options.limit]
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
            run = run_ros if options.via == "ros" else run_direct
            records = run(bag, map_path, options.matcher, options.limit, progress)
    except FeatureMatchingError as exc:
        print(f"fm-eval: {exc}", file=sys.stderr)
        return 2
    finally:
        progress.close()
    if not records:
        print("fm-eval: the bag has no camera frames", file=sys.stderr)
        return 2
    from feature_matching_ros.core.georef import load_map

    via = "direct" if options.gps is not None else options.via
    out = options.out or options.flight / f"eval-{options.mode}-{options.matcher}-{via}"
    meta = {"flight": str(options.flight), "map": str(map_path), "via": via}
    meta["wall_s"] = time.perf_counter() - start
    run = Run(options.mode, options.matcher, records, meta, wrong_fix_bound_m=options.wrong_bound)
    report = write_report(run, out, load_map(map_path) if map_path else None)
    print(report.summary)
    print(f"fm-eval: report in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
