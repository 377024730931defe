"""DPT decoder ("depth head") of Depth Anything, and the building blocks the DA3 heads share with it.

Attribute names follow the official checkpoints (``depth_head.scratch.refinenet1.resConfUnit1.conv1``, ...) so
official state dicts load with ``strict=True`` and no renaming.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..zoo import Arch

HEAD_HIDDEN = 32  # channels of output_conv2's first conv, identical in every released model


class Exp(nn.Module):
    """``exp``: Depth Anything 3's depth activation (the network predicts log-depth)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(x)


class ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x)))); the ReLU is not in-place, so the skip uses the un-activated x."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FeatureFusionBlock(nn.Module):
    """Fuse a decoder path with a skip feature, refine, upsample (bilinear, align_corners=True), 1x1 conv.

    ``skip=False`` builds no ``resConfUnit1`` (DA3's ``refinenet4``, which never receives a skip feature); V1/V2
    checkpoints store that unused unit, so their blocks all have it.
    """

    def __init__(self, features: int, skip: bool = True) -> None:
        super().__init__()
        if skip:
            self.resConfUnit1 = ResidualConvUnit(features)
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


def head_activation(arch: Arch) -> nn.Module:
    """``output_conv2``'s final activation for a V1/V2/VDA head: sigmoid for the bounded V2 metric head (scaled
    by ``max_depth`` outside), ReLU for every other head."""
    return nn.Sigmoid() if arch.bounded else nn.ReLU()


def output_conv2(features: int, out_dim: int = 1, final: nn.Module | None = None) -> nn.Sequential:
    """3x3 conv (features/2 -> 32), ReLU, 1x1 conv (32 -> out_dim)[, final activation (no parameters)]."""
    layers: list[nn.Module] = [nn.Conv2d(features // 2, HEAD_HIDDEN, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(HEAD_HIDDEN, out_dim, 1)]
    return nn.Sequential(*layers, *([final] if final is not None else []))


class Scratch(nn.Module):
    """Container matching the official ``scratch`` namespace: per-level 3x3 convs, fusion blocks, output convs.

    Args:
        features: decoder width.
        out_channels: widths of the four reassembled levels.
        final: activation appended to ``output_conv2`` (ReLU / Sigmoid for V1/V2, :class:`Exp` for DA3).
        out_dim: channels of the prediction.
        refine4_skip: whether ``refinenet4`` has its (unused) ``resConfUnit1``.
    """

    def __init__(self, features: int, out_channels: tuple[int, int, int, int], final: nn.Module | None,
                 out_dim: int = 1, refine4_skip: bool = True) -> None:
        super().__init__()
        f, c = features, out_channels
        self.layer1_rn = nn.Conv2d(c[0], f, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(c[1], f, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(c[2], f, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(c[3], f, 3, padding=1, bias=False)
        self.refinenet1 = FeatureFusionBlock(f)
        self.refinenet2 = FeatureFusionBlock(f)
        self.refinenet3 = FeatureFusionBlock(f)
        self.refinenet4 = FeatureFusionBlock(f, skip=refine4_skip)
        self.output_conv1 = nn.Conv2d(f, f // 2, 3, padding=1)
        self.output_conv2 = output_conv2(f, out_dim, final)

    def fuse(self, levels: list[Tensor]) -> Tensor:
        """Four reassembled levels (finest first) -> fused map at twice the finest level's size."""
        l1, l2, l3, l4 = self.layer1_rn(levels[0]), self.layer2_rn(levels[1]), self.layer3_rn(levels[2]), \
            self.layer4_rn(levels[3])
        path = self.refinenet4(l4, size=l3.shape[2:])
        path = self.refinenet3(path, l3, size=l2.shape[2:])
        path = self.refinenet2(path, l2, size=l1.shape[2:])
        return self.refinenet1(path, l1)


def reassemble_layers(dim_in: int, out_channels: tuple[int, int, int, int]) -> tuple[nn.ModuleList, nn.ModuleList]:
    """(``projects``, ``resize_layers``): 1x1 projections, then x4, x2, x1, /2 resampling of the patch grid."""
    c = out_channels
    projects = nn.ModuleList(nn.Conv2d(dim_in, ck, 1) for ck in c)
    resize = nn.ModuleList([
        nn.ConvTranspose2d(c[0], c[0], kernel_size=4, stride=4),
        nn.ConvTranspose2d(c[1], c[1], kernel_size=2, stride=2),
        nn.Identity(),
        nn.Conv2d(c[3], c[3], kernel_size=3, stride=2, padding=1),
    ])
    return projects, resize


def tokens_to_map(t: Tensor, ph: int, pw: int) -> Tensor:
    """(B, ph*pw, C) row-major patch tokens -> (B, C, ph, pw)."""
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[-1], ph, pw)


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
    """Reassemble four token maps into a pyramid, fuse coarse to fine, predict ``out_dim`` channels at input size.

    Input: four (B, ph*pw, dim_in) patch-token tensors, shallowest first. Output: (B, out_dim, 14*ph, 14*pw)
    after ``final`` (ReLU output for V1/V2 relative heads, sigmoid in (0, 1) for V2 metric heads, ``exp`` for
    DA3). :meth:`decode` also returns the intermediate maps (:class:`DPTFeatures`); Video Depth Anything runs
    :meth:`reassemble` and :meth:`fuse_lower` around its temporal modules.
    """

    scratch_class: type[Scratch] = Scratch

    def __init__(self, dim_in: int, features: int, out_channels: tuple[int, int, int, int], patch_size: int = 14,
                 final: nn.Module | None = None, out_dim: int = 1, refine4_skip: bool = True) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.projects, self.resize_layers = reassemble_layers(dim_in, out_channels)
        self.scratch = self.scratch_class(features, out_channels, final, out_dim, refine4_skip)

    @classmethod
    def from_arch(cls, arch: Arch) -> DPTHead:
        """The V1/V2 head for ``arch``: sigmoid for the bounded metric head, ReLU otherwise."""
        return cls(arch.encoder.embed_dim, arch.features, arch.out_channels, arch.encoder.patch_size,
                   head_activation(arch))

    def forward(self, tokens: list[Tensor], ph: int, pw: int) -> Tensor:
        return self.scratch.output_conv2(self.neck(tokens, ph, pw))

    def neck(self, tokens: list[Tensor], ph: int, pw: int) -> Tensor:
        """Everything before ``output_conv2``: (B, features/2, 14*ph, 14*pw)."""
        return self._fuse(tokens, ph, pw)[0]

    def decode(self, tokens: list[Tensor], ph: int, pw: int) -> DPTFeatures:
        """The forward pass, keeping the maps the ZoeDepth head taps (see :class:`DPTFeatures`)."""
        before_output, l4, refined = self._fuse(tokens, ph, pw)
        conv, relu, *rest = self.scratch.output_conv2
        hidden = relu(conv(before_output))
        out = hidden
        for layer in rest:
            out = layer(out)
        return DPTFeatures(out, hidden, l4, refined)

    def reassemble(self, tokens: list[Tensor], ph: int, pw: int) -> list[Tensor]:
        """Four (B, ph*pw, D) token maps -> the pyramid: (B, c_k, s_k*ph, s_k*pw) for s = 4, 2, 1, 1/2."""
        return [self.resize_layers[i](self.projects[i](tokens_to_map(t, ph, pw))) for i, t in enumerate(tokens)]

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

    def _fuse(self, tokens: list[Tensor], ph: int, pw: int
              ) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Everything before ``output_conv2``: (its input at 14ph x 14pw, layer4_rn, refinenet4..1 outputs)."""
        s = self.scratch
        levels = self.reassemble(tokens, ph, pw)
        l1, l2, l3, l4 = s.layer1_rn(levels[0]), s.layer2_rn(levels[1]), s.layer3_rn(levels[2]), s.layer4_rn(levels[3])
        r4 = s.refinenet4(l4, size=l3.shape[2:])
        r3 = s.refinenet3(r4, l3, size=l2.shape[2:])
        out, r2, r1 = self.fuse_lower(r3, l2, l1, ph, pw)
        return out, l4, (r4, r3, r2, r1)
