"""Homography AUC of every runnable zoo entry on seeded synthetic warps of the shared real images.

    python benchmarks/homography_suite.py [--cases 30] [--matchers sift "xfeat(sparse)"] [--out FILE]

Sources come from $FM_SHARED_DATA (default: <repo>/../shared/data). Each case warps one source
(resized to 640x480) by up to 180 degrees of rotation, 0.5-2x scale and perspective, with
photometric changes; see feature_matching_ros.core.evaluation.homography_suite.synthetic_cases.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from feature_matching_ros.core import availability, build, load_image, load_zoo
from feature_matching_ros.core.evaluation.homography_suite import evaluate_pipeline, synthetic_cases

REPO = Path(__file__).resolve().parents[1]
SOURCES = (
    "pairs/graf1.png",
    "pairs/aero1.jpg",
    "pairs/leuvenA.jpg",
    "pairs/painting_ref.jpg",
    "pairs/box_in_scene.png",
    "maps/aukerman.png",
)
THRESHOLDS = (3, 5, 10)


def shared_data() -> Path:
    return Path(os.environ.get("FM_SHARED_DATA", REPO.parent / "shared" / "data"))


def build_cases(total: int, seed: int) -> list:
    """``total`` cases taken round-robin over the sources, so every source gets its share."""
    root = shared_data()
    missing = [s for s in SOURCES if not (root / s).is_file()]
    if missing:
        sys.exit(f"homography_suite: missing {missing} under {root}; set FM_SHARED_DATA")
    images = {Path(s).stem: load_image(root / s) for s in SOURCES}
    per_image = math.ceil(total / len(images))
    cases = synthetic_cases(images, per_image, seed)
    by_image = [cases[i * per_image : (i + 1) * per_image] for i in range(len(images))]
    ordered = [group[k] for k in range(per_image) for group in by_image]
    return ordered[:total]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--matchers", nargs="+", help="zoo entries (default: every runnable)")
    parser.add_argument("--cases", type=int, default=30, help="number of cases in total (30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights-dir")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--out", type=Path, default=Path("out/homography_suite.json"))
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    zoo = load_zoo()
    names = args.matchers or zoo.runnable()
    cases = build_cases(args.cases, args.seed)
    load_start = os.getloadavg()[0]
    rows, records = [], []
    progress = tqdm(total=len(names) * len(cases), unit="case", file=sys.stderr)
    for name in names:
        progress.set_description(name)
        before = progress.n
        runs, why = availability(zoo[name], args.weights_dir)
        try:
            if not runs:
                raise RuntimeError(f"not run: {why}")
            pipeline = build(name, device=args.device, weights_dir=args.weights_dir)
            pipeline.match(cases[0].image0, cases[0].image1)  # warm-up: lazy initialisation
            start = time.perf_counter()
            suite = evaluate_pipeline(pipeline, cases, THRESHOLDS, on_case=lambda _: progress.update())
            wall_s = time.perf_counter() - start
        except Exception as exc:  # one broken entry must not stop the sweep
            progress.update(len(cases) - (progress.n - before))
            records.append({"matcher": name, "error": f"{type(exc).__name__}: {exc}"})
            rows.append((name, None))
            continue
        within = sum(c.corner_error_px <= 10 for c in suite.cases) / len(suite.cases)
        records.append({**suite.summary(), "within_10px_rate": within, "wall_s": wall_s})
        rows.append((name, suite))
    progress.close()

    print(
        f"{len(cases)} synthetic cases at 640x480 from {len(SOURCES)} images, seed {args.seed}, "
        f"torch threads {torch.get_num_threads()}, load average {load_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end"
    )
    header = ("AUC@3", "AUC@5", "AUC@10", "found", "<=10px")
    print(f"{'matcher':18} " + " ".join(f"{h:>6}" for h in header) + f" {'median ms':>9}")
    ranked = sorted(rows, key=lambda r: -r[1].auc[5] if r[1] else 1.0)
    for name, suite in ranked:
        if suite is None:
            error = next(r["error"] for r in records if r["matcher"] == name)
            print(f"{name:18} ERROR {error}")
            continue
        a = suite.auc
        within = sum(c.corner_error_px <= 10 for c in suite.cases) / len(suite.cases)
        print(
            f"{name:18} {a[3]:6.3f} {a[5]:6.3f} {a[10]:6.3f} {suite.success_rate:6.0%} {within:6.0%} "
            f"{suite.median_ms:9.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "cases": [{"name": c.name, "overlap": c.overlap, "homography": c.homography.tolist()} for c in cases],
        "seed": args.seed,
        "torch_threads": torch.get_num_threads(),
        "load_average": [load_start, os.getloadavg()[0]],
        "results": records,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nreport      {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
