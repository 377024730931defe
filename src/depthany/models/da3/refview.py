"""Reference-view choice of Depth Anything 3's any-view encoder.

The encoder expresses every camera relative to one reference view (the one that receives the reference camera
token). With three or more views and no known poses, it picks that view from the class tokens entering block
``alt_start - 1``, moves it to the front (the others keep their order), runs the cross-view blocks, and restores
the input order of the outputs. ``saddle_balanced`` is the official default.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

RefViewStrategy = Literal["first", "middle", "saddle_balanced", "saddle_sim_range"]
REF_VIEW_STRATEGIES: tuple[str, ...] = ("first", "middle", "saddle_balanced", "saddle_sim_range")
MIN_VIEWS_FOR_CHOICE = 3  # with 1 or 2 views the first one is the reference


def _unit_range(m: Tensor) -> Tensor:
    """Per batch row, map values to [0, 1] (min -> 0, max -> 1; a 1e-8 guard for equal values)."""
    lo, hi = m.min(dim=1, keepdim=True).values, m.max(dim=1, keepdim=True).values
    return (m - lo) / (hi - lo + 1e-8)


def select_reference_view(cls_tokens: Tensor, strategy: RefViewStrategy = "saddle_balanced") -> Tensor:
    """Index of the reference view per batch element.

    Args:
        cls_tokens: (B, S, C) class token of every view.
        strategy: ``first`` (0), ``middle`` (S // 2), ``saddle_balanced`` (the view whose mean cosine similarity
            to the others, token norm and variance of the unit token are together closest to the middle of
            their ranges), ``saddle_sim_range`` (largest spread of cosine similarities to the others).

    Returns:
        (B,) int64.
    """
    b, s, _ = cls_tokens.shape
    if strategy not in REF_VIEW_STRATEGIES:
        raise ValueError(f"ref_view_strategy must be one of {', '.join(REF_VIEW_STRATEGIES)}, got {strategy!r}")
    if s <= 1 or strategy == "first":
        return torch.zeros(b, dtype=torch.long, device=cls_tokens.device)
    if strategy == "middle":
        return torch.full((b,), s // 2, dtype=torch.long, device=cls_tokens.device)
    norm = cls_tokens.norm(dim=-1)
    unit = cls_tokens / norm[..., None]
    # cosine similarities with the diagonal (1 for unit tokens) subtracted, as the official code does
    sim = unit @ unit.transpose(1, 2) - torch.eye(s, device=cls_tokens.device)
    if strategy == "saddle_sim_range":
        return (sim.max(dim=-1).values - sim.min(dim=-1).values).argmax(dim=1)
    mean_sim = sim.sum(dim=-1) / (s - 1)
    score = ((_unit_range(mean_sim) - 0.5).abs() + (_unit_range(norm) - 0.5).abs()
             + (_unit_range(unit.var(dim=-1)) - 0.5).abs())
    return score.argmin(dim=1)


def reference_first_order(ref: Tensor, views: int) -> Tensor:
    """(B, S) view order with the reference first and the others in input order: ref=2, S=5 -> [2, 0, 1, 3, 4]."""
    pos = torch.arange(views, device=ref.device).expand(ref.shape[0], -1)
    order = torch.where((pos > 0) & (pos <= ref[:, None]), pos - 1, pos)
    order[:, 0] = ref
    return order


def reorder_views(x: Tensor, order: Tensor) -> Tensor:
    """Gather views: (B, S, ...) -> (B, S, ...) with ``out[b, i] = x[b, order[b, i]]``."""
    return x[torch.arange(x.shape[0], device=x.device)[:, None], order]


def restore_views(x: Tensor, order: Tensor) -> Tensor:
    """Inverse of :func:`reorder_views` for the same ``order``."""
    return reorder_views(x, torch.argsort(order, dim=1))
