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

Work per image is bounded (:func:`fit_view`, what ``depthany segment --max-tokens`` sets):

* one network pass sees at most ``max_tokens`` patch tokens (``ceil(h / 14) * ceil(w / 14)``; default
  :data:`depthany.budget.DEFAULT_MAX_TOKENS`, 8x a 518x518 input): a sliding window is at most ``crop`` x ``crop``
  (a crop above the budget is refused: :class:`~depthany.budget.InputBudgetError`), and a ``whole`` view above it
  is shrunk, aspect kept, to fit (``None``: no token budget);
* one view (the resized image the windows tile) has at most :data:`MAX_VIEW_PIXELS` pixels and a (C, h, w) score
  map of at most :data:`MAX_SCORE_ELEMENTS` values; a larger view is shrunk to fit (the V1 test settings never
  are: 3584 x 896 x 150 ADE20K classes is below the limit), so a view needs at most
  ``(h_grids * w_grids)`` windows of bounded size;
* views: one, or ``len(ratios)`` x 2 with ``flip``;
* the labels at the input size are assembled in bands of rows once the (C, H, W) map would pass
  :data:`BAND_ELEMENTS` values (:func:`segment`), so memory does not grow with classes x input pixels.
  :func:`segment_scores` returns that full map and refuses inputs above :data:`MAX_SCORE_ELEMENTS`.

A shrunk view changes the result (mmseg would run it at full size); :func:`segment_with_notes` says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..budget import DEFAULT_MAX_TOKENS, InputBudgetError, check_max_tokens
from .model import SegmentationModel
from .spec import MEAN_255, STD_255, InferenceCfg

_cv2: Any
try:  # the resize mmseg uses (mmcv.imresize -> cv2.resize INTER_LINEAR)
    import cv2 as _cv2
except ImportError:  # pragma: no cover - depends on the environment
    _cv2 = None

MAX_SCORE_ELEMENTS = 1 << 29  # classes x height x width of one score map (2 GiB of float32)
MAX_VIEW_PIXELS = 1 << 24  # 16.8 Mpx: 4096 x 4096, twice Cityscapes' 2048 x 1024 on each side
BAND_ELEMENTS = 1 << 25  # above this many (C, H, W) values the labels are assembled in bands of rows


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


# ------------------------------------------------------------------------------------------------ the bounds


def _tokens(h: int, w: int, patch: int = 14) -> int:
    return math.ceil(h / patch) * math.ceil(w / patch)


def check_window(cfg: InferenceCfg, max_tokens: int | None, patch: int = 14) -> None:
    """Refuse sliding windows larger than the token budget.

    Raises:
        InputBudgetError: ``crop`` x ``crop`` needs more than ``max_tokens`` tokens (naming both).
    """
    if cfg.mode == "slide" and max_tokens is not None and _tokens(cfg.crop, cfg.crop, patch) > max_tokens:
        raise InputBudgetError(f"a {cfg.crop}x{cfg.crop} sliding window (crop) needs {_tokens(cfg.crop, cfg.crop):,} "
                               f"tokens, above the budget of {max_tokens:,} (max_tokens); lower the crop or raise "
                               "the budget")


def fit_view(size: tuple[int, int], classes: int, cfg: InferenceCfg, max_tokens: int | None = DEFAULT_MAX_TOKENS,
             patch: int = 14) -> tuple[int, int]:
    """The size a view actually runs at: ``size`` unless it passes a bound of the module docstring, else the
    largest size of the same aspect (sides rounded down, at least 1) within every bound."""
    h, w = size
    scale = 1.0
    scale = min(scale, math.sqrt(MAX_VIEW_PIXELS / (h * w)), math.sqrt(MAX_SCORE_ELEMENTS / (classes * h * w)))
    if cfg.mode == "whole" and max_tokens is not None and _tokens(h, w, patch) > max_tokens:
        scale = min(scale, math.sqrt(max_tokens / ((h / patch) * (w / patch))))
    if scale >= 1.0:
        return size
    nh, nw = max(1, int(h * scale)), max(1, int(w * scale))
    while cfg.mode == "whole" and max_tokens is not None and _tokens(nh, nw, patch) > max_tokens and max(nh, nw) > 1:
        scale *= 0.98  # a partial patch counts as a token (the view is padded to 14): shrink a little more
        nh, nw = max(1, int(h * scale)), max(1, int(w * scale))
    return nh, nw


# ------------------------------------------------------------------------------------------------ one view


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


def view_logits(model: SegmentationModel, rgb: np.ndarray, cfg: InferenceCfg, size: tuple[int, int],
                flip: bool = False) -> Tensor:
    """One test view at its own resolution: resize ``rgb`` to ``size``, (flip), normalise, pad, run, remove the
    padding, un-flip. Returns (C, h, w) float32 scores (``size``; before any softmax)."""
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
    return scores[0]


def view_scores(model: SegmentationModel, rgb: np.ndarray, cfg: InferenceCfg, size: tuple[int, int],
                flip: bool = False) -> Tensor:
    """One test view post-processed to the original size (``postprocess_result``): (C, H, W) float32."""
    h0, w0 = rgb.shape[:2]
    _check_size(model.spec.num_classes, h0, w0)
    scores = view_logits(model, rgb, cfg, size, flip)
    if scores.shape[-2:] != (h0, w0):
        scores = F.interpolate(scores[None], size=(h0, w0), mode="bilinear", align_corners=False)[0]
    return scores


# ------------------------------------------------------------------------------------------------ all views


@dataclass
class SegNotes:
    """What a call did: the views as (size asked for, size run at, flipped), and whether any was shrunk."""

    views: list[dict[str, Any]] = field(default_factory=list)

    @property
    def shrunk(self) -> bool:
        return any(v["size"] != v["ran_at"] for v in self.views)

    def note(self, image_size: tuple[int, int]) -> str:
        """One line for stderr when a view was shrunk."""
        v = next(v for v in self.views if v["size"] != v["ran_at"])
        (h, w), (ah, aw), (rh, rw) = image_size, v["size"], v["ran_at"]
        return (f"{w}x{h} image: the {aw}x{ah} view passes the work bound (--max-tokens, or the view and score-map "
                f"limits of docs/segmentation.md); ran at {rw}x{rh}, labels still {w}x{h}")


def _views(model: SegmentationModel, rgb: np.ndarray, cfg: InferenceCfg, max_tokens: int | None,
           notes: SegNotes) -> list[Tensor]:
    """Every view's (C, h, w) scores at its own resolution, in mmseg's order (ratios, then flip)."""
    h, w = rgb.shape[:2]
    check_window(cfg, max_tokens, model.patch_size)
    if cfg.ratios:
        sizes = [ratio_size(h, w, r) for r in cfg.ratios]
    else:
        sizes = [rescale_size(h, w, cfg.resize) if cfg.resize else (h, w)]
    out = []
    for size in sizes:
        ran_at = fit_view(size, model.spec.num_classes, cfg, max_tokens, model.patch_size)
        for flip in ((False, True) if cfg.flip else (False,)):
            out.append(view_logits(model, rgb, cfg, ran_at, flip))
            notes.views.append({"size": size, "ran_at": ran_at, "flip": flip})
    return out


def _merged(views: list[Tensor], size: tuple[int, int], multi: bool) -> Tensor:
    """(C, H, W) at ``size``: one view's raw scores, or the mean of the views' softmax probabilities."""
    total: Tensor | None = None
    for v in views:
        full = v if v.shape[-2:] == size else F.interpolate(v[None], size=size, mode="bilinear",
                                                              align_corners=False)[0]
        part = full.softmax(dim=0) if multi else full
        total = part if total is None else total + part
    assert total is not None
    return total / len(views) if multi else total


def _rows_of(v: Tensor, height: int, width: int, y0: int, y1: int) -> Tensor:
    """Rows ``y0:y1`` of ``v`` (C, h, w) resized bilinearly (``align_corners=False``) to (C, height, width).

    The rows are interpolated here with PyTorch's source-index rule (float32 ``scale * (y + 0.5) - 0.5``, clamped
    at 0), the columns by ``F.interpolate`` on the band: the same weights as one ``F.interpolate`` of the whole
    map, with float rounding that can differ in the last bit.
    """
    h = v.shape[-2]
    if h == height:
        band = v[:, y0:y1]
    else:
        scale = torch.tensor(h, dtype=torch.float32) / height
        src = (scale * (torch.arange(y0, y1, dtype=torch.float32) + 0.5) - 0.5).clamp(min=0)
        lo = src.floor().long().clamp(max=h - 1)
        hi = (lo + 1).clamp(max=h - 1)
        lam = (src - lo.float()).view(1, -1, 1)
        band = (1 - lam) * v[:, lo] + lam * v[:, hi]
    if band.shape[-1] != width:
        band = F.interpolate(band[None], size=(band.shape[-2], width), mode="bilinear", align_corners=False)[0]
    return band


def _labels(views: list[Tensor], size: tuple[int, int], multi: bool) -> np.ndarray:
    """(H, W) uint8 argmax of :func:`_merged`, in bands of rows when the full map would be large."""
    c = views[0].shape[0]
    h, w = size
    if c * h * w <= BAND_ELEMENTS:
        return _merged(views, size, multi).argmax(dim=0).to(torch.uint8).cpu().numpy()
    out = np.empty((h, w), np.uint8)
    rows = max(1, BAND_ELEMENTS // (c * w))
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        total: Tensor | None = None
        for v in views:
            part = _rows_of(v, h, w, y0, y1)
            part = part.softmax(dim=0) if multi else part
            total = part if total is None else total + part
        assert total is not None
        out[y0:y1] = (total / len(views) if multi else total).argmax(dim=0).to(torch.uint8).cpu().numpy()
    return out


def segment_scores(model: SegmentationModel, rgb: np.ndarray, cfg: InferenceCfg | None = None,
                   max_tokens: int | None = DEFAULT_MAX_TOKENS, notes: SegNotes | None = None) -> Tensor:
    """(C, H, W) scores at the image size: one view's raw scores, or with ratios / flip the mean of the views'
    softmax probabilities (mmseg ``SegTTAModel.merge_preds``).

    Raises:
        ValueError: the (C, H, W) map would pass :data:`MAX_SCORE_ELEMENTS` (use :func:`segment` for labels).
        InputBudgetError: sliding windows above ``max_tokens``.
    """
    cfg = cfg or model.spec.inference
    h, w = rgb.shape[:2]
    _check_size(model.spec.num_classes, h, w)
    views = _views(model, rgb, cfg, max_tokens, notes if notes is not None else SegNotes())
    return _merged(views, (h, w), bool(cfg.ratios or cfg.flip))


def segment_with_notes(model: SegmentationModel, rgb: np.ndarray, cfg: InferenceCfg | None = None,
                       max_tokens: int | None = DEFAULT_MAX_TOKENS) -> tuple[np.ndarray, SegNotes]:
    """(H, W, 3) uint8 RGB -> ((H, W) uint8 class indices, what ran): the argmax of :func:`segment_scores`,
    within the bounds of the module docstring for any input size.

    Raises:
        InputBudgetError: sliding windows above ``max_tokens``; ValueError: ``max_tokens`` not a positive integer.
    """
    if max_tokens is not None:
        check_max_tokens(max_tokens)
    cfg = cfg or model.spec.inference
    notes = SegNotes()
    views = _views(model, rgb, cfg, max_tokens, notes)
    return _labels(views, rgb.shape[:2], bool(cfg.ratios or cfg.flip)), notes


def segment(model: SegmentationModel, rgb: np.ndarray, cfg: InferenceCfg | None = None,
            max_tokens: int | None = DEFAULT_MAX_TOKENS) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 class indices (:func:`segment_with_notes` without the notes)."""
    return segment_with_notes(model, rgb, cfg, max_tokens)[0]
