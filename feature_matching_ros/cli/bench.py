"""``fm-bench``: the navigation-frontend workload per matcher: speed, memory and the core's overhead.

Workload: a 640x480 reference whose features are extracted once and cached, then query frames
(the reference under small random homographies and photometric noise) matched against it with
homography estimation. Each matcher runs in its own worker process (``--worker NAME``, which
prints one JSON line), so its peak RSS is its own. The worker first times the core alone, reads
the peak RSS, then loads a direct kornia/OpenCV implementation of the same work (where one is
written here) and times core and direct interleaved on the same frames.

``--backend torch openvino ...`` instead builds the matcher once per inference backend
(``core/matching/inference.py``) and runs the backends interleaved on the same frames (the order rotating
per frame): median/p90 ms, the ratio to torch, and the agreement with torch: keypoints of the
reference, matches, inliers and corner error on the frames and on the real graf pair with its
ground truth.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from kornia import feature as KF

from ..core import FeatureMatchingError, Features, Pipeline, RobustParams, availability, build, load_image
from ..core.evaluation.homography_suite import CASE_SIZE, fit_to_size
from ..core.geometry import corner_error
from ..core.matching import inference
from ..core.matching import weights as weight_files
from ..core.matching.extractors import CHANNELS_LAST, load_into
from ..core.matching.matchers import LIGHTGLUE_MODELS, lightglue_state_dict
from ..core.matching.zoo import load_zoo
from ..core.simulation.synthetic import Photometric, procedural_texture, random_homography, warp

DEFAULT_FRAMES = 30
DEFAULT_WARMUP = 3
DEFAULT_OUT = Path("out/bench.json")
WORKER_TIMEOUT_S = 3600.0
STAGES = ("extract", "match", "geometry", "total")

TOTAL_TARGETS_MS = {"xfeat(sparse)": 70.0, "aliked+lightglue": 600.0}
PEAK_RSS_TARGET_MB = 1.5 * 1024
OVERHEAD_TARGET_PCT = 10.0


def reference_image(path: str | None, seed: int) -> np.ndarray:
    if path:
        return fit_to_size(load_image(path), CASE_SIZE)
    return procedural_texture(*CASE_SIZE, seed=seed)


def query_frame(reference: np.ndarray, index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``index`` of the sequence and its true homography reference -> frame."""
    rng = np.random.default_rng((seed, index))
    height, width = reference.shape[:2]
    homography = random_homography(
        rng, width, height, max_rotation_deg=10.0, scale_range=(0.9, 1.1), perspective=1e-4, max_shift=0.05
    )
    return Photometric.random(rng).apply(warp(reference, homography), rng), homography


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


# ---------------------------------------------------------------- direct implementations


class Direct(Protocol):
    """The same work as a core pipeline, written straight against kornia / OpenCV."""

    def set_reference(self, image: np.ndarray) -> None: ...

    def run(self, image: np.ndarray) -> tuple[int, int]:
        """(matches, homography inliers) of ``image`` against the reference."""
        ...


def _homography_inliers(p0: np.ndarray, p1: np.ndarray, robust: RobustParams) -> int:
    if len(p0) < 4:
        return 0
    _, mask = cv2.findHomography(
        p0,
        p1,
        cv2.USAC_MAGSAC,
        robust.reproj_threshold,
        maxIters=robust.max_iter,
        confidence=robust.confidence,
    )
    return int(mask.sum()) if mask is not None else 0


def _kornia_lightglue(weight_id: str, weights_dir: str | None, **conf: Any) -> KF.LightGlue:
    """kornia's LightGlue with a released checkpoint (loading is shared with the core; timing is not)."""
    model = KF.LightGlue(features=None, flash=False, **conf)
    state = lightglue_state_dict(weight_files.load_state_dict(weight_id, weights_dir), model.conf.n_layers)
    load_into(model, state, weight_id, ignore_missing=("confidence_thresholds",))
    return model


def _kornia_xfeat(conf: dict[str, Any], weights_dir: str | None) -> KF.XFeat:
    model = KF.XFeat(top_k=int(conf["max_keypoints"]), detection_threshold=conf["keypoint_threshold"])
    load_into(model.net, weight_files.load_state_dict("xfeat", weights_dir), "xfeat")
    return model


def _gray_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return (torch.from_numpy(gray)[None, None].to(device).float() / 255.0).contiguous(
        memory_format=CHANNELS_LAST
    )


def _rgb_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].to(device).float() / 255.0
    return tensor.contiguous(memory_format=CHANNELS_LAST)


class DirectXFeat:
    """kornia XFeat.detectAndCompute, XFeat._match_mnn (no similarity floor, as the core) and MAGSAC."""

    def __init__(
        self, conf: dict[str, Any], robust: RobustParams, device: torch.device, wdir: str | None
    ) -> None:
        self.device, self.robust = device, robust
        self.model = _kornia_xfeat(conf, wdir).to(device, memory_format=CHANNELS_LAST)

    @torch.inference_mode()
    def set_reference(self, image: np.ndarray) -> None:
        self.reference = self.model.detectAndCompute(_gray_tensor(image, self.device))[0]

    @torch.inference_mode()
    def run(self, image: np.ndarray) -> tuple[int, int]:
        query = self.model.detectAndCompute(_gray_tensor(image, self.device))[0]
        idx0, idx1 = self.model._match_mnn(self.reference["descriptors"], query["descriptors"], min_cossim=-1)
        p0 = self.reference["keypoints"][idx0].cpu().numpy()
        p1 = query["keypoints"][idx1].cpu().numpy()
        return len(idx0), _homography_inliers(p0, p1, self.robust)


class DirectSIFT:
    """OpenCV SIFT (unit-norm descriptors, as the core), BFMatcher ratio test + mutual check, MAGSAC."""

    def __init__(
        self, conf: dict[str, Any], robust: RobustParams, device: torch.device, wdir: str | None
    ) -> None:
        self.robust = robust
        self.ratio = float(conf.get("ratio_threshold") or 1.0)
        self.sift = cv2.SIFT_create(nfeatures=int(conf["max_keypoints"]))
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keypoints, descriptors = self.sift.detectAndCompute(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), None)
        descriptors = descriptors / np.maximum(np.linalg.norm(descriptors, axis=1, keepdims=True), 1e-6)
        return np.float32([k.pt for k in keypoints]), descriptors

    def set_reference(self, image: np.ndarray) -> None:
        self.points0, self.descriptors0 = self._detect(image)

    def run(self, image: np.ndarray) -> tuple[int, int]:
        points1, descriptors1 = self._detect(image)
        backward = np.array([m.trainIdx for m in self.matcher.match(descriptors1, self.descriptors0)])
        pairs = [
            (best.queryIdx, best.trainIdx)
            for best, second in self.matcher.knnMatch(self.descriptors0, descriptors1, k=2)
            if best.distance <= self.ratio * second.distance and backward[best.trainIdx] == best.queryIdx
        ]
        idx = np.array(pairs, np.int64).reshape(-1, 2)
        return len(idx), _homography_inliers(self.points0[idx[:, 0]], points1[idx[:, 1]], self.robust)


class DirectLightGlue:
    """A kornia extractor (ALIKED-n16 or XFeat) with kornia LightGlue / LighterGlue, then MAGSAC."""

    def __init__(
        self,
        features: str,
        conf: dict[str, Any],
        robust: RobustParams,
        device: torch.device,
        wdir: str | None,
    ) -> None:
        self.device, self.robust = device, robust
        glue_conf = {
            k: conf[k] for k in ("filter_threshold", "depth_confidence", "width_confidence") if k in conf
        }
        if features == "xfeat":
            self.xfeat = _kornia_xfeat(conf, wdir).to(device, memory_format=CHANNELS_LAST)
            model = LIGHTGLUE_MODELS["xfeat"]
            glue_conf = {**model["defaults"], **glue_conf}
            self.glue = _kornia_lightglue(model["weights"], wdir, **model["arch"], **glue_conf)
        else:
            self.aliked = KF.ALIKED(
                "aliked-n16",
                max_num_keypoints=int(conf["max_keypoints"]),
                detection_threshold=conf["keypoint_threshold"],
                nms_radius=2,
            )
            load_into(
                self.aliked,
                weight_files.load_state_dict("aliked-n16", wdir),
                "aliked-n16",
                ignore_missing=("hw_grid",),
            )
            self.aliked.to(device, memory_format=CHANNELS_LAST)
            model = LIGHTGLUE_MODELS["aliked"]
            self.glue = _kornia_lightglue(model["weights"], wdir, **model["arch"], **glue_conf)
        self.glue.to(device)
        self.features = features

    def _detect(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        if self.features == "xfeat":
            out = self.xfeat.detectAndCompute(_gray_tensor(image, self.device))[0]
            keypoints, descriptors = out["keypoints"], out["descriptors"]
        else:
            out = self.aliked(_rgb_tensor(image, self.device))[0]
            keypoints, descriptors = out.keypoints, out.descriptors
        size = torch.tensor([[image.shape[1], image.shape[0]]], device=self.device, dtype=torch.float32)
        return {"keypoints": keypoints[None], "descriptors": descriptors[None], "image_size": size}

    @torch.inference_mode()
    def set_reference(self, image: np.ndarray) -> None:
        self.reference = self._detect(image)

    @torch.inference_mode()
    def run(self, image: np.ndarray) -> tuple[int, int]:
        query = self._detect(image)
        pairs = self.glue({"image0": self.reference, "image1": query})["matches"][0]
        p0 = self.reference["keypoints"][0][pairs[:, 0]].cpu().numpy()
        p1 = query["keypoints"][0][pairs[:, 1]].cpu().numpy()
        return len(pairs), _homography_inliers(p0, p1, self.robust)


DirectFactory = Callable[[dict[str, Any], RobustParams, torch.device, "str | None"], Direct]
DIRECT: dict[str, DirectFactory] = {
    "xfeat(sparse)": DirectXFeat,
    "sift": DirectSIFT,
    "aliked+lightglue": lambda conf, robust, dev, wdir: DirectLightGlue("aliked", conf, robust, dev, wdir),
    "xfeat+lightglue": lambda conf, robust, dev, wdir: DirectLightGlue("xfeat", conf, robust, dev, wdir),
}


def entry_conf(name: str) -> dict[str, Any]:
    """The extractor and matcher settings the registry gives zoo entry ``name``, flattened."""
    zoo = load_zoo()
    entry = zoo[name]
    return {
        "max_keypoints": zoo.defaults["max_keypoints"],
        "keypoint_threshold": zoo.defaults["keypoint_threshold"],
        **entry.feature_conf,
        **entry.matcher_conf,
    }


# ---------------------------------------------------------------- worker


@dataclass(frozen=True)
class FrameRecord:
    extract_ms: float
    match_ms: float
    geometry_ms: float
    total_ms: float
    wall_ms: float
    matches: int
    inliers: int
    corner_error_px: float


def run_core(pipeline: Pipeline, reference: Features, frame: np.ndarray, truth: np.ndarray) -> FrameRecord:
    start = time.perf_counter()
    result = pipeline.match(reference, frame, geometry="Homography")
    wall = (time.perf_counter() - start) * 1e3
    geometry = result.geometry
    found = geometry is not None and geometry.success
    height, width = frame.shape[:2]
    error = corner_error(geometry.model, truth, width, height) if found else float("inf")
    times = result.times
    return FrameRecord(
        times.extract_ms,
        times.match_ms,
        times.geometry_ms,
        times.total_ms,
        wall,
        len(result.matches),
        result.num_inliers,
        error,
    )


def compare_direct(
    name: str,
    pipeline: Pipeline,
    reference_features: Features,
    reference: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Core and direct wall-clock ms per frame, alternating which goes first, on the same frames."""
    if pipeline.robust.method != "CV2_USAC_MAGSAC":
        return {"skipped": f"the direct path uses USAC_MAGSAC, the core is set to {pipeline.robust.method}"}
    direct = DIRECT[name](entry_conf(name), pipeline.robust, torch.device(args.device), args.weights_dir)
    direct.set_reference(reference)
    core_ms, direct_ms, direct_matches, direct_inliers = [], [], [], []
    sides = {
        "core": lambda frame, truth: run_core(pipeline, reference_features, frame, truth),
        "direct": lambda frame, truth: direct.run(frame),
    }
    for index in range(args.warmup + args.frames):
        frame, truth = query_frame(reference, index, args.seed)
        timings, outputs = {}, {}
        for side in ("core", "direct") if index % 2 == 0 else ("direct", "core"):
            start = time.perf_counter()
            outputs[side] = sides[side](frame, truth)
            timings[side] = (time.perf_counter() - start) * 1e3
        if index >= args.warmup:
            core_ms.append(timings["core"])
            direct_ms.append(timings["direct"])
            direct_matches.append(outputs["direct"][0])
            direct_inliers.append(outputs["direct"][1])
    core_median, direct_median = statistics.median(core_ms), statistics.median(direct_ms)
    return {
        "direct_ms": spread(direct_ms),
        "core_ms": spread(core_ms),
        "overhead_pct": 100.0 * (core_median / direct_median - 1.0),
        "paired_overhead_ms_median": float(np.median(np.subtract(core_ms, direct_ms))),
        "direct_matches_median": float(np.median(direct_matches)),
        "direct_inliers_median": float(np.median(direct_inliers)),
    }


# ---------------------------------------------------------------- backends


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


# ---------------------------------------------------------------- parent


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


def _verdict(value: float, limit: float | None) -> str:
    if limit is None:
        return ""
    return f"<= {limit:g} {'ok' if value <= limit else 'OVER'}"


def print_tables(results: list[dict[str, Any]]) -> None:
    print("median/p90 ms over the measured frames; reference features extracted once and cached")
    print(
        f"{'matcher':18} " + " ".join(f"{stage + ' ms':>13}" for stage in STAGES) + f" {'total target':17} "
        f"{'matches':>7} {'inliers':>7} {'err px':>7} {'peak RSS MiB':>12} {'RSS target':14}"
    )
    for r in results:
        if "error" in r:
            print(f"{r['matcher']:18} ERROR {r['error']}")
            continue
        cells = " ".join(f"{r[f'{s}_ms']['median']:6.1f}/{r[f'{s}_ms']['p90']:<6.1f}" for s in STAGES)
        total_verdict = _verdict(r["total_ms"]["median"], TOTAL_TARGETS_MS.get(r["matcher"]))
        print(
            f"{r['matcher']:18} {cells} {total_verdict:17} "
            f"{r['matches_median']:7.0f} {r['inliers_median']:7.0f} {r['corner_error_px_median']:7.2f} "
            f"{r['peak_rss_mb']:12.0f} {_verdict(r['peak_rss_mb'], PEAK_RSS_TARGET_MB):14}"
        )
    compared = [r for r in results if r.get("overhead") and "skipped" not in r["overhead"]]
    if not compared:
        return
    print("\ncore vs direct kornia/OpenCV calls on the same frames, interleaved; wall-clock ms, median")
    print(
        f"{'matcher':18} {'direct ms':>9} {'core ms':>9} {'overhead':>9} {'target':13} "
        f"{'matches/inliers direct':>22} {'core':>9}"
    )
    for r in compared:
        o = r["overhead"]
        print(
            f"{r['matcher']:18} {o['direct_ms']['median']:9.1f} {o['core_ms']['median']:9.1f} "
            f"{o['overhead_pct']:8.1f}% {_verdict(o['overhead_pct'], OVERHEAD_TARGET_PCT):13} "
            f"{o['direct_matches_median']:>17.0f}/{o['direct_inliers_median']:<4.0f} "
            f"{r['matches_median']:>4.0f}/{r['inliers_median']:<4.0f}"
        )


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
        help="compare these inference backends with torch, interleaved (core/matching/inference.py)",
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


if __name__ == "__main__":
    sys.exit(main())
