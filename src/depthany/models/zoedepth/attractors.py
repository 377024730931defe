"""Attractor layers of the ZoeDepth head: move the bin centres towards predicted attractor points.

For attractor points a_k and centres c_j (per pixel), the shift of c_j aggregates ``f(a_k - c_j)`` over k (mean
or sum), with the inverse attractor ``f(d) = d / (1 + alpha * d**gamma)`` or the exponential one
``f(d) = exp(-alpha * |d|**gamma) * d``. Attribute names follow the official checkpoints (``attractors.0._net.0``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...zoo import ZoeConfig

ATTRACTOR_HIDDEN = 128  # hidden width of every attractor MLP
POINT_EPS = 1e-3  # added to the normed attractor's ReLU outputs


def inverse_attraction(dx: Tensor, alpha: float, gamma: int) -> Tensor:
    """``dx / (1 + alpha * dx**gamma)``, dx = attractor - centre (the paper's default)."""
    return dx.div(1 + alpha * dx.pow(gamma))


def exponential_attraction(dx: Tensor, alpha: float, gamma: int) -> Tensor:
    """``exp(-alpha * |dx|**gamma) * dx``."""
    return torch.exp(-alpha * dx.abs().pow(gamma)) * dx


def attract(points: Tensor, centres: Tensor, cfg: ZoeConfig) -> Tensor:
    """New centres: ``centres + aggregate_k f(points_k - centres)``.

    Args:
        points: (B, K, h, w) attractor points.
        centres: (B, n_bins, h, w) bin centres, in the same units as ``points``.
        cfg: attractor type, kind, alpha and gamma.

    Returns:
        (B, n_bins, h, w).
    """
    f = inverse_attraction if cfg.attractor_type == "inv" else exponential_attraction
    shifts = f(points.unsqueeze(2) - centres.unsqueeze(1), cfg.attractor_alpha, cfg.attractor_gamma)
    delta = shifts.mean(dim=1) if cfg.attractor_kind == "mean" else shifts.sum(dim=1)
    return centres + delta


class _Attractor(nn.Module):
    def __init__(self, in_features: int, n_out: int, final: nn.Module, cfg: ZoeConfig, max_depth: float) -> None:
        super().__init__()
        self.cfg, self.max_depth = cfg, max_depth
        self._net = nn.Sequential(nn.Conv2d(in_features, ATTRACTOR_HIDDEN, 1), nn.ReLU(),
                                  nn.Conv2d(ATTRACTOR_HIDDEN, n_out, 1), final)

    def _inputs(self, x: Tensor, prev_centres: Tensor, prev_embedding: Tensor) -> tuple[Tensor, Tensor]:
        """(MLP output, previous centres resized to this level); both bilinear, align_corners=True."""
        x = x + F.interpolate(prev_embedding, x.shape[-2:], mode="bilinear", align_corners=True)
        out = self._net(x)
        return out, F.interpolate(prev_centres, out.shape[-2:], mode="bilinear", align_corners=True)


class AttractorNormed(_Attractor):
    """Attractors on normalised centres in [0, 1] (``bin_centers_type`` "normed" / "hybrid2").

    The MLP gives two ReLU channels per attractor; the point is the first of the pair plus 1e-3 (the official
    layer computes a pair normalisation and then discards it, so the second channel is never used).
    """

    def __init__(self, in_features: int, n_attractors: int, cfg: ZoeConfig, max_depth: float) -> None:
        super().__init__(in_features, 2 * n_attractors, nn.ReLU(), cfg, max_depth)

    def forward(self, x: Tensor, prev_centres: Tensor, prev_embedding: Tensor) -> tuple[Tensor, Tensor]:
        """Args: x (B, E, h, w) bin embedding; prev_centres (B, n_bins, h', w') normalised; prev_embedding
        (B, E, h', w'). Returns (normalised centres, unsorted, for the next level; centres in metres, sorted
        along dim 1 and clipped to [min_depth, max_depth]), both (B, n_bins, h, w)."""
        out, centres = self._inputs(x, prev_centres, prev_embedding)
        b, _, h, w = out.shape
        points = (out + POINT_EPS).view(b, -1, 2, h, w)[:, :, 0]
        normed = attract(points, centres, self.cfg)
        lo = self.cfg.min_depth
        metres = torch.sort((self.max_depth - lo) * normed + lo, dim=1).values
        return normed, torch.clip(metres, lo, self.max_depth)


class AttractorSoftplus(_Attractor):
    """Attractors on unbounded centres in metres (``bin_centers_type`` "softplus" / "hybrid1"): one softplus
    channel per attractor point; the centres are neither sorted nor clipped."""

    def __init__(self, in_features: int, n_attractors: int, cfg: ZoeConfig, max_depth: float) -> None:
        super().__init__(in_features, n_attractors, nn.Softplus(), cfg, max_depth)

    def forward(self, x: Tensor, prev_centres: Tensor, prev_embedding: Tensor) -> tuple[Tensor, Tensor]:
        """As :meth:`AttractorNormed.forward`; both returned tensors are the same centres in metres."""
        points, centres = self._inputs(x, prev_centres, prev_embedding)
        new = attract(points, centres, self.cfg)
        return new, new
