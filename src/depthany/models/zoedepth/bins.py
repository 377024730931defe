"""Seed bin regressors and the projector MLP of the ZoeDepth head.

Attribute names follow the official checkpoints (``seed_bin_regressor._net.0``, ``seed_projector._net.2``, ...)
so the released V1 metric files load with ``strict=True``. All layers are 1x1 convolutions: per-pixel MLPs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SEED_HIDDEN = 256  # hidden width of the seed regressor MLP (official default, used by both released files)
PROJECTOR_HIDDEN = 128  # hidden width of every projector MLP
WIDTH_EPS = 1e-3  # added to the normed regressor's ReLU outputs before normalising them into bin widths


class SeedBinRegressorNormed(nn.Module):
    """Bin centres bounded to [min_depth, max_depth] (``bin_centers_type="normed"``).

    Per pixel, ``n_bins`` positive widths (ReLU + 1e-3) are normalised to sum to one, scaled to the depth range,
    stacked from ``min_depth`` and cumulated into edges; the centres are the edge midpoints.
    """

    def __init__(self, in_features: int, n_bins: int, min_depth: float, max_depth: float) -> None:
        super().__init__()
        self.min_depth, self.max_depth = min_depth, max_depth
        self._net = nn.Sequential(nn.Conv2d(in_features, SEED_HIDDEN, 1), nn.ReLU(),
                                  nn.Conv2d(SEED_HIDDEN, n_bins, 1), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) features -> (B, n_bins, h, w) bin centres in metres, increasing along dim 1."""
        widths = self._net(x) + WIDTH_EPS
        widths = (self.max_depth - self.min_depth) * (widths / widths.sum(dim=1, keepdim=True))
        edges = torch.cumsum(F.pad(widths, (0, 0, 0, 0, 1, 0), value=self.min_depth), dim=1)
        return 0.5 * (edges[:, :-1] + edges[:, 1:])


class SeedBinRegressorSoftplus(nn.Module):
    """Unbounded bin centres: softplus of a per-pixel MLP (``bin_centers_type="softplus"``, the released files)."""

    def __init__(self, in_features: int, n_bins: int) -> None:
        super().__init__()
        self._net = nn.Sequential(nn.Conv2d(in_features, SEED_HIDDEN, 1), nn.ReLU(),
                                  nn.Conv2d(SEED_HIDDEN, n_bins, 1), nn.Softplus())

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) features -> (B, n_bins, h, w) positive bin centres in metres (not sorted)."""
        return self._net(x)


class Projector(nn.Module):
    """Per-pixel MLP (1x1 conv, ReLU, 1x1 conv) from a decoder feature map to the bin embedding."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self._net = nn.Sequential(nn.Conv2d(in_features, PROJECTOR_HIDDEN, 1), nn.ReLU(),
                                  nn.Conv2d(PROJECTOR_HIDDEN, out_features, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, out_features, h, w)."""
        return self._net(x)
