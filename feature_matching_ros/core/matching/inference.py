"""Inference backends for the dense part of the learned extractors: torch (default), OpenVINO,
ONNX Runtime, and TensorRT through ONNX Runtime's TensorRT provider.

Only the dense network runs in a backend: XFeat's network, ALIKED's backbone and heads up to the
score and feature maps (``extract_dense_map``), SuperPoint's encoder and heads. Keypoint selection,
descriptor sampling and matching stay the package's torch code, one implementation for every
backend.

A network is exported with ``torch.onnx.export(dynamo=True)`` at opset 18, for one input shape,
on its first call with that shape (or beforehand with ``fm-export``). The exported file is cached
under a key of the weights' sha256, the input shape, the backend and its version, torch's
version and this package's version (``ExportKey``), and it is used only after its outputs were
compared once with torch's on the same input: every output within ``TOLERANCE`` of torch's
(absolute difference at most ``TOLERANCE`` times the larger of 1 and the output's largest
magnitude). A backend that is not installed, an export or a verification that fails: the
network runs in torch, and ``BackendNetwork.status`` says why (also logged as a warning), so a
node can report it in its diagnostics.

Threads: the backends get torch's thread count. ONNX Runtime's worker threads do not spin
(``allow_spinning=0``): spinning slows the torch code after each call on a 2-core machine.
OpenVINO runs in f32 (``INFERENCE_PRECISION_HINT``): on CPUs with AVX-512 BF16 or AMX it would
otherwise pick bf16, which changes keypoints; and without pinning its threads to cores, which
costs it dearly on a CPU shared with other processes (the ROS nodes, DDS).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError

BACKENDS = ("torch", "openvino", "onnxruntime", "tensorrt")
OPSET = 18
TOLERANCE = 1e-3
EXPORT_FORMAT = 1  # bump when the export code changes what it writes
ENV_EXPORT_CACHE = "FEATURE_MATCHING_EXPORT_CACHE"
INSTALL_HINT = {
    "openvino": "pip install openvino onnx onnxscript",
    "onnxruntime": "pip install onnxruntime onnx onnxscript",
    "tensorrt": "onnxruntime-gpu built with TensorRT (Jetson or a CUDA machine), plus onnx and onnxscript",
}

_log = logging.getLogger(__name__)


def export_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$FEATURE_MATCHING_EXPORT_CACHE``, else the user cache's ``exported``."""
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get(ENV_EXPORT_CACHE):
        return Path(os.environ[ENV_EXPORT_CACHE])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "feature_matching_ros" / "exported"


def package_version() -> str:
    from ... import __version__

    return __version__


def check_backend(backend: str) -> str:
    """The backend's version string; a ConfigError for an unknown name, an ImportError (with the
    install hint) when its packages are not installed here."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown inference backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "torch":
        return torch.__version__
    try:
        importlib.import_module("onnx")
        importlib.import_module("onnxscript")  # torch.onnx.export(dynamo=True) needs it
        module = importlib.import_module("openvino" if backend == "openvino" else "onnxruntime")
    except ImportError as exc:
        raise ImportError(f"{exc}; install: {INSTALL_HINT[backend]}") from exc
    if backend == "tensorrt" and "TensorrtExecutionProvider" not in module.get_available_providers():
        raise ImportError(
            f"this onnxruntime ({module.__version__}) has no TensorrtExecutionProvider "
            f"(providers: {', '.join(module.get_available_providers())}); install: {INSTALL_HINT[backend]}"
        )
    return str(module.__version__) + ("+trt" if backend == "tensorrt" else "")


def backend_problem(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or None."""
    try:
        check_backend(backend)
    except ImportError as exc:
        return f"inference backend {backend!r} is not available here: {exc}"
    return None


@dataclass(frozen=True)
class ExportKey:
    """What an exported file depends on; ``digest`` names its cache directory."""

    network: str
    weights_sha256: str
    shape: tuple[Any, ...]  # of the input, or of each input; -1 for a dynamic dimension
    backend: str
    backend_version: str
    torch_version: str
    package_version: str
    nhwc_outputs: tuple[int, ...] = ()
    opset: int = OPSET
    export_format: int = EXPORT_FORMAT

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def folder(self, cache_dir: Path) -> Path:
        return cache_dir / f"{self.network}-{shape_text(self.shape)}-{self.backend}-{self.digest()}"


@dataclass
class ExportRecord:
    """One exported, verified network: where it is and how it compared with torch."""

    key: ExportKey
    path: Path
    max_abs_diff: dict[str, float]
    tolerance: float
    export_s: float
    cache_hit: bool = False

    def meta(self) -> dict[str, Any]:
        return {
            "key": asdict(self.key),
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "export_s": self.export_s,
        }


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
            self._sessions[shape] = _session(self.backend, record.path, folder)
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
            outputs = _session(self.backend, path, work)([x.numpy() for x in samples])
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


def shape_text(shape: tuple[Any, ...]) -> str:
    """1x1x480x640, or 1x-1x256_1x-1x256 for several inputs (-1: dynamic)."""
    if shape and isinstance(shape[0], tuple):
        return "_".join(shape_text(s) for s in shape)
    return "x".join(str(s) for s in shape)


def _array(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


def _dims(dynamic: tuple[dict[int, str], ...] | None) -> tuple[Any, ...] | None:
    if not dynamic:
        return None
    names = {name for dims in dynamic for name in dims.values()}
    made = {name: torch.export.Dim(name, min=2, max=1 << 16) for name in sorted(names)}
    # one element: _Dense.forward takes its inputs as *inputs
    return (tuple({d: made[name] for d, name in dims.items()} for dims in dynamic),)


def _session(backend: str, model: Path, folder: Path) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """A function running the ONNX file ``model`` in ``backend`` on float32 arrays, one per input."""
    threads = max(1, torch.get_num_threads())
    if backend == "openvino":
        import openvino as ov

        compiled = ov.Core().compile_model(
            str(model),
            "CPU",
            {
                "INFERENCE_NUM_THREADS": threads,
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": "f32",
                # pinned threads wait for cores other processes hold: ALIKED's network 701 ms
                # pinned against 497 unpinned, interleaved on the 2 shared cores at load 4.5
                "ENABLE_CPU_PINNING": False,
            },
        )
        request = compiled.create_infer_request()

        def run_openvino(arrays: list[np.ndarray]) -> list[np.ndarray]:
            # Views of the request's own buffers, valid until its next call (copying ALIKED's
            # 157 MB feature map cost tens of ms); the extractors consume them within one call.
            request.infer(arrays, share_inputs=True)
            return [request.get_output_tensor(i).data for i in range(len(compiled.outputs))]

        return run_openvino
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    providers: list[Any] = ["CPUExecutionProvider"]
    if backend == "tensorrt":
        trt = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(folder)}
        providers = [("TensorrtExecutionProvider", trt), "CUDAExecutionProvider", "CPUExecutionProvider"]
    session = ort.InferenceSession(str(model), options, providers=providers)
    names = [i.name for i in session.get_inputs()]

    def run_onnxruntime(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return session.run(None, dict(zip(names, arrays, strict=True)))

    return run_onnxruntime


# ---------------------------------------------------------------- the extractors' dense parts


@dataclass
class _Route:
    """Where an extractor's dense part lives and how to send it to a backend."""

    network: str
    weight_id: str
    owner: nn.Module
    function: Callable[[torch.Tensor], Any]
    install: Callable[[BackendNetwork], None]
    channels_last: tuple[int, ...] = ()


class _RoutedXFeat(nn.Module):
    """Stands in for kornia XFeat's ``net``: the backend for the forward pass, the torch network's
    fine matcher (XFeat*) as before."""

    def __init__(self, net: nn.Module, runner: BackendNetwork) -> None:
        super().__init__()
        self.torch_net = net
        self.fine_matcher = net.fine_matcher
        self.runner = runner

    def forward(self, x: torch.Tensor) -> Any:
        return self.runner(x)


def _route(extractor: Any) -> _Route:
    from .extractors import ALIKEDExtractor, OwnNetworkExtractor, XFeatExtractor

    if isinstance(extractor, XFeatExtractor):
        model = extractor.model
        net = model.net

        def install_xfeat(runner: BackendNetwork) -> None:
            model.net = _RoutedXFeat(net, runner)

        return _Route(extractor.name, "xfeat", net, net.forward, install_xfeat)
    if isinstance(extractor, ALIKEDExtractor):

        def install_aliked(runner: BackendNetwork) -> None:
            extractor.dense_map = runner

        model = extractor.model
        # The 128-channel full-resolution feature map leaves the backend channels-last: converting it
        # to [B x C x H x W] took OpenVINO 117 of 558 ms (profiled at 640x480, 2 busy cores).
        return _Route(
            extractor.name, extractor.name, model, model.extract_dense_map, install_aliked, channels_last=(0,)
        )
    if isinstance(extractor, OwnNetworkExtractor) and extractor.name == "superpoint":
        model = extractor.model
        function = types.MethodType(type(model).forward, model)

        def install_superpoint(runner: BackendNetwork) -> None:
            model.forward = runner  # our own model: detect() calls it for the dense maps

        return _Route("superpoint", "superpoint-v1", model, function, install_superpoint)
    name = getattr(extractor, "name", type(extractor).__name__)
    raise ConfigError(
        f"extractor {name!r} has no exportable network; inference backends cover xfeat, xfeat_dense, "
        "aliked-* and superpoint"
    )


class _RoutedLayer(nn.Module):
    """Stands in for one transformer layer of kornia's LightGlue: the backend runs the layer,
    LightGlue's own loop keeps deciding in torch when to stop and which points to prune. Padded
    (masked) batches, which the package never sends, run the torch layer."""

    def __init__(self, layer: nn.Module, runner: BackendNetwork) -> None:
        super().__init__()
        self.torch_layer = layer
        self.runner = runner

    def forward(
        self,
        desc0: torch.Tensor,
        desc1: torch.Tensor,
        encoding0: torch.Tensor,
        encoding1: torch.Tensor,
        mask0: torch.Tensor | None = None,
        mask1: torch.Tensor | None = None,
    ) -> Any:
        if mask0 is not None or mask1 is not None:
            return self.torch_layer(desc0, desc1, encoding0, encoding1, mask0=mask0, mask1=mask1)
        return self.runner(desc0, desc1, encoding0, encoding1)


# A layer's inputs: descriptors [B x M x D], [B x N x D], rotary encodings [2 x B x 1 x M x d], [.. N ..].
LAYER_DYNAMIC = ({1: "m"}, {1: "n"}, {3: "m"}, {3: "n"})


def attach_matcher(
    matcher: Any, backend: str, *, cache_dir: str | Path | None = None
) -> list[BackendNetwork]:
    """Run each transformer layer of a LightGlue matcher in ``backend`` (one export per layer with
    variable keypoint counts, verified on its first real input); other matchers: nothing."""
    from . import weights
    from .matchers import LIGHTGLUE_MODELS, LightGlueMatcher

    check_backend_name(backend)
    if backend == "torch" or not isinstance(matcher, LightGlueMatcher):
        return []
    features = "xfeat" if matcher.name == "lighterglue" else matcher.name.split("-")[0]
    sha = weights.spec_for(LIGHTGLUE_MODELS[features]["weights"]).sha256
    layers = matcher.model.transformers
    runners = []
    for index, layer in enumerate(layers):
        runner = BackendNetwork(
            f"{matcher.name}-layer{index}",
            layer,
            layer.forward,
            sha,
            backend,
            cache_dir=cache_dir,
            dynamic=LAYER_DYNAMIC,
        )
        layers[index] = _RoutedLayer(layer, runner)
        runners.append(runner)
    matcher.backend_layers = runners
    return runners


def supports(extractor: Any) -> bool:
    try:
        _route(extractor)
    except ConfigError:
        return False
    return True


def attach(
    extractor: Any,
    backend: str,
    *,
    cache_dir: str | Path | None = None,
    weights_dir: str | Path | None = None,
) -> BackendNetwork | None:
    """Run ``extractor``'s dense network in ``backend`` from now on (None for ``torch``).

    The extractor's ``backend`` attribute holds the BackendNetwork; its ``status`` says when torch
    runs instead. A ConfigError for an unknown backend or an extractor without a dense network.
    """
    from . import weights

    check_backend_name(backend)
    if backend == "torch":
        return None
    route = _route(extractor)
    sha = weights.spec_for(route.weight_id).sha256
    runner = BackendNetwork(
        route.network,
        route.owner,
        route.function,
        sha,
        backend,
        cache_dir=cache_dir,
        channels_last=route.channels_last,
    )
    route.install(runner)
    extractor.backend = runner
    return runner


def check_backend_name(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown inference backend {backend!r}; choose from {', '.join(BACKENDS)}")


def status(component: Any) -> str:
    """Empty while the backend of an extractor, a matcher or a pipeline's both runs (or torch runs by
    choice), else why torch runs."""
    if hasattr(component, "extractor") and hasattr(component, "matcher"):
        return "; ".join(filter(None, (status(component.extractor), status(component.matcher))))
    runner = getattr(component, "backend", None)
    runners = [runner] if isinstance(runner, BackendNetwork) else getattr(component, "backend_layers", [])
    return "; ".join(r.status for r in runners if r.status)
