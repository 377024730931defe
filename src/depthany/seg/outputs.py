"""What ``depthany segment --format`` writes for one image: label PNG, palette PNG, overlay.

For an input ``photos/a/x.jpg`` written under ``out/`` (``base = out/a/x``)::

    labels    out/a/x.png            8-bit single channel (mode L): the class indices; exactly what
                                     ``depthany eval --task semseg --predictions out/`` reads for sample ``a/x``
    color     out/a/x_color.png      8-bit palette PNG (mode P): pixel values are the class indices, the palette
                                     holds the class colours (viewers show colours, readers get indices)
    overlay   out/a/x_overlay.png    RGB: ``(1 - alpha) * photo + alpha * class colour``

Every file is written atomically (a crash never leaves half a PNG under the final name).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..io.atomic import atomic_write
from .segmenter import SegResult

SEG_FORMATS: dict[str, str] = {"labels": ".png", "color": "_color.png", "overlay": "_overlay.png"}


def parse_seg_formats(text: str) -> list[str]:
    """``"labels,color"`` -> ``["labels", "color"]`` (order kept, duplicates dropped).

    Raises:
        ValueError: an unknown or empty format list, naming the known ones.
    """
    names = list(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in SEG_FORMATS]
    if not names or unknown:
        raise ValueError(f"unknown format {', '.join(unknown) or repr(text)}; choose from {', '.join(SEG_FORMATS)}")
    return names


def planned_seg_paths(base: Path, formats: Sequence[str]) -> list[Path]:
    """The files :func:`write_seg_outputs` writes for ``base`` (``out/a/x``)."""
    return [base.with_name(base.name + SEG_FORMATS[f]) for f in formats]


def _save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def write_seg_outputs(result: SegResult, rgb: np.ndarray, base: Path, formats: Sequence[str],
                      alpha: float = 0.5) -> list[Path]:
    """Write ``formats`` for one segmented image.

    Args:
        result: the segmentation, (H, W) labels.
        rgb: (H, W, 3) uint8 photo (orientation applied), for ``overlay``.
        base: output path without suffix.
        alpha: overlay opacity of the class colours, in [0, 1].

    Returns:
        the paths written, in ``formats`` order.
    """
    out = []
    for name, path in zip(formats, planned_seg_paths(base, formats)):
        if name == "labels":
            image = Image.fromarray(np.ascontiguousarray(result.labels, np.uint8))  # 2-D uint8: mode L
        elif name == "color":
            image = result.label_image()
        else:
            image = Image.fromarray(result.overlay(rgb, alpha))  # (H, W, 3) uint8: RGB
        out.append(_save(path, image))
    return out
