"""A function running an exported ONNX file in OpenVINO, ONNX Runtime, or TensorRT through ONNX
Runtime's TensorRT provider, on float32 arrays.

Threads: the backends get torch's thread count. ONNX Runtime's worker threads do not spin
(``allow_spinning=0``): spinning slows the torch code after each call on a 2-core machine.
OpenVINO runs in f32 (``INFERENCE_PRECISION_HINT``): on CPUs with AVX-512 BF16 or AMX it would
otherwise pick bf16, which changes keypoints; and without pinning its threads to cores, which
costs it dearly on a CPU shared with other processes (the ROS nodes, DDS).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def open_session(backend: str, model: Path, folder: Path) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
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
