"""Offline (windowed) Video Depth Anything inference, streamed through in constant memory.

The numbers are those of the official ``VideoDepthAnything.infer_video_depth`` (``video_depth.py``), fp32 path:

* the video is padded at the end with copies of its last frame to ``ceil(N / step) * step + overlap`` frames;
* window k covers frames ``k*step .. k*step + length - 1`` (step 22, length 32); for k > 0 its first
  ``overlap`` (10) inputs are replaced by the previous window's *inputs* at ``keyframes`` (0, 12, 24..31), so
  position 0 is always the video's first frame, position 1 frame ``(k-1)*step + 12``, positions 2..9 the
  frames shared with the previous window;
* each window runs as one (1, 32, 3, h, w) clip; its outputs are resized to the frame size and stitched
  (:mod:`.stitch`).

The official code decodes the whole video first and keeps every output until the end. Here frames are pulled
from an iterator one window at a time and each frame is yielded as soon as no later window can change it:
at most ``length`` preprocessed inputs, ``overlap`` kept keyframe inputs, one window of outputs and
``interp + align_frames`` stitched frames are held, whatever the video's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

from ...models import VideoDepthAnything
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
from .stitch import WindowStitcher


class WindowedVideoDepth:
    """Runs :meth:`run` over a video's frames with the official window schedule.

    Args:
        model: the network (any device; inputs are sent to it).
        spec: its zoo spec (``spec.video`` is the schedule).
        input_size: short side before the wide-video reduction (default: the model's, 518).
        precision: ``"fp32"`` (the exact path), ``"fp16"`` or ``"bf16"`` (autocast, like the official default).
    """

    def __init__(self, model: VideoDepthAnything, spec: ModelSpec, input_size: int | None = None,
                 precision: Precision = "fp32") -> None:
        self.windows = check_model(model, spec)
        autocast(torch.device("cpu"), precision)  # validates
        self.model = model.eval()
        self.spec = spec
        self.input_size = input_size
        self.precision: Precision = precision
        self.metric = spec.arch.head == "metric"
        self._inputs: list[Tensor] = []
        self._stitcher = WindowStitcher(self.windows, self.metric)

    @property
    def held_frames(self) -> int:
        """Frame-sized arrays held right now: window inputs (incl. kept keyframes) and stitched frames."""
        return len(self._inputs) + self._stitcher.held

    def _forward(self, clip: Tensor, frame_size: tuple[int, int]) -> list[np.ndarray]:
        device = model_device(self.model)
        with torch.inference_mode(), autocast(device, self.precision):
            depth = self.model(clip[None].to(device))[0]
        return list(to_frame_size(depth, frame_size))

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[VideoDepthFrame]:
        """Depth for every frame, yielded in order.

        Args:
            frames: (H, W, 3) uint8 RGB arrays of one size (a list, a generator, a (N, H, W, 3) array).

        Yields:
            one :class:`VideoDepthFrame` per input frame, in order, as soon as it is final.

        Raises:
            ValueError: no frames, or a frame of another size or layout (naming its index).
        """
        w = self.windows
        source = iter(frames)
        first = next(source, None)
        if first is None:
            raise ValueError("no frames: the video is empty")
        prepare = FramePreparer(self.spec, first, self.input_size)
        pending_first: np.ndarray | None = first
        del first
        read = 0  # real frames read so far
        last: Tensor | None = None
        ended = False

        def next_input() -> Tensor:
            """The next frame's input; past the end, the last frame's again (the official end padding)."""
            nonlocal pending_first, read, last, ended
            frame = pending_first if pending_first is not None else (None if ended else next(source, None))
            pending_first = None
            if frame is None:
                ended = True
                assert last is not None
                return last
            last = prepare(frame, read)
            read += 1
            return last

        self._inputs, self._stitcher = [], WindowStitcher(w, self.metric)  # a fresh run, even after an abandoned one
        kind, net = self.spec.output_kind, prepare.network_size
        k = 0
        while True:
            count = w.length if k == 0 else w.step
            self._inputs += [next_input() for _ in range(count)]
            outputs = self._forward(torch.stack(self._inputs), prepare.frame_size)
            self._inputs = [self._inputs[i] for i in w.keyframes]  # the next window's first inputs
            stitched = self._stitcher.add(outputs)
            del outputs
            for i, values in enumerate(stitched.frames, stitched.first):
                if i < read:
                    yield VideoDepthFrame(i, values, kind, k, stitched.scale, stitched.shift, net)
            k += 1
            if ended and k * w.step >= read:  # the official loop runs over range(0, N, step)
                break
        start = (k - 1) * w.step + w.length - w.interp
        for i, values in enumerate(self._stitcher.finish(), start):
            if i < read:
                yield VideoDepthFrame(i, values, kind, k - 1, stitched.scale, stitched.shift, net)
        self._inputs = []
