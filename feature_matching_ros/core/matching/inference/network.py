"""``BackendNetwork``: the torch dense part of an extractor or matcher run in an inference backend.

A network is exported with ``torch.onnx.export(dynamo=True)`` at opset 18, for one input shape,
on its first call with that shape (or beforehand with ``fm-export``). The exported file is cached
under a key of the weights' sha256, the input shape, the backend and its version, torch's
version and this package's version (``ExportKey``), and it is used only after its outputs were
compared once with torch's on the same input: every output within ``TOLERANCE`` of torch's
(absolute difference at most ``TOLERANCE`` times the larger of 1 and the output's largest
magnitude). A backend that is not installed, an export or a verification that fails: the
network runs in torch, and ``BackendNetwork.status`` says why (also logged as a warning), so a
node can report it in its diagnostics.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .backends import check_backend
from .export_cache import OPSET, ExportKey, ExportRecord, export_cache_dir, package_version, shape_text
from .sessions import open_session

TOLERANCE = 1e-3

_log = logging.getLogger(__name__)


class _Dense(nn.Module):
    """The torch dense part as a module of its own (the function exported and compared with); the
    outputs numbered in ``channels_last`` leave it as [B x H x W x C]."""

    def __init__(
        self, owner: nn.Module, function: Callable[[torch.Tensor], Any], channels_last: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        self.owner = owner
        self.function = function
        self.channels_last = channels_last

    def forward(self, *inputs: torch.Tensor) -> Any:
        out = self.function(*inputs)
        if not self.channels_last:
            return out
        _, tensors = _flatten(out)
        return tuple(t.permute(0, 2, 3, 1) if i in self.channels_last else t for i, t in enumerate(tensors))


def _flatten(out: Any) -> tuple[list[str] | None, list[torch.Tensor]]:
    if isinstance(out, dict):
        return list(out), list(out.values())
    if isinstance(out, torch.Tensor):
        return None, [out]
    return None, list(out)


class BackendNetwork:
    """``function`` (the torch dense part of ``owner``) run in ``backend``, exported per input shape.

    Call it like the torch function: tensors in, the same structure (tensor, tuple or dict) out,
    on the input's device. ``status`` is empty while the backend runs, else why torch runs.
    ``dynamic`` names, per input, the dimensions exported as variable (``{1: "m"}``; the same name
    is the same size): one export then serves every size of those, and they key the cache as -1.
    """

    def __init__(
        self,
        network: str,
        owner: nn.Module,
        function: Callable[[torch.Tensor], Any],
        weights_sha256: str,
        backend: str,
        *,
        cache_dir: str | Path | None = None,
        tolerance: float = TOLERANCE,
        channels_last: tuple[int, ...] = (),
        dynamic: tuple[dict[int, str], ...] | None = None,
    ) -> None:
        self.network = network
        self.dynamic = dynamic
        self.function = function
        self.channels_last = channels_last
        self.dense = _Dense(owner, function, channels_last)
        self.weights_sha256 = weights_sha256
        self.backend = backend
        self.cache_dir = export_cache_dir(cache_dir)
        self.tolerance = float(tolerance)
        self.records: dict[tuple[Any, ...], ExportRecord] = {}
        self._sessions: dict[tuple[Any, ...], Callable[[list[np.ndarray]], list[np.ndarray]] | None] = {}
        self._names: list[str] | None = None
        self.status = ""
        try:
            self.backend_version = check_backend(backend)
        except ImportError as exc:
            self.backend_version = ""
            self._fall_back(f"inference backend {backend!r} is not available here: {exc}")

    def _fall_back(self, why: str) -> None:
        self.status = f"{self.network}: {why}; running the torch network instead"
        _log.warning(self.status)

    def shape_key(self, inputs: tuple[torch.Tensor, ...]) -> tuple[Any, ...]:
        """The input shape (one input) or shapes (several), dynamic dimensions as -1."""
        dynamic = self.dynamic or ({},) * len(inputs)
        shapes = tuple(
            tuple(-1 if d in dims else int(n) for d, n in enumerate(x.shape))
            for x, dims in zip(inputs, dynamic, strict=True)
        )
        return shapes[0] if len(shapes) == 1 else shapes

    def key(self, shape: tuple[Any, ...]) -> ExportKey:
        return ExportKey(
            self.network,
            self.weights_sha256,
            shape,
            self.backend,
            self.backend_version,
            torch.__version__,
            package_version(),
            self.channels_last,
        )

    def __call__(self, *inputs: torch.Tensor) -> Any:
        """The outputs of a backend may be views of its buffers: valid until the next call."""
        if not self.backend_version:
            return self.function(*inputs)
        shape = self.shape_key(inputs)
        if shape not in self._sessions:
            self.prepare(*inputs)
        session = self._sessions[shape]
        if session is None:
            return self.function(*inputs)
        outputs = session([_array(x) for x in inputs])
        device = inputs[0].device
        tensors = [torch.from_numpy(o).to(device) for o in outputs]
        # [B x H x W x C] outputs as channels-last views of [B x C x H x W], no copy
        tensors = [t.permute(0, 3, 1, 2) if i in self.channels_last else t for i, t in enumerate(tensors)]
        if self._names is not None:
            return dict(zip(self._names, tensors, strict=True))
        return tensors[0] if len(tensors) == 1 else tuple(tensors)

    def prepare(self, *inputs: torch.Tensor) -> ExportRecord | None:
        """Load (cache hit) or export and verify the network for the inputs' shape; None on fallback."""
        shape = self.shape_key(inputs)
        if not self.backend_version:
            self._sessions[shape] = None
            return None
        key = self.key(shape)
        folder = key.folder(self.cache_dir)
        try:
            record = self._load(key, folder) or self._export(key, folder, inputs)
            self._sessions[shape] = open_session(self.backend, record.path, folder)
        except Exception as exc:  # any backend failure: torch runs, and status says why
            self._sessions[shape] = None
            self._fall_back(
                f"{self.backend} failed for input {shape_text(shape)}: {type(exc).__name__}: {exc}"
            )
            return None
        if self._names is None:
            with torch.inference_mode():
                self._names, _ = _flatten(self.function(*inputs))
        self.records[shape] = record
        return record

    def _load(self, key: ExportKey, folder: Path) -> ExportRecord | None:
        meta_path, model = folder / "meta.json", folder / "model.onnx"
        if not (meta_path.is_file() and model.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
        if meta.get("key") != json.loads(json.dumps(asdict(key))):
            return None
        return ExportRecord(
            key, model, meta["max_abs_diff"], float(meta["tolerance"]), float(meta["export_s"]), True
        )

    def _export(self, key: ExportKey, folder: Path, inputs: tuple[torch.Tensor, ...]) -> ExportRecord:
        start = time.perf_counter()
        samples = tuple(x.detach().to("cpu", torch.float32).contiguous() for x in inputs)
        dense = self.dense
        with torch.inference_mode():
            names, _ = _flatten(self.function(*inputs))
            _, reference = _flatten(dense(*inputs))
        reference = [r.detach().to("cpu", torch.float32).contiguous().numpy() for r in reference]
        output_names = names or [f"out{i}" for i in range(len(reference))]
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=self.cache_dir))
        try:
            path = work / "model.onnx"
            device = next(dense.owner.parameters()).device
            dense.to("cpu")
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(
                        dense,
                        samples,
                        str(path),
                        dynamo=True,
                        opset_version=OPSET,
                        input_names=["image"]
                        if len(samples) == 1
                        else [f"in{i}" for i in range(len(samples))],
                        output_names=output_names,
                        dynamic_shapes=_dims(self.dynamic),
                        verbose=False,
                    )
            finally:
                dense.to(device)
            outputs = open_session(self.backend, path, work)([x.numpy() for x in samples])
            diffs = {}
            for name, ref, out in zip(output_names, reference, outputs, strict=True):
                if ref.shape != out.shape:
                    raise RuntimeError(f"output {name} has shape {out.shape}, torch {ref.shape}")
                diffs[name] = float(np.abs(ref - out).max()) if ref.size else 0.0
                bound = self.tolerance * max(1.0, float(np.abs(ref).max()) if ref.size else 0.0)
                if not diffs[name] <= bound:
                    raise RuntimeError(
                        f"output {name} differs from torch by {diffs[name]:.3g} > {bound:.3g} "
                        f"(tolerance {self.tolerance:g} x max(1, |torch|))"
                    )
            record = ExportRecord(key, folder / "model.onnx", diffs, self.tolerance, 0.0)
            record.export_s = time.perf_counter() - start
            (work / "meta.json").write_text(json.dumps(record.meta(), indent=2))
            if folder.exists():
                shutil.rmtree(folder)
            work.rename(folder)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        _log.info(
            "%s exported for %s %s in %.1f s; max |diff| to torch %s",
            self.network,
            self.backend,
            shape_text(key.shape),
            record.export_s,
            diffs,
        )
        return record


def _array(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


def _dims(dynamic: tuple[dict[int, str], ...] | None) -> tuple[Any, ...] | None:
    if not dynamic:
        return None
    names = {name for dims in dynamic for name in dims.values()}
    made = {name: torch.export.Dim(name, min=2, max=1 << 16) for name in sorted(names)}
    # one element: _Dense.forward takes its inputs as *inputs
    return (tuple({d: made[name] for d, name in dims.items()} for dims in dynamic),)
