"""Evaluation crops: the exact index ranges the reference implementations use.

All boxes are half-open ``(row0, row1, col0, col1)`` in pixels, i.e. ``array[row0:row1, col0:col1]``.

* NYUv2 Eigen crop ``[45:471, 41:601]`` on the 480x640 frame (Marigold ``nyu_dataset.py``, ZoeDepth
  ``compute_metrics``, BTS). ZoeDepth applies the same indices to any non-KITTI dataset with ``eigen_crop``
  (e.g. DIODE indoor at 768x1024), a quirk we reproduce rather than "fix".
* KITTI KB (benchmark) crop to 352x1216: ``top = int(H - 352)``, ``left = int((W - 1216) / 2)``.
* KITTI Garg and Eigen crops as fractions of the GT size, identical in BTS, ZoeDepth and Marigold.

The fraction crops give different pixel sets depending on which frame they are computed on
(``crop_order``): ZoeDepth and Marigold KB-crop image and GT first and take the fractions of the 352x1216
GT (``"kb_then_fraction"``); BTS ``eval_with_pngs.py --do_kb_crop`` pastes the prediction back into the
full frame and takes the fractions of the full-size GT (``"fraction_on_full"``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

CropName = Literal["none", "nyu_eigen", "kitti_garg", "kitti_eigen"]
CropOrder = Literal["kb_then_fraction", "fraction_on_full"]
CROPS: tuple[str, ...] = ("none", "nyu_eigen", "kitti_garg", "kitti_eigen")
CROP_ORDERS: tuple[str, ...] = ("kb_then_fraction", "fraction_on_full")

KB_HEIGHT, KB_WIDTH = 352, 1216
NYU_EIGEN_BOX = (45, 471, 41, 601)

Box = tuple[int, int, int, int]


def kb_crop_offset(height: int, width: int) -> tuple[int, int]:
    """(top, left) of the KITTI benchmark crop of a ``height x width`` frame.

    Raises:
        ValueError: the frame is smaller than 352x1216.
    """
    if height < KB_HEIGHT or width < KB_WIDTH:
        raise ValueError(f"KB crop needs a frame of at least {KB_HEIGHT}x{KB_WIDTH}, got {height}x{width}")
    return int(height - KB_HEIGHT), int((width - KB_WIDTH) / 2)


def kb_crop(array: np.ndarray) -> np.ndarray:
    """Crop (H, W, ...) to (352, 1216, ...) with the KB offsets."""
    top, left = kb_crop_offset(array.shape[0], array.shape[1])
    return array[top:top + KB_HEIGHT, left:left + KB_WIDTH]


def kitti_fraction_box(height: int, width: int, crop: str) -> Box:
    """Garg or Eigen crop box of a ``height x width`` KITTI GT map (the shared BTS/ZoeDepth/Marigold formulas)."""
    if crop == "kitti_garg":
        return (int(0.40810811 * height), int(0.99189189 * height),
                int(0.03594771 * width), int(0.96405229 * width))
    if crop == "kitti_eigen":
        return (int(0.3324324 * height), int(0.91351351 * height),
                int(0.0359477 * width), int(0.96405229 * width))
    raise ValueError(f"crop must be 'kitti_garg' or 'kitti_eigen', got {crop!r}")


def crop_box(shape: tuple[int, int], crop: str, crop_order: str = "kb_then_fraction",
             full_shape: tuple[int, int] | None = None, offset: tuple[int, int] = (0, 0)) -> Box | None:
    """The evaluation box of ``crop`` in the coordinates of a GT map of ``shape``; None for ``"none"``.

    Args:
        shape: (H, W) of the GT map being evaluated (after any KB crop).
        crop: one of :data:`CROPS`.
        crop_order: for the KITTI fraction crops, which frame the fractions are taken of (module docstring).
        full_shape: (H, W) of the frame before the KB crop; needed for ``"fraction_on_full"``.
        offset: (top, left) of the evaluated map inside ``full_shape`` (the KB offsets).

    Returns:
        ``(row0, row1, col0, col1)`` clipped to ``shape``.
    """
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
    if crop_order not in CROP_ORDERS:
        raise ValueError(f"crop_order must be one of {', '.join(CROP_ORDERS)}, got {crop_order!r}")
    h, w = shape
    if crop == "none":
        return None
    if crop == "nyu_eigen":
        r0, r1, c0, c1 = NYU_EIGEN_BOX
    elif crop_order == "kb_then_fraction" or full_shape is None or tuple(full_shape) == (h, w):
        r0, r1, c0, c1 = kitti_fraction_box(h, w, crop)
    else:
        fr0, fr1, fc0, fc1 = kitti_fraction_box(full_shape[0], full_shape[1], crop)
        top, left = offset
        r0, r1, c0, c1 = fr0 - top, fr1 - top, fc0 - left, fc1 - left
    return max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)


def crop_mask(shape: tuple[int, int], crop: str, crop_order: str = "kb_then_fraction",
              full_shape: tuple[int, int] | None = None, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(H, W) bool mask, True inside the evaluation box (all True for ``"none"``). Arguments as :func:`crop_box`."""
    box = crop_box(shape, crop, crop_order, full_shape, offset)
    if box is None:
        return np.ones(shape, dtype=bool)
    mask = np.zeros(shape, dtype=bool)
    r0, r1, c0, c1 = box
    mask[r0:r1, c0:c1] = True
    return mask
