"""Strong perturbations and CutMix boxes against analytic cases and independent oracles."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch

from depthany.train.cutmix import Box, CutMixCfg, box_mask, check_cutmix, paste, sample_box
from depthany.train.perturb import (
    BlurCfg,
    JitterCfg,
    PerturbCfg,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    check_perturb,
    gaussian_blur,
    gaussian_kernel,
    grayscale,
    hsv_to_rgb,
    rgb_to_hsv,
    strong_perturb,
)


@pytest.fixture
def img() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 12, 16, generator=g, dtype=torch.float64) * 0.8 + 0.1  # away from the clamps


def test_grayscale_uses_bt601_weights() -> None:
    x = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert grayscale(x).item() == pytest.approx(0.299)
    x = torch.tensor([0.2, 0.4, 0.6]).view(3, 1, 1)
    assert grayscale(x).item() == pytest.approx(0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6)


def test_brightness_scales_and_clamps(img: torch.Tensor) -> None:
    assert torch.allclose(adjust_brightness(img, 0.5), img * 0.5)
    assert torch.equal(adjust_brightness(img, 1.0), img)
    assert adjust_brightness(torch.full((3, 2, 2), 0.8), 2.0).max().item() == 1.0


def test_contrast_blends_with_the_mean_luma(img: torch.Tensor) -> None:
    mean = grayscale(img).mean()
    assert torch.allclose(adjust_contrast(img, 0.0), torch.full_like(img, mean.item()))
    assert torch.allclose(adjust_contrast(img, 1.0), img)
    half = adjust_contrast(img, 0.5)
    assert torch.allclose(half, 0.5 * img + 0.5 * mean)
    assert grayscale(half).mean().item() == pytest.approx(mean.item())  # blending keeps the mean luma


def test_saturation_zero_is_gray_and_keeps_luma(img: torch.Tensor) -> None:
    gray = adjust_saturation(img, 0.0)
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])
    assert torch.allclose(gray[0], grayscale(img)[0])
    assert torch.allclose(adjust_saturation(img, 1.0), img)
    mid = img * 0.5 + 0.25  # stays inside [0, 1] at factor 1.3: no clamping
    assert torch.allclose(grayscale(adjust_saturation(mid, 1.3)), grayscale(mid), atol=1e-12)


def test_hsv_matches_colorsys(img: torch.Tensor) -> None:
    hsv = rgb_to_hsv(img)
    for y, x in [(0, 0), (3, 7), (11, 15), (6, 2)]:
        r, g, b = img[:, y, x].tolist()
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        assert hsv[:, y, x].tolist() == pytest.approx([h, s, v], abs=1e-12)
    assert torch.allclose(hsv_to_rgb(hsv), img, atol=1e-12)


def test_hue_rotation_analytic_cases(img: torch.Tensor) -> None:
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert adjust_hue(red, 1 / 3).flatten().tolist() == pytest.approx([0.0, 1.0, 0.0], abs=1e-6)  # -> green
    assert adjust_hue(red, -1 / 3).flatten().tolist() == pytest.approx([0.0, 0.0, 1.0], abs=1e-6)  # -> blue
    gray = torch.full((3, 4, 4), 0.37)
    assert torch.allclose(adjust_hue(gray, 0.2), gray)
    assert torch.allclose(adjust_hue(img, 0.0), img, atol=1e-12)
    assert torch.allclose(adjust_hue(img, 1.0), img, atol=1e-12)
    assert torch.allclose(adjust_hue(adjust_hue(img, 0.1), 0.15), adjust_hue(img, 0.25), atol=1e-12)
    # value (max channel) and saturation are untouched
    assert torch.allclose(img.max(0).values, adjust_hue(img, 0.21).max(0).values, atol=1e-12)


def test_gaussian_kernel_is_the_normalised_gaussian() -> None:
    for sigma in (0.1, 0.7, 2.0):
        k = gaussian_kernel(sigma).double()
        r = max(1, math.ceil(3 * sigma))
        assert k.numel() == 2 * r + 1
        ref = torch.tensor([math.exp(-(i * i) / (2 * sigma * sigma)) for i in range(-r, r + 1)], dtype=torch.float64)
        assert torch.allclose(k, ref / ref.sum(), atol=1e-7)
        assert k.sum().item() == pytest.approx(1.0, abs=1e-6)
    k = gaussian_kernel(2.0).double()
    x = torch.arange(-(k.numel() // 2), k.numel() // 2 + 1, dtype=torch.float64)
    assert (k * x * x).sum().item() == pytest.approx(4.0, rel=2e-2)  # variance ~ sigma^2 (truncated at 3 sigma)


def test_blur_impulse_response_and_constant_image() -> None:
    sigma = 1.3
    impulse = torch.zeros(1, 21, 21)
    impulse[0, 10, 10] = 1.0
    out = gaussian_blur(impulse, sigma)[0]
    k = gaussian_kernel(sigma)
    r = k.numel() // 2
    expected = torch.zeros(21, 21)
    expected[10 - r:10 + r + 1, 10 - r:10 + r + 1] = torch.outer(k, k)
    assert torch.allclose(out, expected, atol=1e-7)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-6)
    const = torch.full((3, 9, 13), 0.42)
    assert torch.allclose(gaussian_blur(const, 2.0), const, atol=1e-6)
    assert gaussian_blur(const, 2.0).shape == const.shape


def test_strong_perturb_is_deterministic_bounded_and_off_when_disabled(img: torch.Tensor) -> None:
    x = img.float()
    cfg = PerturbCfg()
    a = strong_perturb(x, cfg, np.random.default_rng(5))
    b = strong_perturb(x, cfg, np.random.default_rng(5))
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and a.shape == x.shape
    outs = [strong_perturb(x, cfg, np.random.default_rng(s)) for s in range(8)]
    assert sum(not torch.equal(o, x) for o in outs) >= 6  # almost always perturbed at the default rates
    off = PerturbCfg(JitterCfg(p=0.0), 0.0, BlurCfg(p=0.0))
    assert torch.equal(strong_perturb(x, off, np.random.default_rng(0)), x)
    gray = PerturbCfg(JitterCfg(p=0.0), 1.0, BlurCfg(p=0.0))
    g = strong_perturb(x, gray, np.random.default_rng(0))
    assert torch.equal(g[0], g[1]) and torch.allclose(g[0], grayscale(x)[0])


def test_strong_perturb_brightness_only_draws_a_factor_in_range() -> None:
    x = torch.full((3, 4, 4), 0.5)
    cfg = PerturbCfg(JitterCfg(p=1.0, brightness=0.3, contrast=0.0, saturation=0.0, hue=0.0), 0.0, BlurCfg(p=0.0))
    factors = [strong_perturb(x, cfg, np.random.default_rng(s))[0, 0, 0].item() / 0.5 for s in range(40)]
    assert min(factors) >= 0.7 - 1e-6 and max(factors) <= 1.3 + 1e-6
    assert max(factors) - min(factors) > 0.3  # really random


def test_perturb_and_cutmix_config_checks() -> None:
    assert check_perturb(PerturbCfg()) == []
    bad = PerturbCfg(JitterCfg(p=1.5, brightness=1.0, hue=0.7), -0.1, BlurCfg(sigma=(0.0, 1.0)))
    keys = [k for k, _ in check_perturb(bad)]
    assert keys == ["jitter.p", "grayscale", "jitter.brightness", "jitter.hue", "blur.sigma"]
    assert check_cutmix(CutMixCfg()) == []
    assert [k for k, _ in check_cutmix(CutMixCfg(p=2, area=(0.5, 0.1), aspect=(0, 1)))] == ["p", "area", "aspect"]


def test_cutmix_boxes_fit_and_follow_the_area_and_aspect_ranges() -> None:
    rng = np.random.default_rng(0)
    cfg = CutMixCfg()
    fractions = []
    for _ in range(300):
        b = sample_box(98, 98, cfg, rng)
        assert b.top >= 0 and b.left >= 0 and b.top + b.height <= 98 and b.left + b.width <= 98
        frac = b.height * b.width / 98**2
        fractions.append(frac)
        assert frac <= 0.4 + 1e-9 and frac >= 0.02 * 0.7  # int() truncation shrinks small boxes a little
        assert 0.3 * 0.6 <= b.height / b.width <= (1 / 0.3) / 0.6
    assert 0.15 < float(np.mean(fractions)) < 0.23  # E[U(0.02, 0.4)] = 0.21, minus truncation
    tops = {sample_box(20, 30, CutMixCfg(area=(0.1, 0.1), aspect=(1, 1)), rng).top for _ in range(60)}
    assert len(tops) > 5  # the position is random


def test_box_mask_and_paste() -> None:
    m = box_mask(5, 7, Box(1, 2, 3, 4))
    assert m.sum().item() == 12 and m[1:4, 2:6].all() and not m[0].any() and not m[:, 6].any()
    a, b = torch.zeros(3, 5, 7), torch.ones(3, 5, 7)
    mixed = paste(a, b, m)
    assert torch.equal(mixed[0], m.float()) and torch.equal(mixed[2], m.float())
