"""Whole-image, sliding-window and multi-scale + flip segmentation, with mmsegmentation's semantics.

Single view (mmseg ``EncoderDecoder.predict`` with the V1 test pipeline):

1. ``Resize(scale=(long, short), keep_ratio=True)``: scale factor ``min(long / max(h, w), short / min(h, w))``,
   new size ``int(side * factor + 0.5)`` (mmcv ``rescale_size``), bilinear (``cv2.INTER_LINEAR`` through
   ``mmcv.imresize``; without OpenCV a float bilinear resize, which differs by rounding);
2. normalise in float32 on the 0-255 scale, ``(x - 255 mean) / (255 std)``; optionally zero-pad (bottom/right)
   to a multiple of ``size_divisor``;
3. ``whole``: one pass; ``slide`` (``EncoderDecoder.slide_inference``): windows of ``crop`` every ``stride``
   pixels, ``h_grids = max(H - crop + stride - 1, 0) // stride + 1``, each window clipped to the image and
   shifted back inside (``y1 = max(min(y1 + crop, H) - crop, 0)``), so windows are never padded and a side
   shorter than ``crop`` is used whole; the per-window scores are summed into the image and divided by the
   number of windows covering each pixel;
4. ``postprocess_result``: remove the padding, un-flip, resize the scores to the original size (bilinear,
   ``align_corners=False``), argmax over classes.

Multi-scale + flip (mmseg ``TestTimeAug`` + ``SegTTAModel.merge_preds``): each ratio resizes the *original*
image (``Resize(scale_factor=r, keep_ratio=True)``), each view is also run mirrored when ``flip``; the views'
scores, each post-processed to the original size, go through a softmax over classes and are averaged; argmax.

Work per image is bounded: the network only ever sees one window of at most ``crop`` x ``crop`` (slide) or the
resized image (whole); the (C, H, W) score maps must stay under :data:`MAX_SCORE_ELEMENTS`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .model import SegmentationModel
from .spec import MEAN_255, STD_255, InferenceCfg

_cv2: Any
try:  # the resize mmseg uses (mmcv.imresize -> cv2.resize INTER_LINEAR)
    import cv2 as _cv2
except ImportError:  # pragma: no cover - depends on the environment
    _cv2 = None

MAX_SCORE_ELEMENTS = 1 << 30  # classes x height x width of one score map (4 GiB of float32)


def rescale_size(h: int, w: int, scale: tuple[int, int]) -> tuple[int, int]:
    """mmcv ``rescale_size`` for ``keep_ratio``: (new_h, new_w) fitting ``scale`` = (long, short) edges."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def ratio_size(h: int, w: int, ratio: float) -> tuple[int, int]:
    """mmcv ``Resize(scale_factor=ratio, keep_ratio=True)``: the target scale, then ``rescale_size`` to it."""
    target = (int(w * ratio + 0.5), int(h * ratio + 0.5))
    return rescale_size(h, w, (max(target), min(target)))


def resize_image(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 = ``size``, bilinear (OpenCV when installed, as mmcv)."""
    h, w = size
    if rgb.shape[:2] == (h, w):
        return rgb
    if _cv2 is not None:
        return np.asarray(_cv2.resize(rgb, (w, h), interpolation=_cv2.INTER_LINEAR))
    t = torch.from_numpy(np.require(rgb, requirements=["C", "W"])).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def normalize(rgb: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 ``(x - 255 mean) / (255 std)`` (mmseg's data preprocessor)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    x = torch.from_numpy(np.require(rgb, requirements=["C", "W"])).permute(2, 0, 1)[None].float()
    mean = torch.tensor(MEAN_255, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD_255, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def _check_size(classes: int, h: int, w: int) -> None:
    if classes * h * w > MAX_SCORE_ELEMENTS:
        raise ValueError(f"a {w}x{h} image with {classes} classes needs {classes * h * w:,} score values, above the "
                         f"limit of {MAX_SCORE_ELEMENTS:,}; resize it first (InferenceCfg.resize)")


@torch.no_grad()
def slide_scores(model: SegmentationModel, x: Tensor, crop: int, stride: int) -> Tensor:
    """mmseg ``slide_inference``: (B, 3, H, W) normalised -> (B, C, H, W) count-averaged window scores."""
    b, _, h, w = x.shape
    c = model.spec.num_classes
    _check_size(c, h, w)
    h_grids = max(h - crop + stride - 1, 0) // stride + 1
    w_grids = max(w - crop + stride - 1, 0) // stride + 1
    preds = x.new_zeros((b, c, h, w))
    count = x.new_zeros((b, 1, h, w))
    for hi in range(h_grids):
        for wi in range(w_grids):
            y1, x1 = hi * stride, wi * stride
            y2, x2 = min(y1 + crop, h), min(x1 + crop, w)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            preds[:, :, y1:y2, x1:x2] += model.seg_logits(x[:, :, y1:y2, x1:x2])
            count[:, :, y1:y2, x1:x2] += 1
    return preds / count


@torch.no_grad()
def whole_scores(model: SegmentationModel, x: Tensor) -> Tensor:
    """mmseg ``whole_inference``: (B, 3, H, W) -> (B, C, H, W)."""
    _check_size(model.spec.num_classes, x.shape[-2], x.shape[-1])
    return model.seg_logits(x)


def view_scores(model: SegmentationModel, rgb: np.ndarray, cfg: InferenceCfg, size: tuple[int, int],
                flip: bool = False) -> Tensor:
    """One test view: resize ``rgb`` to ``size``, (flip), normalise, pad, run, then post-process back to the
    original size. Returns (C, H, W) float32 scores (before any softmax)."""
    h0, w0 = rgb.shape[:2]
    _check_size(model.spec.num_classes, h0, w0)
    img = resize_image(rgb, size)
    if flip:
        img = np.ascontiguousarray(img[:, ::-1])
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    x = normalize(img)
    h, w = x.shape[-2:]
    if cfg.size_divisor:
        d = cfg.size_divisor
        x = F.pad(x, (0, math.ceil(w / d) * d - w, 0, math.ceil(h / d) * d - h))
    x = x.to(device=device, dtype=dtype)
    scores = slide_scores(model, x, cfg.crop, cfg.stride) if cfg.mode == "slide" else whole_scores(model, x)
    scores = scores[:, :, :h, :w].float()
    if flip:
        scores = scores.flip(-1)
    if (h, w) != (h0, w0):
        scores = F.interpolate(scores, size=(h0, w0), mode="bilinear", align_corners=False)
    return scores[0]


def segment_scores(model: SegmentationModel, rgb: np.ndarray, cfg: InferenceCfg | None = None) -> Tensor:
    """(C, H, W) scores at the image size: one view's raw scores, or with ratios / flip the mean of the views'
    softmax probabilities (mmseg ``SegTTAModel.merge_preds``)."""
    cfg = cfg or model.spec.inference
    h, w = rgb.shape[:2]
    if not cfg.ratios and not cfg.flip:
        size = rescale_size(h, w, cfg.resize) if cfg.resize else (h, w)
        return view_scores(model, rgb, cfg, size)
    sizes = [ratio_size(h, w, r) for r in cfg.ratios] if cfg.ratios else \
        [rescale_size(h, w, cfg.resize) if cfg.resize else (h, w)]
    total: Tensor | None = None
    views = 0
    for size in sizes:
        for flip in ((False, True) if cfg.flip else (False,)):
            probs = view_scores(model, rgb, cfg, size, flip).softmax(dim=0)
            total = probs if total is None else total + probs
            views += 1
    assert total is not None
    return total / views


def segment(model: SegmentationModel, rgb: np.ndarray, cfg: InferenceCfg | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 class indices (argmax of :func:`segment_scores`)."""
    return segment_scores(model, rgb, cfg).argmax(dim=0).to(torch.uint8).cpu().numpy()
