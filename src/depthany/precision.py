"""Numeric precision of inference, in one place: the names, their dtypes, autocast, and strict fp32.

``fp32`` is the exact path: float32 weights and activations with IEEE float32 arithmetic in every matmul and
convolution. PyTorch lets process-wide settings trade that away silently: cuDNN convolutions default to TF32 on
Ampere and newer GPUs (about 1e-3 relative error), ``torch.set_float32_matmul_precision("high"/"medium")``
turns on TF32 matmuls on CUDA and bf16 matmuls in oneDNN on CPUs with AMX. :func:`strict_fp32` switches all of
that off for the duration of a forward pass and restores the caller's settings afterwards, on every device.
``bf16`` and ``fp16`` run the fp32 weights under :func:`autocast`. ``int8`` is an inference precision only:
a post-training quantised graph run by an engine backend (:mod:`depthany.quantize`), never PyTorch, and never
chosen unless asked for.

The flags are process-wide: two threads running networks at different precisions at the same time may see
each other's settings (depthany runs one network per process thread).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # torch is imported where it is used: the CLI reads PRECISIONS without it
    import torch

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16")
# What inference verbs accept: the float precisions plus int8 (an engine runs a quantised graph).
InferencePrecision = Literal["fp32", "bf16", "fp16", "int8"]
INFERENCE_PRECISIONS: tuple[InferencePrecision, ...] = (*PRECISIONS, "int8")
_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def torch_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a precision name: fp32 -> float32, bf16 -> bfloat16, fp16 -> float16.

    Raises:
        ValueError: an unknown name.
    """
    import torch

    return getattr(torch, _DTYPE_NAMES[check_precision(precision)])  # type: ignore[no-any-return]


def check_precision(precision: str, name: str = "precision") -> Precision:
    """Return ``precision`` if it is one of :data:`PRECISIONS`.

    Raises:
        ValueError: naming the argument and the choices.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"{name} must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision  # type: ignore[return-value]


def check_inference_precision(precision: str, name: str = "precision") -> InferencePrecision:
    """Return ``precision`` if it is one of :data:`INFERENCE_PRECISIONS` (the float ones and ``int8``).

    Raises:
        ValueError: naming the argument and the choices.
    """
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"{name} must be one of {', '.join(INFERENCE_PRECISIONS)}, got {precision!r}")
    return precision  # type: ignore[return-value]


def autocast(device: torch.device | str, precision: str, strict: bool = True) -> contextlib.AbstractContextManager[Any]:
    """The context a forward pass runs in: ``torch.autocast`` to bf16/fp16; for fp32 :func:`strict_fp32`, or
    the process's own settings with ``strict=False`` (training, where TF32 speed is wanted)."""
    import torch

    check_precision(precision)
    if precision == "fp32":
        return strict_fp32() if strict else contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch_dtype(precision))


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """IEEE float32 in every matmul and convolution while active, on any device; restores the settings after.

    Sets ``torch.set_float32_matmul_precision("highest")`` (no TF32 matmuls on CUDA, no bf16 oneDNN matmuls
    on CPUs), cuDNN ``allow_tf32=False`` and, where PyTorch has it, oneDNN convolutions to ``"ieee"``.
    """
    import torch

    matmul = torch.get_float32_matmul_precision()
    conv: Any = getattr(torch.backends.mkldnn, "conv", None)  # PyTorch >= 2.9
    mkldnn_conv = getattr(conv, "fp32_precision", None)
    torch.set_float32_matmul_precision("highest")
    if mkldnn_conv not in (None, "ieee", "none"):
        conv.fp32_precision = "ieee"
    cudnn = torch.backends.cudnn
    try:
        with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                         allow_tf32=False):
            yield
    finally:
        torch.set_float32_matmul_precision(matmul)
        if mkldnn_conv not in (None, "ieee", "none"):
            conv.fp32_precision = mkldnn_conv


def is_strict_fp32() -> bool:
    """Whether the current settings give IEEE float32 matmuls and convolutions (see :func:`strict_fp32`)."""
    import torch

    mkldnn_conv = getattr(getattr(torch.backends.mkldnn, "conv", None), "fp32_precision", None)
    return (torch.get_float32_matmul_precision() == "highest" and not torch.backends.cuda.matmul.allow_tf32
            and not torch.backends.cudnn.allow_tf32 and mkldnn_conv in (None, "ieee", "none"))
