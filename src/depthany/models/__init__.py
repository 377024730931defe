"""Pure ``nn.Module`` networks: DINOv2 encoder, DPT head, the assembled Depth Anything model, the ZoeDepth
metric head of the V1 metric models and the temporal modules of Video Depth Anything."""

from __future__ import annotations

import torch
from torch import nn

from ..zoo import Arch
from .depth_anything import DepthAnything, build_model
from .vda import VideoDepthAnything, video_arch, video_model_from_image
from .zoedepth import ZoeDepth

Network = DepthAnything | ZoeDepth | VideoDepthAnything


def build_network(arch: Arch, device: torch.device | str | None = None) -> Network:
    """The untrained network for ``arch`` (random initialisation, eval mode): a :class:`ZoeDepth` when
    ``arch.zoe`` is set, a :class:`VideoDepthAnything` for video (``temporal``) architectures, else a
    :class:`DepthAnything`. Build it under ``torch.device("meta")`` to count parameters or list keys."""
    model: nn.Module
    if arch.zoe is not None:
        model = ZoeDepth(arch)
    elif arch.temporal is not None:
        model = VideoDepthAnything(arch)
    else:
        model = DepthAnything(arch)
    if device is not None:
        model = model.to(device)
    return model.eval()  # type: ignore[return-value]


__all__ = ["DepthAnything", "Network", "VideoDepthAnything", "ZoeDepth", "build_model", "build_network",
           "video_arch", "video_model_from_image"]
