"""AdamW with separate encoder / decoder learning rates, and the learning-rate schedule.

Depth Anything fine-tunes a pretrained DINOv2 encoder gently and trains the freshly initialised DPT decoder
faster: the decoder's learning rate is ``decoder_lr_mult`` (10) times the encoder's. The schedule is a pure
function of the step, so resuming needs no scheduler object: the step in the checkpoint is the whole state.
"""

from __future__ import annotations

import torch

from ..models import DepthAnything
from .config import OptimCfg


def build_optimizer(model: DepthAnything, cfg: OptimCfg) -> torch.optim.AdamW:
    """AdamW over two parameter groups, ``encoder`` (lr = ``cfg.lr``) and ``decoder`` (lr x ``decoder_lr_mult``).

    Each group keeps its peak rate in ``base_lr``; :func:`set_lr` scales it every step. Weight decay applies
    to all parameters, as in the official metric training code.
    """
    enc, dec = model.param_groups()
    groups = [
        {"params": [p for p in enc if p.requires_grad], "name": "encoder", "base_lr": cfg.lr},
        {"params": [p for p in dec if p.requires_grad], "name": "decoder", "base_lr": cfg.lr * cfg.decoder_lr_mult},
    ]
    for g in groups:
        g["lr"] = g["base_lr"]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, cfg: OptimCfg) -> float:
    """Multiplier of the peak learning rate for optimiser step ``step`` (0-based) of ``total``.

    Linear warm-up ``(step + 1) / warmup_steps`` over the first ``warmup_steps`` steps, then with
    ``p = (step - warmup) / (total - warmup)`` in [0, 1): ``1 - p`` (linear), ``(1 - p) ** poly_power`` (poly,
    the official metric recipe's 0.9) or 1 (constant).

    ``mmseg``: mmengine's ``LinearLR(start_factor=s, end=warmup)`` then ``PolyLR(power, eta_min=0)`` chained,
    as in the Depth Anything V1 segmentation configs: ``s + (1 - s) * step / warmup`` during warm-up (so it
    ends one step short of 1), then the factor reached at step ``warmup - 1`` times ``(1 - p) ** poly_power``.
    """
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
