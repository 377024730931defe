"""Tiny synthetic RGB-D folders for the training tests: tilted planes with a nearer box.

Brightness follows disparity (plus texture and noise), so a small network can learn the mapping in tens
of steps. Written with :class:`depthany.data.RGBDWriter` in the depthany RGB-D format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depthany.data import RGBDWriter


def write_planes(root: str | Path, n: int = 8, size: tuple[int, int] = (48, 64), seed: int = 0,
                 invalid_frac: float = 0.05) -> Path:
    """Write ``n`` samples of ``size`` (H, W) into ``root``; a few random pixels are invalid (depth 0)."""
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    with RGBDWriter(root, depth_encoding="npy", info={"generator": "tests/train_worlds.py"}) as wr:
        for i in range(n):
            a, b = rng.uniform(-1.5, 1.5, size=2)
            depth = 4.0 + a * (x / w - 0.5) + b * (y / h - 0.5)
            y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
            box = (slice(y0, y0 + h // 3), slice(x0, x0 + w // 3))
            depth[box] = rng.uniform(1.2, 2.0)
            disp = 1.0 / depth
            level = (disp - 0.15) / (0.85 - 0.15)
            tint = rng.uniform(0.6, 1.0, size=3)
            texture = 0.08 * np.sin(x / 3.0 + i) * np.cos(y / 4.0)
            rgb = np.clip((level[..., None] * tint + texture[..., None]) * 255
                          + rng.normal(0, 4, size=(h, w, 3)), 0, 255).astype(np.uint8)
            valid = rng.random((h, w)) >= invalid_frac
            wr.write(f"s{i:03d}", rgb, depth.astype(np.float32), valid, intrinsics=(w, w, w / 2, h / 2))
    return Path(root)
