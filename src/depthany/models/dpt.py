"""DPT decoder ("depth head") of Depth Anything.

Attribute names follow the official checkpoints (``depth_head.scratch.refinenet1.resConfUnit1.conv1``, ...) so
official state dicts load with ``strict=True`` and no renaming.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import Arch

HEAD_HIDDEN = 32  # channels of output_conv2's first conv, identical in every released model


class ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x)))); the ReLU is not in-place, so the skip uses the un-activated x."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FeatureFusionBlock(nn.Module):
    """Fuse a decoder path with a skip feature, refine, upsample (bilinear, align_corners=True), 1x1 conv."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)  # unused in refinenet4 but present in checkpoints
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    """Container matching the official ``scratch`` namespace: per-level 3x3 convs, fusion blocks, output convs."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        f, c = arch.features, arch.out_channels
        self.layer1_rn = nn.Conv2d(c[0], f, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(c[1], f, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(c[2], f, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(c[3], f, 3, padding=1, bias=False)
        self.refinenet1 = FeatureFusionBlock(f)
        self.refinenet2 = FeatureFusionBlock(f)
        self.refinenet3 = FeatureFusionBlock(f)
        self.refinenet4 = FeatureFusionBlock(f)
        self.output_conv1 = nn.Conv2d(f, f // 2, 3, padding=1)
        final = nn.Sigmoid() if arch.bounded else nn.ReLU()
        layers: list[nn.Module] = [nn.Conv2d(f // 2, HEAD_HIDDEN, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(HEAD_HIDDEN, 1, 1), final]
        self.output_conv2 = nn.Sequential(*layers)


class DPTFeatures(NamedTuple):
    """The decoder's output and the intermediate maps the V1 metric (ZoeDepth) head reads.

    With F = ``features``: ``out`` (B, 1, 14ph, 14pw) head output; ``hidden`` (B, 32, 14ph, 14pw) the ReLU
    activation after ``output_conv2``'s first conv; ``layer4_rn`` (B, F, ceil(ph/2), ceil(pw/2));
    ``refined`` the outputs of refinenet4, 3, 2, 1 in that order: (B, F, ph, pw), (2ph, 2pw), (4ph, 4pw),
    (8ph, 8pw).
    """

    out: Tensor
    hidden: Tensor
    layer4_rn: Tensor
    refined: tuple[Tensor, Tensor, Tensor, Tensor]


class DPTHead(nn.Module):
    """Reassemble four token maps into a pyramid, fuse coarse to fine, predict one channel at input size.

    Input: four (B, ph*pw, D) patch-token tensors, shallowest first. Output: (B, 1, 14*ph, 14*pw) before
    the model-level activation scaling (ReLU output for relative heads, sigmoid in (0, 1) for metric heads).
    :meth:`decode` also returns the intermediate maps (:class:`DPTFeatures`).
    """

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        d, c = arch.encoder.embed_dim, arch.out_channels
        self.patch_size = arch.encoder.patch_size
        self.projects = nn.ModuleList(nn.Conv2d(d, ck, 1) for ck in c)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(c[0], c[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(c[1], c[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(c[3], c[3], kernel_size=3, stride=2, padding=1),
        ])
        self.scratch = Scratch(arch)

    def forward(self, tokens: list[Tensor], ph: int, pw: int) -> Tensor:
        before_output, _, _ = self._fuse(tokens, ph, pw)
        return self.scratch.output_conv2(before_output)

    def decode(self, tokens: list[Tensor], ph: int, pw: int) -> DPTFeatures:
        """The forward pass, keeping the maps the ZoeDepth head taps (see :class:`DPTFeatures`)."""
        before_output, l4, refined = self._fuse(tokens, ph, pw)
        conv, relu, proj, final = self.scratch.output_conv2
        hidden = relu(conv(before_output))
        return DPTFeatures(final(proj(hidden)), hidden, l4, refined)

    def reassemble(self, tokens: list[Tensor], ph: int, pw: int) -> list[Tensor]:
        """Four (B, ph*pw, D) token maps -> the pyramid: (B, c_k, s_k*ph, s_k*pw) for s = 4, 2, 1, 1/2."""
        levels = []
        for i, t in enumerate(tokens):
            x = t.transpose(1, 2).reshape(t.shape[0], t.shape[-1], ph, pw)
            levels.append(self.resize_layers[i](self.projects[i](x)))
        return levels

    def fuse_lower(self, path: Tensor, l2: Tensor, l1: Tensor, ph: int, pw: int
                   ) -> tuple[Tensor, Tensor, Tensor]:
        """``refinenet3``'s output and levels 2 and 1 (after ``layer*_rn``) -> (the input of ``output_conv2``,
        (B, features / 2, 14*ph, 14*pw); refinenet2's output; refinenet1's output)."""
        s = self.scratch
        r2 = s.refinenet2(path, l2, size=l1.shape[2:])
        r1 = s.refinenet1(r2, l1)
        out = s.output_conv1(r1)
        out = F.interpolate(out, (ph * self.patch_size, pw * self.patch_size), mode="bilinear", align_corners=True)
        return out, r2, r1

    def _fuse(self, tokens: list[Tensor], ph: int, pw: int) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Everything before ``output_conv2``: (its input at 14ph x 14pw, layer4_rn, refinenet4..1 outputs)."""
        s = self.scratch
        levels = self.reassemble(tokens, ph, pw)
        l1, l2, l3, l4 = s.layer1_rn(levels[0]), s.layer2_rn(levels[1]), s.layer3_rn(levels[2]), s.layer4_rn(levels[3])
        r4 = s.refinenet4(l4, size=l3.shape[2:])
        r3 = s.refinenet3(r4, l3, size=l2.shape[2:])
        out, r2, r1 = self.fuse_lower(r3, l2, l1, ph, pw)
        return out, l4, (r4, r3, r2, r1)
