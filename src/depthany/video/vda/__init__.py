"""Video Depth Anything inference: the official offline (windowed) and streaming modes, in constant memory.

    >>> from depthany.weights import load_video_model
    >>> from depthany.video.vda import infer_video_depth
    >>> model, spec = load_video_model("vda-small")                                   # doctest: +SKIP
    >>> for frame in infer_video_depth(model, spec, frames):                          # doctest: +SKIP
    ...     frame.index, frame.values.shape                     # (H, W) float32, in order

``frames`` is any iterable of (H, W, 3) uint8 RGB arrays (a generator over a decoder keeps memory constant).
Modules: :mod:`.frames` (input size, preprocessing, results), :mod:`.stitch` (alignment and cross-fade),
:mod:`.window` (offline windows), :mod:`.stream` (one frame at a time). Facts and citations:
``docs/video_depth_anything.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np

from ...models import VideoDepthAnything
from ...zoo import ModelSpec
from .frames import FramePreparer, Precision, VideoDepthFrame, video_input_size
from .stitch import WindowStitcher, crossfade_weights, fit_scale_shift
from .stream import StreamingVideoDepth
from .window import WindowedVideoDepth

Mode = Literal["window", "streaming"]
MODES: tuple[str, ...] = ("window", "streaming")


def infer_video_depth(model: VideoDepthAnything, spec: ModelSpec, frames: Iterable[np.ndarray],
                      mode: Mode = "window", input_size: int | None = None,
                      precision: Precision = "fp32") -> Iterator[VideoDepthFrame]:
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

    Raises:
        ValueError: an unknown mode, no frames, or frames of differing sizes.
    """
    if mode == "window":
        return WindowedVideoDepth(model, spec, input_size, precision).run(frames)
    if mode == "streaming":
        return StreamingVideoDepth(model, spec, input_size, precision).run(frames)
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


__all__ = [
    "FramePreparer", "MODES", "Mode", "Precision", "StreamingVideoDepth", "VideoDepthFrame", "WindowStitcher",
    "WindowedVideoDepth", "crossfade_weights", "fit_scale_shift", "infer_video_depth", "video_input_size",
]
