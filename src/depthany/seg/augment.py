"""The mmseg training pipeline of the Depth Anything V1 seg configs, driven by a numpy generator.

``RandomChoiceResize(scales=[int(t * 0.1 * crop) for t in tenths], resize_type='ResizeShortestEdge',
max_size=max_long_ratio * crop)`` -> ``RandomCrop(crop, cat_max_ratio)`` -> ``RandomFlip(prob)`` ->
``PhotoMetricDistortion()`` -> normalise (0-255 scale, mmseg's mean/std) -> pad to ``crop`` x ``crop``
(image 0, labels 255), as ``SegDataPreProcessor(size=crop, pad_val=0, seg_pad_val=255)`` does.

* ``ResizeShortestEdge`` (mmseg): short side to ``s``, long side ``s * long / short``; if that exceeds
  ``max_size`` both shrink by ``max_size / long``; sizes ``int(x + 0.5)``; the image bilinear, labels nearest
  (OpenCV, as mmcv);
* ``RandomCrop``: offsets uniform in ``[0, max(H - crop, 0)]``; with ``cat_max_ratio < 1`` up to 10 redraws
  until the crop holds more than one class and the most frequent labelled class is below ``cat_max_ratio`` of
  the labelled pixels (after 10 failures the last draw is kept);
* ``PhotoMetricDistortion``: each step with probability 1/2: brightness +U(-32, 32); contrast x U(0.5, 1.5)
  before or after (coin flip) saturation x U(0.5, 1.5) and hue + numpy ``randint(-18, 18)`` (i.e. -18..17,
  mod 180) in OpenCV's 8-bit HSV; every step clips to 0..255 and rounds down to uint8, as mmseg.

Randomness comes only from the generator passed in (the training stream seeds it per sample); the draws follow
the same distributions as mmseg's, not its random stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .infer import normalize

_cv2: Any
try:
    import cv2 as _cv2
except ImportError:  # pragma: no cover - depends on the environment
    _cv2 = None

IGNORE_INDEX = 255


def _need_cv2(what: str) -> Any:
    if _cv2 is None:
        raise RuntimeError(f"{what} needs OpenCV: pip install opencv-python-headless (the 'seg' extra)")
    return _cv2


def shortest_edge_size(h: int, w: int, short: int, max_size: float | None) -> tuple[int, int]:
    """mmseg ``ResizeShortestEdge._get_output_shape`` -> (new_h, new_w)."""
    size = min(h, w)
    new_h, new_w = (float(short), short * w / size) if h < w else (short * h / size, float(short))
    if max_size and max(new_h, new_w) > max_size:
        f = max_size / max(new_h, new_w)
        new_h, new_w = new_h * f, new_w * f
    return int(new_h + 0.5), int(new_w + 0.5)


def resize_pair(rgb: np.ndarray, labels: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image bilinear, labels nearest, to ``size`` = (h, w) (mmcv ``imresize`` through OpenCV)."""
    cv2 = _need_cv2("resizing training samples")
    h, w = size
    if rgb.shape[:2] == (h, w):
        return rgb, labels
    return (np.asarray(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)),
            np.asarray(cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)))


def crop_box(labels: np.ndarray, crop: int, cat_max_ratio: float, rng: np.random.Generator,
             ignore_index: int = IGNORE_INDEX) -> tuple[int, int, int, int]:
    """mmseg ``RandomCrop.crop_bbox``: (y1, y2, x1, x2), clipped to the image."""
    h, w = labels.shape

    def draw() -> tuple[int, int, int, int]:
        y = int(rng.integers(0, max(h - crop, 0) + 1))
        x = int(rng.integers(0, max(w - crop, 0) + 1))
        return y, min(y + crop, h), x, min(x + crop, w)

    box = draw()
    if cat_max_ratio < 1.0:
        for _ in range(10):
            y1, y2, x1, x2 = box
            values, counts = np.unique(labels[y1:y2, x1:x2], return_counts=True)
            counts = counts[values != ignore_index]
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
            box = draw()
    return box


def _convert(img: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    return np.clip(img.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def photometric_distortion(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """mmseg ``PhotoMetricDistortion`` with its defaults on an (H, W, 3) uint8 RGB image (module docstring)."""
    cv2 = _need_cv2("photometric distortion")
    img = rgb
    if rng.integers(2):
        img = _convert(img, beta=float(rng.uniform(-32, 32)))
    contrast_last = not rng.integers(2)  # mmseg's mode: 1 -> contrast first, 0 -> contrast last

    def contrast(x: np.ndarray) -> np.ndarray:
        return _convert(x, alpha=float(rng.uniform(0.5, 1.5))) if rng.integers(2) else x

    if not contrast_last:
        img = contrast(img)
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[:, :, 1] = _convert(hsv[:, :, 1], alpha=float(rng.uniform(0.5, 1.5)))
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.integers(2):
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + int(rng.integers(-18, 18))) % 180
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if contrast_last:
        img = contrast(img)
    return np.ascontiguousarray(img)


@dataclass(frozen=True)
class SegAugment:
    """The pipeline's settings (see :class:`depthany.train.config.SegAugCfg`)."""

    crop: int
    short_side_tenths: tuple[int, ...] = tuple(range(5, 21))
    max_long_ratio: float = 4.0
    cat_max_ratio: float = 0.75
    hflip: float = 0.5
    photometric: bool = True
    ignore_index: int = IGNORE_INDEX

    def __call__(self, rgb: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict[str, Tensor]:
        """(H, W, 3) uint8 RGB + (H, W) uint8 labels -> ``image`` (3, crop, crop) float32 normalised,
        ``labels`` (crop, crop) int64 (255 = ignore, also in the padding)."""
        if rgb.shape[:2] != labels.shape:
            raise ValueError(f"image {rgb.shape[:2]} and labels {labels.shape} sizes differ")
        tenths = self.short_side_tenths[int(rng.integers(len(self.short_side_tenths)))]
        short = int(tenths * 0.1 * self.crop)
        size = shortest_edge_size(labels.shape[0], labels.shape[1], short, self.max_long_ratio * self.crop)
        img, lab = resize_pair(rgb, labels, size)
        y1, y2, x1, x2 = crop_box(lab, self.crop, self.cat_max_ratio, rng, self.ignore_index)
        img, lab = img[y1:y2, x1:x2], lab[y1:y2, x1:x2]
        if rng.random() < self.hflip:
            img, lab = img[:, ::-1], lab[:, ::-1]
        img = np.ascontiguousarray(img)
        if self.photometric:
            img = photometric_distortion(img, rng)
        x = normalize(img)[0]
        h, w = lab.shape
        image = torch.zeros((3, self.crop, self.crop), dtype=torch.float32)
        image[:, :h, :w] = x
        target = torch.full((self.crop, self.crop), self.ignore_index, dtype=torch.int64)
        target[:h, :w] = torch.from_numpy(np.ascontiguousarray(lab).astype(np.int64))
        return {"image": image, "labels": target}
