"""The ``fm-bench`` command: arguments, one worker process per matcher, the table and the JSON report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import torch

from ...core import FeatureMatchingError, availability
from ...core.evaluation.homography_suite import CASE_SIZE
from ...core.matching import inference
from ...core.matching.zoo import load_zoo
from .backends import print_backend_table
from .tables import OVERHEAD_TARGET_PCT, PEAK_RSS_TARGET_MB, TOTAL_TARGETS_MS, print_tables
from .worker import run_worker

DEFAULT_FRAMES = 30
DEFAULT_WARMUP = 3
DEFAULT_OUT = Path("out/bench.json")
WORKER_TIMEOUT_S = 3600.0


def worker_command(name: str, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "feature_matching_ros.cli.bench", "--worker", name]
    command += ["--frames", str(args.frames), "--warmup", str(args.warmup), "--seed", str(args.seed)]
    command += ["--device", args.device]
    for flag, value in (
        ("--weights-dir", args.weights_dir),
        ("--threads", args.threads),
        ("--image", args.image),
        ("--pairs", args.pairs),
    ):
        if value:
            command += [flag, str(value)]
    if args.backend:
        command += ["--backend", *args.backend]
    if not args.overhead:
        command.append("--no-overhead")
    return command


def run_in_worker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    try:
        done = subprocess.run(
            worker_command(name, args), capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"matcher": name, "error": f"worker timed out after {WORKER_TIMEOUT_S:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return {"matcher": name, "error": f"worker exited with {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "torch_threads": args.threads or torch.get_num_threads(),
        "opencv": cv2.__version__,
        "python": platform.python_version(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fm-bench",
        description="Time each matcher on a navigation-frontend workload (cached reference, query frames).",
    )
    parser.add_argument("--matchers", nargs="+", metavar="NAME", help="zoo entries (default: every runnable)")
    parser.add_argument(
        "--frames", type=int, default=DEFAULT_FRAMES, help=f"measured frames ({DEFAULT_FRAMES})"
    )
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="frames run first, not measured")
    parser.add_argument("--image", help="reference image file (default: a procedural aerial-like texture)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the texture and the frame warps")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--weights-dir", help="directory holding verified weight files")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument(
        "--no-overhead", dest="overhead", action="store_false", help="skip the direct-call runs"
    )
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=inference.BACKENDS,
        help="compare these inference backends with torch, interleaved (core/matching/inference/)",
    )
    parser.add_argument(
        "--pairs",
        help="folder with graf1.png, graf3.png, graf_H1to3.txt for the backends' real-pair rows "
        "(default: $FM_SHARED_DATA/pairs when set, else none)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON report ({DEFAULT_OUT})")
    parser.add_argument("--worker", metavar="NAME", help="internal: bench one matcher, print one JSON line")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.warmup < 0:
        parser.error("--frames must be >= 1 and --warmup >= 0")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        try:
            print(json.dumps(run_worker(args.worker, args)))
        except FeatureMatchingError as exc:
            print(f"fm-bench: {args.worker}: {exc}", file=sys.stderr)
            return 1
        return 0

    from tqdm import tqdm

    zoo = load_zoo()
    names = args.matchers or zoo.runnable()
    unknown = [n for n in names if n not in zoo.entries]
    if unknown:
        print(
            f"fm-bench: error: unknown matchers {unknown}; `fm-match --list` shows the zoo", file=sys.stderr
        )
        return 2
    machine = machine_info(args)
    results = []
    for name in tqdm(names, desc="fm-bench", unit="matcher", file=sys.stderr):
        runs, why = availability(zoo[name], args.weights_dir)
        results.append(run_in_worker(name, args) if runs else {"matcher": name, "error": f"not run: {why}"})
    machine["load_average_end"] = list(os.getloadavg())
    print(
        f"{args.frames} frames (+{args.warmup} warm-up) at {CASE_SIZE[0]}x{CASE_SIZE[1]}, "
        f"device {args.device}, torch threads {machine['torch_threads']}, {machine['cpu_count']} CPUs, "
        "load average "
        f"{machine['load_average'][0]:.2f} at start, {machine['load_average_end'][0]:.2f} at end"
    )
    if args.backend:
        print_backend_table(results)
    else:
        print_tables(results)
    targets = {
        "total_ms_median": TOTAL_TARGETS_MS,
        "peak_rss_mb": PEAK_RSS_TARGET_MB,
        "overhead_pct": OVERHEAD_TARGET_PCT,
    }
    report = {"machine": machine, "targets": targets, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nreport      {args.out}")
    return 0 if all("error" not in r for r in results) else 1
