"""``fm-export``: export, verify and cache a zoo entry's dense network for an inference backend.

The nodes and tools export on first use; this does it beforehand, on the ground, for the frame
sizes the aircraft will see (the extractor's network, and for LightGlue entries each transformer
layer), so the first frames in the air do not pay for it. Each export
is compared with torch on a real image (``--image``; default a procedural aerial-like texture) and
cached (``core/matching/inference/``): a second run finds the files and only loads them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from ..core import FeatureMatchingError, Pipeline, build, load_image
from ..core.evaluation.homography_suite import fit_to_size
from ..core.matching import inference
from ..core.simulation.synthetic import procedural_texture


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from exc
    if width < 32 or height < 32:
        raise argparse.ArgumentTypeError(f"size must be at least 32x32, got {text!r}")
    return width, height


def export_layers(pipeline: Pipeline, image: np.ndarray) -> None:
    """LightGlue's layers, each exported on its first input: the image matched to itself with early
    stopping and pruning off, so that every layer runs, on real descriptors."""
    conf = pipeline.matcher.model.conf
    saved = conf.depth_confidence, conf.width_confidence
    conf.depth_confidence = conf.width_confidence = -1
    try:
        pipeline.match(image, image, geometry=None)
    finally:
        conf.depth_confidence, conf.width_confidence = saved


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fm-export",
        description="Export a zoo entry's network for an inference backend, verify it with torch, cache it.",
    )
    parser.add_argument("matchers", nargs="+", metavar="MATCHER", help="zoo entries (fm-match --list)")
    parser.add_argument(
        "--backend", required=True, choices=[b for b in inference.BACKENDS if b != "torch"], help="backend"
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        action="append",
        metavar="WxH",
        help="frame size the network will see (repeatable; default 640x480)",
    )
    parser.add_argument("--image", help="image the export is verified on (default: a procedural texture)")
    parser.add_argument(
        "--cache-dir", help=f"export cache (default ${inference.ENV_EXPORT_CACHE} or the user cache)"
    )
    parser.add_argument("--weights-dir", help="directory holding verified weight files")
    parser.add_argument("--json", action="store_true", help="print one JSON record per export")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cache_dir:  # the registry's extractors read the cache location from here
        os.environ[inference.ENV_EXPORT_CACHE] = str(Path(args.cache_dir).resolve())
    sizes = args.size or [(640, 480)]
    try:
        source = load_image(args.image) if args.image else procedural_texture(1024, 768, seed=0)
    except FeatureMatchingError as exc:
        print(f"fm-export: {exc}", file=sys.stderr)
        return 2
    failed = False
    for name in args.matchers:
        try:
            pipeline = build(name, {"max_image_edge": 0}, weights_dir=args.weights_dir, backend=args.backend)
        except FeatureMatchingError as exc:
            print(f"fm-export: {name}: {exc}", file=sys.stderr)
            return 2
        extractor = pipeline.extractor
        layers = getattr(pipeline.matcher, "backend_layers", [])
        if not inference.supports(extractor):
            print(f"fm-export: {name}: {extractor.name} has no network for a backend; nothing to export")
            if not layers:
                continue
        for width, height in sizes:
            image = fit_to_size(source, (width, height))
            pipeline.extract(image)
            if layers:
                export_layers(pipeline, image)
        runners = [extractor.backend] if inference.supports(extractor) else []
        if inference.status(pipeline):
            print(f"fm-export: {name}: {inference.status(pipeline)}", file=sys.stderr)
            failed = True
        for record in [r for runner in runners + layers for r in runner.records.values()]:
            if args.json:
                print(json.dumps({"matcher": name, **record.meta(), "path": str(record.path)}))
                continue
            diffs = ", ".join(f"{k} {v:.2g}" for k, v in record.max_abs_diff.items())
            state = "cached" if record.cache_hit else f"exported in {record.export_s:.1f} s"
            print(
                f"{name}: {record.key.network} {inference.shape_text(record.key.shape)} {args.backend} "
                f"{record.key.backend_version}: {state}; max |diff| to torch {diffs} "
                f"(tolerance {record.tolerance:g} x max(1, |torch|)); {record.path}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
