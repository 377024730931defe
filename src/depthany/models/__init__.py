"""Pure ``nn.Module`` networks: DINOv2 encoder, DPT head, the assembled Depth Anything models (V1/V2), the
ZoeDepth metric head of the V1 metric models, Video Depth Anything's temporal modules and Depth Anything 3."""

from __future__ import annotations

import torch
from torch import nn

from ..zoo import Arch
from .da3 import DepthAnything3
from .depth_anything import DepthAnything, build_model
from .vda import VideoDepthAnything, video_arch, video_model_from_image
from .zoedepth import ZoeDepth

Network = DepthAnything | ZoeDepth | VideoDepthAnything | DepthAnything3
ImageNetwork = DepthAnything | ZoeDepth  # what load_model returns: the single-image V1/V2 and V1 metric networks


def build_network(arch: Arch, device: torch.device | str | None = None) -> Network:
    """The untrained network for ``arch`` (random initialisation, eval mode): :class:`DepthAnything3` for DA3
    architectures, :class:`ZoeDepth` when ``arch.zoe`` is set, :class:`VideoDepthAnything` for video
    (``temporal``) architectures, else :class:`DepthAnything`. Build it under ``torch.device("meta")`` to count
    parameters or list keys."""
    model: nn.Module
    if arch.is_da3:
        model = DepthAnything3(arch)
    elif arch.zoe is not None:
        model = ZoeDepth(arch)
    elif arch.temporal is not None:
        model = VideoDepthAnything(arch)
    else:
        model = DepthAnything(arch)
    if device is not None:
        model = model.to(device)
    return model.eval()  # type: ignore[return-value]


__all__ = ["DepthAnything", "DepthAnything3", "ImageNetwork", "Network", "VideoDepthAnything", "ZoeDepth", "build_model",
           "build_network", "video_arch", "video_model_from_image"]
