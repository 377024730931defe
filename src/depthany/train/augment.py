"""Training augmentation: random resized square (or ``data.crop_hw`` rectangular) crops and horizontal flips.

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
from .config import ColorAugCfg, DataCfg


@dataclass(frozen=True)
class CropParams:
    """One augmentation draw.

    Attributes:
        resized: (height, width) the whole image is resized to before cropping.
        top, left: crop origin in the resized image (pixels).
        size: crop side (pixels, a multiple of 14); the crop's height when ``width`` is set.
        flip: mirror left-right after cropping.
        width: crop width for rectangular crops (``data.crop_hw``); None: square.
    """

    resized: tuple[int, int]
    top: int
    left: int
    size: int
    flip: bool
    width: int | None = None

    @property
    def crop_hw(self) -> tuple[int, int]:
        """(height, width) of the crop."""
        return self.size, self.size if self.width is None else self.width


def sample_crop(height: int, width: int, size: int | tuple[int, int], scale: tuple[float, float], hflip: float,
                rng: np.random.Generator) -> CropParams:
    """Draw crop parameters for an image of ``height`` x ``width``.

    The short side is resized to ``ceil(size * s)`` with ``s ~ U(scale)`` (aspect ratio kept, never below
    ``size``), then a ``size`` x ``size`` window is placed uniformly at random. A rectangular ``size`` = (ch, cw)
    resizes by the smallest factor that makes the image cover ``ceil(ch * s)`` x ``ceil(cw * s)`` (an image of
    exactly (ch, cw) with ``s = 1`` stays as it is: the whole frame, as ZoeDepth trains on NYUv2 and KITTI).
    """
    s = float(rng.uniform(scale[0], scale[1])) if scale[1] > scale[0] else float(scale[0])
    if not isinstance(size, int):
        ch, cw = size
        r = max(math.ceil(ch * s) / height, math.ceil(cw * s) / width)
        rh, rw = max(ch, round(height * r)), max(cw, round(width * r))
        top = int(rng.integers(0, rh - ch + 1))
        left = int(rng.integers(0, rw - cw + 1))
        flip = bool(rng.random() < hflip)
        return CropParams((rh, rw), top, left, ch, flip, cw)
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
        depth (S, S) float32 metres, valid (S, S) bool ((ch, cw) instead of (S, S) for a rectangular crop).
    """
    h, w = depth.shape
    rh, rw = p.resized
    ch, cw = p.crop_hw
    img = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    img = resize_bicubic(img, (rh, rw))[0, :, p.top:p.top + ch, p.left:p.left + cw]
    rows = nearest_source_indices(h, rh, p.top, ch)
    cols = nearest_source_indices(w, rw, p.left, cw)
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
    if data.rotate > 0:
        rgb, depth, valid = rotate_sample(rgb, depth, valid, float(rng.uniform(-data.rotate, data.rotate)))
    h, w = depth.shape
    p = sample_crop(h, w, data.crop_hw or data.crop_size, data.scale, data.hflip, rng)
    img, d, v = apply_crop(rgb, depth, valid, p)
    if data.color.p > 0 and rng.random() < data.color.p:
        img = color_augment(img, data.color, rng)
    return {"image": normalize_image(img, pre.mean, pre.std), "depth": d, "valid": v}


def rotate_sample(rgb: np.ndarray, depth: np.ndarray, valid: np.ndarray, degrees: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate a sample counter-clockwise about its centre, as ZoeDepth's ``rotate_image`` (PIL ``rotate``, same
    size): the image bilinear, depth and the valid mask nearest; pixels rotated in from outside are black and
    invalid.

    Args:
        rgb: (H, W, 3) uint8; depth: (H, W) float32 metres; valid: (H, W) bool.
    """
    from PIL import Image

    img = np.asarray(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).rotate(degrees,
                                                                                        Image.Resampling.BILINEAR))
    d = np.asarray(Image.fromarray(np.ascontiguousarray(depth, dtype=np.float32)).rotate(degrees,
                                                                                         Image.Resampling.NEAREST))
    v = np.asarray(Image.fromarray(valid.astype(np.uint8)).rotate(degrees, Image.Resampling.NEAREST)) > 0
    return img, d.astype(np.float32), v


def color_augment(img: Tensor, cfg: ColorAugCfg, rng: np.random.Generator) -> Tensor:
    """ZoeDepth's ``augment_image`` on a (3, H, W) [0, 1] image: ``img ** gamma * brightness * colour[c]``,
    clipped to [0, 1] (the image is clipped to [0, 1] first: bicubic resizing may overshoot it)."""
    gamma = float(rng.uniform(*cfg.gamma))
    brightness = float(rng.uniform(*cfg.brightness))
    colour = torch.from_numpy(rng.uniform(cfg.colour[0], cfg.colour[1], size=3).astype(np.float32))
    out = img.clamp(0, 1) ** gamma * brightness
    return (out * colour.view(3, 1, 1)).clamp(0, 1)
