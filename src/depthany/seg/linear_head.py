"""DINOv2's linear segmentation head (``BNHead``, dinov2/eval/segmentation/models/decode_heads/linear_head.py,
facebookresearch/dinov2): the selected feature maps resized to the first one's size (bilinear,
``align_corners=False``) and concatenated, BatchNorm (SyncBN there), then mmseg's ``conv_seg`` 1x1 conv to the
class logits. DINOv2's configs use ``dropout_ratio=0``, so there is no dropout. The logits stay at patch
resolution (1/14); they are upsampled bilinearly to the image (``predict``) or to the label (the loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LinearHead(nn.Module):
    """Four (B, D, h, w) maps -> (B, C, h, w) class logits from the maps at ``levels``."""

    def __init__(self, embed_dim: int, num_classes: int, levels: tuple[int, ...] = (0, 1, 2, 3)) -> None:
        super().__init__()
        self.levels = tuple(levels)
        channels = embed_dim * len(self.levels)
        self.bn = nn.BatchNorm2d(channels)
        self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
        nn.init.normal_(self.conv_seg.weight, std=0.01)  # mmseg BaseDecodeHead.init_weights
        assert self.conv_seg.bias is not None
        nn.init.zeros_(self.conv_seg.bias)

    def forward(self, feats: list[Tensor]) -> Tensor:
        x = [feats[i] for i in self.levels]
        size = x[0].shape[-2:]
        x = [t if t.shape[-2:] == size else F.interpolate(t, size=size, mode="bilinear", align_corners=False)
             for t in x]
        return self.conv_seg(self.bn(torch.cat(x, dim=1)))
