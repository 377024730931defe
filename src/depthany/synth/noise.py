"""Hash-based 2-D value noise and band-limited fractal noise (fbm), vectorised in float32.

The noise is a pure function of the coordinates and an integer seed: no tables, no global state, so
textures are reproducible from the seed stored in the scene JSON. ``footprint`` (the size of one pixel on
the surface, in the same units as the coordinates) fades octaves finer than a pixel to their mean, a
cheap stand-in for mip-mapping that keeps distant texture from aliasing into salt-and-pepper noise.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint32(0x9E3779B1)
_M2 = np.uint32(0x85EBCA77)
_M3 = np.uint32(0xC2B2AE3D)


def _finalize(h: np.ndarray) -> np.ndarray:
    """Avalanche a uint32 array into float32 in [0, 1)."""
    h = h ^ (h >> np.uint32(15))
    h *= _M3
    h ^= h >> np.uint32(13)
    h *= _M2
    h ^= h >> np.uint32(16)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def hash2(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Integer lattice hash -> float32 in [0, 1). ``ix``, ``iy``: integer arrays of the same shape."""
    s = np.uint32((seed * 0x27D4EB2F) & 0xFFFFFFFF)
    return _finalize(ix.astype(np.uint32) * _M1 ^ (iy.astype(np.uint32) * _M2 ^ s))


def value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise on the unit lattice: float32 in [0, 1], same shape as ``x`` and ``y``."""
    fx0 = np.floor(x)
    fy0 = np.floor(y)
    tx = (x - fx0).astype(np.float32)
    ty = (y - fy0).astype(np.float32)
    # int64 first: coordinates beyond 2**31 (a ray grazing the horizon) then wrap instead of saturating.
    # (ix + 1) * M1 == ix * M1 + M1 in uint32 arithmetic, so the four corners share two products.
    x0 = fx0.astype(np.int64).astype(np.uint32) * _M1
    x1 = x0 + _M1
    s = np.uint32((seed * 0x27D4EB2F) & 0xFFFFFFFF)
    y0m = fy0.astype(np.int64).astype(np.uint32) * _M2
    y0 = y0m ^ s
    y1 = (y0m + _M2) ^ s
    sx = tx * tx * (3 - 2 * tx)
    sy = ty * ty * (3 - 2 * ty)
    a = _finalize(x0 ^ y0)
    b = _finalize(x1 ^ y0)
    c = _finalize(x0 ^ y1)
    d = _finalize(x1 ^ y1)
    top = a + (b - a) * sx
    bottom = c + (d - c) * sx
    return top + (bottom - top) * sy


def fbm(x: np.ndarray, y: np.ndarray, seed: int, octaves: int = 4, footprint: np.ndarray | float = 0.0,
        gain: float = 0.5, lacunarity: float = 2.0) -> np.ndarray:
    """Fractal sum of value noise, with mean 0.5, contrast-stretched and clipped to [0, 1].

    Args:
        x, y: coordinates (any shape); the coarsest octave has a period of 1 unit.
        seed: integer seed; each octave uses a derived seed.
        octaves: number of octaves (>= 1).
        footprint: pixel size in the same units (scalar or broadcastable); octaves whose period is under
            about two pixels fade to their mean 0.5.
        gain, lacunarity: amplitude and frequency ratios between octaves.

    Returns:
        float32 array shaped like ``x``.
    """
    if octaves < 1:
        raise ValueError(f"octaves must be >= 1, got {octaves}")
    fp = np.asarray(footprint, dtype=np.float32)
    total = np.zeros(np.broadcast(x, y).shape, np.float32)
    amp, freq = 1.0, 1.0
    norm = sum(gain**k for k in range(octaves))  # fixed, so skipping faded octaves changes nothing
    finest = float(fp.min()) if fp.size else 0.0
    for k in range(octaves):
        if k > 0 and 2.0 * freq * finest >= 1.5:
            break  # this octave and all finer ones are below a pixel everywhere
        n = value_noise(x * freq, y * freq, seed * 7919 + k * 104729) - np.float32(0.5)
        fade = np.clip(np.float32(1.5) - np.float32(2.0 * freq) * fp, 0, 1) if fp.ndim or fp > 0 else 1.0
        total += np.float32(amp) * n * fade
        amp *= gain
        freq *= lacunarity
    # Value-noise sums have a standard deviation well under 0.5; stretch it so textures have contrast.
    return np.clip(np.float32(0.5) + total / np.float32(norm) * np.float32(1.6), 0, 1)
