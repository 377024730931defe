"""ZoeDepth on a Depth Anything core: the V1 metric models (``metric_depth/`` of the V1 repository).

Module and parameter names follow the official checkpoints, so the released ``depth_anything_metric_depth_*.pt``
files load with ``strict=True``: ``core.core.pretrained.*`` and ``core.core.depth_head.*`` (the relative V1 model
inside the official ``DepthAnythingCore``), ``conv2``, ``seed_bin_regressor``, ``seed_projector``,
``projectors.{0-3}``, ``attractors.{0-3}``, ``conditional_log_binomial``.

The official core reads its features with forward hooks; here they are returned explicitly by
:meth:`DepthAnything.forward_features`. Resizing and normalising the image (done inside the official core) are
not part of this module: see :mod:`depthany.zoe_pipeline`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...zoo import Arch, ZoeConfig
from ..depth_anything import DepthAnything
from ..dpt import HEAD_HIDDEN
from .attractors import AttractorNormed, AttractorSoftplus
from .bins import Projector, SeedBinRegressorNormed, SeedBinRegressorSoftplus
from .log_binomial import ConditionalLogBinomial


def core_arch(arch: Arch) -> Arch:
    """The relative V1 Depth Anything inside a ZoeDepth arch (same encoder, taps and decoder widths)."""
    return dataclasses.replace(arch, head="relative", max_depth=None, family="v1", zoe=None)


class ZoeOutput(NamedTuple):
    """Everything one forward pass computes, at the network input size (h, w).

    ``depth`` (B, 1, h, w) metres; ``bin_centers`` (B, n_bins, h, w) metres; ``probs`` (B, n_bins, h, w)
    summing to 1 over dim 1; ``rel_depth`` (B, h, w) the core's relative disparity.
    """

    depth: Tensor
    bin_centers: Tensor
    probs: Tensor
    rel_depth: Tensor


class DepthAnythingCore(nn.Module):
    """Holds the relative model under the official name ``core`` (keys ``core.core.*``)."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.core = DepthAnything(core_arch(arch))


class ZoeDepth(nn.Module):
    """The ZoeDepth metric head over a relative Depth Anything; any zoo encoder size.

    ``forward`` takes a normalised (B, 3, h, w) tensor, h and w multiples of 14 (the official models run at
    392x518), and returns (B, h, w) depth in metres: the expectation of the bin centres under the
    log-binomial probabilities. With F the decoder width (256 for ViT-L) and E ``bin_embedding_dim``:

    * ``conv2`` (1x1, F -> F) on ``layer4_rn`` gives the bottleneck; the seed regressor gives ``n_bins``
      centres and the seed projector an E-channel embedding at that (coarsest) resolution;
    * per decoder level (refinenet4 .. refinenet1) a projector embeds the features and an attractor layer moves
      the previous level's centres (both inputs resized bilinearly, align_corners=True);
    * the 32-channel activation of ``output_conv2`` plus the relative depth, and the last embedding, feed the
      conditional log-binomial; the last centres are resized to (h, w) and averaged under its probabilities.
    """

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        if arch.zoe is None or arch.max_depth is None:
            raise ValueError("ZoeDepth needs an arch with a ZoeConfig (zoe) and max_depth")
        self.arch = arch
        cfg: ZoeConfig = arch.zoe
        self.cfg = cfg
        f, e = arch.features, cfg.bin_embedding_dim
        self.core = DepthAnythingCore(arch)
        self.conv2 = nn.Conv2d(f, f, 1)
        self.seed_bin_regressor: nn.Module = (
            SeedBinRegressorNormed(f, cfg.n_bins, cfg.min_depth, arch.max_depth) if cfg.normed_seed
            else SeedBinRegressorSoftplus(f, cfg.n_bins))
        self.seed_projector = Projector(f, e)
        self.projectors = nn.ModuleList(Projector(f, e) for _ in range(4))
        attractor = AttractorNormed if cfg.normed_attractors else AttractorSoftplus
        self.attractors = nn.ModuleList(attractor(e, n, cfg, arch.max_depth) for n in cfg.n_attractors)
        self.conditional_log_binomial = ConditionalLogBinomial(HEAD_HIDDEN + 1, e, cfg.n_bins, cfg.min_temp,
                                                               cfg.max_temp)

    @property
    def patch_size(self) -> int:
        return self.arch.encoder.patch_size

    @property
    def relative(self) -> DepthAnything:
        """The relative V1 model inside (``core.core``)."""
        return self.core.core

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, h, w) normalised -> (B, h, w) depth in metres."""
        return self.forward_full(x).depth.squeeze(1)

    def forward_full(self, x: Tensor) -> ZoeOutput:
        """(B, 3, h, w) normalised -> :class:`ZoeOutput` (depth, bin centres, probabilities, relative depth)."""
        cfg, max_depth = self.cfg, float(self.arch.max_depth or 0.0)
        rel_depth, feats = self.relative.forward_features(x)
        bottleneck = self.conv2(feats.layer4_rn)
        seed = self.seed_bin_regressor(bottleneck)
        if cfg.normed_attractors:  # attractors work on [0, 1] centres
            seed = (seed - cfg.min_depth) / (max_depth - cfg.min_depth)
        prev_centres, prev_embedding = seed, self.seed_projector(bottleneck)
        centres = seed
        for projector, attractor, level in zip(self.projectors, self.attractors, feats.refined):
            embedding = projector(level)
            prev_centres, centres = attractor(embedding, prev_centres, prev_embedding)
            prev_embedding = embedding
        last = feats.hidden
        rel = F.interpolate(rel_depth.unsqueeze(1), size=last.shape[2:], mode="bilinear", align_corners=True)
        cond = F.interpolate(prev_embedding, last.shape[-2:], mode="bilinear", align_corners=True)
        probs = self.conditional_log_binomial(torch.cat([last, rel], dim=1), cond)
        centres = F.interpolate(centres, probs.shape[-2:], mode="bilinear", align_corners=True)
        depth = torch.sum(probs * centres, dim=1, keepdim=True)
        return ZoeOutput(depth, centres, probs, rel_depth)

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(encoder parameters, everything else), for per-group learning rates."""
        encoder = list(self.relative.pretrained.parameters())
        ids = {id(p) for p in encoder}
        return encoder, [p for p in self.parameters() if id(p) not in ids]
