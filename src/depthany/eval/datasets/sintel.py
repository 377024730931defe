"""MPI Sintel depth (training set, 23 scenes, 1024x436).

Layout (``MPI-Sintel-depth-training-20150305.zip`` + ``MPI-Sintel-training_images.zip`` unpacked together)::

    root/training/depth/<scene>/frame_XXXX.dpt
    root/training/final/<scene>/frame_XXXX.png     (or clean/, chosen with ``image_pass``)

``root`` may also be the ``training`` folder itself. ``.dpt``: little-endian; 4-byte tag ``b"PIEH"``
(= float32 202021.25), int32 width, int32 height, then width*height float32 depths, row-major.
Sample ids are ``<scene>/frame_XXXX``. The frames, pass and depth cap DA used are not published; the default
(all frames, ``final`` pass, 0 < d < 72 m as in a MiDaS-style harness) is labelled as such in results.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..settings import EvalSettings, Family
from .base import DatasetError, EvalDataset, EvalSample, read_rgb

TAG_FLOAT = 202021.25
TAG_BYTES = b"PIEH"
MAX_PIXELS = 100_000_000


def read_dpt(path: str | Path) -> np.ndarray:
    """Read a Sintel ``.dpt`` depth file as (H, W) float32.

    Raises:
        DatasetError: wrong tag, implausible size (``w, h > 0`` and ``1 < w*h < 1e8`` as the official
            reader checks) or a file length that does not match the header.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"depth file not found: {path}")
    with path.open("rb") as fh:
        header = fh.read(12)
        if len(header) < 12:
            raise DatasetError(f"{path}: too short for a .dpt header ({len(header)} bytes)")
        tag = struct.unpack("<f", header[:4])[0]
        if tag != TAG_FLOAT:
            raise DatasetError(f"{path}: wrong .dpt tag {header[:4]!r} (float {tag}); expected {TAG_BYTES!r} "
                               f"({TAG_FLOAT}); is this a Sintel depth file, or big-endian?")
        width, height = struct.unpack("<ii", header[4:12])
        if width <= 0 or height <= 0 or not 1 < width * height < MAX_PIXELS:
            raise DatasetError(f"{path}: implausible .dpt size {width}x{height}")
        data = np.fromfile(fh, dtype="<f4")
    if data.size != width * height:
        raise DatasetError(f"{path}: header says {width}x{height} = {width * height} values, file holds {data.size}")
    return data.reshape(height, width).astype(np.float32)


def write_dpt(path: str | Path, depth: np.ndarray) -> None:
    """Write (H, W) depth as a ``.dpt`` file (for tests and conversions)."""
    d = np.asarray(depth, dtype="<f4")
    with Path(path).open("wb") as fh:
        fh.write(TAG_BYTES)
        fh.write(struct.pack("<ii", d.shape[1], d.shape[0]))
        fh.write(d.tobytes())


class Sintel(EvalDataset):
    """Sintel reader (module docstring). ``split`` is a label (``"training"``); ``image_pass``: final|clean."""

    name = "sintel"

    def __init__(self, root: str | Path, split: str = "training", image_pass: str = "final") -> None:
        super().__init__(root, split)
        if image_pass not in ("final", "clean"):
            raise DatasetError(f"sintel: image_pass must be 'final' or 'clean', got {image_pass!r}")
        self.image_pass = image_pass
        self.base = self.root / "training" if (self.root / "training").is_dir() else self.root
        depth_dir = self.base / "depth"
        if not depth_dir.is_dir():
            raise DatasetError(f"sintel: no depth/ folder under {self.base} (expected training/depth/<scene>/*.dpt)")
        self._files = sorted(depth_dir.glob("*/*.dpt"))
        if not self._files:
            raise DatasetError(f"sintel: no .dpt files under {depth_dir}")
        self.ids = [f"{p.parent.name}/{p.stem}" for p in self._files]

    def load(self, index: int) -> EvalSample:
        dpt = self._files[index]
        depth = read_dpt(dpt)
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
        rgb_path = self.base / self.image_pass / dpt.parent.name / f"{dpt.stem}.png"
        return EvalSample(self.ids[index], depth, lambda: read_rgb(rgb_path),
                          meta={"scene": dpt.parent.name, "rgb": str(rgb_path), "depth": str(dpt)})

    def settings(self, family: Family) -> EvalSettings:
        return EvalSettings(0.0, 72.0, "none", mask_mode="range",
                            source="UNVERIFIED for DA: 0 < d < 72 m as in a MiDaS-style harness; DA's Sintel "
                                   "frames, pass and cap were never published")

    def options(self) -> dict[str, Any]:
        return {"image_pass": self.image_pass}
