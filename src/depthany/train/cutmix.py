"""CutMix for the student's unlabeled images: a box of one image pasted into another.

With probability ``p`` (V1: 0.5) the student sees ``u_ab = u_a * (1 - M) + u_b * M`` with M a rectangular box.
The teacher labelled ``u_a`` and ``u_b`` separately, so no single label describes ``u_ab``; the loss is computed
separately inside the box against T(u_b) and outside against T(u_a), and the two parts are weighted by their
area fractions ``sum(M) / HW`` and ``sum(1 - M) / HW`` (:func:`depthany.train.student_losses.pseudo_losses`).
(The paper writes the box as showing ``u_a``; which image is pasted is symmetric.)

The paper does not say how boxes are drawn. The default follows UniMatch (same first author): area fraction
``s ~ U(0.02, 0.4)`` of the image, aspect ratio (height / width) ``r ~ U(0.3, 1 / 0.3)``, position uniform among
the positions where the box fits. UniMatch redraws the ratio and position until the box fits; here a box that
would not fit is shrunk to the image and the position is drawn among valid ones, which is the same
distribution for square crops except in the rare tall or wide cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class CutMixCfg:
    """Probability ``p``, box area fraction range ``area`` and aspect-ratio (height / width) range ``aspect``."""

    p: float = 0.5
    area: tuple[float, float] = (0.02, 0.4)
    aspect: tuple[float, float] = (0.3, 1 / 0.3)


class Box(NamedTuple):
    """A box in pixels: rows ``top .. top + height - 1``, columns ``left .. left + width - 1``."""

    top: int
    left: int
    height: int
    width: int


def check_cutmix(cfg: CutMixCfg) -> list[tuple[str, str]]:
    """Range problems as (relative key, message) pairs; empty when the configuration is valid."""
    out: list[tuple[str, str]] = []
    if not 0.0 <= cfg.p <= 1.0:
        out.append(("p", f"is a probability in [0, 1], got {cfg.p}"))
    if not 0.0 < cfg.area[0] <= cfg.area[1] <= 1.0:
        out.append(("area", f"needs 0 < min <= max <= 1 (fractions of the image), got {list(cfg.area)}"))
    if not 0.0 < cfg.aspect[0] <= cfg.aspect[1]:
        out.append(("aspect", f"needs 0 < min <= max, got {list(cfg.aspect)}"))
    return out


def sample_box(height: int, width: int, cfg: CutMixCfg, rng: np.random.Generator) -> Box:
    """Draw a box for an image of ``height`` x ``width`` pixels (at least 1 x 1, never outside the image)."""
    area = float(rng.uniform(*cfg.area)) * height * width
    ratio = float(rng.uniform(*cfg.aspect))
    bh = min(height, max(1, int(math.sqrt(area * ratio))))
    bw = min(width, max(1, int(math.sqrt(area / ratio))))
    top = int(rng.integers(0, height - bh + 1))
    left = int(rng.integers(0, width - bw + 1))
    return Box(top, left, bh, bw)


def box_mask(height: int, width: int, box: Box) -> Tensor:
    """(height, width) bool, True inside ``box``."""
    m = torch.zeros(height, width, dtype=torch.bool)
    m[box.top:box.top + box.height, box.left:box.left + box.width] = True
    return m


def paste(base: Tensor, other: Tensor, mask: Tensor) -> Tensor:
    """``other`` inside ``mask``, ``base`` elsewhere; (..., H, W) tensors, (H, W) bool mask."""
    return torch.where(mask, other, base)
