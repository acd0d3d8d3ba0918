"""One matcher in its own worker process (``--worker NAME``), so its peak RSS is its own.

The worker first times the core alone, reads the peak RSS, then loads a direct kornia/OpenCV
implementation of the same work (where ``direct.py`` has one) and times core and direct interleaved
on the same frames.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from ...core import build
from .backends import run_backends
from .direct import DIRECT, compare_direct
from .frames import query_frame, reference_image
from .measure import STAGES, peak_rss_mb, run_core, spread


def run_worker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.backend:
        return run_backends(name, args)
    rss_start = peak_rss_mb()
    reference = reference_image(args.image, args.seed)
    pipeline = build(name, device=args.device, weights_dir=args.weights_dir)
    start = time.perf_counter()
    reference_features = pipeline.extract(reference)
    reference_ms = (time.perf_counter() - start) * 1e3
    records = []
    for index in range(args.warmup + args.frames):
        frame, truth = query_frame(reference, index, args.seed)
        record = run_core(pipeline, reference_features, frame, truth)
        if index >= args.warmup:
            records.append(record)
    peak_core = peak_rss_mb()
    overhead = None
    if args.overhead and name in DIRECT:
        overhead = compare_direct(name, pipeline, reference_features, reference, args)
    errors = [r.corner_error_px for r in records]
    column = {key: [getattr(r, key) for r in records] for key in asdict(records[0])}
    return {
        "matcher": name,
        "frames": args.frames,
        "warmup": args.warmup,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "image": args.image or f"procedural_texture(seed={args.seed})",
        "reference_keypoints": len(reference_features),
        "reference_extract_ms": reference_ms,
        **{f"{stage}_ms": spread(column[f"{stage}_ms"]) for stage in STAGES},
        "wall_ms": spread(column["wall_ms"]),
        "matches_median": float(np.median(column["matches"])),
        "inliers_median": float(np.median(column["inliers"])),
        "corner_error_px_median": float(np.median(errors)),
        "within_3px_rate": float(np.mean(np.asarray(errors) <= 3.0)),
        "rss_start_mb": rss_start,
        "peak_rss_mb": peak_core,
        "overhead": overhead,
        "peak_rss_with_direct_mb": peak_rss_mb() if overhead else None,
    }
