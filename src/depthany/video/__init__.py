"""Depth for videos, image sequences, webcams and streams: constant memory, no flicker, browser-ready MP4.

Needs the ``[video]`` extra (PyAV). Modules: :mod:`.source` (decoding), :mod:`.encode` (H.264 MP4),
:mod:`.temporal` (alignment and colour range), :mod:`.raw` (16-bit PNG / npz per frame), :mod:`.flicker`
(measurement and static test sequences), :mod:`.pipeline` (the streaming loop). Video Depth Anything's
own windowed and streaming inference: :mod:`.vda` (needs no PyAV).
"""

from __future__ import annotations

from .encode import VideoEncoder
from .flicker import FlickerMeter, flicker_index
from .pipeline import Progress, VideoOptions, VideoReport, process_video
from .raw import NpzStreamWriter, Png16SequenceWriter, open_raw_writer
from .source import AVSource, Frame, FrameSource, ImageSequenceSource, VideoReadError, open_source
from .temporal import AdaptiveRange, Alignment, TemporalAligner

__all__ = [
    "AVSource", "AdaptiveRange", "Alignment", "FlickerMeter", "Frame", "FrameSource", "ImageSequenceSource",
    "NpzStreamWriter", "Png16SequenceWriter", "Progress", "TemporalAligner", "VideoEncoder", "VideoOptions",
    "VideoReadError", "VideoReport", "flicker_index", "open_raw_writer", "open_source", "process_video",
]
