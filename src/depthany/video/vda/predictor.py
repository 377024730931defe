"""``VideoDepthPredictor``: a Video Depth Anything model on whole videos, frames in, typed per-frame results out.

    >>> from depthany.video.vda import VideoDepthPredictor
    >>> predictor = VideoDepthPredictor.from_pretrained("vda-small")                  # doctest: +SKIP
    >>> for frame in predictor.predict(frames):                                       # doctest: +SKIP
    ...     frame.index, frame.values.shape, frame.kind       # 0, (H, W), 'relative_disparity'
    >>> live = predictor.stream()                                                     # doctest: +SKIP
    >>> live.step(rgb).values                                 # one frame in, its depth out (streaming mode)

The counterpart of :class:`depthany.DepthPredictor` for the video models: it holds the network, the precision,
the input size, the network-input budget and the mode (``"window"``: the official offline windows;
``"streaming"``: the official one-frame-at-a-time mode), and runs :func:`depthany.video.vda.infer_video_depth`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from ...budget import DEFAULT_MAX_TOKENS, NetworkFit, check_max_tokens, fit_network_size
from ...models import VideoDepthAnything
from ...precision import check_precision
from ...runtime.devices import pick_device
from ...transforms import network_size
from ...weights import load_video_model
from ...zoo import ModelSpec
from .frames import Precision, VideoDepthFrame, check_model, model_device, video_input_size
from .stream import StreamingVideoDepth
from .window import WindowedVideoDepth

MODES: tuple[str, ...] = ("window", "streaming")


class VideoDepthPredictor:
    """Runs a Video Depth Anything model over videos with the official pre-/postprocessing and stitching.

    Args:
        model: the network (:func:`depthany.weights.load_video_model`), on any device (inputs go there).
        spec: its zoo spec.
        precision: ``"fp32"`` (the official ``fp32=True`` path, under strict IEEE fp32), ``"bf16"`` or ``"fp16"``
            (autocast, the official default on CUDA is fp16).
        input_size: the short side before the wide-video reduction (default: the model's, 518).
        mode: ``"window"`` (offline: 32-frame windows, keyframes, scale/shift alignment, cross-fade; a frame comes
            out up to ~24 frames after it went in) or ``"streaming"`` (one frame in, one out: for live sources).
        max_tokens: network-input budget per frame in patch tokens (:mod:`depthany.budget`); at input size 518
            no frame reaches the default budget, so the output is the official one.

    Raises:
        ValueError / TypeError: a bad argument, naming it.
    """

    def __init__(self, model: VideoDepthAnything, spec: ModelSpec, precision: Precision = "fp32",
                 input_size: int | None = None, mode: str = "window", max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        check_model(model, spec)
        check_precision(precision)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.input_size = input_size or spec.preprocess.input_size
        network_size(1, 1, self.input_size, spec.preprocess.multiple)  # validates the size
        self.model = model.eval()
        self.spec = spec
        self.precision: Precision = precision
        self.mode = mode
        self.max_tokens = check_max_tokens(max_tokens)

    @classmethod
    def from_pretrained(cls, model: str | None = None, weights: str | Path | None = None,
                        device: str | torch.device | None = "cpu", precision: Precision = "fp32",
                        input_size: int | None = None, mode: str = "window",
                        max_tokens: int = DEFAULT_MAX_TOKENS) -> VideoDepthPredictor:
        """Load a ``vda-*`` zoo model (through the Hugging Face cache), its repo, or an official/depthany file.

        Raises:
            WeightsError / WeightsNotFound: naming the file or repo; an image model is refused.
        """
        net, spec = load_video_model(model, weights, device=pick_device(device))
        return cls(net, spec, precision, input_size, mode, max_tokens)

    @property
    def device(self) -> torch.device:
        """Where the network runs."""
        return model_device(self.model)

    @property
    def kind(self) -> str:
        """``"relative_disparity"`` (one scale and shift per video) or ``"metric_depth"`` (metres)."""
        return self.spec.output_kind

    def fit(self, height: int, width: int) -> NetworkFit:
        """Where frames of ``height`` x ``width`` run: the official size (wide videos reduced) under the budget.

        Raises:
            InputBudgetError: frames too thin to fit the budget.
            ValueError: frames too wide for the official reduction.
        """
        windows = self.spec.video
        assert windows is not None
        size = video_input_size(height, width, self.input_size, windows, self.spec.preprocess.multiple)
        return fit_network_size(height, width, size, self.spec.preprocess.multiple, self.max_tokens)

    def predict(self, frames: Iterable[np.ndarray], mode: str | None = None) -> Iterator[VideoDepthFrame]:
        """Depth of every frame, in order, as soon as it is final (constant memory in the video's length).

        Args:
            frames: (H, W, 3) uint8 RGB arrays of one size; a generator over a decoder keeps memory constant.
            mode: overrides the predictor's mode.

        Yields:
            one :class:`~depthany.video.vda.frames.VideoDepthFrame` per frame: ``values`` (H, W) float32, >= 0,
            exactly the official output for that frame (fp32).

        Raises:
            ValueError: no frames, frames of differing sizes, an unknown mode.
            InputBudgetError: frames too thin to fit the budget.
        """
        mode = mode or self.mode
        if mode == "window":
            runner: WindowedVideoDepth | StreamingVideoDepth = WindowedVideoDepth(
                self.model, self.spec, self.input_size, self.precision, self.max_tokens)
        elif mode == "streaming":
            runner = self.stream()
        else:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        return runner.run(frames)

    def predict_array(self, frames: Iterable[np.ndarray], mode: str | None = None) -> np.ndarray:
        """All frames' depth as one (N, H, W) float32 array (holds the whole result: for short clips)."""
        return np.stack([f.values for f in self.predict(frames, mode)])

    def stream(self) -> StreamingVideoDepth:
        """A streaming runner for a live source: call ``.step(rgb)`` per frame (``.reset()`` starts a new one)."""
        return StreamingVideoDepth(self.model, self.spec, self.input_size, self.precision, self.max_tokens)
