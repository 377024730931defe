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

from ..data.classes import ClassTable
from ..io.image import as_rgb
from .infer import segment_scores
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
    """

    labels: np.ndarray
    classes: ClassTable
    scores: np.ndarray | None = None
    inference: InferenceCfg | None = None

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
        mixed = (1 - alpha) * rgb.astype(np.float32) + alpha * self.color().astype(np.float32)
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
    """

    def __init__(self, model: SegmentationModel, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, inference: InferenceCfg | None = None) -> None:
        self.model = model.to(device=device, dtype=dtype).eval()
        self.device = torch.device(device)
        self.inference = inference or model.spec.inference

    @classmethod
    def from_weights(cls, path: str | Path, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32, **inference: Any) -> Segmenter:
        """Load weights written by :func:`depthany.seg.weights.save_seg_weights`; ``inference`` overrides
        fields of the file's :class:`InferenceCfg` (``mode``, ``crop``, ``stride``, ``resize``, ...).

        Raises:
            WeightsError: missing, unreadable or non-segmentation file.
            TypeError: unknown inference field.
        """
        model = load_seg_model(path, device, dtype)
        return cls(model, device, dtype, dataclasses.replace(model.spec.inference, **inference))

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
            a :class:`SegResult` at the image's size.

        Raises:
            ImageReadError: unreadable image (naming the file); ValueError: bad settings or an image too large.
        """
        rgb = _uint8(as_rgb(image).rgb)
        cfg = self.settings(**overrides)
        scores = segment_scores(self.model, rgb, cfg)
        labels = scores.argmax(dim=0).to(torch.uint8).cpu().numpy()
        return SegResult(labels, self.classes, scores.cpu().numpy() if return_scores else None, cfg)
