"""Strong colour perturbations for the student's unlabeled inputs: colour jitter, grayscale, Gaussian blur.

Depth Anything perturbs only the images the *student* sees on unlabeled data (the teacher labelled clean
images), so it must learn a prediction that survives the perturbation (V1 section 3.2). The paper names colour
jittering and Gaussian blurring but not their strengths. The defaults here are those of UniMatch, the
semi-supervised segmentation method of the same first author: jitter with probability 0.8 (brightness,
contrast and saturation factors in [0.5, 1.5], hue shift in [-0.25, 0.25] turns), grayscale with probability
0.2, blur with probability 0.5 and sigma in [0.1, 2.0] pixels. They are not confirmed for Depth Anything.

Images are (3, H, W) float tensors in [0, 1] (before mean/std normalisation); every random number comes from
the ``numpy.random.Generator`` passed in, so a perturbation is a pure function of the data-stream position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights, as torchvision and PIL use for grayscale


@dataclass(frozen=True)
class JitterCfg:
    """Colour jitter: applied with probability ``p``; factors drawn uniformly from ``[1 - x, 1 + x]`` for
    brightness, contrast and saturation, hue shift from ``[-hue, hue]`` (turns, at most 0.5); the four
    adjustments run in a random order (as torchvision's ``ColorJitter``)."""

    p: float = 0.8
    brightness: float = 0.5
    contrast: float = 0.5
    saturation: float = 0.5
    hue: float = 0.25


@dataclass(frozen=True)
class BlurCfg:
    """Gaussian blur with probability ``p`` and standard deviation drawn from ``sigma`` (pixels)."""

    p: float = 0.5
    sigma: tuple[float, float] = (0.1, 2.0)


@dataclass(frozen=True)
class PerturbCfg:
    """The strong perturbation: jitter, then grayscale with probability ``grayscale``, then blur."""

    jitter: JitterCfg = field(default_factory=JitterCfg)
    grayscale: float = 0.2
    blur: BlurCfg = field(default_factory=BlurCfg)


def check_perturb(cfg: PerturbCfg) -> list[tuple[str, str]]:
    """Range problems as (relative key, message) pairs; empty when the configuration is valid."""
    out: list[tuple[str, str]] = []
    for key, p in (("jitter.p", cfg.jitter.p), ("grayscale", cfg.grayscale), ("blur.p", cfg.blur.p)):
        if not 0.0 <= p <= 1.0:
            out.append((key, f"is a probability in [0, 1], got {p}"))
    for key in ("brightness", "contrast", "saturation"):
        v = getattr(cfg.jitter, key)
        if not 0.0 <= v < 1.0:
            out.append((f"jitter.{key}", f"must be in [0, 1) (factors 1 +- x stay positive), got {v}"))
    if not 0.0 <= cfg.jitter.hue <= 0.5:
        out.append(("jitter.hue", f"must be in [0, 0.5] turns, got {cfg.jitter.hue}"))
    lo, hi = cfg.blur.sigma
    if not 0.0 < lo <= hi:
        out.append(("blur.sigma", f"needs 0 < min <= max pixels, got {[lo, hi]}"))
    return out


def grayscale(img: Tensor) -> Tensor:
    """(3, H, W) -> (1, H, W) luma ``0.299 R + 0.587 G + 0.114 B``."""
    w = torch.tensor(LUMA, dtype=img.dtype, device=img.device).view(3, 1, 1)
    return (img * w).sum(0, keepdim=True)


def adjust_brightness(img: Tensor, factor: float) -> Tensor:
    """``clamp(factor * img, 0, 1)``."""
    return (img * factor).clamp(0.0, 1.0)


def adjust_contrast(img: Tensor, factor: float) -> Tensor:
    """Blend with the image's mean luma: ``clamp(factor * img + (1 - factor) * mean(gray(img)), 0, 1)``."""
    mean = grayscale(img).mean()
    return (factor * img + (1.0 - factor) * mean).clamp(0.0, 1.0)


def adjust_saturation(img: Tensor, factor: float) -> Tensor:
    """Blend with the per-pixel luma: ``clamp(factor * img + (1 - factor) * gray(img), 0, 1)``."""
    return (factor * img + (1.0 - factor) * grayscale(img)).clamp(0.0, 1.0)


def rgb_to_hsv(img: Tensor) -> Tensor:
    """(3, H, W) RGB in [0, 1] -> (3, H, W) HSV, hue in [0, 1) turns (0 red, 1/3 green, 2/3 blue)."""
    r, g, b = img.unbind(0)
    v, _ = img.max(0)
    c = v - img.min(0).values
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    h = torch.where(v == r, ((g - b) / safe_c) % 6.0,
                    torch.where(v == g, (b - r) / safe_c + 2.0, (r - g) / safe_c + 4.0))
    h = torch.where(c > 0, h / 6.0, torch.zeros_like(h)) % 1.0
    return torch.stack([h, s, v])


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = hsv.unbind(0)
    k = torch.stack([(5.0 + h * 6.0) % 6.0, (3.0 + h * 6.0) % 6.0, (1.0 + h * 6.0) % 6.0])
    return v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def adjust_hue(img: Tensor, shift: float) -> Tensor:
    """Rotate the hue by ``shift`` turns (in HSV space; saturation and value are kept, grays stay gray)."""
    hsv = rgb_to_hsv(img)
    hsv = torch.stack([(hsv[0] + shift) % 1.0, hsv[1], hsv[2]])
    return hsv_to_rgb(hsv).clamp(0.0, 1.0)


def gaussian_kernel(sigma: float) -> Tensor:
    """1-D kernel ``exp(-x^2 / (2 sigma^2))`` on x = -r..r, r = ceil(3 sigma), normalised to sum 1 (float32)."""
    r = max(1, math.ceil(3.0 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return (k / k.sum()).float()


def gaussian_blur(img: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of a (C, H, W) image with standard deviation ``sigma`` pixels.

    Borders repeat the edge pixel, so a constant image stays constant and the mean brightness is kept.
    """
    k = gaussian_kernel(sigma).to(img.dtype)
    r = (k.numel() - 1) // 2
    c = img.shape[0]
    x = F.pad(img[None], (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x[0]


def strong_perturb(img: Tensor, cfg: PerturbCfg, rng: np.random.Generator) -> Tensor:
    """Apply the random strong perturbation to one (3, H, W) [0, 1] image; returns a new tensor.

    Draw order (fixed, for reproducibility): jitter gate, jitter order and factors, grayscale gate, blur
    gate and sigma.
    """
    j = cfg.jitter
    if rng.random() < j.p:
        for op in rng.permutation(4):
            if op == 0:
                img = adjust_brightness(img, float(rng.uniform(1 - j.brightness, 1 + j.brightness)))
            elif op == 1:
                img = adjust_contrast(img, float(rng.uniform(1 - j.contrast, 1 + j.contrast)))
            elif op == 2:
                img = adjust_saturation(img, float(rng.uniform(1 - j.saturation, 1 + j.saturation)))
            else:
                img = adjust_hue(img, float(rng.uniform(-j.hue, j.hue)))
    if rng.random() < cfg.grayscale:
        img = grayscale(img).expand(3, -1, -1).clone()
    if rng.random() < cfg.blur.p:
        img = gaussian_blur(img, float(rng.uniform(*cfg.blur.sigma)))
    return img
