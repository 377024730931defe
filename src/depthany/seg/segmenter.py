"""``Segmenter``: numpy / files in, label maps out; the segmentation counterpart of ``DepthPredictor``.

::

    from depthany.seg import Segmenter

    seg = Segmenter.from_weights("runs/seg/final.safetensors")            # spec, classes, test settings inside
    result = seg.segment("street.jpg")                                    # the file's inference settings
    result = seg.segment(rgb, mode="slide", crop=518, stride=341)         # or override them per call
    result.labels   # (H, W) uint8 class indices;  result.color(), result.overlay(rgb)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..budget import DEFAULT_MAX_TOKENS, check_max_tokens
from ..data.classes import ClassTable
from ..io.image import as_rgb
from .infer import SegNotes, check_window, segment_scores, segment_with_notes
from .model import SegmentationModel
from .spec import InferenceCfg, SegSpec
from .weights import load_seg_model


@dataclass
class SegResult:
    """One segmented image.

    Attributes:
        labels: (H, W) uint8 class indices (argmax), the input's size.
        classes: what the indices mean (names, colours).
        scores: (C, H, W) float32 per-class scores when requested (raw single-view scores, or averaged
            softmax probabilities with multi-scale / flip), else None.
        inference: the settings used.
        notes: the views as run (their sizes; ``notes.shrunk`` when the work bound made one smaller).
    """

    labels: np.ndarray
    classes: ClassTable
    scores: np.ndarray | None = None
    inference: InferenceCfg | None = None
    notes: SegNotes | None = None

    def color(self) -> np.ndarray:
        """(H, W, 3) uint8 picture: each pixel in its class colour."""
        return self.classes.colorize(self.labels)

    def overlay(self, rgb: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        """(H, W, 3) uint8: ``(1 - alpha) * rgb + alpha * colours``, rounded.

        Raises:
            ValueError: ``rgb`` is not an (H, W, 3) image of the labels' size, or ``alpha`` outside [0, 1].
        """
        if rgb.shape != self.labels.shape + (3,):
            raise ValueError(f"overlay needs an (H, W, 3) image of the labels' size {self.labels.shape}, got {rgb.shape}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        mixed = (1 - alpha) * rgb.astype(np.float64) + alpha * self.color().astype(np.float64)
        return np.clip(np.round(mixed), 0, 255).astype(np.uint8)

    def label_image(self) -> Image.Image:
        """An 8-bit palette PNG image: pixel values are the class indices, the palette their colours."""
        im = Image.fromarray(self.labels)
        im.putpalette(self.classes.palette().reshape(-1).tolist())
        return im


def _uint8(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb
    if rgb.dtype == np.uint16:
        return (rgb // 257).astype(np.uint8)
    if np.issubdtype(rgb.dtype, np.floating):
        return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    raise TypeError(f"unsupported image dtype {rgb.dtype}; expected uint8, uint16 or float in [0, 1]")


class Segmenter:
    """A segmentation model ready for inference.

    Args:
        model: the network (its spec carries classes and default inference settings).
        device: where to run; the model is moved there.
        dtype: parameter dtype (float32 is the reference).
        inference: default settings; None uses ``model.spec.inference``.
        max_tokens: the work bound per network pass in patch tokens (:mod:`depthany.seg.infer` module docstring;
            None: no token budget, only the view and score-map limits).

    Raises:
        InputBudgetError: the default settings' sliding window is above ``max_tokens``.
    """

    def __init__(self, model: SegmentationModel, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, inference: InferenceCfg | None = None,
                 max_tokens: int | None = DEFAULT_MAX_TOKENS) -> None:
        self.model = model.to(device=device, dtype=dtype).eval()
        self.device = torch.device(device)
        self.inference = inference or model.spec.inference
        self.max_tokens = None if max_tokens is None else check_max_tokens(max_tokens)
        check_window(self.inference, self.max_tokens, model.patch_size)

    @classmethod
    def from_weights(cls, path: str | Path, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32, max_tokens: int | None = DEFAULT_MAX_TOKENS,
                     **inference: Any) -> Segmenter:
        """Load weights written by :func:`depthany.seg.weights.save_seg_weights`; ``inference`` overrides
        fields of the file's :class:`InferenceCfg` (``mode``, ``crop``, ``stride``, ``resize``, ...).

        Raises:
            WeightsError: missing, unreadable or non-segmentation file.
            TypeError: unknown inference field; ValueError: bad settings or ``max_tokens``.
        """
        model = load_seg_model(path, device, dtype)
        return cls(model, device, dtype, dataclasses.replace(model.spec.inference, **inference), max_tokens)

    @property
    def spec(self) -> SegSpec:
        return self.model.spec

    @property
    def classes(self) -> ClassTable:
        return self.model.spec.classes

    def settings(self, **overrides: Any) -> InferenceCfg:
        """The default settings with ``overrides`` (None values ignored) applied."""
        return dataclasses.replace(self.inference, **{k: v for k, v in overrides.items() if v is not None})

    @torch.no_grad()
    def segment(self, image: Any, return_scores: bool = False, **overrides: Any) -> SegResult:
        """Segment one image.

        Args:
            image: (H, W, 3) RGB array (uint8, uint16 or float in [0, 1]), a path, bytes or a PIL image
                (EXIF orientation applied).
            return_scores: also return the (C, H, W) scores.
            overrides: :class:`InferenceCfg` fields for this call (``mode``, ``crop``, ``stride``, ``resize``,
                ``size_divisor``, ``ratios``, ``flip``).

        Returns:
            a :class:`SegResult` at the image's size. Work is bounded for any image size (``max_tokens`` and
            the limits of :mod:`depthany.seg.infer`); ``return_scores`` needs the whole (C, H, W) map and refuses
            images whose map passes ``MAX_SCORE_ELEMENTS``.

        Raises:
            ImageReadError: unreadable image (naming the file); ValueError: bad settings, or scores requested for
                an image too large; InputBudgetError: a sliding window above ``max_tokens``.
        """
        rgb = _uint8(as_rgb(image).rgb)
        cfg = self.settings(**overrides)
        notes = SegNotes()
        if return_scores:
            scores = segment_scores(self.model, rgb, cfg, self.max_tokens, notes)
            labels = scores.argmax(dim=0).to(torch.uint8).cpu().numpy()
            return SegResult(labels, self.classes, scores.cpu().numpy(), cfg, notes)
        labels, notes = segment_with_notes(self.model, rgb, cfg, self.max_tokens)
        return SegResult(labels, self.classes, None, cfg, notes)
