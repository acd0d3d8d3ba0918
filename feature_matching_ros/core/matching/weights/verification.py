"""Size and sha256 checks of weight files, writes renamed only once verified, and verified loads."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from ...errors import WeightsError
from .manifest import WeightSpec

_CHUNK = 1 << 20


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
