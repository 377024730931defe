"""Pure pre- and post-processing, identical to the official Depth Anything pipeline.

The official code reads BGR with OpenCV, converts to RGB, divides by 255 (float64), resizes with
``cv2.INTER_CUBIC`` (lower bound, multiple of 14), normalises with ImageNet statistics in float64 and casts to
float32. ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False, antialias=False)`` uses the same
kernel (a=-0.75) and sampling grid as ``cv2.INTER_CUBIC``, so no OpenCV is needed at run time.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .zoo import Preprocess


def constrain_to_multiple(x: float, multiple: int, min_val: int) -> int:
    """Official ``constrain_to_multiple_of``: round half to even to a multiple; ceil if that falls below min."""
    y = int(np.round(x / multiple) * multiple)
    if y < min_val:
        y = int(np.ceil(x / multiple) * multiple)
    return y


def network_size(height: int, width: int, input_size: int = 518, multiple: int = 14) -> tuple[int, int]:
    """Network input (height, width) for an image: lower-bound resize, both sides >= input_size.

    Example: a 480x640 (HxW) image becomes 518x686 at input size 518.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if input_size < multiple or input_size % multiple:
        raise ValueError(f"input_size must be a positive multiple of {multiple}, got {input_size}")
    scale_h, scale_w = input_size / height, input_size / width
    scale = max(scale_h, scale_w)  # lower bound: the shorter side maps to input_size
    return (constrain_to_multiple(scale * height, multiple, input_size),
            constrain_to_multiple(scale * width, multiple, input_size))


def to_float_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) float64 in [0, 1]. uint16 images are scaled by 65535."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float64) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float64)
    raise TypeError(f"unsupported image dtype {image.dtype}; expected uint8, uint16 or float")


def resize_bicubic(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize (B, C, H, W) to ``size`` like ``cv2.resize(..., INTER_CUBIC)``: a=-0.75, no antialias."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=False)


def preprocess(image: np.ndarray, pre: Preprocess, input_size: int | None = None) -> Tensor:
    """One RGB image -> normalised network input.

    Args:
        image: (H, W, 3) RGB, uint8 (or uint16 / float in [0, 1]).
        pre: the model's preprocessing numbers.
        input_size: overrides ``pre.input_size`` (test-time resolution scaling).

    Returns:
        (1, 3, h, w) float32 tensor with h, w multiples of 14 and >= input size.
    """
    size = input_size or pre.input_size
    img = torch.from_numpy(to_float_image(image)).permute(2, 0, 1)[None]  # float64, like the official path
    h, w = network_size(img.shape[2], img.shape[3], size, pre.multiple)
    img = resize_bicubic(img, (h, w))
    mean = torch.tensor(pre.mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(pre.std, dtype=torch.float64).view(1, 3, 1, 1)
    return ((img - mean) / std).float().contiguous()


def postprocess(output: Tensor, size: tuple[int, int], align_corners: bool) -> Tensor:
    """Network output (B, h, w) -> (B, H, W) at the original image size (bilinear)."""
    if tuple(output.shape[-2:]) == tuple(size):
        return output  # a same-size bilinear resize is an exact copy with either corner convention
    return F.interpolate(output[:, None], size=size, mode="bilinear", align_corners=align_corners)[:, 0]
