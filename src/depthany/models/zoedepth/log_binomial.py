"""The conditional log-binomial output of the ZoeDepth head: per-pixel probabilities over the depth bins.

Attribute names follow the official checkpoints, including the two buffers the released files store
(``conditional_log_binomial.log_binomial_transform.k_idx`` and ``.K_minus_1``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

PROB_EPS = 1e-4  # added to both halves of the p and t pairs, and the clamp floor of p and 1 - p
STIRLING_EPS = 1e-7


def log_binomial_coefficient(n: Tensor, k: Tensor, eps: float = STIRLING_EPS) -> Tensor:
    """Stirling's approximation of log C(n, k): ``n log n - k log k - (n - k) log(n - k + eps)``, with n and k
    each shifted by ``eps`` first (as the official code does)."""
    n, k = n + eps, k + eps
    return n * torch.log(n) - k * torch.log(k) - (n - k) * torch.log(n - k + eps)


class LogBinomial(nn.Module):
    """Softmax over k of ``(log C(K-1, k) + k log p + (K-1-k) log(1-p)) / t``: a binomial-shaped distribution over
    K bins with mode near p (K-1) and a temperature t."""

    k_idx: Tensor
    K_minus_1: Tensor

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.K = n_classes
        # Stored in the official checkpoints: int64 bin indices and float32 K - 1. Made on the CPU and moved to the
        # default device (on ``meta``, a shape-only build, torch.tensor's first use costs ~0.6 s of imports).
        cpu, to = torch.device("cpu"), torch.get_default_device()
        self.register_buffer("k_idx", torch.arange(0, n_classes, device=cpu).view(1, -1, 1, 1).to(to))
        self.register_buffer("K_minus_1", torch.tensor([float(n_classes - 1)], device=cpu).view(1, -1, 1, 1).to(to))

    def forward(self, p: Tensor, t: Tensor) -> Tensor:
        """p (B, h, w) in (0, 1), t (B, 1, h, w) > 0 -> (B, K, h, w) probabilities summing to 1 over dim 1."""
        p = p.unsqueeze(1)
        one_minus_p = torch.clamp(1 - p, PROB_EPS, 1.0)
        p = torch.clamp(p, PROB_EPS, 1.0)
        k = self.k_idx
        y = log_binomial_coefficient(self.K_minus_1, k) + k * torch.log(p) + (self.K - 1 - k) * torch.log(one_minus_p)
        return torch.softmax(y / t, dim=1)


class ConditionalLogBinomial(nn.Module):
    """Per-pixel MLP on [decoder features, bin embedding] -> (p, t) -> :class:`LogBinomial` probabilities.

    p and t each come from a pair of softplus outputs (a, b) as (a + eps) / (a + b + 2 eps); t is then mapped
    linearly onto [min_temp, max_temp].
    """

    def __init__(self, in_features: int, condition_dim: int, n_classes: int, min_temp: float,
                 max_temp: float) -> None:
        super().__init__()
        self.min_temp, self.max_temp = min_temp, max_temp
        self.log_binomial_transform = LogBinomial(n_classes)
        bottleneck = (in_features + condition_dim) // 2
        self.mlp = nn.Sequential(nn.Conv2d(in_features + condition_dim, bottleneck, 1), nn.GELU(),
                                 nn.Conv2d(bottleneck, 4, 1), nn.Softplus())

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x (B, C, h, w), cond (B, E, h, w) -> (B, n_classes, h, w) probabilities."""
        pt = self.mlp(torch.cat((x, cond), dim=1)) + PROB_EPS
        p = pt[:, 0] / (pt[:, 0] + pt[:, 1])
        t = (pt[:, 2] / (pt[:, 2] + pt[:, 3])).unsqueeze(1)
        t = (self.max_temp - self.min_temp) * t + self.min_temp
        return self.log_binomial_transform(p, t)
