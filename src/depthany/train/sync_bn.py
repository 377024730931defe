"""Synchronised BatchNorm for multi-process training: batch statistics over every process's micro-batch.

The Depth Anything V1 segmentation configs train the Feature2Pyramid neck with ``SyncBN`` (16 GPUs x 1 image:
per-process statistics would come from a single image), and DINOv2's linear head is a BatchNorm head too.
:func:`sync_batchnorm` converts every BatchNorm layer of a model before it is wrapped in DDP. On CUDA that is
``torch.nn.SyncBatchNorm``; torch's refuses CPU tensors, so elsewhere (gloo) :class:`AllReduceBatchNorm` computes
the same statistics with differentiable all-reduces. Either way a run of ``W`` processes with micro-batches of
``m`` normalises exactly like one process with micro-batches of ``W * m`` (what ``tests/test_seg_dist.py``
checks), and the state-dict keys do not change. Depth models have no BatchNorm: the conversion is a no-op there.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce
from torch.nn.modules.batchnorm import _BatchNorm


class AllReduceBatchNorm(_BatchNorm):
    """BatchNorm over the micro-batches of all processes of the default group, on any device.

    In training mode under a process group of more than one process: per channel, the sum and the count are
    all-reduced for the mean, then the sum of squared deviations for the (biased) variance, both through
    ``torch.distributed.nn.functional.all_reduce`` so that the backward pass all-reduces the gradients of the
    statistics as well (the exact gradient of the loss summed over processes). Running statistics are updated as
    ``F.batch_norm`` does (unbiased variance over the global count). Otherwise it is a plain BatchNorm.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {input.dim()}-D")

    def forward(self, input: Tensor) -> Tensor:
        synced = self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not synced:
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        local = torch.tensor([input.numel() // input.shape[1]], dtype=input.dtype, device=input.device)
        stats = differentiable_all_reduce(torch.cat([input.sum(dims), local]))
        count = stats[-1]
        mean = stats[:-1] / count
        centred = input - mean.view(shape)
        var = differentiable_all_reduce((centred * centred).sum(dims)) / count
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                n = float(count)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                assert self.running_mean is not None and self.running_var is not None
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return out


def _to_all_reduce(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, (AllReduceBatchNorm, nn.SyncBatchNorm)):
        out = AllReduceBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                 module.track_running_stats)
        # the same Parameter and buffer objects: an optimiser built before the conversion still holds them
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _to_all_reduce(child))
    return out


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Replace the BatchNorm layers of ``model`` (in place below the top module) by synchronised ones:
    ``torch.nn.SyncBatchNorm`` on CUDA, :class:`AllReduceBatchNorm` elsewhere. Parameters and buffers are kept
    (same objects), so optimisers and state-dict keys are unaffected. Returns the model."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _to_all_reduce(model)
