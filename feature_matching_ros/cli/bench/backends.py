"""``--backend torch openvino ...``: the matcher built once per inference backend.

The backends (``core/matching/inference/``) run interleaved on the same frames (the order rotating
per frame): median/p90 ms, the ratio to torch, and the agreement with torch: keypoints of the
reference, matches, inliers and corner error on the frames and on the real graf pair with its
ground truth.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...core import Features, Pipeline, build, load_image
from ...core.geometry import corner_error
from ...core.matching import inference
from .frames import query_frame, reference_image
from .measure import FrameRecord, run_core, spread


def pairs_dir(given: str | None) -> Path | None:
    """The real pairs: ``--pairs``, else ``$FM_SHARED_DATA/pairs``; None without either."""
    if given:
        return Path(given)
    base = os.environ.get("FM_SHARED_DATA")
    return Path(base) / "pairs" if base else None


def keypoint_agreement(a: Features, b: Features, tolerance_px: float = 0.01) -> float:
    """Share of the keypoints of ``a`` and ``b`` that have a keypoint of the other within ``tolerance_px``."""
    if len(a) == 0 or len(b) == 0:
        return float(len(a) == len(b))
    exact = "donot_use_mm_for_euclid_dist"  # the matrix-product form is off by ~0.1 px at 640 px
    distances = torch.cdist(a.keypoints.float().cpu(), b.keypoints.float().cpu(), compute_mode=exact)
    near = distances <= tolerance_px
    return float((near.any(1).sum() + near.any(0).sum()) / (len(a) + len(b)))


def real_pair(pipeline: Pipeline, pairs: Path | None) -> dict[str, float] | None:
    """graf1 -> graf3 with its ground truth: matches, inliers, corner error px."""
    if pairs is None or not (pairs / "graf_H1to3.txt").is_file():
        return None
    image0, image1 = load_image(pairs / "graf1.png"), load_image(pairs / "graf3.png")
    result = pipeline.match(image0, image1, geometry="Homography")
    geometry = result.geometry
    found = geometry is not None and geometry.success
    truth = np.loadtxt(pairs / "graf_H1to3.txt")
    height, width = image1.shape[:2]
    error = corner_error(geometry.model, truth, width, height) if found else float("inf")
    return {"matches": len(result.matches), "inliers": result.num_inliers, "corner_error_px": error}


def run_backends(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Each backend's pipeline on the same frames, interleaved, with torch as the reference."""
    backends = ["torch", *[b for b in args.backend if b != "torch"]]
    reference = reference_image(args.image, args.seed)
    pipelines, notes, prepare_s = {}, {}, {}
    for backend in backends:
        start = time.perf_counter()
        pipelines[backend] = build(name, device=args.device, weights_dir=args.weights_dir, backend=backend)
        pipelines[backend].extract(reference)  # the export (or cache load) happens here
        prepare_s[backend] = time.perf_counter() - start
        extractor = pipelines[backend].extractor
        if backend != "torch" and not inference.supports(extractor):
            notes[backend] = f"{extractor.name} has no network for a backend: runs as with torch"
        elif inference.status(pipelines[backend]):
            notes[backend] = inference.status(pipelines[backend])
    features = {b: p.extract(reference) for b, p in pipelines.items()}
    records: dict[str, list[FrameRecord]] = {b: [] for b in backends}
    for index in range(args.warmup + args.frames):
        frame, truth = query_frame(reference, index, args.seed)
        shift = index % len(backends)
        for backend in backends[shift:] + backends[:shift]:
            record = run_core(pipelines[backend], features[backend], frame, truth)
            if index >= args.warmup:
                records[backend].append(record)
    pairs = pairs_dir(args.pairs)
    out: dict[str, Any] = {}
    torch_total = statistics.median(r.total_ms for r in records["torch"])
    torch_extract = statistics.median(r.extract_ms for r in records["torch"])
    for backend in backends:
        rows = records[backend]
        total = statistics.median(r.total_ms for r in rows)
        extract = statistics.median(r.extract_ms for r in rows)
        errors = [r.corner_error_px for r in rows]
        out[backend] = {
            "total_ms": spread([r.total_ms for r in rows]),
            "extract_ms": spread([r.extract_ms for r in rows]),
            "ratio_total": torch_total / total,
            "ratio_extract": torch_extract / extract,
            "matches_median": float(np.median([r.matches for r in rows])),
            "inliers_median": float(np.median([r.inliers for r in rows])),
            "corner_error_px_median": float(np.median(errors)),
            "within_3px_rate": float(np.mean(np.asarray(errors) <= 3.0)),
            "reference_keypoints": len(features[backend]),
            "keypoint_agreement": keypoint_agreement(features["torch"], features[backend]),
            "real_pair": real_pair(pipelines[backend], pairs),
            "prepare_s": prepare_s[backend],
            "note": notes.get(backend, ""),
        }
    return {
        "matcher": name,
        "frames": args.frames,
        "warmup": args.warmup,
        "threads": torch.get_num_threads(),
        "image": args.image or f"procedural_texture(seed={args.seed})",
        "backends": out,
    }


def print_backend_table(results: list[dict[str, Any]]) -> None:
    print(
        "backends interleaved on the same frames; ms median/p90; ratio = torch / backend; agreement with "
        "torch: reference keypoints within 0.01 px, matches/inliers/corner error median on the frames, and "
        "on graf1->graf3 (ground truth)"
    )
    print(
        f"{'matcher':18} {'backend':12} {'extract ms':>13} {'total ms':>13} {'ratio ex/tot':>12} "
        f"{'kp agree':>8} {'matches':>7} {'inliers':>7} {'err px':>7} {'graf m/i/err px':>20}"
    )
    for r in results:
        if "error" in r:
            print(f"{r['matcher']:18} ERROR {r['error']}")
            continue
        for backend, b in r["backends"].items():
            graf = b["real_pair"]
            graf_cell = f"{graf['matches']}/{graf['inliers']}/{graf['corner_error_px']:.2f}" if graf else "-"
            print(
                f"{r['matcher']:18} {backend:12} "
                f"{b['extract_ms']['median']:6.1f}/{b['extract_ms']['p90']:<6.1f} "
                f"{b['total_ms']['median']:6.1f}/{b['total_ms']['p90']:<6.1f} "
                f"{b['ratio_extract']:5.2f}/{b['ratio_total']:<5.2f} {b['keypoint_agreement']:8.3f} "
                f"{b['matches_median']:7.0f} {b['inliers_median']:7.0f} {b['corner_error_px_median']:7.2f} "
                f"{graf_cell:>20}"
            )
            if b["note"]:
                print(f"{'':18} {'':12} note: {b['note']}")
