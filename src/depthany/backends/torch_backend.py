"""PyTorch eager: the exact reference path (fp32) and autocast for bf16/fp16. Runs on any torch device."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from ..models import DepthAnything
from .base import BackendInfo, Runner

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

INFO = BackendInfo(
    name="torch",
    modules=("torch",),
    extra=None,
    precisions={"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16"), "mps": ("fp32", "fp16")},
    summary="PyTorch eager; fp32 is the exact reference, bf16/fp16 use autocast",
)


class TorchRunner(Runner):
    """``model(x)`` under ``torch.inference_mode`` (and autocast for bf16/fp16).

    Args:
        model: the network, already on ``device``, fp32 weights.
        precision: ``"fp32"`` (bit-identical to calling the model), ``"bf16"`` or ``"fp16"``.
        device: where inputs are sent.
    """

    name = "torch"

    def __init__(self, model: DepthAnything, precision: str = "fp32", device: torch.device | None = None) -> None:
        self.model = model.eval()
        self.precision = precision
        self.device = device if device is not None else next(model.parameters()).device

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=DTYPES[self.precision])

    def __call__(self, x: Tensor) -> Tensor:
        with torch.inference_mode(), self._autocast(), strict_fp32(self.device, self.precision):
            return self.model(x.to(self.device)).float()


@contextlib.contextmanager
def strict_fp32(device: torch.device, precision: str) -> Iterator[None]:
    """On CUDA in fp32, keep cuBLAS/cuDNN off TF32 (cuDNN convolutions default to TF32 on Ampere and newer,
    about 1e-3 relative error: not the exact path). No-op elsewhere."""
    if device.type != "cuda" or precision != "fp32":
        yield
        return
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        cudnn = torch.backends.cudnn
        with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                         allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
