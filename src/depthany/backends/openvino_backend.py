"""OpenVINO on the CPU: f32 (exact), bf16 (fast; AMX on recent Xeons) and int8 (a graph quantised by
``depthany quantize``). Extra: ``[openvino]``.

OpenVINO's CPU plugin defaults to bf16 on CPUs that support it, so the precision is always set explicitly with
``INFERENCE_PRECISION_HINT``; the runner records the precision the compiled model reports back. By default a
model is compiled per input shape (static shapes run faster than a dynamic compile) and the last few compiled
shapes are kept; the predictor groups images by network size, so a folder of same-sized photos compiles once.

int8 runs a quantised OpenVINO IR (``.xml``): the quantised operations compute in int8 and everything else (the
layers kept in floating point, softmax, norms, activations) in f32, which is what the accuracy gate measured.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..runtime.altstack import kept_sigaltstack
from ..zoo import PATCH_SIZE
from .base import BackendInfo, BackendUnavailable, Runner, as_tensor

INFO = BackendInfo(
    name="openvino",
    modules=("openvino", "onnx", "onnxscript"),
    extra="openvino,export",
    precisions={"cpu": ("fp32", "bf16", "fp16", "int8")},
    summary="OpenVINO CPU plugin; fp32 (exact), bf16/fp16 inference precision, or an int8 model from depthany "
            "quantize; compiled per input shape",
)
# INFERENCE_PRECISION_HINT per precision; an int8 model keeps its float parts in f32, as its gate measured them
HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
MAX_COMPILED = 4


def cached_ir(onnx_path: str | Path) -> Path:
    """The OpenVINO IR (``.xml`` + ``.bin``, fp32 weights) of an ONNX export, converted once beside it.

    OpenVINO memory-maps an IR's ``.bin``; an ONNX file's weights are read onto the heap instead, and stay
    resident next to the compiled model's own copy. Compiling from the IR keeps the peak of a ViT-S job at
    518x518 at 660 MiB instead of 978 MiB (``benchmarks/engine_memory.py``). Written under temporary names and
    renamed (``.bin`` first), so a concurrent reader never sees half an IR.
    """
    import openvino as ov

    src = Path(onnx_path)
    xml = src.with_suffix(".ir.xml")
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return xml
    with tempfile.TemporaryDirectory(dir=src.parent, prefix=".ir-") as tmp:
        tmp_xml = Path(tmp) / xml.name
        ov.save_model(ov.Core().read_model(str(src)), str(tmp_xml), compress_to_fp16=False)
        os.replace(tmp_xml.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp_xml, xml)
    return xml


class OpenVinoRunner(Runner):
    """Compiled OpenVINO models for the exported graph.

    Args:
        onnx_path: a file written by :func:`depthany.export.export_onnx`, or for ``"int8"`` the ``.xml`` of a
            quantised model (:mod:`depthany.quantize`).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (the CPU plugin's inference precision), or ``"int8"``.
        device: only ``cpu``.
        threads: inference threads (default: ``torch.get_num_threads()``).
        static: compile one model per input shape (default) or a single dynamic-shape model.
        cache_dir: OpenVINO's compiled-blob cache folder (speeds up later compiles), or None.
    """

    name = "openvino"

    def __init__(self, onnx_path: str | Path, precision: str = "fp32", device: torch.device | None = None,
                 threads: int | None = None, static: bool = True, cache_dir: str | Path | None = None) -> None:
        import openvino as ov

        self.device = device or torch.device("cpu")
        if self.device.type != "cpu":
            raise BackendUnavailable(f"the openvino backend runs on the CPU only, not {self.device}")
        if precision not in HINTS:
            raise ValueError(f"precision must be one of {', '.join(HINTS)}, got {precision!r}")
        self.precision = precision
        self.static = static
        self._core = ov.Core()
        if cache_dir is not None:
            self._core.set_property({"CACHE_DIR": str(cache_dir)})
        self._onnx_path = str(onnx_path)
        self._config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": HINTS[precision],
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
        }
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.executed_precision: str | None = None

    def _request(self, shape: tuple[int, ...]) -> Any:
        key = shape if self.static else ()
        req = self._compiled.get(key)
        if req is not None:
            self._compiled.move_to_end(key)
            return req
        model = self._core.read_model(self._onnx_path)
        config = dict(self._config)
        if self.static:
            model.reshape({model.input(0).get_any_name(): list(shape)})
            if shape[-2] * shape[-1] == PATCH_SIZE * PATCH_SIZE:
                # OpenVINO 2026.4's fused attention ("snippets") is wrong for a static sequence of 2 tokens
                # (CLS + one patch: a 14x14 input), about 10 % off; the unfused path is exact.
                config["SNIPPETS_MODE"] = "DISABLE"
        with kept_sigaltstack():  # OpenVINO replaces the thread's alternate signal stack (runtime/altstack.py)
            compiled = self._core.compile_model(model, "CPU", config)
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        self.executed_precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)
        req = compiled.create_infer_request()
        self._compiled[key] = req
        while len(self._compiled) > MAX_COMPILED:
            self._compiled.popitem(last=False)
        return req

    def __call__(self, x: Tensor) -> Tensor:
        arr = x.detach().float().cpu().contiguous().numpy()
        req = self._request(tuple(arr.shape))
        req.infer([arr])
        return as_tensor(req.get_output_tensor(0).data.copy())

    def describe(self) -> dict[str, str]:
        d = super().describe()
        if self.executed_precision is not None:
            d["executed_precision"] = self.executed_precision
        return d
