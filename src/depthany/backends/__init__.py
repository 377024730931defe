"""Inference backends behind :class:`depthany.predictor.DepthPredictor`: one module per engine.

=============  ==================  =====================================================================
``backend``    extra               precisions
=============  ==================  =====================================================================
torch          (core)              fp32 (the exact reference), bf16/fp16 via autocast; any torch device
onnxruntime    ``[export]``        fp32 (exact); CPU, or CUDA with onnxruntime-gpu
openvino       ``[openvino]``      fp32 (exact), bf16, fp16, int8 (a model from ``depthany quantize``); CPU
=============  ==================  =====================================================================

``"auto"`` picks, for the device and precision, the first installed backend in :data:`AUTO_ORDER` (ordered by
measured speed on CPUs, see ``docs/performance.md``); for the V1 metric (ZoeDepth) models it picks PyTorch. Every fp32 backend stays within 1e-5 (max error
relative to the output range) of PyTorch eager fp32; reduced precisions state their AbsRel against fp32.
``"auto"`` never changes the precision: int8 runs only when asked for, and only with a quantised model whose
accuracy gate passed (:mod:`depthany.backends.int8_cache`).

Example:
    >>> from depthany.backends import make_runner                     # doctest: +SKIP
    >>> runner = make_runner("auto", model, precision="fp32")          # doctest: +SKIP
    >>> depth = runner(x)                                              # (B, 3, h, w) -> (B, h, w)
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from ..models import DepthAnything3, Network, ZoeDepth
from ..precision import check_inference_precision
from . import onnxruntime_backend, openvino_backend, torch_backend
from .base import EXACT_TOLERANCE, REDUCED_TOLERANCE, BackendInfo, BackendUnavailable, Runner
from .int8_cache import Int8ModelMissing

INFOS: dict[str, BackendInfo] = {
    i.name: i for i in (torch_backend.INFO, onnxruntime_backend.INFO, openvino_backend.INFO)
}
BACKEND_CHOICES: tuple[str, ...] = ("auto", *INFOS)

# Fastest first, per (device type, precision); measured on a 2-core AVX-512/AMX Xeon (docs/performance.md).
AUTO_ORDER: dict[tuple[str, str], tuple[str, ...]] = {
    # ONNX Runtime is exact too, but needs 1.2-1.8x transformers' peak memory here: only on request.
    ("cpu", "fp32"): ("openvino", "torch"),
    ("cpu", "bf16"): ("openvino", "torch"),
    ("cpu", "fp16"): ("openvino",),
    ("cpu", "int8"): ("openvino",),  # only when int8 is asked for; "auto" never lowers the precision
}


def is_installed(name: str) -> bool:
    """True when every module the backend needs can be imported."""
    info = _info(name)
    return all(importlib.util.find_spec(m) is not None for m in info.modules)


def available_backends() -> list[str]:
    """Installed backends, in :data:`INFOS` order."""
    return [n for n in INFOS if is_installed(n)]


def _info(name: str) -> BackendInfo:
    if name not in INFOS:
        raise ValueError(f"backend must be one of {', '.join(BACKEND_CHOICES)}, got {name!r}")
    return INFOS[name]


def supports(name: str, precision: str, device: str | torch.device = "cpu") -> bool:
    """Whether backend ``name`` runs ``precision`` on ``device`` (ignores whether it is installed)."""
    return precision in _info(name).precisions.get(torch.device(device).type, ())


def resolve(backend: str, precision: str = "fp32", device: str | torch.device = "cpu") -> str:
    """Turn ``"auto"`` into a concrete backend and check that the requested one can run the job.

    Raises:
        ValueError: unknown backend or precision, or a combination the backend does not run.
        BackendUnavailable: the backend's engine is not installed (the message names the extra).
    """
    check_inference_precision(precision)
    dev = torch.device(device).type
    if backend == "auto":
        for name in AUTO_ORDER.get((dev, precision), ()):
            if is_installed(name):
                return name
        if supports("torch", precision, dev):
            return "torch"
        listed = AUTO_ORDER.get((dev, precision), ())
        hint = f" ({INFOS[listed[0]].install_hint()})" if listed else ""
        raise ValueError(f"no backend runs precision {precision!r} on {dev}; try precision='fp32'{hint}")
    info = _info(backend)
    if not supports(backend, precision, dev):
        ok = ", ".join(f"{d}: {'/'.join(p)}" for d, p in info.precisions.items())
        raise ValueError(f"backend {backend!r} does not run precision {precision!r} on {dev} (it runs {ok})")
    if not is_installed(backend):
        raise BackendUnavailable(info.install_hint())
    return backend


def make_runner(backend: str, model: Network, precision: str = "fp32",
                device: str | torch.device | None = None, name: str = "model", **options: Any) -> Runner:
    """Build the runner for ``backend`` (or ``"auto"``) around ``model``.

    Args:
        backend: a name from :data:`BACKEND_CHOICES`.
        model: the network with fp32 weights (ONNX backends export it once and cache the file).
        precision: ``"fp32"`` (exact), ``"bf16"``, ``"fp16"``, or ``"int8"`` (a quantised model: the one
            cached for these weights by ``depthany quantize``, or ``int8_model=PATH``).
        device: defaults to the model's device.
        name: used in the cached file name.
        **options: engine options (``threads``; OpenVINO: ``static``, ``cache_dir``; ``int8_model``: the
            ``.xml`` of a quantised model to use instead of the cached one).

    Returns:
        a :class:`Runner`: (B, 3, h, w) float32 -> (B, h, w) float32 on the CPU.

    Raises:
        Int8ModelMissing: ``precision="int8"`` and no quantised model for these weights.
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    if backend == "auto" and isinstance(model, ZoeDepth):
        # The ZoeDepth head exports (ONNX Runtime matches PyTorch within 1e-5), but its speed on the engines is
        # not measured and the first export costs minutes: "auto" keeps the reference path for these models.
        backend = "torch"
    chosen = resolve(backend, precision, dev)
    int8_model = options.pop("int8_model", None)
    if chosen == "torch":
        return torch_backend.TorchRunner(model, precision, dev)
    if isinstance(model, DepthAnything3):
        raise ValueError(f"the {chosen} engine does not run Depth Anything 3 networks (not exported to ONNX); "
                         "use backend='torch'")
    if precision == "int8":
        return openvino_backend.OpenVinoRunner(int8_model or _cached_int8(model, name), precision, dev, **options)
    from .onnx_cache import model_onnx

    path = model_onnx(model, name)
    if chosen == "onnxruntime":
        return onnxruntime_backend.OnnxRuntimeRunner(path, precision, dev, **options)
    # compiled from an OpenVINO IR converted once from the export: its weights are memory-mapped, which keeps
    # ~0.3 GB (ViT-S) less resident than compiling from the ONNX file (docs/performance.md, peak memory)
    return openvino_backend.OpenVinoRunner(openvino_backend.cached_ir(path), precision, dev, **options)


def _cached_int8(model: Network, name: str) -> str:
    from .int8_cache import cached_int8, missing_message
    from .onnx_cache import weights_digest

    found = cached_int8(weights_digest(model))
    if found is None:
        raise Int8ModelMissing(missing_message(name))
    return str(found)


__all__ = [
    "AUTO_ORDER", "BACKEND_CHOICES", "EXACT_TOLERANCE", "INFOS", "REDUCED_TOLERANCE", "BackendInfo",
    "BackendUnavailable", "Int8ModelMissing", "Runner", "available_backends", "is_installed", "make_runner", "resolve",
    "supports",
]
