"""What happens to each predicted frame of a video: calibration, temporal alignment, colours, encoding, raw storage.

Used by :func:`depthany.video.pipeline.process_video`; one :class:`FrameStep` per run, called frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.colormap import colorize
from ..io.visual import side_by_side
from ..result import DepthResult
from .encode import Retimer, VideoEncoder
from .flicker import FlickerMeter
from .raw import RawDepthWriter, open_raw_writer
from .source import Frame, FrameSource
from .temporal import AdaptiveRange, TemporalAligner, normalise

if TYPE_CHECKING:
    from ..geometry.calibrate import Calibration
    from .pipeline import VideoOptions, VideoReport


def _nearness(values: np.ndarray, metric: bool) -> np.ndarray:
    if not metric:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(values) & (values > 0), 1.0 / values, np.nan).astype(np.float32)


class Outputs:
    """The MP4 encoder and the raw writer, created when the first frame shows the size."""

    def __init__(self, output: Path | None, options: VideoOptions, source: FrameSource, meta: dict[str, Any]) -> None:
        self.output, self.options, self.source, self.meta = output, options, source, meta
        self.encoder: VideoEncoder | None = None
        self.raw: RawDepthWriter | None = None
        self.retime = Retimer(source.rate, source.time_base)

    def open(self, picture: np.ndarray) -> None:
        if self.output is not None and self.encoder is None:
            self.encoder = VideoEncoder(self.output, picture.shape[0], picture.shape[1], self.retime.time_base,
                                        self.source.rate, self.options.crf, self.options.preset)
        if self.options.raw_format and self.options.raw_path is not None and self.raw is None:
            self.raw = open_raw_writer(self.options.raw_format, self.options.raw_path, self.meta)

    def close(self) -> None:
        try:
            if self.encoder is not None:
                self.encoder.close()
        finally:
            if self.raw is not None:
                self.raw.close()


@dataclass
class FrameStep:
    """Everything done to one predicted frame: calibrate, align, colour, encode, store."""

    opts: VideoOptions
    calibration: Calibration | None
    metric: bool
    aligner: TemporalAligner | None
    colour_range: AdaptiveRange
    meter: FlickerMeter
    outs: Outputs
    report: VideoReport

    def __call__(self, frame: Frame, result: DepthResult, model_alignment: tuple[float, float] | None = None) -> None:
        """``model_alignment``: the scale/shift a Video Depth Anything window applied (stored with raw frames)."""
        if self.calibration is not None:
            result = self.calibration.apply_result(result)
        values = result.values
        near = _nearness(values, self.metric)
        scale, shift = 1.0, 0.0
        if self.aligner is not None:
            near, info = self.aligner.align(near)
            scale, shift = info.scale, info.shift
            self.report.resets += int(info.reset)
        lo, hi = self.colour_range.update(near)
        self.meter.add(normalise(near, lo, hi))
        picture = colorize(near, self.opts.cmap, lo, hi)
        if self.opts.layout == "side-by-side":
            picture = side_by_side(frame.rgb, picture)
        outs = self.outs
        outs.open(picture)
        if outs.encoder is not None:
            outs.encoder.write(picture, outs.retime(frame.pts))
        if outs.raw is not None:
            stored = values if self.metric else near  # relative: the aligned (sequence-consistent) values
            a, b = (1.0, 0.0) if self.metric else (scale, shift)
            if model_alignment is not None and self.calibration is None:
                a, b = model_alignment
            outs.raw.write(frame.index, stored, frame.pts, frame.time, a, b)
        self.report.alignment.append((scale, shift))
        self.report.frames += 1
