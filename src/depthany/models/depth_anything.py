"""Depth Anything = DINOv2 encoder (``pretrained``) + DPT head (``depth_head``). Tensors in, tensors out.

No image IO, no resizing of the input and no device choice happen here: see :mod:`depthany.transforms` and
:mod:`depthany.predictor`. The two top-level attribute names are the official state-dict prefixes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import Arch
from .dpt import DPTFeatures, DPTHead
from .vit import DinoVisionTransformer


class DepthAnything(nn.Module):
    """The network for every zoo entry (V1, V2, V2 metric, any encoder size).

    ``forward`` takes a normalised (B, 3, H, W) float tensor with H and W multiples of 14 and returns (B, H, W):
    relative disparity (>= 0, unknown scale and shift) for relative heads, depth in metres in
    (0, max_depth) for metric heads.
    """

    def __init__(self, arch: Arch) -> None:
        if arch.zoe is not None:
            raise ValueError("a ZoeDepth (V1 metric) arch: build it with depthany.models.build_network, which "
                             "makes a ZoeDepth around a relative V1 DepthAnything")
        super().__init__()
        if arch.temporal is not None:
            raise ValueError("a Video Depth Anything architecture: build it with depthany.models.VideoDepthAnything")
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
        ph, pw = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        tokens = self.pretrained.get_intermediate_layers(x, self.arch.layers)
        return self._output(self.depth_head(tokens, ph, pw), x.shape[-2:])

    def forward_features(self, x: Tensor) -> tuple[Tensor, DPTFeatures]:
        """The forward output, (B, H, W), and the decoder's intermediate maps (:class:`DPTFeatures`)."""
        ph, pw = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        tokens = self.pretrained.get_intermediate_layers(x, self.arch.layers)
        feats = self.depth_head.decode(tokens, ph, pw)
        return self._output(feats.out, x.shape[-2:]), feats

    def _output(self, out: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
        h, w = size
        if self.arch.bounded:
            max_depth = self.arch.max_depth
            assert max_depth is not None  # Arch requires it for metric heads
            return (out * max_depth).squeeze(1)
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
