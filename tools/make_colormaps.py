"""Regenerate ``src/depthany/assets/colormaps.npz`` from matplotlib (a dev-time tool; run once).

Each map is a (256, 3) uint8 table built exactly the way the official Depth Anything V2 scripts colour a
depth map: ``(cmap(i)[:3] * 255).astype(uint8)`` for integer ``i`` (matplotlib indexes its own 256-entry
table for integer input, and ``astype`` truncates). ``tests/test_io_colormap.py`` checks the stored tables
against matplotlib bit for bit.

Usage:
    .venv/bin/python tools/make_colormaps.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

NAMES = ("Spectral_r", "Spectral", "inferno", "turbo", "gray")
OUT = Path(__file__).resolve().parents[1] / "src" / "depthany" / "assets" / "colormaps.npz"


def build(name: str) -> np.ndarray:
    """(256, 3) uint8 LUT of matplotlib colour map ``name``."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return (cmap(np.arange(256))[:, :3] * 255).astype(np.uint8)


def main() -> int:
    tables = {name: build(name) for name in NAMES}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **tables)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {', '.join(NAMES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
