"""Pure pre- and post-processing, identical to the official Depth Anything pipeline.

The official code reads BGR with OpenCV, converts to RGB, divides by 255 (float64), resizes with
``cv2.INTER_CUBIC`` (lower bound, multiple of 14), normalises with ImageNet statistics in float64 and casts to
float32. ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False, antialias=False)`` uses the same
kernel (a=-0.75) and sampling grid as ``cv2.INTER_CUBIC``, so no OpenCV is needed at run time. OpenCV computes
the sampling positions and kernel weights in float32, which moves them by ~1e-5 px; :func:`resize_cubic_cv2`
repeats that arithmetic, so :func:`preprocess` matches the official input to float64 rounding.

When OpenCV is installed (``pip install depthany[fast]``), :func:`preprocess` calls ``cv2.resize`` itself, the
official code path, ~50x faster than :func:`resize_cubic_cv2` (about 5 ms instead of 0.1-0.25 s for 640x480 ->
686x518); the two are bit-identical (tested), so the choice never changes an output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .zoo import INPUT_SIZE, PATCH_SIZE, Preprocess

_cv2: Any
try:  # optional: the official resize itself, much faster than the numpy/torch re-implementation
    import cv2 as _cv2
except ImportError:  # pragma: no cover - depends on the environment
    _cv2 = None


def constrain_to_multiple(x: float, multiple: int, min_val: int) -> int:
    """Official ``constrain_to_multiple_of``: round half to even to a multiple; ceil if that falls below min."""
    y = int(np.round(x / multiple) * multiple)
    if y < min_val:
        y = int(np.ceil(x / multiple) * multiple)
    return y


def network_size(height: int, width: int, input_size: int = INPUT_SIZE, multiple: int = PATCH_SIZE
                 ) -> tuple[int, int]:
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


def to_float_image(image: np.ndarray, dtype: str = "float64") -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) float in [0, 1]. uint16 images are scaled by 65535.

    ``dtype`` ``"float64"`` (official V1/V2: ``image / 255.0``) or ``"float32"`` (Video Depth Anything:
    ``image.astype(np.float32) / 255.0``, a float32 division).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(dtype) / 255.0
    if image.dtype == np.uint16:
        return image.astype(dtype) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(dtype)
    raise TypeError(f"unsupported image dtype {image.dtype}; expected uint8, uint16 or float")


def resize_bicubic(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize (B, C, H, W) to ``size`` like ``cv2.resize(..., INTER_CUBIC)``: a=-0.75, no antialias."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=False)


def _cv2_cubic_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (n_out, 4) int64 and weights (n_out, 4) of ``cv2.resize(INTER_CUBIC)`` along one axis.

    OpenCV: ``scale = 1 / (n_out / n_in)`` in double; ``fx = float((d + 0.5) * scale - 0.5)``; ``sx = floor(fx)``;
    the four weights (a = -0.75) are evaluated in float32 from ``fx - sx``; indices outside the image are
    clamped (replicated border).
    """
    scale = 1.0 / (n_out / n_in)
    fx = ((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    sx = np.floor(fx)
    x = (fx - sx).astype(np.float32)
    a = np.float32(-0.75)
    one = np.float32(1.0)
    c0 = ((a * (x + one) - np.float32(5) * a) * (x + one) + np.float32(8) * a) * (x + one) - np.float32(4) * a
    c1 = ((a + np.float32(2)) * x - (a + np.float32(3))) * x * x + one
    y = one - x
    c2 = ((a + np.float32(2)) * y - (a + np.float32(3))) * y * y + one
    c3 = one - c0 - c1 - c2
    idx = np.clip(sx.astype(np.int64)[:, None] + np.arange(-1, 3), 0, n_in - 1)
    return idx, np.stack([c0, c1, c2, c3], axis=1).astype(np.float64)


def resize_cubic_cv2(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize (B, C, H, W) float to ``size`` = (h, w) exactly like ``cv2.resize(img, (w, h), INTER_CUBIC)``.

    Separable, in OpenCV's order and arithmetic: four taps along W, then four along H, summed left to right,
    with OpenCV's float32 positions and weights. On float64 input the result is bit-identical to OpenCV's
    (:func:`resize_bicubic` differs by up to ~5e-5). Slower than ``F.interpolate`` (about 0.1 s for a
    640x480 image on one core); used where exactness matters (:func:`preprocess`).
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    (h, w), (in_h, in_w) = size, image.shape[-2:]
    ix, wx = _cv2_cubic_taps(in_w, w)
    iy, wy = _cv2_cubic_taps(in_h, h)
    ix_t, iy_t = torch.from_numpy(ix).to(image.device), torch.from_numpy(iy).to(image.device)
    wx_t, wy_t = torch.from_numpy(wx).to(image), torch.from_numpy(wy).to(image)
    x = image.permute(0, 2, 3, 1)  # (B, H, W, C); a free view for the HWC arrays preprocess makes
    rows = x.index_select(2, ix_t[:, 0]) * wx_t[:, 0, None]
    for k in range(1, 4):
        rows += x.index_select(2, ix_t[:, k]) * wx_t[:, k, None]  # (B, H, w, C)
    out = rows.index_select(1, iy_t[:, 0]) * wy_t[:, 0, None, None]
    for k in range(1, 4):
        out += rows.index_select(1, iy_t[:, k]) * wy_t[:, k, None, None]  # (B, h, w, C)
    return out.permute(0, 3, 1, 2)


# Above this many pixels, the float64 image is converted and resized in bands of rows (see resize_image).
BAND_PIXELS = 1 << 20  # 25 MB of float64 RGB per band


def _resize_float(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float64 or float32 -> (h, w, 3) of the same dtype with the official cubic resize (OpenCV, or
    its replica)."""
    h, w = size
    if (h, w) == rgb.shape[:2]:
        return rgb
    if _cv2 is not None:
        return np.asarray(_cv2.resize(rgb, (w, h), interpolation=_cv2.INTER_CUBIC))
    out = resize_cubic_cv2(torch.from_numpy(rgb).permute(2, 0, 1)[None], (h, w))
    return out[0].permute(1, 2, 0).numpy()


def resize_image(image: np.ndarray, size: tuple[int, int], dtype: str = "float64") -> np.ndarray:
    """(H, W, 3) RGB image -> (h, w, 3) float in [0, 1], resized exactly like the official code.

    ``dtype`` is the float type of the image during the resize: ``"float64"`` (V1/V2) or ``"float32"`` (Video
    Depth Anything, ``frame.astype(np.float32) / 255``).

    The official code converts the whole image to float64 (24 bytes a pixel: 2.6 GB for a 12000x9000 photo)
    and resizes it. The cubic resize is separable (rows first, then columns), and a pass whose size does not
    change is an exact copy (weights 0, 1, 0, 0), so for images above :data:`BAND_PIXELS` pixels the rows are
    resized band by band (each band converted to float64 on its own) and the columns afterwards: the same
    numbers bit for bit (tested), with memory bounded by one band plus an (H, w) float64 intermediate.
    """
    height, width = image.shape[:2]
    if height * width <= BAND_PIXELS or (height, width) == tuple(size):
        return _resize_float(to_float_image(image, dtype), size)
    band = max(1, BAND_PIXELS // width)
    rows = np.empty((height, size[1], 3), dtype=dtype)
    for r in range(0, height, band):
        chunk = to_float_image(image[r:r + band], dtype)
        rows[r:r + band] = _resize_float(chunk, (chunk.shape[0], size[1]))
    return _resize_float(rows, size)


def preprocess(image: np.ndarray, pre: Preprocess, input_size: int | None = None,
               size: tuple[int, int] | None = None) -> Tensor:
    """One RGB image -> normalised network input.

    Args:
        image: (H, W, 3) RGB, uint8 (or uint16 / float in [0, 1]).
        pre: the model's preprocessing numbers.
        input_size: overrides ``pre.input_size`` (test-time resolution scaling).
        size: the network (h, w) to resize to; default the official lower-bound size for ``input_size``
            (:func:`network_size`). :mod:`depthany.inference` passes the size after the token budget.

    Returns:
        (1, 3, h, w) float32 tensor with h, w multiples of 14.
    """
    if size is None:
        size = network_size(image.shape[0], image.shape[1], input_size or pre.input_size, pre.multiple)
    rgb = resize_image(image, size, pre.resize_dtype)  # float64 (V1/V2) or float32 (VDA), like the official code
    img = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    # numpy's (image - list) / list promotes a float32 image to float64 too: normalise in float64, then cast
    mean = torch.tensor(pre.mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(pre.std, dtype=torch.float64).view(1, 3, 1, 1)
    return ((img - mean) / std).float().contiguous()


def postprocess(output: Tensor, size: tuple[int, int], align_corners: bool) -> Tensor:
    """Network output (B, h, w) -> (B, H, W) at the original image size (bilinear)."""
    if tuple(output.shape[-2:]) == tuple(size):
        return output  # a same-size bilinear resize is an exact copy with either corner convention
    return F.interpolate(output[:, None], size=size, mode="bilinear", align_corners=align_corners)[:, 0]


def normalize_image(img: Tensor, mean: tuple[float, float, float], std: tuple[float, float, float]) -> Tensor:
    """(3, H, W) [0, 1] -> ``(img - mean) / std`` per channel, the network's input normalisation, in the
    image's own dtype (training and labelling batches; :func:`preprocess` normalises in float64 like the official
    inference code)."""
    m = torch.tensor(mean, dtype=img.dtype).view(3, 1, 1)
    s = torch.tensor(std, dtype=img.dtype).view(3, 1, 1)
    return (img - m) / s
