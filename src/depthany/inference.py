"""Preprocess -> network -> postprocess, written once; every caller that turns an image into depth uses it.

:class:`~depthany.predictor.DepthPredictor`, the server's batcher, ``depthany bench``'s end-to-end pipeline,
training-time validation (:mod:`depthany.train.validate`) and the pseudo-labeller (:mod:`depthany.pseudo`)
all go through an :class:`InferencePipeline`, so they compute the same numbers for the same image and apply
the same network-input budget (:mod:`depthany.budget`).

A pipeline has four steps, each a method:

``fit(H, W)``
    the network input size for an image (the family's resize rule under the token budget); raises
    :class:`~depthany.budget.InputBudgetError` for an image that cannot be fitted.
``prepare(rgb)``
    (H, W, 3) image -> :class:`Prepared`: the (1, 3, h, w) float32 network input plus whatever ``finish``
    needs later (``state``: padding, crop boxes, ...). Images whose :attr:`Prepared.key` is equal may share a
    forward pass.
``forward(runner, x)``
    the network call on a (B, 3, h, w) batch: ``runner(x)`` once for Depth Anything; a family that averages
    flipped inputs or runs windows of frames overrides it.
``finish(out, prepared)``
    one (h, w) network output -> the (H, W) float32 map at the image's size.

Model families plug in here. The pipeline is chosen from the model's spec: ``spec.preprocess.pipeline`` names
an entry of :data:`PIPELINES` (:func:`pipeline_for`). To add one (ZoeDepth-style V1 metric: reflect padding,
resize without keeping the aspect ratio, flip averaging, bicubic upsampling; Video Depth Anything: windows of
frames; Depth Anything 3: a two-stage resize and an ``exp`` output with a sky mask), subclass
:class:`InferencePipeline`, register it under a new name and set that name in the zoo entry's
:class:`~depthany.zoo.Preprocess`. Extra per-image outputs (a sky mask) come from :meth:`InferencePipeline.extras`
and land in the result's ``meta["extras"]``. Every pipeline applies the token budget in ``fit``.

Example:
    >>> from depthany.inference import pipeline_for                      # doctest: +SKIP
    >>> pipe = pipeline_for(spec, max_tokens=20_000)                     # doctest: +SKIP
    >>> depth = pipe.run(runner, rgb)                                    # (H, W) float32 tensor
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from . import transforms
from .budget import DEFAULT_MAX_TOKENS, NetworkFit, check_max_tokens, fit_network_size
from .zoo import ModelSpec

Runner = Callable[[Tensor], Tensor]  # (B, 3, h, w) float32 -> (B, h, w), see depthany.backends.Runner


@dataclass
class Prepared:
    """One image ready for the network.

    Attributes:
        x: (1, 3, h, w) float32 normalised network input.
        fit: the image size, the official and the used network size, the budget.
        state: pipeline-specific facts ``finish`` needs (empty for Depth Anything).
    """

    x: Tensor
    fit: NetworkFit
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, ...]:
        """Images with equal keys can be stacked into one forward pass (here: the input shape)."""
        return tuple(self.x.shape)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the image, pixels."""
        return self.fit.image_size


class InferencePipeline(ABC):
    """A model family's preprocessing, network call and postprocessing (see the module docstring).

    Args:
        spec: the model's zoo spec (its :class:`~depthany.zoo.Preprocess` holds the numbers).
        input_size: network short side; default the spec's.
        max_tokens: network-input budget in patch tokens (:mod:`depthany.budget`).

    Raises:
        ValueError: an input size that is not a positive multiple of the patch size, or a bad budget.
    """

    name: ClassVar[str] = "base"

    def __init__(self, spec: ModelSpec, input_size: int | None = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.spec = spec
        self.input_size = input_size or spec.preprocess.input_size
        transforms.network_size(1, 1, self.input_size, spec.preprocess.multiple)  # validates the size
        self.max_tokens = check_max_tokens(max_tokens)

    @abstractmethod
    def fit(self, height: int, width: int) -> NetworkFit:
        """The network size for an (height, width) image under the budget."""

    @abstractmethod
    def prepare(self, rgb: np.ndarray) -> Prepared:
        """(H, W, 3) RGB (uint8, uint16 or float in [0, 1]) -> :class:`Prepared`."""

    def forward(self, runner: Runner, x: Tensor) -> Tensor:
        """(B, 3, h, w) network input -> (B, h, w) float32 network output on the CPU."""
        return runner(x).float().cpu()

    @abstractmethod
    def finish(self, out: Tensor, prepared: Prepared) -> Tensor:
        """One (h, w) network output -> (H, W) float32 at the image's size."""

    def extras(self, out: Tensor, prepared: Prepared) -> dict[str, np.ndarray]:
        """Extra per-image outputs (e.g. a sky mask), at the image's size; none for Depth Anything."""
        return {}

    # ------------------------------------------------------------------------------------------ helpers

    def run_batch(self, runner: Runner, prepared: Sequence[Prepared]) -> list[Tensor]:
        """Forward images that share a :attr:`Prepared.key` together; returns each (H, W) map.

        Raises:
            ValueError: the images do not share a key.
        """
        if len({p.key for p in prepared}) > 1:
            raise ValueError("run_batch needs images with the same network input shape")
        out = self.forward(runner, torch.cat([p.x for p in prepared]))
        return [self.finish(out[i], p) for i, p in enumerate(prepared)]

    def run(self, runner: Runner, rgb: np.ndarray) -> Tensor:
        """One image end to end: (H, W, 3) RGB -> (H, W) float32 tensor."""
        return self.run_batch(runner, [self.prepare(rgb)])[0]


class DepthAnythingPipeline(InferencePipeline):
    """Depth Anything V1/V2 (relative and metric), exactly as the official scripts.

    Lower-bound resize of the float64 image with OpenCV's cubic kernel to multiples of 14 (shrunk to the
    token budget when needed), ImageNet normalisation, one forward pass, bilinear resize back to the image size
    with the family's corner rule (:mod:`depthany.transforms`).
    """

    name = "depth_anything"

    def fit(self, height: int, width: int) -> NetworkFit:
        pre = self.spec.preprocess
        return fit_network_size(height, width, self.input_size, pre.multiple, self.max_tokens)

    def prepare(self, rgb: np.ndarray) -> Prepared:
        fit = self.fit(rgb.shape[0], rgb.shape[1])
        return Prepared(transforms.preprocess(rgb, self.spec.preprocess, self.input_size, fit.network_size), fit)

    def finish(self, out: Tensor, prepared: Prepared) -> Tensor:
        return transforms.postprocess(out[None], prepared.image_size, self.spec.preprocess.output_align_corners)[0]


PIPELINES: dict[str, type[InferencePipeline]] = {DepthAnythingPipeline.name: DepthAnythingPipeline}


def pipeline_for(spec: ModelSpec, input_size: int | None = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS) -> InferencePipeline:
    """The pipeline named by ``spec.preprocess.pipeline``, for this input size and budget.

    Raises:
        ValueError: an unknown pipeline name, a bad input size or budget.
    """
    name = spec.preprocess.pipeline
    if name not in PIPELINES:
        raise ValueError(f"model {spec.name!r} needs the {name!r} pipeline; known: {', '.join(PIPELINES)}")
    return PIPELINES[name](spec, input_size, max_tokens)
