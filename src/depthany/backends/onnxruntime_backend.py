"""ONNX Runtime on the exported dynamic-shape graph (fp32, exact). Extra: ``[export]``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..export.onnx import INPUT_NAME, OUTPUT_NAME
from .base import BackendInfo, BackendUnavailable, Runner, as_tensor

INFO = BackendInfo(
    name="onnxruntime",
    modules=("onnxruntime", "onnx", "onnxscript"),
    extra="export",
    precisions={"cpu": ("fp32",), "cuda": ("fp32",)},
    summary="ONNX Runtime, all graph optimisations; fp32 (exact); CUDA with onnxruntime-gpu",
)


class OnnxRuntimeRunner(Runner):
    """One ``InferenceSession`` over the dynamic graph; any batch and size runs without recompiling.

    Args:
        onnx_path: a file written by :func:`depthany.export.export_onnx`.
        precision: only ``"fp32"``.
        device: ``cpu``, or ``cuda`` (needs the onnxruntime-gpu build).
        threads: intra-op threads (default: ``torch.get_num_threads()``, so engines compare fairly).
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, precision: str = "fp32", device: torch.device | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        self.precision = precision
        self.device = device or torch.device("cpu")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable("onnxruntime on CUDA needs the GPU build: pip install onnxruntime-gpu")
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=providers)

    def __call__(self, x: Tensor) -> Tensor:
        out = self.session.run([OUTPUT_NAME], {INPUT_NAME: x.detach().float().cpu().numpy()})[0]
        return as_tensor(out)
