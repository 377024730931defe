"""Depth Anything 3 heads: the DA3Mono/DA3Metric DPT with its sky head, the any-view DualDPT, the Giant's
3D-Gaussian head (weights only).

Attribute names follow the official checkpoints (``model.head.scratch.sky_output_conv2.0``,
``model.head.scratch.refinenet1_aux``, ``model.head.scratch.output_conv2_aux.3.2``, ...), so official state
dicts load with ``strict=True`` and no renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...zoo import Arch
from ..dpt import (
    HEAD_HIDDEN,
    DPTHead,
    Exp,
    FeatureFusionBlock,
    Scratch,
    output_conv2,
    reassemble_layers,
    tokens_to_map,
)

UV_EMBED_RATIO = 0.1  # scale of the UV positional embedding added to DualDPT / GS-DPT feature maps
UV_EMBED_OMEGA = 100.0  # frequency base of that embedding
AUX_LEVELS = 4  # DualDPT auxiliary pyramid levels (each with its own pre-head; only the last is used)
AUX_PRE_CONVS = 5  # 3x3 convs in each auxiliary pre-head: f -> f/2 -> f -> f/2 -> f -> f/2
RAY_CHANNELS = 6  # ray origin + direction; a seventh channel is the ray confidence
GAUSSIAN_CHANNELS = 38  # GS-DPT raw Gaussian parameters (DA3-Giant)


def expp1(x: Tensor) -> Tensor:
    """``exp(x) + 1``: DA3's confidence activation (confidences are >= 1)."""
    return torch.exp(x) + 1


class SkyScratch(Scratch):
    """:class:`~depthany.models.dpt.Scratch` plus the sky branch ``sky_output_conv2`` (3x3 conv, ReLU, 1x1 conv,
    ReLU)."""

    def __init__(self, features: int, out_channels: tuple[int, int, int, int], final: nn.Module | None,
                 out_dim: int = 1, refine4_skip: bool = True) -> None:
        super().__init__(features, out_channels, final, out_dim, refine4_skip)
        self.sky_output_conv2 = output_conv2(features, 1, nn.ReLU())


class SkyDPTHead(DPTHead):
    """DA3Mono / DA3Metric head: the DPT head with an ``exp`` depth output, no ``refinenet4.resConfUnit1``, and a
    sky branch sharing the neck: ``scratch.sky_output_conv2`` = 3x3 conv, ReLU, 1x1 conv, ReLU.

    Output: depth (B, 14*ph, 14*pw) > 0 and sky (B, 14*ph, 14*pw) >= 0 (a ReLU score, not a probability).
    """

    scratch_class = SkyScratch
    scratch: SkyScratch

    def __init__(self, arch: Arch) -> None:
        super().__init__(arch.encoder.embed_dim, arch.features, arch.out_channels, arch.encoder.patch_size,
                         final=Exp(), refine4_skip=False)

    def forward(self, tokens: list[Tensor], ph: int, pw: int) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        feat = self.neck(tokens, ph, pw)
        return self.scratch.output_conv2(feat)[:, 0], self.scratch.sky_output_conv2(feat)[:, 0]


def uv_embedding(h: int, w: int, channels: int, aspect: float, dtype: torch.dtype = torch.float32,
                 device: torch.device | None = None) -> Tensor:
    """DA3's UV positional embedding for an h x w map: (channels, h, w), already scaled by 0.1.

    Pixel centres span the image plane normalised by its diagonal: x in +-aspect/diag * (w-1)/w, y in
    +-1/diag * (h-1)/h with diag = sqrt(aspect^2 + 1); each coordinate gets channels/2 sin/cos features with
    frequencies 100^(-k/(channels/4)) (x first, then y; sin block, then cos block).
    """
    diag = (aspect**2 + 1.0) ** 0.5
    span_x, span_y = aspect / diag, 1.0 / diag
    xs = torch.linspace(-span_x * (w - 1) / w, span_x * (w - 1) / w, steps=w, dtype=dtype, device=device)
    ys = torch.linspace(-span_y * (h - 1) / h, span_y * (h - 1) / h, steps=h, dtype=dtype, device=device)
    quarter = channels // 4
    omega = torch.arange(quarter, dtype=torch.float32, device=device) / (channels / 4.0)
    omega = 1.0 / UV_EMBED_OMEGA**omega

    def sincos(coord: Tensor) -> Tensor:
        angle = coord.reshape(-1, 1) * omega
        return torch.cat((angle.sin(), angle.cos()), dim=1)

    grid_x = xs.expand(h, w).reshape(-1)
    grid_y = ys[:, None].expand(h, w).reshape(-1)
    emb = torch.cat((sincos(grid_x), sincos(grid_y)), dim=-1).float() * UV_EMBED_RATIO
    return emb.reshape(h, w, channels).permute(2, 0, 1)


def add_uv(x: Tensor, aspect: float) -> Tensor:
    """``x`` (B, C, h, w) plus its UV embedding."""
    return x + uv_embedding(x.shape[-2], x.shape[-1], x.shape[1], aspect, x.dtype, x.device)[None]


class Permute(nn.Module):
    """``x.permute(*dims)`` (keeps Sequential indices as in the checkpoints)."""

    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(*self.dims)


def _aux_pre_head(f: int) -> nn.Sequential:
    widths = [f] + [f // 2 if k % 2 == 0 else f for k in range(AUX_PRE_CONVS)]
    return nn.Sequential(*(nn.Conv2d(widths[k], widths[k + 1], 3, padding=1) for k in range(AUX_PRE_CONVS)))


def _aux_out_head(f: int, norm: nn.LayerNorm) -> nn.Sequential:
    """3x3 conv, LayerNorm over channels (eps 1e-5), ReLU, 1x1 conv to ray (6) + confidence (1)."""
    return nn.Sequential(nn.Conv2d(f // 2, HEAD_HIDDEN, 3, padding=1), Permute(0, 2, 3, 1), norm,
                         Permute(0, 3, 1, 2), nn.ReLU(), nn.Conv2d(HEAD_HIDDEN, RAY_CHANNELS + 1, 1))


class DualScratch(Scratch):
    """:class:`~depthany.models.dpt.Scratch` (2 output channels, no activation) plus the auxiliary ray chain."""

    def __init__(self, features: int, out_channels: tuple[int, int, int, int]) -> None:
        super().__init__(features, out_channels, None, out_dim=2, refine4_skip=False)
        self.refinenet1_aux = FeatureFusionBlock(features)
        self.refinenet2_aux = FeatureFusionBlock(features)
        self.refinenet3_aux = FeatureFusionBlock(features)
        self.refinenet4_aux = FeatureFusionBlock(features, skip=False)
        self.output_conv1_aux = nn.ModuleList(_aux_pre_head(features) for _ in range(AUX_LEVELS))
        shared_norm = nn.LayerNorm(HEAD_HIDDEN)
        self.output_conv2_aux = nn.ModuleList(_aux_out_head(features, shared_norm) for _ in range(AUX_LEVELS))


class DualDPTHead(nn.Module):
    """Any-view head: depth + confidence, and an auxiliary ray branch with its own fusion chain.

    Tokens are LayerNormed (``norm``, eps 1e-5) before the projections; a UV embedding is added after each
    projection and to the upsampled neck. The main branch ends in 2 channels: depth = exp(c0), confidence =
    exp(c1) + 1. The auxiliary branch (``refinenet*_aux``, ``output_conv1_aux``, ``output_conv2_aux``) predicts
    rays at the finest fused level (8 x the patch grid); the official forward discards them when the camera
    decoder exists, so they are computed only on request.

    The four ``output_conv2_aux`` heads share one LayerNorm module (the official code builds it once and puts it
    in all four): its state-dict entries ``output_conv2_aux.{0,1,2,3}.2.*`` are one tensor, and safetensors'
    ``save_model`` keeps only ``output_conv2_aux.0.2.*`` in the published files (see
    :func:`depthany.weights.load.shared_key_groups`).
    """

    def __init__(self, dim_in: int, features: int, out_channels: tuple[int, int, int, int], patch_size: int = 14
                 ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.norm = nn.LayerNorm(dim_in)
        self.projects, self.resize_layers = reassemble_layers(dim_in, out_channels)
        self.scratch = DualScratch(features, out_channels)

    def levels(self, tokens: list[Tensor], ph: int, pw: int) -> list[Tensor]:
        aspect = pw / ph
        out = []
        for i, t in enumerate(tokens):
            x = self.projects[i](tokens_to_map(self.norm(t), ph, pw))
            out.append(self.resize_layers[i](add_uv(x, aspect)))
        return out

    def forward(self, tokens: list[Tensor], ph: int, pw: int, rays: bool = False) -> dict[str, Tensor]:
        """Four (B, ph*pw, dim_in) token tensors -> ``depth`` and ``depth_conf`` (B, 14ph, 14pw); with ``rays``
        also ``ray`` (B, 8ph, 8pw, 6) and ``ray_conf`` (B, 8ph, 8pw)."""
        s, aspect = self.scratch, pw / ph
        levels = self.levels(tokens, ph, pw)
        fused = s.output_conv1(s.fuse(levels))
        fused = F.interpolate(fused, (ph * self.patch_size, pw * self.patch_size), mode="bilinear",
                              align_corners=True)
        logits = s.output_conv2(add_uv(fused, aspect))
        out = {"depth": torch.exp(logits[:, 0]), "depth_conf": expp1(logits[:, 1])}
        if rays:
            aux = self.fuse_aux(levels)
            ray = s.output_conv2_aux[-1](add_uv(s.output_conv1_aux[-1](aux), aspect)).permute(0, 2, 3, 1)
            out["ray"], out["ray_conf"] = ray[..., :RAY_CHANNELS], expp1(ray[..., RAY_CHANNELS])
        return out

    def fuse_aux(self, levels: list[Tensor]) -> Tensor:
        """The auxiliary fusion chain (same level convs, its own refinenets): (B, features, 8ph, 8pw)."""
        s = self.scratch
        l1, l2, l3, l4 = s.layer1_rn(levels[0]), s.layer2_rn(levels[1]), s.layer3_rn(levels[2]), \
            s.layer4_rn(levels[3])
        path = s.refinenet4_aux(l4, size=l3.shape[2:])
        path = s.refinenet3_aux(path, l3, size=l2.shape[2:])
        path = s.refinenet2_aux(path, l2, size=l1.shape[2:])
        return s.refinenet1_aux(path, l1)


class GaussianHeadWeights(DPTHead):
    """DA3-Giant's GS-DPT head (3D Gaussian parameters): present in the checkpoint, loaded, never run here.

    A DPT head (no ``refinenet4.resConfUnit1``, 38 output channels) plus ``images_merger``, three 3x3 convs with
    GELUs (3 -> f/8 -> f/4 -> f/2) that inject the image into the neck.
    """

    def __init__(self, dim_in: int, features: int, out_channels: tuple[int, int, int, int], patch_size: int = 14
                 ) -> None:
        super().__init__(dim_in, features, out_channels, patch_size, out_dim=GAUSSIAN_CHANNELS, refine4_skip=False)
        m = features // 2
        self.images_merger = nn.Sequential(nn.Conv2d(3, m // 4, 3, padding=1), nn.GELU(),
                                           nn.Conv2d(m // 4, m // 2, 3, padding=1), nn.GELU(),
                                           nn.Conv2d(m // 2, m, 3, padding=1), nn.GELU())

    def forward(self, tokens: list[Tensor], ph: int, pw: int) -> Tensor:
        raise NotImplementedError("the 3D Gaussian head is loaded for strict checkpoints but not implemented")

