"""Streaming Video Depth Anything: one frame in, one depth map out, as the official ``infer_video_depth_one``.

The official streaming mode (``video_depth_stream.py``, training-free, "experimental") runs the encoder on the
new frame only and lets each temporal attention layer attend over cached states of earlier frames:

* frame 0 runs alone (a 1-frame clip); its per-layer states are copied into ``length`` (32) cache slots;
* frame n > 0 attends over the states of slots ``[0, 1]`` and the last ``length - 1 - align_frames`` (29) slots,
  followed by itself (32 frames, positional encodings 0..31), and its own states are appended;
* after frame n's states are appended, slot 1 is dropped once ``n + length > stream_gap + 1`` (gap 41), so the
  cache stays at 42 slots: in steady state frame n sees frames 0, n-41 and n-29 .. n-1.

No alignment or cross-fade is applied (the scale is carried by the cached context). Memory is constant: 42
frames of temporal states, whatever the stream's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from ...models import VideoDepthAnything
from ...models.temporal import FrameStates
from ...zoo import ModelSpec
from .frames import (
    FramePreparer,
    Precision,
    VideoDepthFrame,
    autocast,
    check_model,
    model_device,
    to_frame_size,
)


class StreamingVideoDepth:
    """Feed frames one by one with :meth:`step` (or a whole iterator with :meth:`run`).

    Args:
        model, spec, input_size, precision: as :class:`~depthany.video.vda.window.WindowedVideoDepth`. The
            input size is fixed by the first frame; every later frame must have the same size.
    """

    def __init__(self, model: VideoDepthAnything, spec: ModelSpec, input_size: int | None = None,
                 precision: Precision = "fp32") -> None:
        self.windows = check_model(model, spec)
        autocast(torch.device("cpu"), precision)  # validates
        self.model = model.eval()
        self.spec = spec
        self.input_size = input_size
        self.precision: Precision = precision
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame starts a new one."""
        self.index = -1
        self._prepare: FramePreparer | None = None
        self._cache: list[FrameStates] = []

    @property
    def cached_frames(self) -> int:
        """Cache slots held (at most ``stream_gap + 1``)."""
        return len(self._cache)

    def _context(self) -> FrameStates:
        w = self.windows
        slots = self._cache[: w.align_frames] + self._cache[len(self._cache) - (w.length - 1 - w.align_frames):]
        return [torch.cat([s[i] for s in slots], dim=1) for i in range(len(slots[0]))]

    def step(self, frame: np.ndarray) -> VideoDepthFrame:
        """Depth of the next frame, (H, W, 3) uint8 RGB of the stream's size.

        Raises:
            ValueError: a frame of another size than the stream's first (naming its index).
        """
        w = self.windows
        if self._prepare is None:
            self._prepare = FramePreparer(self.spec, frame, self.input_size)
        x = self._prepare(frame, self.index + 1)
        self.index += 1
        device = model_device(self.model)
        clip = x[None, None].to(device)
        with torch.inference_mode(), autocast(device, self.precision):
            features = self.model.forward_features(clip)
            cache = None if self.index == 0 else self._context()
            depth, states = self.model.forward_depth(features, tuple(clip.shape), cache)
        values = to_frame_size(depth[0], self._prepare.frame_size)[-1]
        if self.index == 0:
            self._cache = [states] * w.length
        else:
            self._cache.append(states)
        if self.index + w.length > w.stream_gap + 1:
            del self._cache[1]
        return VideoDepthFrame(self.index, values, self.spec.output_kind, None, 1.0, 0.0,
                               self._prepare.network_size)

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[VideoDepthFrame]:
        """:meth:`step` over ``frames``, from a fresh stream."""
        self.reset()
        for frame in frames:
            yield self.step(frame)

