"""Keyframe odometry on the real Seneca survey frames, scored against their GPS.

    python benchmarks/seneca_keyframe.py [--matcher sift] [--max-keypoints 8000] [--out out/seneca.json]

Consecutive frames whose GPS positions are < 45 m apart count as overlapping (they should
register), > 85 m apart as disjoint (they must not). ATE: per track (frames chained without a
loss), after a 2-D similarity alignment of the odometry to the GPS east/north, as a percentage of
the track's GPS length; tracks of fewer than 3 frames are not scored. Height above ground: GPS
altitude minus --ground (m).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from feature_matching_ros.core.evaluation.trajectory_metrics import ate
from feature_matching_ros.core.image import load_image
from feature_matching_ros.core.matching.registry import build
from feature_matching_ros.core.odometry.keyframe import KeyframePolicy
from feature_matching_ros.core.odometry.keyframe_odometry import KeyframeOdometry, OdometryConfig

DATA = Path(os.environ.get("FM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
K = np.array([[557.5, 0.0, 400.0], [0.0, 557.5, 300.0], [0.0, 0.0, 1.0]])


def run(
    matcher: str, max_keypoints: int, ground: float, equalize: bool, keyframe_overlap: float = 0.6
) -> dict:
    root = DATA / "flights" / "seneca"
    rows = list(csv.DictReader((root / "gps.csv").open()))
    config = OdometryConfig(keyframes=KeyframePolicy(min_inliers=150, min_overlap=keyframe_overlap))
    odometry = KeyframeOdometry(build(matcher, {"max_keypoints": max_keypoints}), config, equalize=equalize)
    steps, times = [], []
    for row in rows:
        image = load_image(root / "images" / row["image"])
        start = time.perf_counter()
        steps.append(odometry.step(image, float(row["t_s"]), K, float(row["alt_m"]) - ground))
        times.append((time.perf_counter() - start) * 1e3)
    gps = np.array([[float(r["east_m"]), float(r["north_m"])] for r in rows])
    gaps = np.linalg.norm(np.diff(gps, axis=0), axis=1)
    registered = np.array([s.registered for s in steps[1:]])
    overlapping, disjoint = gaps < 45.0, gaps > 85.0
    tracks = {}
    for i, s in enumerate(steps):
        if s.registered or (i + 1 < len(steps) and steps[i + 1].registered and steps[i + 1].track == s.track):
            position = s.position[:2] if s.position is not None else None
            tracks.setdefault(s.track, []).append((i, position))
    per_track = []
    for track, items in sorted(tracks.items()):
        # the keyframe that starts a track sits at the track's origin
        indices = [i for i, _ in items]
        if len(indices) < 3:
            continue
        start = steps[indices[0]]
        origin = start.origin[:2] if start.origin is not None else start.position[:2]
        estimate = np.array([p if p is not None else origin for _, p in items])
        result = ate(estimate, gps[indices])
        per_track.append(
            {
                "track": track,
                "frames": len(indices),
                "ate_percent": result.rmse_percent,
                "length_m": result.track_length,
            }
        )
    ates = [t["ate_percent"] for t in per_track]
    return {
        "matcher": matcher,
        "max_keypoints": max_keypoints,
        "equalize": equalize,
        "keyframe_overlap": keyframe_overlap,
        "overlapping_pairs": int(overlapping.sum()),
        "overlapping_registered": int((registered & overlapping).sum()),
        "disjoint_pairs": int(disjoint.sum()),
        "disjoint_registered": int((registered & disjoint).sum()),
        "tracks": per_track,
        "ate_percent_median": float(np.median(ates)) if ates else None,
        "ate_percent_worst": float(np.max(ates)) if ates else None,
        "ms_per_frame_median": float(np.median(times)),
        "failures": [
            (i + 1, round(float(gaps[i]), 1), steps[i + 1].reason)
            for i in range(len(gaps))
            if not registered[i]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matcher", default="sift")
    parser.add_argument("--max-keypoints", type=int, default=8000)
    parser.add_argument("--ground", type=float, default=220.0, help="ground elevation, m above sea level")
    parser.add_argument("--no-equalize", action="store_true", help="no CLAHE before extraction")
    parser.add_argument(
        "--keyframe-overlap", type=float, default=0.6, help="renew the keyframe below this overlap"
    )
    parser.add_argument("--out", type=Path, help="write the result as JSON")
    options = parser.parse_args()
    result = run(
        options.matcher,
        options.max_keypoints,
        options.ground,
        not options.no_equalize,
        options.keyframe_overlap,
    )
    print("| matcher | overlapping registered | disjoint registered | ATE median / worst | ms/frame |")
    print("| --- | ---: | ---: | --- | ---: |")
    print(
        f"| `{result['matcher']}` ({result['max_keypoints']} kp, equalize={result['equalize']}) "
        f"| {result['overlapping_registered']}/{result['overlapping_pairs']} "
        f"| {result['disjoint_registered']}/{result['disjoint_pairs']} "
        f"| {result['ate_percent_median']:.2f} % / {result['ate_percent_worst']:.2f} % "
        f"| {result['ms_per_frame_median']:.0f} |"
    )
    for failure in result["failures"]:
        print("unregistered pair", failure)
    if options.out:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
