"""End-to-end benchmark of the ROS 2 pipeline through DDS against the core called directly.

    python benchmarks/ros_pipeline.py [--duration 30] [--matcher "xfeat(sparse)"] [--out FILE]

Frames: the real Seneca drone frames ($FM_SHARED_DATA, default <repo>/../shared/data) resized to
640x480. The reference is one frame (``--map``, written to a temporary PNG) in ``reference_mode=map``,
so both paths match every frame against the same fixed reference (keyframe mode would change the
reference and add the matcher node's own homography). The query frames are the other frames whose
homography to the map has at least ``--min-inliers`` inliers (found by the direct pipeline, which also
warms it up); they are sent in a loop.

ROS path, in this one process: FeatureMatcherNode + GeometryNode on a MultiThreadedExecutor, a source
node publishing Image + CameraInfo at ``--rate`` Hz from its own thread (header.stamp = the node
clock's now, wall time) and a sink node on ``geometry`` and ``pose``. Latency = sink receive time -
image stamp, same clock. After the first geometry plus ``--warmup`` s, frames stamped within the next
``--duration`` s count; fps = those that reached ``geometry`` / the window. Received / processed /
dropped come from the matcher node's Monitor (deltas over the window, after draining).

Direct path, same run, same frames: ``pipeline.match(reference_features, frame, geometry=None)``, then
``estimate("Homography")`` with the geometry node's default robust settings and the pose
decomposition: back to back, as fast as possible, for half the duration before and half after the ROS
phase. At ``--rate`` Hz the ROS path cannot beat the rate, so its fps is compared with
min(rate, direct fps). CPU % = process CPU time / wall time of a phase (200% = both cores of a
2-core machine). Peak RSS (ru_maxrss) is the whole process's: the direct pipeline and the nodes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from feature_matching_ros.core import Pipeline, RobustParams, build, estimate, load_image
from feature_matching_ros.core.pose import pose_covariance, pose_from_geometry
from feature_matching_ros.ros import params

REPO = Path(__file__).resolve().parents[1]
SIZE = (640, 480)
FOCAL_800 = 557.5  # the Seneca camera at 800x600 (shared data README)
THROUGHPUT_TARGET = 0.90
P95_TARGET_MS = 150.0
GEOMETRY = {s.name: s.default for s in params.GEOMETRY_NODE}
MATCHER = {s.name: s.default for s in params.MATCHER_NODE}


def shared_data() -> Path:
    return Path(os.environ.get("FM_SHARED_DATA", REPO.parent / "shared" / "data"))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64)
    if a.size == 0:
        return {"n": 0, "median": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {
        "n": int(a.size),
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "max": a.max(),
    }


def stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"ros_pipeline: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


class Direct:
    """The two nodes' work per frame, called directly: match, homography, pose and its covariance."""

    def __init__(self, pipeline: Pipeline, reference: np.ndarray, K: np.ndarray) -> None:
        self.pipeline, self.K = pipeline, K
        self.reference = pipeline.extract(reference)
        keys = ("method", "reproj_threshold", "confidence", "max_iter")
        self.robust = RobustParams(*(GEOMETRY[k] for k in keys))

    def step(self, frame: np.ndarray) -> int:
        """Homography inliers of ``frame`` to the reference (0 when estimation failed)."""
        m = self.pipeline.match(self.reference, frame, geometry=None).matches
        p0, p1 = np.asarray(m.points0, np.float64), np.asarray(m.points1, np.float64)
        geometry = estimate("Homography", p0, p1, self.robust)
        if not geometry.success:
            return 0
        pose_from_geometry(geometry, self.K, self.K, p0, p1)
        pose_covariance(geometry, float(self.K[0, 0]))
        return geometry.num_inliers

    def run(self, frames: list[np.ndarray], seconds: float) -> dict[str, Any]:
        times: list[float] = []
        start, cpu = time.perf_counter(), cpu_s()
        while time.perf_counter() - start < seconds:
            t = time.perf_counter()
            self.step(frames[len(times) % len(frames)])
            times.append((time.perf_counter() - t) * 1e3)
        wall = time.perf_counter() - start
        return {"frames": len(times), "wall_s": wall, "cpu_pct": 100 * (cpu_s() - cpu) / wall, "ms": times}


def run_ros(args: argparse.Namespace, map_path: str, frames: list[np.ndarray], K: np.ndarray) -> dict:
    import rclpy
    from feature_matching_ros.msg import GeometryEstimate
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from feature_matching_ros.ros import topics
    from feature_matching_ros.ros.geometry_node import GeometryNode
    from feature_matching_ros.ros.images import array_to_image
    from feature_matching_ros.ros.matcher_node import FeatureMatcherNode

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # as the tests: this machine only
    os.environ.pop("ROS_STATIC_PEERS", None)
    context = Context()
    rclpy.init(context=context, domain_id=args.domain_id)
    overrides = {"matcher": args.matcher, "reference_mode": "map", "map_image": map_path}
    matcher = FeatureMatcherNode(
        context=context,
        parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
        + [Parameter("publish_debug", value=args.debug)],
    )
    geometry = GeometryNode(
        context=context, parameter_overrides=[Parameter("publish_debug", value=args.debug)]
    )
    source = rclpy.create_node("fm_bench_source", context=context)
    sink = rclpy.create_node("fm_bench_sink", context=context)
    image_pub = source.create_publisher(Image, topics.CAMERA_IMAGE, qos_profile_sensor_data)
    info_pub = source.create_publisher(CameraInfo, topics.CAMERA_INFO, qos_profile_sensor_data)
    received: dict[str, list[tuple[int, int]]] = {"geometry": [], "pose": []}

    def collect(name: str) -> Callable[[Any], None]:
        def on(msg: Any) -> None:
            received[name].append((stamp_ns(msg.header.stamp), sink.get_clock().now().nanoseconds))

        return on

    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    sink.create_subscription(GeometryEstimate, topics.GEOMETRY, collect("geometry"), reliable)
    sink.create_subscription(PoseWithCovarianceStamped, topics.POSE, collect("pose"), reliable)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    for node in (matcher, geometry, source, sink):
        executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()

    info = CameraInfo(width=SIZE[0], height=SIZE[1], distortion_model="plumb_bob", d=[0.0] * 5)
    info.k, info.r = K.ravel().tolist(), np.eye(3).ravel().tolist()
    info.p = np.hstack([K, np.zeros((3, 1))]).ravel().tolist()
    images = [array_to_image(frame, "rgb8") for frame in frames]
    for msg in (info, *images):
        msg.header.frame_id = topics.CAMERA_OPTICAL_FRAME
    stamps: list[int] = []
    late_ms: list[float] = []
    stop = threading.Event()

    def publish_loop() -> None:
        period, start, tick = 1.0 / args.rate, time.monotonic(), 0
        while not stop.wait(max(0.0, start + tick * period - time.monotonic())):
            late_ms.append((time.monotonic() - start - tick * period) * 1e3)
            now = source.get_clock().now()
            image = images[len(stamps) % len(images)]
            image.header.stamp = info.header.stamp = now.to_msg()
            info_pub.publish(info)
            image_pub.publish(image)
            stamps.append(now.nanoseconds)
            tick = max(tick + 1, int((time.monotonic() - start) / period))  # after a stall: no burst

    def counts() -> tuple[int, int, int]:
        return matcher.monitor.received, matcher.monitor.processed, matcher.monitor.dropped

    subscribed = (image_pub.get_subscription_count, lambda: info_pub.get_subscription_count() - 1)
    wait_for(lambda: all(count() >= 1 for count in subscribed), 30, "discovery")
    publisher = threading.Thread(target=publish_loop, daemon=True)
    publisher.start()
    wait_for(lambda: received["geometry"], 120, "the first geometry (matcher build + map extraction)")
    time.sleep(args.warmup)
    before, cpu, t0 = counts(), cpu_s(), source.get_clock().now().nanoseconds
    time.sleep(args.duration)
    t1, cpu = source.get_clock().now().nanoseconds, cpu_s() - cpu
    stop.set()
    publisher.join()
    drained = lambda: matcher.worker.idle() and geometry.monitor.processed >= matcher.monitor.processed  # noqa: E731
    wait_for(drained, 10, "the nodes to finish the last frame")
    time.sleep(0.5)  # the last geometry and pose messages reach the sink
    after = counts()
    reports = {"matcher": matcher.monitor.report().values, "geometry": geometry.monitor.report().values}
    executor.shutdown()
    for node in (matcher, geometry, source, sink):
        node.destroy_node()
    rclpy.shutdown(context=context)

    window_s = (t1 - t0) / 1e9
    latency = {
        name: [(recv - stamp) / 1e6 for stamp, recv in items if t0 <= stamp <= t1]
        for name, items in received.items()
    }
    received_n, processed, dropped = (a - b for a, b in zip(after, before, strict=True))
    return {
        "window_s": window_s,
        "fps": len(latency["geometry"]) / window_s,
        "cpu_pct": 100 * cpu / window_s,
        "published": sum(t0 <= s <= t1 for s in stamps),
        "received": received_n,
        "processed": processed,
        "dropped": dropped,
        "geometry_msgs": len(latency["geometry"]),
        "pose_msgs": len(latency["pose"]),
        "latency_pose_ms": stats(latency["pose"]),
        "latency_geometry_ms": stats(latency["geometry"]),
        "publish_lateness_ms": stats(late_ms),
        "node_reports": reports,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--matcher", default=MATCHER["matcher"], help="zoo entry (%(default)s)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds of ROS input (30)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the first geometry (3)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz (30)")
    parser.add_argument("--map", default="IMG_0479.jpg", help="the reference frame (%(default)s)")
    parser.add_argument("--min-inliers", type=int, default=30, help="query frames: inliers to the map (30)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--debug", action="store_true", help="the nodes also publish debug pictures")
    parser.add_argument("--domain-id", type=int, default=random.SystemRandom().randint(101, 200))
    parser.add_argument("--out", type=Path, default=Path("out/ros_bench.json"))
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    files = sorted((shared_data() / "flights" / "seneca" / "images").glob("IMG_*.jpg"))
    candidates = {f.name: cv2.resize(load_image(f), SIZE, interpolation=cv2.INTER_AREA) for f in files}
    if args.map not in candidates:
        sys.exit(f"ros_pipeline: {args.map} not found in {shared_data()}/flights/seneca; set FM_SHARED_DATA")
    reference = candidates.pop(args.map)
    f = FOCAL_800 * SIZE[0] / 800
    K = np.array([[f, 0.0, SIZE[0] / 2], [0.0, f, SIZE[1] / 2], [0.0, 0.0, 1.0]])
    direct = Direct(build(args.matcher, {"max_keypoints": MATCHER["max_keypoints"]}), reference, K)
    inliers = {name: direct.step(image) for name, image in candidates.items()}
    names = [name for name, count in inliers.items() if count >= args.min_inliers]
    if not names:
        sys.exit(f"ros_pipeline: no frame has {args.min_inliers} inliers to {args.map}; try another --map")
    frames = [candidates[name] for name in names]
    runs = [direct.run(frames, args.duration / 2)]
    rss_before_ros = rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        map_path = str(Path(tmp) / "map.png")
        cv2.imwrite(map_path, cv2.cvtColor(reference, cv2.COLOR_RGB2BGR))
        ros = run_ros(args, map_path, frames, K)
    runs.append(direct.run(frames, args.duration / 2))
    direct_fps = sum(r["frames"] for r in runs) / sum(r["wall_s"] for r in runs)
    ceiling = min(args.rate, direct_fps)
    p95 = ros["latency_pose_ms" if ros["pose_msgs"] else "latency_geometry_ms"]["p95"]
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_start": list(load_start),
            "load_average_end": list(os.getloadavg()),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "settings": {**{k: str(v) for k, v in vars(args).items()}, "frames": names, "size": SIZE},
        "frame_inliers": inliers,
        "direct": {
            "fps": direct_fps,
            "fps_before_after_ros": [r["frames"] / r["wall_s"] for r in runs],
            "cpu_pct_before_after_ros": [r["cpu_pct"] for r in runs],
            "frame_ms": stats(runs[0]["ms"] + runs[1]["ms"]),
        },
        "ros": ros,
        "compared_with": "rate" if ceiling == args.rate else "direct fps",
        "throughput_ratio": ros["fps"] / ceiling,
        "rss_mib": {
            "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "before_ros": rss_before_ros,
            "end": rss_mib(),
        },
        "targets": {"throughput_ratio": THROUGHPUT_TARGET, "latency_p95_ms": P95_TARGET_MS},
    }
    report["met"] = {
        "throughput": report["throughput_ratio"] >= THROUGHPUT_TARGET,
        "latency_p95": bool(p95 <= P95_TARGET_MS),
    }
    print_report(report, p95)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nreport      {args.out}")
    return 0


def print_report(r: dict, p95: float) -> None:
    ros, direct, m, s = r["ros"], r["direct"], r["machine"], r["settings"]
    print(
        f"\n{s['matcher']} at {SIZE[0]}x{SIZE[1]}, {s['rate']} Hz input, map {s['map']}, {len(s['frames'])} "
        f"query frames in a loop, {ros['window_s']:.1f} s measured; torch threads {m['torch_threads']}, "
        f"{m['cpu_count']} CPUs, load average {m['load_average_start'][0]:.2f} at start, "
        f"{m['load_average_end'][0]:.2f} at end\n"
    )

    def ms(d: dict) -> str:
        return f"{d['median']:.1f} / {d['p95']:.1f} / {d['max']:.1f}"

    fps_ab = " / ".join(f"{v:.2f}" for v in direct["fps_before_after_ros"])
    cpu_ab = " / ".join(f"{v:.0f}" for v in direct["cpu_pct_before_after_ros"])
    rows = [
        (
            "frames per second (direct: before / after ROS)",
            f"{ros['fps']:.2f}",
            f"{direct['fps']:.2f} ({fps_ab})",
        ),
        (
            f"ROS fps / min({s['rate']}, direct fps)",
            f"{r['throughput_ratio']:.1%} (vs {r['compared_with']})",
            "",
        ),
        ("stamp -> pose ms (median / p95 / max)", ms(ros["latency_pose_ms"]), ""),
        ("stamp -> geometry ms (median / p95 / max)", ms(ros["latency_geometry_ms"]), ""),
        ("per-frame compute ms (median / p95 / max)", "", ms(direct["frame_ms"])),
        (
            "published / received / processed / dropped",
            f"{ros['published']} / {ros['received']} / {ros['processed']} / {ros['dropped']}",
            "",
        ),
        ("geometry / pose messages (stamps in window)", f"{ros['geometry_msgs']} / {ros['pose_msgs']}", ""),
        ("publisher lateness ms (median / p95 / max)", ms(ros["publish_lateness_ms"]), ""),
        ("process CPU % (direct: before / after ROS)", f"{ros['cpu_pct']:.0f}", cpu_ab),
        (
            "RSS MiB, whole process: peak / before ROS / end",
            " / ".join(f"{v:.0f}" for v in r["rss_mib"].values()),
            "",
        ),
    ]
    print("| metric | ROS (DDS) | direct core |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for name in ("matcher", "geometry"):
        v = ros["node_reports"][name]
        print(
            f"{name} node Monitor, last 100 (matcher: frame received -> matches published; geometry: "
            f"compute): median {v['latency_ms_median']} ms, p95 {v['latency_ms_p95']} ms, "
            f"failures {v['failures']}, errors {v['errors']}"
        )
    verdict = {True: "MET", False: "NOT MET"}
    print(
        f"target ROS throughput >= {THROUGHPUT_TARGET:.0%} of min(rate, direct): "
        f"{verdict[r['met']['throughput']]} ({r['throughput_ratio']:.1%})"
    )
    print(f"target latency p95 <= {P95_TARGET_MS:.0f} ms: {verdict[r['met']['latency_p95']]} ({p95:.1f} ms)")


if __name__ == "__main__":
    sys.exit(main())
