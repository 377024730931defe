"""From linear radiance to an 8-bit image: auto-exposure, white balance, tone curve, vignetting, lens
blur, gamma and noise, in the order a camera applies them.
"""

from __future__ import annotations

import math

import numpy as np

from .scene import Sensor


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (C, H, W) float32 over H and W, edges clamped; sigma in pixels."""
    if sigma <= 0.05:
        return img
    r = max(1, math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (r, r)
        padded = np.pad(img, pad, mode="edge")
        n = img.shape[axis]
        acc = np.zeros_like(img)
        for j, kj in enumerate(k):
            acc += kj * np.take(padded, np.arange(j, j + n), axis=axis)
        img = acc
    return img


def expose(radiance: np.ndarray, sensor: Sensor) -> np.ndarray:
    """Turn linear radiance into an image.

    Args:
        radiance: (3, H, W) float32 linear RGB, any positive scale.
        sensor: exposure and imperfection settings.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    _, h, w = radiance.shape
    lum = 0.2126 * radiance[0] + 0.7152 * radiance[1] + 0.0722 * radiance[2]
    log_mean = float(np.mean(np.log(np.maximum(lum, 1e-4))))
    gain = sensor.key / math.exp(log_mean) * 2.0 ** sensor.exposure_bias
    x = radiance * (np.asarray(sensor.white_balance, np.float32).reshape(3, 1, 1) * np.float32(gain))
    x = np.float32(1) - np.exp(-x)  # exponential tone curve: linear in the shadows, soft highlight roll-off
    if sensor.vignette > 0:
        yy = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / ((h - 1) / 2 if h > 1 else 1)
        xx = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / ((w - 1) / 2 if w > 1 else 1)
        r2 = (yy[:, None] ** 2 + xx[None, :] ** 2) / 2
        x = x * (1 - np.float32(sensor.vignette) * r2)[None]
    x = gaussian_blur(x, sensor.blur)
    y = np.clip(x, 0, 1) ** np.float32(1 / sensor.gamma)
    if sensor.noise > 0:
        rng = np.random.default_rng(sensor.seed)
        sigma = np.sqrt(np.float32(sensor.noise) ** 2 * (1 + np.float32(4) * y))
        y = y + sigma * rng.standard_normal(y.shape, dtype=np.float32)
    return np.round(np.clip(y, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0).copy()


def sample_sensor(rng: np.random.Generator) -> Sensor:
    """Random exposure, gamma, white balance and (often) vignetting, blur and noise."""
    return Sensor(key=float(rng.uniform(0.1, 0.3)), exposure_bias=float(np.clip(rng.normal(0, 0.3), -1, 1)),
                  gamma=float(rng.uniform(1.8, 2.6)),
                  white_balance=tuple(float(np.exp(rng.normal(0, 0.05))) for _ in range(3)),  # type: ignore
                  vignette=float(rng.uniform(0, 0.35)) if rng.random() < 0.5 else 0.0,
                  blur=float(rng.uniform(0.2, 0.8)) if rng.random() < 0.5 else 0.0,
                  noise=float(rng.uniform(0.002, 0.025)) if rng.random() < 0.6 else 0.0,
                  seed=int(rng.integers(1 << 31)))
