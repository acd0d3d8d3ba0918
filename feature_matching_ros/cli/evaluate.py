"""fm-eval: run map navigation over a recorded or simulated flight and score it against ground truth.

    fm-eval out/flight                      # an fm-simulate folder: bag/ and map.png + map.yaml
    fm-eval flight.bag --map ortho.png      # any bag with camera, camera_info and ground_truth/pose

--via ros (default) runs both nodes in this process over DDS, frame by frame; --via direct calls
the core without ROS. Writes report.md, report.json, frames.csv, trajectory.png and errors.png.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.nav_metrics import MapScore, error_stats, score_map_fixes


@dataclass
class FrameRecord:
    """One frame: its time (s from the first), truth and estimate (map metres; NaN: no fix),
    why no fix was published ('' if one was), and the latency (ms, NaN if no answer)."""

    t: float
    truth: np.ndarray
    estimate: np.ndarray
    reason: str
    latency_ms: float


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
        position = np.full(3, np.nan)
        if outcome.pose is not None:
            p = outcome.pose.pose.pose.position
            position = np.array([p.x, p.y, p.z])
        geometry = outcome.geometry
        reason = (
            "no answer" if geometry is None else ("" if outcome.pose is not None else geometry.pose_status)
        )
        latency = outcome.latency_ms if outcome.latency_ms is not None else math.nan
        truth_xyz = true[0] if true is not None else np.full(3, np.nan)
        records.append(FrameRecord((outcome.stamp_ns - t0) / 1e9, truth_xyz, position, reason, latency))
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
        position = fix.pose.position if fix.accepted else np.full(3, np.nan)
        records.append(
            FrameRecord(
                frame.stamp - frames[0].stamp, frame.truth_position, position, fix.reason, result.total_ms
            )
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


def table(score: MapScore, latency: dict[str, float], matcher: str, via: str) -> str:
    h = score.horizontal
    rows = [
        ("matcher", f"`{matcher}` via {via}"),
        ("frames", f"{score.frames}"),
        ("accepted fixes", f"{score.accepted} ({100 * score.success_rate:.1f} %)"),
        ("horizontal error median / p95 / max", f"{h.median:.3f} / {h.p95:.3f} / {h.max:.3f} m"),
        ("height error median / max", f"{score.vertical.median:.3f} / {score.vertical.max:.3f} m"),
        (f"wrong fixes (> {score.wrong_bound_m:g} m)", f"{score.wrong_fixes}"),
        ("rejected", ", ".join(f"{k}: {v}" for k, v in score.rejected.items()) or "none"),
        (
            "latency median / p95 / max",
            f"{latency['median']:.1f} / {latency['p95']:.1f} / {latency['max']:.1f} ms",
        ),
        ("rate at median latency", f"{1000.0 / latency['median']:.1f} Hz" if latency["median"] > 0 else "-"),
    ]
    lines = ["| metric | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join(lines)


def write_report(
    out: Path, records: list[FrameRecord], score: MapScore, latency: dict, text: str, meta: dict
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "meta": meta,
        "score": asdict(score) | {"success_rate": score.success_rate},
        "latency_ms": latency,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float))
    (out / "report.md").write_text(f"# Map navigation evaluation\n\n{text}\n")
    with (out / "frames.csv").open("w") as f:
        f.write("t_s,truth_x,truth_y,truth_z,est_x,est_y,est_z,error_h_m,latency_ms,reason\n")
        for r in records:
            error = float(np.hypot(*(r.estimate[:2] - r.truth[:2])))
            values = [r.t, *r.truth, *r.estimate, error, r.latency_ms]
            f.write(",".join(f"{v:.4f}" for v in values) + f",{r.reason.replace(',', ';')}\n")
    _plots(out, records, score)


def _plots(out: Path, records: list[FrameRecord], score: MapScore) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = np.array([r.truth for r in records])
    estimate = np.array([r.estimate for r in records])
    accepted = np.isfinite(estimate).all(axis=1)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.plot(truth[:, 0], truth[:, 1], "-", color="0.3", label="ground truth")
    ax.plot(estimate[accepted, 0], estimate[accepted, 1], ".", color="tab:blue", ms=4, label="accepted fixes")
    if (~accepted).any():
        ax.plot(truth[~accepted, 0], truth[~accepted, 1], "x", color="tab:red", label="no fix")
    ax.set_aspect("equal")
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.legend()
    ax.set_title(f"{score.accepted}/{score.frames} fixes, median error {score.horizontal.median:.2f} m")
    fig.savefig(out / "trajectory.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    t = np.array([r.t for r in records])
    error = np.hypot(*(estimate[:, :2] - truth[:, :2]).T)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.semilogy(t[accepted], np.maximum(error[accepted], 1e-3), ".", color="tab:blue", label="accepted fix")
    for x in t[~accepted]:
        ax.axvline(x, color="tab:red", alpha=0.3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("horizontal error (m)")
    ax.set_title("error over time (red: no fix)")
    fig.savefig(out / "errors.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


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
    truth = np.array([r.truth for r in records])
    score = score_map_fixes(
        truth, np.array([r.estimate for r in records]), [r.reason for r in records], options.wrong_bound
    )
    latency = error_stats(np.array([r.latency_ms for r in records])).as_dict()
    text = table(score, latency, options.matcher, options.via)
    out = options.out or options.flight / f"eval-{options.matcher}-{options.via}"
    meta = {
        "flight": str(options.flight),
        "map": str(map_path),
        "matcher": options.matcher,
        "via": options.via,
    }
    meta["wall_s"] = time.perf_counter() - start
    write_report(out, records, score, latency, text, meta)
    print(text)
    print(f"fm-eval: report in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
