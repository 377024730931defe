"""Depth Anything = DINOv2 encoder (``pretrained``) + DPT head (``depth_head``). Tensors in, tensors out.

No image IO, no resizing of the input and no device choice happen here: see :mod:`depthany.transforms` and
:mod:`depthany.predictor`. The two top-level attribute names are the official state-dict prefixes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import Arch
from .dpt import DPTHead
from .vit import DinoVisionTransformer


class DepthAnything(nn.Module):
    """The network for every zoo entry (V1, V2, V2 metric, any encoder size).

    ``forward`` takes a normalised (B, 3, H, W) float tensor with H and W multiples of 14 and returns (B, H, W):
    relative disparity (>= 0, unknown scale and shift) for relative heads, depth in metres in
    (0, max_depth) for metric heads.
    """

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        if arch.is_da3:
            raise ValueError(f"{arch.head!r} heads are Depth Anything 3 models; build them with "
                             "depthany.models.build_network (class DepthAnything3)")
        self.arch = arch
        self.pretrained = DinoVisionTransformer(arch.encoder)
        self.depth_head = DPTHead.from_arch(arch)

    @property
    def patch_size(self) -> int:
        return self.arch.encoder.patch_size

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = h // self.patch_size, w // self.patch_size
        tokens = self.pretrained.get_intermediate_layers(x, self.arch.layers)
        out = self.depth_head(tokens, ph, pw)
        if self.arch.head == "metric":
            return (out * self.arch.max_depth).squeeze(1)
        if self.arch.family == "v1":
            # V1 resizes to the input size (a same-size align_corners copy) before its ReLU.
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=True)
        return F.relu(out).squeeze(1)

    def encoder_features(self, x: Tensor) -> Tensor:
        """Final-norm patch tokens of the encoder, (B, ph*pw, D): the feature-alignment target."""
        return self.pretrained.forward_features(x)[:, 1:]

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(encoder parameters, decoder parameters), for per-group learning rates."""
        return list(self.pretrained.parameters()), list(self.depth_head.parameters())


def build_model(arch: Arch, device: torch.device | str | None = None) -> DepthAnything:
    """Construct an untrained model (random initialisation) in eval mode."""
    model = DepthAnything(arch)
    if device is not None:
        model = model.to(device)
    return model.eval()
