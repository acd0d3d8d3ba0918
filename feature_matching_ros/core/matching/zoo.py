"""The matcher zoo: typed entries of ``config/matcher_zoo.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, ZooError
from ..share import config_file

ZOO_FILE_NAME = "matcher_zoo.yaml"


@dataclass(frozen=True)
class ZooEntry:
    """One zoo entry. ``unavailable`` is empty when the package can run it."""

    name: str
    matcher: str
    feature: str | None
    dense: bool
    enable: bool
    info: dict[str, Any]
    weights: tuple[str, ...] = ()
    licence: str = ""
    feature_conf: dict[str, Any] = field(default_factory=dict)
    matcher_conf: dict[str, Any] = field(default_factory=dict)
    unavailable: str = ""


@dataclass(frozen=True)
class Zoo:
    defaults: dict[str, Any]
    entries: dict[str, ZooEntry]
    path: Path

    def __getitem__(self, name: str) -> ZooEntry:
        if name not in self.entries:
            close = [n for n in self.entries if name.lower() in n.lower()]
            hint = f"; did you mean {', '.join(close)}?" if close else "; `fm-match --list` shows the zoo"
            raise ZooError(f"unknown matcher {name!r}{hint}")
        return self.entries[name]

    def runnable(self) -> list[str]:
        return [n for n, e in self.entries.items() if not e.unavailable]

    def markdown(self) -> str:
        """The zoo as a markdown table (runnable entries first), for the README."""
        rows = [
            "| entry | feature | matcher | runs | efficiency | licence, or why it does not run |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        ordered = sorted(self.entries.values(), key=lambda e: (bool(e.unavailable), e.name.lower()))
        for e in ordered:
            note = e.unavailable or e.licence
            runs = "no" if e.unavailable else "yes"
            efficiency = e.info.get("efficiency") or "-"
            rows.append(f"| `{e.name}` | {e.feature or '-'} | {e.matcher} | {runs} | {efficiency} | {note} |")
        return "\n".join(rows)


def default_zoo_path() -> Path:
    """The zoo file of a source checkout, or of an installed share directory (pip or colcon)."""
    return config_file(ZOO_FILE_NAME)


def _entry(name: str, raw: dict[str, Any]) -> ZooEntry:
    if not isinstance(raw, dict) or "matcher" not in raw or "info" not in raw:
        raise ConfigError(f"zoo entry {name!r} needs at least 'matcher' and 'info'")
    return ZooEntry(
        name=name,
        matcher=str(raw["matcher"]),
        feature=raw.get("feature"),
        dense=bool(raw.get("dense", True)),
        enable=bool(raw.get("enable", True)),
        info=dict(raw["info"]),
        weights=tuple(raw.get("weights", ())),
        licence=str(raw.get("licence", "")),
        feature_conf=dict(raw.get("feature_conf", {})),
        matcher_conf=dict(raw.get("matcher_conf", {})),
        unavailable=str(raw.get("unavailable", "")),
    )


@lru_cache(maxsize=8)
def load_zoo(path: str | Path | None = None) -> Zoo:
    path = Path(path) if path else default_zoo_path()
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the matcher zoo {path}: {exc}") from exc
    if not isinstance(raw, dict) or "matcher_zoo" not in raw:
        raise ConfigError(f"{path} has no 'matcher_zoo' section")
    entries = {name: _entry(name, item) for name, item in raw["matcher_zoo"].items()}
    return Zoo(dict(raw.get("defaults", {})), entries, path)
