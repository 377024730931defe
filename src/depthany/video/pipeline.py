"""Video in, depth video (and raw depth) out, as a stream: decode, predict in small batches, align, encode.

    >>> from depthany import DepthPredictor
    >>> from depthany.video import process_video, VideoOptions
    >>> predictor = DepthPredictor.from_pretrained("da2-small", batch_size=4)      # doctest: +SKIP
    >>> report = process_video("walk.mp4", predictor, "walk_depth.mp4",
    ...                        VideoOptions(layout="depth", raw_format="png16", raw_path="walk_depth"))  # doctest: +SKIP

With a Video Depth Anything model (:class:`~depthany.video.vda.VideoDepthPredictor`) the frames go through the
model's own windows (or its streaming mode) instead, and the values written are exactly its output: no EMA
alignment (the model is temporally consistent itself); the colour range only shapes the pictures.

At any time the pipeline holds one batch of frames and their predictions, plus the O(grid) state of the
temporal aligner (for Video Depth Anything: one 32-frame window and its source frames): memory does not grow
with the length of the video. When the input ends early (a truncated
file), the run is interrupted (Ctrl-C) or a later frame fails, every output is finished properly: the MP4 is
valid and playable with the frames done so far.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..budget import InputBudgetError, shrink_note
from ..io.colormap import DEFAULT_CMAP, cmap_name
from ..result import DepthResult
from .flicker import FlickerMeter
from .frame_step import FrameStep, Outputs
from .raw import RAW_FORMATS
from .source import Frame, FrameSource, VideoReadError, open_source
from .temporal import RANGE_MODES, TEMPORAL_MODES, AdaptiveRange, RangeMode, TemporalAligner
from .vda.predictor import VideoDepthPredictor

if TYPE_CHECKING:
    from ..geometry.calibrate import Calibration
    from ..predictor import DepthPredictor

Layout = Literal["depth", "side-by-side"]
LAYOUTS: tuple[str, ...] = ("depth", "side-by-side")


@dataclass
class VideoOptions:
    """How to turn frames into pictures and files.

    Attributes:
        layout: ``"depth"`` (the depth picture alone) or ``"side-by-side"`` (frame | 50 px white | depth).
        cmap: colour map (see :data:`depthany.io.colormap.COLORMAPS`); near is the top of the map.
        temporal: ``"ema"`` aligns each frame to a running reference (see :mod:`.temporal`), ``"none"`` uses
            each frame as predicted; None = ``"ema"`` for relative image models, ``"none"`` for metric depth and
            Video Depth Anything models (``"ema"`` is refused for those: their output is consistent already).
        momentum: weight of the newest frame in the temporal reference.
        range: colour range per frame: ``"adaptive"`` (slow), ``"frame"`` (own min/max, flickers, like the
            official scripts) or ``"fixed"``.
        range_rate: per-frame step of the adaptive range.
        vmin, vmax: the fixed range, in nearness units (disparity, or 1/m for metric depth).
        crf, preset: H.264 quality and speed.
        max_frames: stop after this many frames (None = all).
        raw_format, raw_path: also write the per-frame values as ``"png16"`` (folder) or ``"npz"`` (file).
    """

    layout: Layout = "side-by-side"
    cmap: str = DEFAULT_CMAP
    temporal: str | None = None
    momentum: float = 0.1
    range: RangeMode = "adaptive"
    range_rate: float = 0.05
    vmin: float | None = None
    vmax: float | None = None
    crf: int = 18
    preset: str = "medium"
    max_frames: int | None = None
    raw_format: str | None = None
    raw_path: str | Path | None = None

    def check(self) -> None:
        """Raises ValueError naming the first bad option."""
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        self.cmap = cmap_name(self.cmap)
        if self.temporal is not None and self.temporal not in TEMPORAL_MODES:
            raise ValueError(f"temporal must be one of {', '.join(TEMPORAL_MODES)}, got {self.temporal!r}")
        if self.range not in RANGE_MODES:
            raise ValueError(f"range must be one of {', '.join(RANGE_MODES)}, got {self.range!r}")
        if (self.raw_format is None) != (self.raw_path is None):
            raise ValueError("give raw_format and raw_path together")
        if self.raw_format is not None and self.raw_format not in RAW_FORMATS:
            raise ValueError(f"raw_format must be one of {', '.join(RAW_FORMATS)}, got {self.raw_format!r}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")


@dataclass
class Progress:
    """Where a run stands: ``frames`` done of ``total`` (None when unknown) after ``elapsed`` seconds."""

    frames: int
    total: int | None
    elapsed: float

    @property
    def rate(self) -> float:
        """Frames per second so far."""
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, if the total is known."""
        if self.total is None or self.rate <= 0:
            return None
        return max(0, self.total - self.frames) / self.rate


@dataclass
class VideoReport:
    """What a run did.

    Attributes:
        source: the input's description.
        output: the MP4 written (None if no frame was decoded or no video was asked for).
        raw: the raw depth folder/file written, if any.
        frames: frames written.
        fps: the source's nominal frame rate.
        seconds: wall time of the run.
        stopped_early: why the input ended before its end (truncated/corrupt), or None.
        interrupted: True when the run was stopped with Ctrl-C (outputs are finished all the same).
        flicker, flicker_global, flicker_relative: flicker indices of the colour-mapped output (see
            :mod:`.flicker`).
        resets: frames on which the temporal reference restarted (the first frame and scene cuts).
        kind, unit: what the raw values are.
        frame_size: (H, W) of the frames, once one was predicted.
        input_budget: the network-input budget as applied to the frames (``DepthResult.meta["input_budget"]``:
            ``shrunk`` is True when the frames ran below the official network size), once one was predicted.
        mode: ``"window"`` or ``"streaming"`` for a Video Depth Anything model, None for image models.
    """

    source: str
    output: Path | None
    raw: Path | None
    frames: int = 0
    fps: float = 0.0
    seconds: float = 0.0
    stopped_early: str | None = None
    interrupted: bool = False
    flicker: float = float("nan")
    flicker_global: float = float("nan")
    flicker_relative: float = float("nan")
    resets: int = 0
    kind: str = "relative_disparity"
    unit: str | None = None
    frame_size: tuple[int, int] | None = None
    input_budget: dict[str, Any] | None = None
    mode: str | None = None
    alignment: list[tuple[float, float]] = field(default_factory=list, repr=False)

    @property
    def speed(self) -> float:
        """Frames per second of the whole run (decode + predict + encode)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _check_budget(predictor: DepthPredictor | VideoDepthPredictor, name: str, size: tuple[int, int]) -> None:
    """Raise :class:`InputBudgetError` naming the input when its frames cannot be fitted into the budget."""
    try:
        if isinstance(predictor, VideoDepthPredictor):
            predictor.fit(*size)
        else:
            predictor.pipeline.fit(*size)
    except InputBudgetError as e:
        raise InputBudgetError(f"{name}: frames of {e}") from None


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    while batch := list(itertools.islice(frames, size)):
        yield batch


@contextlib.contextmanager
def _stop_on_ctrl_c() -> Iterator[Callable[[], bool]]:
    """While active, a first Ctrl-C only raises a flag that the loop checks between frames, so every output
    ends on the same frame; a second Ctrl-C interrupts at once. Off the main thread, signals cannot be caught:
    then the flag never rises and a KeyboardInterrupt is handled by the caller as before."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    hit = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def first(signum: int, frame: object) -> None:
        hit.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, first)
    try:
        yield hit.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def _image_results(frames: Iterator[Frame], predictor: DepthPredictor
                   ) -> Iterator[tuple[Frame, DepthResult, tuple[float, float] | None]]:
    """An image model, ``batch_size`` frames per forward pass."""
    for batch in _batches(frames, predictor.batch_size):
        for frame, result in zip(batch, predictor.predict_batch([f.rgb for f in batch])):
            yield frame, result, None


def _video_results(frames: Iterator[Frame], predictor: VideoDepthPredictor, mode: str, stops: list[str]
                   ) -> Iterator[tuple[Frame, DepthResult, tuple[float, float] | None]]:
    """A Video Depth Anything model: frames wait (with their timestamps) until their window settles them.

    The model's windows need frames of one size: the input ends (as a truncated file does, the reason appended to
    ``stops``) at the first frame whose size differs from the first frame's, so every earlier frame is finished.
    """
    first = next(frames, None)
    if first is None:
        return  # no frame: process_video reports it, naming the input
    size = first.rgb.shape
    waiting: collections.deque[Frame] = collections.deque()

    def feed() -> Iterator[np.ndarray]:
        for frame in itertools.chain([first], frames):
            if frame.rgb.shape != size:
                stops.append(f"frame {frame.index} is {frame.rgb.shape[1]}x{frame.rgb.shape[0]}, the video "
                             f"{size[1]}x{size[0]}; Video Depth Anything needs frames of one size")
                return
            waiting.append(frame)
            yield frame.rgb

    budget = predictor.fit(*size[:2]).as_meta()
    for out in predictor.predict(feed(), mode):
        frame = waiting.popleft()
        result = DepthResult(out.values, out.kind, predictor.spec.name, out.values.shape, out.network_size,  # type: ignore[arg-type]
                             meta={"input_budget": budget, "mode": mode, "window": out.window})
        yield frame, result, (out.scale, out.shift)


def process_video(
    source: str | Path | FrameSource,
    predictor: DepthPredictor | VideoDepthPredictor,
    output: str | Path | None,
    options: VideoOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
    calibration: Calibration | None = None,
    log: Callable[[str], None] | None = None,
    mode: str | None = None,
) -> VideoReport:
    """Predict depth for every frame of ``source`` and write a depth video (and optionally raw depth).

    Args:
        source: anything :func:`.open_source` opens, or an open :class:`.FrameSource` (closed at the end).
        predictor: an image model (``predictor.batch_size`` frames go through the network together) or a
            Video Depth Anything model (its windows or its streaming mode; the raw values are its output).
        output: the ``.mp4`` to write (H.264, yuv420p, the source's timing), or None for raw output only.
        options: pictures, temporal handling and raw output (default :class:`VideoOptions`).
        progress: called after every batch (every frame for video models) with a :class:`Progress`.
        calibration: turns a relative model's output into metres (see :mod:`depthany.geometry.calibrate`);
            applied frame by frame to the raw predictions.
        log: called with a note when the frames run below the official network size (the network-input
            budget, :mod:`depthany.budget`; frames share a size, so once).
        mode: Video Depth Anything only: ``"window"`` or ``"streaming"``; default the predictor's mode for files
            and image sequences, ``"streaming"`` for live sources (webcams, streams).

    Returns:
        a :class:`VideoReport`. A Ctrl-C during the run returns a report with ``interrupted=True`` after
        finishing the outputs (for a Video Depth Anything model in window mode, the frames of the unfinished
        window are dropped).

    Raises:
        VideoReadError: the input cannot be opened, or no frame could be decoded (naming it).
        InputBudgetError: the frames are too thin to fit the predictor's network-input budget (naming the
            input; checked before any work when the container states the frame size).
        ValueError: bad options.
    """
    opts = options or VideoOptions()
    opts.check()
    if output is None and opts.raw_format is None:
        raise ValueError("nothing to write: give an output video, raw output, or both")
    video_model = isinstance(predictor, VideoDepthPredictor)
    if video_model and opts.temporal == "ema":
        raise ValueError("temporal 'ema' is for image models: Video Depth Anything output is temporally consistent "
                         "by itself (use temporal 'none')")
    if mode is not None and not video_model:
        raise ValueError("mode applies to Video Depth Anything models only")
    src = source if isinstance(source, FrameSource) else open_source(source)
    if src.size is not None:
        try:
            _check_budget(predictor, src.name, src.size)
        except InputBudgetError:
            if not isinstance(source, FrameSource):
                src.close()
            raise
    if isinstance(predictor, VideoDepthPredictor):
        mode = mode or ("streaming" if src.live else predictor.mode)
    # depth (metres, or Depth Anything 3's relative depth) is shown as 1/depth and stored as predicted
    kind = "metric_depth" if calibration is not None else predictor.spec.output_kind
    metric = kind != "relative_disparity"
    temporal = opts.temporal or ("none" if metric or video_model else "ema")
    aligner = TemporalAligner(momentum=opts.momentum) if temporal == "ema" else None
    colour_range = AdaptiveRange(opts.range, opts.range_rate, vmin=opts.vmin, vmax=opts.vmax)
    unit = "m" if kind == "metric_depth" else None
    if video_model:
        values = (f"the Video Depth Anything output ({mode} mode){' in metres' if unit else ''}, as the "
                  "official code computes it; scale/shift: the least-squares fit of the frame's window onto the "
                  "reference, already applied")
    else:
        values = ("depth in metres" if kind == "metric_depth" else
                  "relative depth (bigger = farther, unknown scale), as predicted" if metric else
                  "relative disparity in the frame of the temporal reference: raw = (value - shift) / scale")
    meta = {"kind": kind, "unit": unit, "model": predictor.spec.name, "source": src.name, "fps": src.fps,
            "time_base": [src.time_base.numerator, src.time_base.denominator], "temporal": temporal,
            "values": values, **({"mode": mode} if video_model else {})}
    report = VideoReport(src.describe(), Path(output) if output is not None else None,
                         Path(opts.raw_path) if opts.raw_path is not None else None, fps=src.fps, kind=kind, unit=unit,
                         mode=mode)
    outs = Outputs(report.output, opts, src, meta)
    meter = FlickerMeter()
    total = src.frame_count if opts.max_frames is None else min(src.frame_count or opts.max_frames, opts.max_frames)
    start = time.perf_counter()
    frames: Iterator[Frame] = iter(src)
    if opts.max_frames is not None:
        frames = itertools.islice(frames, opts.max_frames)

    def checked(frames: Iterator[Frame]) -> Iterator[Frame]:
        for frame in frames:  # the budget check before the first frame is predicted, naming the input
            if report.frame_size is None:
                report.frame_size = frame.rgb.shape[:2]
                _check_budget(predictor, src.name, report.frame_size)
            yield frame

    stops: list[str] = []
    if isinstance(predictor, VideoDepthPredictor):
        results = _video_results(checked(frames), predictor, mode or predictor.mode, stops)
    else:
        results = _image_results(checked(frames), predictor)
    step = FrameStep(opts, calibration, metric, aligner, colour_range, meter, outs, report)
    batch = 1 if video_model else predictor.batch_size  # type: ignore[union-attr]
    try:
        with _stop_on_ctrl_c() as stop_requested:
            for frame, result, model_alignment in results:
                if report.input_budget is None:
                    report.input_budget = result.meta.get("input_budget")
                    if log is not None and report.input_budget and report.input_budget.get("shrunk"):
                        log(f"note: {src.name}: frames: {shrink_note(report.input_budget, frame.rgb.shape[:2])}")
                if stop_requested():
                    raise KeyboardInterrupt
                step(frame, result, model_alignment)
                if progress is not None and report.frames % batch == 0:
                    progress(Progress(report.frames, total, time.perf_counter() - start))
            if progress is not None and report.frames % batch:  # the last, partial batch
                progress(Progress(report.frames, total, time.perf_counter() - start))
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        report.seconds = time.perf_counter() - start
        report.stopped_early = "; ".join([*stops, *([src.error] if src.error else [])]) or None
        try:
            outs.close()
        finally:
            if not isinstance(source, FrameSource):
                src.close()
    report.flicker, report.flicker_global, report.flicker_relative = (meter.value, meter.global_value,
                                                                      meter.relative_value)
    if report.frames == 0 and not report.interrupted:
        why = f": {src.error}" if src.error else ""
        raise VideoReadError(f"{src.name}: no frame could be decoded{why}")
    if outs.encoder is None:
        report.output = None
    return report
