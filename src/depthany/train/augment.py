"""Training augmentation: random resized square crops (multiple of 14) and horizontal flips.

The image is resized with the inference kernel (bicubic, a=-0.75, no antialias; see
:func:`depthany.transforms.resize_bicubic`). Depth and the valid mask use nearest-neighbour sampling with
OpenCV's index rule ``src = floor(dst * src_size / dst_size)``, so no depth value is ever interpolated across an
object edge: every output depth is one of the input depths.

All randomness comes from the ``numpy.random.Generator`` passed in, which the data pipeline seeds from the
recipe seed and the sample's position in the data stream: a sample's augmentation depends on nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..transforms import normalize_image, resize_bicubic
from ..zoo import Preprocess
from .config import DataCfg


@dataclass(frozen=True)
class CropParams:
    """One augmentation draw.

    Attributes:
        resized: (height, width) the whole image is resized to before cropping.
        top, left: crop origin in the resized image (pixels).
        size: crop side (pixels, a multiple of 14).
        flip: mirror left-right after cropping.
    """

    resized: tuple[int, int]
    top: int
    left: int
    size: int
    flip: bool


def sample_crop(height: int, width: int, size: int, scale: tuple[float, float], hflip: float,
                rng: np.random.Generator) -> CropParams:
    """Draw crop parameters for an image of ``height`` x ``width``.

    The short side is resized to ``ceil(size * s)`` with ``s ~ U(scale)`` (aspect ratio kept, never below
    ``size``), then a ``size`` x ``size`` window is placed uniformly at random.
    """
    s = float(rng.uniform(scale[0], scale[1])) if scale[1] > scale[0] else float(scale[0])
    short = max(size, math.ceil(size * s))
    r = short / min(height, width)
    rh, rw = max(size, round(height * r)), max(size, round(width * r))
    top = int(rng.integers(0, rh - size + 1))
    left = int(rng.integers(0, rw - size + 1))
    flip = bool(rng.random() < hflip)
    return CropParams((rh, rw), top, left, size, flip)


def nearest_source_indices(src: int, dst: int, start: int, count: int) -> np.ndarray:
    """Source indices of output pixels ``start .. start+count-1`` when resizing ``src`` -> ``dst`` pixels
    with nearest-neighbour sampling (OpenCV ``INTER_NEAREST``: floor(i * src / dst), computed in float64)."""
    i = np.arange(start, start + count, dtype=np.float64)
    return np.minimum(np.floor(i * (src / dst)).astype(np.int64), src - 1)


def apply_crop(rgb: np.ndarray, depth: np.ndarray, valid: np.ndarray,
               p: CropParams) -> tuple[Tensor, Tensor, Tensor]:
    """Apply :class:`CropParams` to one sample.

    Args:
        rgb: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 metres.
        valid: (H, W) bool.

    Returns:
        image (3, S, S) float32 in about [0, 1] (bicubic may overshoot slightly, as at inference),
        depth (S, S) float32 metres, valid (S, S) bool.
    """
    h, w = depth.shape
    rh, rw = p.resized
    img = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    img = resize_bicubic(img, (rh, rw))[0, :, p.top:p.top + p.size, p.left:p.left + p.size]
    rows = nearest_source_indices(h, rh, p.top, p.size)
    cols = nearest_source_indices(w, rw, p.left, p.size)
    d = depth[np.ix_(rows, cols)]
    v = valid[np.ix_(rows, cols)]
    if p.flip:
        img = img.flip(-1)
        d, v = d[:, ::-1], v[:, ::-1]
    return (img.contiguous(), torch.from_numpy(np.ascontiguousarray(d, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(v, dtype=bool)))


def training_sample(rgb: np.ndarray, depth: np.ndarray, valid: np.ndarray, data: DataCfg, pre: Preprocess,
                    rng: np.random.Generator) -> dict[str, Tensor]:
    """One supervised sample as every RGB-D source serves it: a crop drawn with the recipe's ``data.crop_size``,
    ``data.scale`` and ``data.hflip`` (:func:`sample_crop`), applied (:func:`apply_crop`), the image normalised.

    Returns:
        ``image`` (3, S, S) float32 normalised, ``depth`` (S, S) float32 metres, ``valid`` (S, S) bool.
    """
    h, w = depth.shape
    p = sample_crop(h, w, data.crop_size, data.scale, data.hflip, rng)
    img, d, v = apply_crop(rgb, depth, valid, p)
    return {"image": normalize_image(img, pre.mean, pre.std), "depth": d, "valid": v}
