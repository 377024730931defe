"""AdamW with separate encoder / decoder learning rates, and the learning-rate schedule.

Depth Anything fine-tunes a pretrained DINOv2 encoder gently and trains the freshly initialised DPT decoder
faster: the decoder's learning rate is ``decoder_lr_mult`` (10) times the encoder's. The schedule is a pure
function of the step, so resuming needs no scheduler object: the step in the checkpoint is the whole state.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..models import ImageNetwork, ZoeDepth
from .config import OptimCfg


def build_optimizer(model: ImageNetwork, cfg: OptimCfg) -> torch.optim.AdamW:
    """AdamW over two parameter groups, ``encoder`` (lr = ``cfg.lr``) and ``decoder`` (lr x ``decoder_lr_mult``),
    or for a ZoeDepth model the official four (:func:`zoedepth_groups`).

    Each group keeps its peak rate in ``base_lr``; :func:`set_lr` scales it every step. Weight decay applies
    to all parameters, as in the official metric training code.
    """
    if isinstance(model, ZoeDepth):
        named = zoedepth_groups(model)
        mult = {"encoder": 1.0, "decoder": cfg.decoder_lr_mult, "pos_embed": 1.0, "head": cfg.head_lr_mult}
        groups = [{"params": [p for p in params if p.requires_grad], "name": name, "base_lr": cfg.lr * mult[name]}
                  for name, params in named.items()]
    else:
        enc, dec = model.param_groups()
        groups = [
            {"params": [p for p in enc if p.requires_grad], "name": "encoder", "base_lr": cfg.lr},
            {"params": [p for p in dec if p.requires_grad], "name": "decoder",
             "base_lr": cfg.lr * cfg.decoder_lr_mult},
        ]
    for g in groups:
        g["lr"] = g["base_lr"]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


def zoedepth_groups(model: ZoeDepth) -> dict[str, list[nn.Parameter]]:
    """The official ``ZoeDepth.get_lr_params`` groups (``zoedepth_v1.py``), every parameter in exactly one:
    ``encoder`` (the core's DINOv2 except ``pos_embed``; official lr / ``encoder_lr_factor`` 50), ``decoder``
    (the core's DPT head; lr / ``midas_lr_factor`` 50), ``pos_embed`` (lr / ``pos_enc_lr_factor`` 50) and
    ``head`` (everything outside the core: the ZoeDepth head at lr). The order puts encoder and decoder first,
    as for Depth Anything models, so logs report the same two rates first."""
    vit = model.relative.pretrained
    return {
        "encoder": [p for n, p in vit.named_parameters() if "pos_embed" not in n],
        "decoder": list(model.relative.depth_head.parameters()),
        "pos_embed": [p for n, p in vit.named_parameters() if "pos_embed" in n],
        "head": [p for n, p in model.named_parameters() if not n.startswith("core.")],
    }


def onecycle_lr_momentum(step: int, total: int, cfg: OptimCfg) -> tuple[float, float]:
    """PyTorch's ``OneCycleLR`` (``anneal_strategy="cos"``, ``three_phase=False``) at optimiser step ``step``
    (0-based) of ``total``: (multiplier of the peak rate, Adam beta1).

    Phase 1 ends at step ``pct_start * total - 1``: the rate goes from ``1 / div_factor`` to 1 and beta1 from
    ``max_momentum`` to ``base_momentum``; phase 2 ends at ``total - 1``: the rate goes to
    ``1 / (div_factor * final_div_factor)`` and beta1 back; each by ``end + (start - end) (1 + cos(pi t)) / 2``.
    """
    initial, peak = 1.0 / cfg.div_factor, 1.0
    final = initial / cfg.final_div_factor
    end1 = cfg.pct_start * total - 1.0
    phases = ((end1, initial, peak, cfg.max_momentum, cfg.base_momentum),
              (float(total - 1), peak, final, cfg.base_momentum, cfg.max_momentum))
    start = 0.0
    for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            t = (step - start) / (end - start) if end != start else 1.0
            cos = math.cos(math.pi * t) + 1.0
            return lr1 + (lr0 - lr1) / 2.0 * cos, m1 + (m0 - m1) / 2.0 * cos
        start = end
    raise AssertionError("unreachable")


def momentum(step: int, total: int, cfg: OptimCfg) -> float | None:
    """Adam's beta1 for step ``step`` when the schedule cycles it (``onecycle`` with ``cycle_momentum``), else None."""
    if cfg.schedule == "onecycle" and cfg.cycle_momentum:
        return onecycle_lr_momentum(step, total, cfg)[1]
    return None


def set_momentum(optimizer: torch.optim.Optimizer, beta1: float) -> None:
    """Set every group's Adam beta1 (``OneCycleLR``'s momentum cycling)."""
    for g in optimizer.param_groups:
        g["betas"] = (beta1, g["betas"][1])


def lr_factor(step: int, total: int, cfg: OptimCfg) -> float:
    """Multiplier of the peak learning rate for optimiser step ``step`` (0-based) of ``total``.

    Linear warm-up ``(step + 1) / warmup_steps`` over the first ``warmup_steps`` steps, then with
    ``p = (step - warmup) / (total - warmup)`` in [0, 1): ``1 - p`` (linear), ``(1 - p) ** poly_power`` (poly,
    the official metric recipe's 0.9) or 1 (constant).

    ``onecycle``: :func:`onecycle_lr_momentum`.

    ``mmseg``: mmengine's ``LinearLR(start_factor=s, end=warmup)`` then ``PolyLR(power, eta_min=0)`` chained,
    as in the Depth Anything V1 segmentation configs: ``s + (1 - s) * step / warmup`` during warm-up (so it
    ends one step short of 1), then the factor reached at step ``warmup - 1`` times ``(1 - p) ** poly_power``.
    """
    if cfg.schedule == "onecycle":
        return onecycle_lr_momentum(step, total, cfg)[0]
    warm = cfg.warmup_steps
    if cfg.schedule == "mmseg":
        s = cfg.warmup_start_factor
        if step < warm:
            return s + (1 - s) * step / warm
        reached = s + (1 - s) * (warm - 1) / warm if warm else 1.0
        return reached * (1.0 - (step - warm) / max(1, total - warm)) ** cfg.poly_power
    if step < warm:
        return (step + 1) / warm
    p = (step - warm) / max(1, total - warm)
    if cfg.schedule == "linear":
        return 1.0 - p
    if cfg.schedule == "poly":
        return (1.0 - p) ** cfg.poly_power
    return 1.0


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every group's learning rate to ``base_lr * factor``."""
    for g in optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor
