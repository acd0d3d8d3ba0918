"""fm-eval: run map navigation over a recorded or simulated flight and score it against ground truth.

    fm-eval out/flight                      # an fm-simulate folder: bag/ and map.png + map.yaml
    fm-eval flight.bag --map ortho.png      # any bag with camera, camera_info and ground_truth/pose

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
    return p


def _inputs(options: argparse.Namespace) -> tuple[Path, Path]:
    flight: Path = options.flight
    bag = flight / "bag" if (flight / "bag").is_dir() else flight
    map_path = options.map or flight / "map.png"
    if not bag.exists():
        raise FeatureMatchingError(f"no bag at {bag}")
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
    try:
        bag, map_path = _inputs(options)
        start = time.perf_counter()
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

    out = options.out or options.flight / f"eval-{options.matcher}-{options.via}"
    meta = {"flight": str(options.flight), "map": str(map_path), "via": options.via}
    meta["wall_s"] = time.perf_counter() - start
    run = Run("map", options.matcher, records, meta, wrong_fix_bound_m=options.wrong_bound)
    report = write_report(run, out, load_map(map_path))
    print(report.summary)
    print(f"fm-eval: report in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
