"""Depth Anything 3 preprocessing, as pure functions (the official ``InputProcessor``,
``utils/io/input_processor.py``).

For ``process_res_method="upper_bound_resize"`` (the default of ``DepthAnything3.inference``, process_res 504):

1. the 8-bit RGB image's longest side is scaled to 504 (sides ``int(round(side * 504 / longest))``, Python's
   round-half-even), with OpenCV on the uint8 image: ``INTER_CUBIC`` when enlarging, ``INTER_AREA`` when
   shrinking; nothing happens when the longest side is already 504;
2. each side goes to the nearest multiple of 14 (ties upwards) by a second OpenCV resize of the uint8 result:
   ``INTER_CUBIC`` if either side grows, else ``INTER_AREA``;
3. ``/ 255`` and ImageNet ``(x - mean) / std``, all in float32.

``lower_bound_resize`` scales the shortest side instead; the ``*_crop`` methods replace step 2 by a centre crop
to the multiple of 14 below. OpenCV is required (``pip install depthany[da3]``): its 8-bit resize is what the
official code runs, and no re-implementation here would be bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import zoo

_cv2: Any
try:
    import cv2 as _cv2
except ImportError:  # pragma: no cover - depends on the environment
    _cv2 = None


@dataclass(frozen=True)
class ResizePlan:
    """How one image becomes network input: sizes are (height, width) in pixels.

    Attributes:
        image: the original size.
        bounded: after the bound resize (step 1).
        final: the processing resolution (multiples of 14).
        method: the ``process_res_method``.
        enlarge: whether step 1 enlarges (bound scale > 1: cubic) or shrinks (area).
        crop: (top, left) offset of the centre crop of ``*_crop`` methods, (0, 0) otherwise.
    """

    image: tuple[int, int]
    bounded: tuple[int, int]
    final: tuple[int, int]
    method: str = "upper_bound_resize"
    enlarge: bool = False
    crop: tuple[int, int] = (0, 0)


def nearest_multiple(x: int, p: int) -> int:
    """The multiple of ``p`` nearest to ``x``, the larger one on ties (never below ``p``)."""
    down = (x // p) * p
    up = down + p
    return max(p, up if abs(up - x) <= abs(x - down) else down)


def _check_method(method: str) -> None:
    if method == "lower_bound" or method not in zoo.RESIZE_RULES:
        raise ValueError(f"process_res_method must be one of upper_bound_resize, upper_bound_crop, "
                         f"lower_bound_resize, lower_bound_crop; got {method!r}")


def plan_resize(height: int, width: int, process_res: int = 504, method: str = "upper_bound_resize",
                patch: int = 14) -> ResizePlan:
    """The official sizes for an image of ``height`` x ``width``.

    Example: 480 x 640 with upper_bound_resize -> bounded 378 x 504 -> final 378 x 504 (27 x 36 patches);
    1000 x 700 -> bounded 504 x 353 -> final 504 x 350.

    Raises:
        ValueError: non-positive sizes or an unknown method.
    """
    _check_method(method)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if process_res < 1:
        raise ValueError(f"process_res must be positive, got {process_res}")
    side = max(height, width) if method.startswith("upper") else min(height, width)
    h1, w1 = height, width
    if side != process_res:
        scale = process_res / float(side)
        h1, w1 = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
    enlarge = process_res > side
    if method.endswith("resize"):
        final = (nearest_multiple(h1, patch), nearest_multiple(w1, patch))
        return ResizePlan((height, width), (h1, w1), final, method, enlarge)
    h2, w2 = (h1 // patch) * patch, (w1 // patch) * patch
    if h2 < patch or w2 < patch:
        raise ValueError(f"{height}x{width} is too small for {method} at {process_res} (a side below {patch} px)")
    return ResizePlan((height, width), (h1, w1), (h2, w2), method, enlarge, ((h1 - h2) // 2, (w1 - w2) // 2))


def _resize_u8(img: np.ndarray, size: tuple[int, int], enlarge: bool) -> np.ndarray:
    if _cv2 is None:
        raise ImportError("Depth Anything 3 preprocessing needs OpenCV (the official 8-bit INTER_AREA / INTER_CUBIC "
                          "resize): pip install 'depthany[da3]'")
    interp = _cv2.INTER_CUBIC if enlarge else _cv2.INTER_AREA
    return _cv2.resize(img, (size[1], size[0]), interpolation=interp)


def resize_image(image: np.ndarray, plan: ResizePlan) -> np.ndarray:
    """Steps 1-2: (H, W, 3) uint8 -> (h, w, 3) uint8 at ``plan.final``."""
    img = image
    if plan.bounded != plan.image:
        img = _resize_u8(img, plan.bounded, plan.enlarge)
    if plan.final != plan.bounded:
        if plan.method.endswith("crop"):
            top, left = plan.crop
            img = img[top:top + plan.final[0], left:left + plan.final[1]]
        else:
            grows = plan.final[0] > plan.bounded[0] or plan.final[1] > plan.bounded[1]
            img = _resize_u8(img, plan.final, grows)
    return np.ascontiguousarray(img)


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """An (H, W, 3) uint8 RGB array (what the official code feeds OpenCV).

    Raises:
        TypeError / ValueError: naming ``name``, for other dtypes or shapes.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise TypeError(f"{name}: Depth Anything 3 reads 8-bit images (uint8), got {image.dtype}")
    return image


def normalize(image: np.ndarray, pre: zoo.Preprocess = zoo.DA3_PRE) -> Tensor:
    """Step 3: (h, w, 3) uint8 -> (3, h, w) float32 ``(x / 255 - mean) / std``, computed in float32."""
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).to(torch.float32).div(255)
    mean = torch.tensor(pre.mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(pre.std, dtype=torch.float32)[:, None, None]
    return (t - mean) / std


def preprocess(image: np.ndarray, pre: zoo.Preprocess = zoo.DA3_PRE, process_res: int | None = None
               ) -> tuple[Tensor, ResizePlan]:
    """One 8-bit RGB image -> (normalised (3, h, w) float32 network input, the plan that made it).

    Args:
        image: (H, W, 3) uint8 RGB.
        pre: the model's preprocessing (``pre.resize`` is the official ``process_res_method``).
        process_res: overrides ``pre.input_size`` (504).
    """
    check_image(image)
    plan = plan_resize(image.shape[0], image.shape[1], process_res or pre.input_size, pre.resize, pre.multiple)
    return normalize(resize_image(image, plan), pre), plan


def scale_intrinsics(k: np.ndarray, plan: ResizePlan) -> np.ndarray:
    """Intrinsics of the original image -> of the processing resolution, as the official code updates them.

    Rows are scaled (fx, skew, cx by the width ratio; fy, cy by the height ratio) once per resize, in the
    array's dtype; a crop shifts cx, cy.

    Args:
        k: (3, 3) or (N, 3, 3) pinhole intrinsics in pixels of ``plan.image``.
    """
    out = np.array(k, copy=True)
    (h0, w0), (h1, w1), (h2, w2) = plan.image, plan.bounded, plan.final
    out[..., 0, :] *= w1 / float(w0)
    out[..., 1, :] *= h1 / float(h0)
    if plan.method.endswith("crop"):
        out[..., 0, 2] -= plan.crop[1]
        out[..., 1, 2] -= plan.crop[0]
    else:
        out[..., 0, :] *= w2 / float(w1)
        out[..., 1, :] *= h2 / float(h1)
    return out
