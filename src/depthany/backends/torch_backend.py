"""PyTorch eager: the exact reference path (fp32) and autocast for bf16/fp16. Runs on any torch device."""

from __future__ import annotations

import torch
from torch import Tensor

from ..models import Network
from ..precision import autocast
from .base import BackendInfo, Runner

INFO = BackendInfo(
    name="torch",
    modules=("torch",),
    extra=None,
    precisions={"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16"), "mps": ("fp32", "fp16")},
    summary="PyTorch eager; fp32 is the exact reference (strict IEEE fp32), bf16/fp16 use autocast",
)


class TorchRunner(Runner):
    """``model(x)`` under ``torch.inference_mode`` and :func:`depthany.precision.autocast`: strict IEEE fp32
    (no TF32 on CUDA, no bf16 oneDNN matmuls on CPUs) for ``"fp32"``, autocast for bf16/fp16.

    Args:
        model: the network, already on ``device``, fp32 weights.
        precision: ``"fp32"`` (bit-identical to calling the model with default settings), ``"bf16"`` or
            ``"fp16"``.
        device: where inputs are sent.
    """

    name = "torch"

    def __init__(self, model: Network, precision: str = "fp32", device: torch.device | None = None) -> None:
        self.model = model.eval()
        self.precision = precision
        self.device = device if device is not None else next(model.parameters()).device

    def __call__(self, x: Tensor) -> Tensor:
        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.model(x.to(self.device)).float()
