"""Video Depth Anything inference: the official offline (windowed) and streaming modes, in constant memory.

    >>> from depthany.video.vda import VideoDepthPredictor
    >>> predictor = VideoDepthPredictor.from_pretrained("vda-small")                  # doctest: +SKIP
    >>> for frame in predictor.predict(frames):                                       # doctest: +SKIP
    ...     frame.index, frame.values.shape                     # (H, W) float32, in order

or, one level down, on a loaded network::

    >>> from depthany.weights import load_video_model
    >>> model, spec = load_video_model("vda-small")                                   # doctest: +SKIP
    >>> frames_out = infer_video_depth(model, spec, frames, mode="streaming")         # doctest: +SKIP

``frames`` is any iterable of (H, W, 3) uint8 RGB arrays (a generator over a decoder keeps memory constant).
Modules: :mod:`.frames` (input size, preprocessing, results), :mod:`.stitch` (alignment and cross-fade),
:mod:`.window` (offline windows), :mod:`.stream` (one frame at a time), :mod:`.predictor` (the predictor). Facts and citations:
``docs/video_depth_anything.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np

from ...budget import DEFAULT_MAX_TOKENS
from ...models import VideoDepthAnything
from ...zoo import ModelSpec
from .frames import FramePreparer, Precision, VideoDepthFrame, video_input_size
from .predictor import MODES, VideoDepthPredictor
from .stitch import WindowStitcher, crossfade_weights, fit_scale_shift
from .stream import StreamingVideoDepth
from .window import WindowedVideoDepth

Mode = Literal["window", "streaming"]


def infer_video_depth(model: VideoDepthAnything, spec: ModelSpec, frames: Iterable[np.ndarray],
                      mode: Mode = "window", input_size: int | None = None,
                      precision: Precision = "fp32", max_tokens: int = DEFAULT_MAX_TOKENS) -> Iterator[VideoDepthFrame]:
    """Depth for every frame of a video, yielded in order.

    Args:
        model: a loaded Video Depth Anything network (:func:`depthany.weights.load_video_model`).
        spec: its spec.
        frames: (H, W, 3) uint8 RGB frames of one size.
        mode: ``"window"`` (the official ``infer_video_depth``: 32-frame windows, keyframes, alignment,
            cross-fade; each frame comes out up to ~24 frames after it went in) or ``"streaming"`` (the official
            ``infer_video_depth_one``: one frame in, one out; for live sources).
        input_size: short side before the wide-video reduction (default 518).
        precision: ``"fp32"`` (exact) or ``"fp16"`` / ``"bf16"`` autocast.
        max_tokens: network-input budget per frame in patch tokens (:mod:`depthany.budget`): frames whose
            official input is larger run smaller; at input size 518 no frame reaches the default budget.

    Raises:
        ValueError: an unknown mode, no frames, or frames of differing sizes.
        InputBudgetError: frames too thin to fit the budget.
    """
    if mode == "window":
        return WindowedVideoDepth(model, spec, input_size, precision, max_tokens).run(frames)
    if mode == "streaming":
        return StreamingVideoDepth(model, spec, input_size, precision, max_tokens).run(frames)
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


__all__ = [
    "FramePreparer", "MODES", "Mode", "Precision", "StreamingVideoDepth", "VideoDepthFrame", "VideoDepthPredictor",
    "WindowStitcher", "WindowedVideoDepth", "crossfade_weights", "fit_scale_shift", "infer_video_depth",
    "video_input_size",
]
