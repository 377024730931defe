"""What both Video Depth Anything modes share: the input size, frame preparation, the network call, results.

Preprocessing is the official one (``video_depth.py``): RGB ``uint8`` -> ``astype(float32) / 255`` -> lower-bound
resize to multiples of 14 with ``cv2.INTER_CUBIC`` on the float32 image -> ImageNet normalisation (in float64,
as numpy promotes it) -> float32. The input size is reduced for frames wider than 16:9 (:func:`video_input_size`).
Outputs are resized back to the frame size with bilinear ``align_corners=True`` interpolation.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ... import transforms
from ...models import VideoDepthAnything
from ...zoo import ModelSpec, VideoWindows

Precision = Literal["fp32", "fp16", "bf16"]
AUTOCAST: dict[str, torch.dtype | None] = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class VideoDepthFrame:
    """One frame of a video's depth.

    Attributes:
        index: 0-based frame number in the input.
        values: (H, W) float32 at the frame's size: relative disparity (``kind`` ``"relative_disparity"``,
            one scale and shift for the whole video) or depth in metres (``"metric_depth"``), >= 0.
        kind: what ``values`` are.
        window: the offline window whose prediction the frame comes from (the later one for cross-faded
            frames); None in streaming mode.
        scale, shift: the least-squares alignment applied to that window's raw output (1, 0 for the first
            window, metric models and streaming mode).
        network_size: (h, w) the frames ran at.
    """

    index: int
    values: np.ndarray
    kind: str
    window: int | None
    scale: float
    shift: float
    network_size: tuple[int, int]


def video_input_size(height: int, width: int, input_size: int, windows: VideoWindows, multiple: int = 14) -> int:
    """The official input size for a video of ``height`` x ``width`` frames.

    Frames wider than ``windows.wide_ratio`` (long / short side, 1.78) run at
    ``round(int(input_size * wide_factor / ratio) / 14) * 14`` (Python's round: halves to even) to bound
    memory; others at ``input_size``. Example: 1280x480 (ratio 2.67) at 518 runs at round(345 / 14) * 14 = 350.

    Raises:
        ValueError: a size that leaves no input (a frame more than ~35 times wider than high).
    """
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    ratio = max(height, width) / min(height, width)
    if ratio > windows.wide_ratio:
        input_size = round(int(input_size * windows.wide_factor / ratio) / multiple) * multiple
        if input_size < multiple:
            raise ValueError(f"frames of {width}x{height} are too wide (ratio {ratio:.1f}) for Video Depth Anything")
    return input_size


class FramePreparer:
    """Checks and preprocesses the frames of one video; the size is fixed by the first frame.

    Args:
        spec: the model's spec (preprocessing numbers and window schedule).
        first: the first frame, (H, W, 3) uint8 RGB.
        input_size: the requested short side before the wide-video reduction (default: the model's, 518).
    """

    def __init__(self, spec: ModelSpec, first: np.ndarray, input_size: int | None = None) -> None:
        if spec.video is None:
            raise ValueError(f"{spec.name} is not a Video Depth Anything model")
        if not isinstance(first, np.ndarray) or first.ndim != 3 or first.shape[2] != 3:
            raise ValueError(f"frames must be (H, W, 3) RGB arrays, got {getattr(first, 'shape', type(first))}")
        self.spec = spec
        self.frame_size: tuple[int, int] = (first.shape[0], first.shape[1])
        self.input_size = video_input_size(*self.frame_size, input_size or spec.preprocess.input_size, spec.video,
                                           spec.preprocess.multiple)
        self.network_size = transforms.network_size(*self.frame_size, self.input_size, spec.preprocess.multiple)

    def __call__(self, frame: np.ndarray, index: int) -> Tensor:
        """(H, W, 3) uint8 RGB -> (3, h, w) float32 normalised network input.

        Raises:
            ValueError: the frame is not an RGB array of the first frame's size (naming its index).
        """
        if not isinstance(frame, np.ndarray) or frame.shape[:2] != self.frame_size or frame.ndim != 3:
            got = getattr(frame, "shape", type(frame).__name__)
            raise ValueError(f"frame {index}: expected an ({self.frame_size[0]}, {self.frame_size[1]}, 3) RGB array "
                             f"like the first frame, got {got}")
        return transforms.preprocess(frame, self.spec.preprocess, self.input_size)[0]


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[Any]:
    """The official ``torch.autocast(device, enabled=not fp32)``, with the dtype named explicitly."""
    if precision not in AUTOCAST:
        raise ValueError(f"precision must be one of {', '.join(AUTOCAST)}, got {precision!r}")
    dtype = AUTOCAST[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def model_device(model: VideoDepthAnything) -> torch.device:
    """The device of the model's parameters (inputs are sent there)."""
    return next(model.parameters()).device


def to_frame_size(depth: Tensor, size: tuple[int, int]) -> np.ndarray:
    """(T, h, w) network output -> (T, H, W) float32 numpy at the frame size (bilinear, align_corners=True)."""
    out = F.interpolate(depth.float()[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]
    return out.cpu().numpy()


def check_model(model: VideoDepthAnything, spec: ModelSpec) -> VideoWindows:
    """The window schedule of ``spec``, after checking that ``model`` is its video network."""
    if not isinstance(model, VideoDepthAnything):
        raise TypeError(f"model must be a VideoDepthAnything, got {type(model).__name__}")
    if spec.video is None or spec.arch != model.arch:
        raise ValueError(f"spec {spec.name} does not describe this Video Depth Anything model")
    assert spec.arch.temporal is not None
    if spec.video.length > spec.arch.temporal.max_frames:
        raise ValueError(f"windows of {spec.video.length} frames exceed the {spec.arch.temporal.max_frames}-frame "
                         "positional encoding")
    return spec.video
