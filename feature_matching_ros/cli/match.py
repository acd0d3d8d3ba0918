"""``fm-match``: match two images with any zoo entry, print counts and stage times, draw and dump them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from ..core import FeatureMatchingError, ImageError, MatchResult, ZooError, availability, build, load_image
from ..core.geometry import ROBUST_METHODS, corner_error
from ..core.matching.pipeline import DEFAULT_MIN_INLIER_RATIO, DEFAULT_MIN_INLIERS, Pipeline
from ..core.matching.visualize import draw_matches
from ..core.matching.zoo import load_zoo
from ..core.simulation.synthetic import Photometric, procedural_texture, warp

DEFAULT_MATCHER = "xfeat(sparse)"
# The demo's known warp: 25 degrees of rotation, 0.85 scale, mild perspective, about the centre.
DEMO_SIZE = (640, 480)


def demo_homography(width: int, height: int) -> np.ndarray:
    angle = np.deg2rad(25.0)
    c, s = 0.85 * np.cos(angle), 0.85 * np.sin(angle)
    to_centre = np.array([[1, 0, -width / 2], [0, 1, -height / 2], [0, 0, 1]])
    similarity = np.array([[c, -s, 0], [s, c, 0], [0.0002, -0.0001, 1]])
    back = np.array([[1, 0, width / 2 + 12], [0, 1, height / 2 - 8], [0, 0, 1]])
    homography = back @ similarity @ to_centre
    return homography / homography[2, 2]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fm-match",
        description="Match two images with a zoo entry and estimate their geometry (image 0 -> image 1).",
    )
    parser.add_argument("images", nargs="*", metavar="IMG", help="reference image IMG0 and query image IMG1")
    parser.add_argument("--list", action="store_true", help="print the zoo with availability and reasons")
    parser.add_argument("--markdown", action="store_true", help="--list: print the README's markdown table")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="match a procedural image with a copy warped by a known homography",
    )
    parser.add_argument("--matcher", default=DEFAULT_MATCHER, help=f"zoo entry (default {DEFAULT_MATCHER})")
    parser.add_argument("--geometry", choices=("Homography", "Fundamental"), default="Homography")
    parser.add_argument("--ransac", choices=ROBUST_METHODS, help="robust estimator (default: the zoo's)")
    parser.add_argument("--ransac-threshold", type=float, help="reprojection threshold in px")
    parser.add_argument(
        "--min-inliers",
        type=int,
        default=DEFAULT_MIN_INLIERS,
        help=f"fewer inliers than this are a failure (default {DEFAULT_MIN_INLIERS}; 0: no check)",
    )
    parser.add_argument(
        "--min-inlier-ratio",
        type=float,
        default=DEFAULT_MIN_INLIER_RATIO,
        help=f"a smaller inlier fraction of the matches is a failure (default {DEFAULT_MIN_INLIER_RATIO:g}; "
        "0: no check)",
    )
    parser.add_argument("--max-keypoints", type=int, help="keypoints per image (default: the zoo's)")
    parser.add_argument("--max-image-edge", type=int, help="downscale images whose longer edge exceeds this")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--weights-dir", help="directory holding verified weight files")
    parser.add_argument("--out", type=Path, help="write the match picture here (PNG)")
    parser.add_argument("--json", type=Path, help="write the result record here")
    parser.add_argument("--out-dir", type=Path, default=Path("out/demo"), help="--demo: where to write files")
    args = parser.parse_args(argv)
    if args.min_inliers < 0:
        parser.error(f"--min-inliers must be >= 0, got {args.min_inliers}")
    if not 0.0 <= args.min_inlier_ratio <= 1.0:
        parser.error(f"--min-inlier-ratio must be within [0, 1], got {args.min_inlier_ratio:g}")
    if not args.list and not args.demo and len(args.images) != 2:
        parser.error("give two images, --demo or --list")
    return args


def print_zoo(weights_dir: str | None) -> None:
    zoo = load_zoo()
    rows = []
    for name, entry in zoo.entries.items():
        ok, reason = availability(entry, weights_dir)
        note = entry.licence if ok else "; ".join(filter(None, (entry.licence, f"why not: {reason}")))
        rows.append((name, entry.feature or "-", entry.matcher, "yes" if ok else "no", note))
    header = ("name", "feature", "matcher", "runs")
    widths = [max(len(r[i]) for r in [*rows, header]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  licence, or why not")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    runnable = sum(r[3] == "yes" for r in rows)
    print(f"\n{runnable} of {len(rows)} entries run here ({zoo.path})")


def report(result: MatchResult) -> None:
    geometry = result.geometry
    print(f"matcher     {result.matcher}")
    print(f"keypoints   {len(result.features0)} / {len(result.features1)}")
    print(f"matches     {len(result.matches)}")
    if geometry is not None and geometry.success:
        print(
            f"inliers     {geometry.num_inliers} ({100 * geometry.inlier_ratio:.1f} %), "
            f"{geometry.model_type} via {geometry.method}, "
            f"residual median {geometry.residual_median_px:.2f} px"
        )
    elif geometry is not None:
        print(f"geometry    FAILED: {geometry.reason}")
    times = result.times.as_dict()
    print("time [ms]   " + "  ".join(f"{k} {v:.1f}" for k, v in times.items()))


def write_outputs(
    args: argparse.Namespace,
    result: MatchResult,
    image0: np.ndarray,
    image1: np.ndarray,
    extra: dict | None = None,
) -> None:
    if args.out:
        geometry = result.geometry
        mask = geometry.inlier_mask if geometry is not None and geometry.success else None
        homography = geometry.model if mask is not None and geometry.model_type == "Homography" else None
        canvas = draw_matches(
            image0, image1, result.matches.points0, result.matches.points1, mask, homography
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.out), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        print(f"picture     {args.out}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**result.summary(), **(extra or {})}, indent=2))
        print(f"json        {args.json}")


def overrides(args: argparse.Namespace) -> dict:
    values = {
        "ransac_method": args.ransac,
        "ransac_reproj_threshold": args.ransac_threshold,
        "max_keypoints": args.max_keypoints,
        "max_image_edge": args.max_image_edge,
    }
    return {k: v for k, v in values.items() if v is not None}


def build_pipeline(args: argparse.Namespace) -> Pipeline:
    pipeline = build(args.matcher, overrides(args), device=args.device, weights_dir=args.weights_dir)
    pipeline.set_support(args.min_inliers, args.min_inlier_ratio)
    return pipeline


def run_demo(args: argparse.Namespace) -> int:
    width, height = DEMO_SIZE
    truth = demo_homography(width, height)
    image0 = procedural_texture(width, height, seed=7)
    rng = np.random.default_rng(7)
    image1 = Photometric(gain=0.8, offset=15.0, noise=3.0, blur=0.8).apply(warp(image0, truth), rng)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, image in (("reference.png", image0), ("query.png", image1)):
        cv2.imwrite(str(args.out_dir / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    np.savetxt(args.out_dir / "H_reference_to_query.txt", truth)
    args.out = args.out or args.out_dir / "matches.png"
    args.json = args.json or args.out_dir / "result.json"
    pipeline = build_pipeline(args)
    pipeline.match(image0, image1)  # warm-up: first calls pay for lazy initialisation
    result = pipeline.match(image0, image1, geometry="Homography")
    print(f"demo pair   {args.out_dir}/reference.png -> query.png ({width}x{height}), known homography")
    report(result)
    geometry = result.geometry
    error = (
        corner_error(geometry.model, truth, width, height) if geometry and geometry.success else float("inf")
    )
    verdict = "PASS" if error <= 3.0 else "FAIL"
    print(f"corner err  {error:.2f} px against the known warp ({verdict}: bound 3 px)")
    write_outputs(args, result, image0, image1, {"corner_error_px": error})
    return 0 if verdict == "PASS" else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.list and args.markdown:
            print(load_zoo().markdown())
            return 0
        if args.list:
            print_zoo(args.weights_dir)
            return 0
        if args.demo:
            return run_demo(args)
        image0, image1 = (load_image(p) for p in args.images)
        pipeline = build_pipeline(args)
        result = pipeline.match(image0, image1, geometry=args.geometry)
    except (ImageError, ZooError) as exc:
        print(f"fm-match: error: {exc}", file=sys.stderr)
        return 2
    except FeatureMatchingError as exc:
        print(f"fm-match: error: {exc}", file=sys.stderr)
        return 1
    report(result)
    write_outputs(args, result, image0, image1)
    return 0 if result.geometry is not None and result.geometry.success else 1


if __name__ == "__main__":
    sys.exit(main())
