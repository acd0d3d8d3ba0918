"""End-to-end benchmark of the ROS 2 pipeline through DDS against the core called directly.

    python benchmarks/ros_pipeline.py [--duration 30] [--matcher "xfeat(sparse)"] [--out FILE]

Frames: the real Seneca drone frames ($FM_SHARED_DATA, default <repo>/../shared/data) resized to
640x480. The reference is one frame (``--map``, written to a temporary PNG) in ``reference_mode=map``,
so both paths match every frame against the same fixed reference (keyframe mode would change the
reference and add the matcher node's own homography). The query frames are the other frames whose
homography to the map has at least ``--min-inliers`` inliers (found by the direct pipeline, which also
warms it up); they are sent in a loop.

ROS path, in this one process: FeatureMatcherNode + GeometryNode on fm-navigate's executor
(``--executor multi``: rclpy's MultiThreadedExecutor, for comparison), a source node publishing
Image + CameraInfo at ``--rate`` Hz from its own thread (header.stamp = the node clock's now, wall
time) and a sink node on ``geometry`` and ``pose``. Latency = sink receive time -
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
import shutil
import signal
import subprocess
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
from feature_matching_ros.core.geometry.pose import pose_covariance, pose_from_geometry
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


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of each thread of this process by Python thread name; threads Python did not
    start (DDS, torch's pool) are summed as "other"."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        name = names.get(int(task.name), "other")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


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


def spin_until_shutdown(executor: Any) -> None:
    """Spin in a thread; the context's shutdown at the end of the run is the normal way out."""
    from rclpy.executors import ExternalShutdownException

    try:
        executor.spin()
    except ExternalShutdownException:
        pass


class InProcessNodes:
    """Both nodes in the benchmark's own process and executor (``--nodes in-process``)."""

    def __init__(self, args: argparse.Namespace, map_path: str, context: Any) -> None:
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.parameter import Parameter

        from feature_matching_ros.ros.infrastructure.spin import make_executor
        from feature_matching_ros.ros.nodes.geometry_node import GeometryNode
        from feature_matching_ros.ros.nodes.matcher_node import FeatureMatcherNode

        overrides = node_parameters(args, map_path)
        self.matcher = FeatureMatcherNode(
            context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides["feature_matcher"].items()],
        )
        self.geometry = GeometryNode(
            context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides["geometry"].items()],
        )
        multi = args.executor == "multi"
        self.executor = (
            MultiThreadedExecutor(num_threads=4, context=context) if multi else make_executor(context)
        )
        for node in (self.matcher, self.geometry):
            self.executor.add_node(node)
        self.pid = os.getpid()

    def add(self, node: Any) -> None:
        self.executor.add_node(node)

    def spin(self) -> None:
        threading.Thread(
            target=spin_until_shutdown, args=(self.executor,), name="executor", daemon=True
        ).start()

    def counts(self) -> tuple[int, int, int]:
        m = self.matcher.monitor
        return m.received, m.processed, m.dropped

    def drained(self) -> bool:
        return (
            self.matcher.worker.idle() and self.geometry.monitor.processed >= self.matcher.monitor.processed
        )

    def reports(self) -> dict[str, dict[str, str]]:
        return {
            "matcher": self.matcher.monitor.report().values,
            "geometry": self.geometry.monitor.report().values,
        }

    def stop(self) -> None:
        self.executor.shutdown()
        for node in (self.matcher, self.geometry):
            node.destroy_node()


class NavigateProcess:
    """Both nodes as deployed: ``fm-navigate --params FILE`` in its own process (the default).

    Counts and reports come from its /diagnostics, CPU and memory from /proc."""

    def __init__(self, args: argparse.Namespace, map_path: str, context: Any, tmp: Path) -> None:
        self.params = tmp / "params.yaml"
        overrides = node_parameters(args, map_path)
        self.params.write_text(json.dumps({name: {"ros__parameters": p} for name, p in overrides.items()}))
        self.args = args
        self.status: dict[str, dict[str, str]] = {}

    def watch(self, node: Any) -> None:
        """Collect the nodes' /diagnostics values in ``node``."""
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from feature_matching_ros.ros.infrastructure import topics

        def on(msg: Any) -> None:
            for status in msg.status:
                name = status.name.split(":")[0].strip()
                self.status[name] = {kv.key: kv.value for kv in status.values}

        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, on, qos)

    def spin(self) -> None:
        executable = shutil.which("fm-navigate") or str(Path(sys.executable).parent / "fm-navigate")
        env = dict(os.environ, ROS_DOMAIN_ID=str(self.args.domain_id))
        self.process = subprocess.Popen([executable, "--params", str(self.params)], env=env)
        self.pid = self.process.pid

    def _value(self, node: str, key: str) -> int:
        return int(self.status.get(node, {}).get(key, 0))

    def counts(self) -> tuple[int, int, int]:
        return tuple(self._value("feature_matcher", k) for k in ("received", "processed", "dropped"))

    def drained(self) -> bool:
        received, processed, dropped = self.counts()
        return processed + dropped >= received and self._value("geometry", "processed") >= processed

    def reports(self) -> dict[str, dict[str, str]]:
        return {
            "matcher": self.status.get("feature_matcher", {}),
            "geometry": self.status.get("geometry", {}),
        }

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def node_parameters(args: argparse.Namespace, map_path: str) -> dict[str, dict[str, Any]]:
    matcher = {"matcher": args.matcher, "reference_mode": "map", "map_image": map_path}
    common = {"publish_debug": args.debug, "diagnostics_period": 0.2}
    return {"feature_matcher": {**matcher, **common}, "geometry": dict(common)}


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(line.split()[1]) / 1024
    return out


def run_ros(args: argparse.Namespace, map_path: str, frames: list[np.ndarray], K: np.ndarray) -> dict:
    import rclpy
    from feature_matching_ros.msg import GeometryEstimate
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from rclpy.context import Context
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from feature_matching_ros.ros.conversions.images import array_to_image
    from feature_matching_ros.ros.infrastructure import topics
    from feature_matching_ros.ros.infrastructure.dds import use_large_image_profile
    from feature_matching_ros.ros.infrastructure.spin import make_executor

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # as the tests: this machine only
    os.environ.pop("ROS_STATIC_PEERS", None)
    if not args.default_dds:
        use_large_image_profile()  # this process is the camera driver; fm-navigate inherits it
    context = Context()
    rclpy.init(context=context, domain_id=args.domain_id)
    tmp = tempfile.TemporaryDirectory()
    if args.nodes == "in-process":
        nodes: InProcessNodes | NavigateProcess = InProcessNodes(args, map_path, context)
    else:
        nodes = NavigateProcess(args, map_path, context, Path(tmp.name))
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
    if isinstance(nodes, InProcessNodes):
        nodes.add(source)
        nodes.add(sink)
    else:
        nodes.watch(sink)
        io = make_executor(context)
        io.add_node(source)
        io.add_node(sink)
        threading.Thread(target=spin_until_shutdown, args=(io,), name="executor", daemon=True).start()
    nodes.spin()

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

    try:
        # Both nodes take camera_info; the matcher node (and the geometry node's lazy overlay) the image.
        wait_for(lambda: image_pub.get_subscription_count() >= 1, 120, "the matcher node's subscription")
        wait_for(lambda: info_pub.get_subscription_count() >= 2, 30, "the geometry node's subscription")
        publisher = threading.Thread(target=publish_loop, name="camera-source", daemon=True)
        publisher.start()
        wait_for(lambda: received["geometry"], 120, "the first geometry (matcher build + map extraction)")
        time.sleep(args.warmup)
        before, t0 = nodes.counts(), source.get_clock().now().nanoseconds
        cpu, threads = process_cpu_s(nodes.pid), thread_cpu_s()
        time.sleep(args.duration)
        t1, cpu = source.get_clock().now().nanoseconds, process_cpu_s(nodes.pid) - cpu
        threads = {name: v - threads.get(name, 0.0) for name, v in thread_cpu_s().items()}
        stop.set()
        publisher.join()
        wait_for(nodes.drained, 10, "the nodes to finish the last frame")
        time.sleep(0.5)  # the last messages (and a /diagnostics period) arrive
        after, reports, memory = nodes.counts(), nodes.reports(), process_memory_mib(nodes.pid)
    finally:
        stop.set()
        nodes.stop()
        source.destroy_node()
        sink.destroy_node()
        rclpy.shutdown(context=context)
        tmp.cleanup()

    window_s = (t1 - t0) / 1e9
    latency = {
        name: [(recv - stamp) / 1e6 for stamp, recv in items if t0 <= stamp <= t1]
        for name, items in received.items()
    }
    received_n, processed, dropped = (a - b for a, b in zip(after, before, strict=True))
    return {
        "nodes": args.nodes if args.nodes == "process" else f"in-process, {args.executor} executor",
        "window_s": window_s,
        "fps": len(latency["geometry"]) / window_s,
        "cpu_pct": 100 * cpu / window_s,
        "memory_mib": memory,
        "benchmark_thread_cpu_pct": {name: 100 * v / window_s for name, v in sorted(threads.items())},
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
    parser.add_argument("--matcher", default="xfeat(sparse)", help="zoo entry (%(default)s)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds of ROS input (30)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the first geometry (3)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz (30)")
    parser.add_argument("--map", default="IMG_0479.jpg", help="the reference frame (%(default)s)")
    parser.add_argument("--min-inliers", type=int, default=30, help="query frames: inliers to the map (30)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument(
        "--nodes",
        choices=("process", "in-process"),
        default="process",
        help="the nodes as deployed (an fm-navigate process, default) or in this process",
    )
    parser.add_argument(
        "--executor",
        choices=("runner", "multi"),
        default="runner",
        help="--nodes in-process: fm-navigate's executor (single-threaded) or rclpy's MultiThreadedExecutor",
    )
    parser.add_argument(
        "--default-dds",
        action="store_true",
        help="Fast DDS defaults, without the package's large-image profile (most frames are lost)",
    )
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
        f"\n{s['matcher']} at {SIZE[0]}x{SIZE[1]}, {s['rate']} Hz input, nodes: {ros['nodes']}, "
        f"map {s['map']}, {len(s['frames'])} "
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
        ("nodes' process CPU % (direct: before / after ROS)", f"{ros['cpu_pct']:.0f}", cpu_ab),
        (
            "benchmark process CPU % by thread",
            ", ".join(f"{name} {v:.0f}" for name, v in ros["benchmark_thread_cpu_pct"].items() if v >= 0.5),
            "",
        ),
        (
            "RSS MiB: nodes' process peak / end (direct: after its first phase)",
            f"{ros['memory_mib']['VmHWM']:.0f} / {ros['memory_mib']['VmRSS']:.0f}",
            f"{r['rss_mib']['before_ros']:.0f}",
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
