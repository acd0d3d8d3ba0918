"""The inference backends: their names, whether one can run here, and what to install where not."""

from __future__ import annotations

import importlib

import torch

from ...errors import ConfigError

BACKENDS = ("torch", "openvino", "onnxruntime", "tensorrt")
INSTALL_HINT = {
    "openvino": "pip install openvino onnx onnxscript",
    "onnxruntime": "pip install onnxruntime onnx onnxscript",
    "tensorrt": "onnxruntime-gpu built with TensorRT (Jetson or a CUDA machine), plus onnx and onnxscript",
}


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


def check_backend_name(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown inference backend {backend!r}; choose from {', '.join(BACKENDS)}")
