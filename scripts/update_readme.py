"""Regenerate the README's generated sections (zoo table, weights table) from their sources.

python scripts/update_readme.py          # rewrite README.md
python scripts/update_readme.py --check  # exit 1 when README.md is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from feature_matching_ros.core.matching.weights import weights_licence_table
from feature_matching_ros.core.matching.zoo import load_zoo

README = Path(__file__).resolve().parents[1] / "README.md"


def sections() -> dict[str, str]:
    return {"zoo": load_zoo().markdown(), "weights": weights_licence_table()}


def render(text: str) -> str:
    for name, body in sections().items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no generated:{name} markers")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    current = README.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md is stale: run python scripts/update_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
