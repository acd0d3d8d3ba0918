"""Inference backends for the dense part of the learned extractors: torch (default), OpenVINO,
ONNX Runtime, and TensorRT through ONNX Runtime's TensorRT provider.

Only the dense network runs in a backend: XFeat's network, ALIKED's backbone and heads up to the
score and feature maps (``extract_dense_map``), SuperPoint's encoder and heads. Keypoint selection,
descriptor sampling and matching stay the package's torch code, one implementation for every
backend.

``backends`` names the backends and checks one can run here; ``sessions`` runs an exported ONNX
file in one; ``export_cache`` keys and records the exported files; ``network`` holds
``BackendNetwork`` (export, verification against torch, fallback to torch); ``attachment`` puts
one into an extractor or LightGlue's layers and reports its ``status``.
"""

from .attachment import LAYER_DYNAMIC, attach, attach_matcher, status, supports
from .backends import BACKENDS, INSTALL_HINT, backend_problem, check_backend, check_backend_name
from .export_cache import (
    ENV_EXPORT_CACHE,
    EXPORT_FORMAT,
    OPSET,
    ExportKey,
    ExportRecord,
    export_cache_dir,
    package_version,
    shape_text,
)
from .network import TOLERANCE, BackendNetwork

__all__ = [
    "BACKENDS",
    "ENV_EXPORT_CACHE",
    "EXPORT_FORMAT",
    "INSTALL_HINT",
    "LAYER_DYNAMIC",
    "OPSET",
    "TOLERANCE",
    "BackendNetwork",
    "ExportKey",
    "ExportRecord",
    "attach",
    "attach_matcher",
    "backend_problem",
    "check_backend",
    "check_backend_name",
    "export_cache_dir",
    "package_version",
    "shape_text",
    "status",
    "supports",
]
