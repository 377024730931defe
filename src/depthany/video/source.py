"""Frame sources: video files, image sequences, webcams and network streams, decoded one frame at a time.

Every source is an iterator of :class:`Frame` with the source's own timing (presentation timestamps in a
time base), so the encoder can reproduce the timing exactly, variable frame rate included. Nothing is read
ahead beyond what the decoder needs: memory does not grow with the length of the input.

A file that stops decoding part way (a truncated download, a recording cut by a crash) ends the iteration
early; :attr:`FrameSource.error` then says why, so the caller can finish the output with the frames it got.
A file that cannot be opened at all raises :class:`VideoReadError` naming it.
"""

from __future__ import annotations

import glob as globlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..io.image import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, ImageReadError, read_image

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
DEFAULT_SEQUENCE_FPS = 30.0


class VideoReadError(ValueError):
    """A video, image sequence or stream could not be opened or read. The message names it."""


@dataclass
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based position in the source.
        rgb: (H, W, 3) uint8 RGB, display rotation applied.
        pts: presentation timestamp in units of the source's ``time_base``, counted from the first frame.
        time: the same timestamp in seconds.
    """

    index: int
    rgb: np.ndarray
    pts: int
    time: float


class FrameSource:
    """Base class: iterate to get :class:`Frame` objects; close (or use ``with``) to release the input.

    Attributes:
        name: the input as the user gave it (for messages).
        fps: nominal frames per second (the average rate for variable-rate video).
        rate: the same as an exact fraction (``24000/1001``).
        time_base: unit of :attr:`Frame.pts` in seconds.
        frame_count: number of frames if the container says so, else None (streams, some containers).
        size: (H, W) of the frames in pixels, once known.
        error: why decoding stopped early (truncated or corrupt input), or None.
        live: True for webcams and network streams (no end, no known length).
    """

    name: str = ""
    fps: float = DEFAULT_SEQUENCE_FPS
    rate: Fraction = Fraction(30)
    time_base: Fraction = Fraction(1, 30)
    frame_count: int | None = None
    size: tuple[int, int] | None = None
    error: str | None = None
    live: bool = False

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the input (idempotent)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """One line: name, size, rate and length."""
        size = f"{self.size[1]}x{self.size[0]}" if self.size else "?x?"
        count = f"{self.frame_count} frames" if self.frame_count else ("live" if self.live else "unknown length")
        return f"{self.name}: {size}, {self.fps:.3f} fps, {count}"


def _rotate(rgb: np.ndarray, degrees: int) -> np.ndarray:
    """Apply a display-matrix rotation (counter-clockwise degrees, as FFmpeg reports it)."""
    turns = (round(degrees / 90)) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


class AVSource(FrameSource):
    """Anything FFmpeg opens through PyAV: files, ``/dev/videoN`` webcams, rtsp/http/... streams.

    Args:
        target: file path, device path or URL.
        fmt: FFmpeg input format (``"v4l2"`` for Linux webcams), or None to probe.
        options: FFmpeg input options (``{"rtsp_transport": "tcp"}``, ``{"framerate": "30"}``, ...).
        live: mark a webcam/stream (no end, no length).
        timeout: seconds to wait when opening and reading network streams.
        max_pixels: refuse frames with more pixels than this (like images; checked before converting a frame).

    Raises:
        VideoReadError: missing file, not a video, no video stream, frames over ``max_pixels``, or the
            stream/device cannot be opened.
    """

    def __init__(self, target: str | Path, fmt: str | None = None, options: dict[str, str] | None = None,
                 live: bool = False, timeout: float | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        import av

        self.name = str(target)
        self.live = live
        self.max_pixels = max_pixels
        if not live:
            p = Path(target)
            if not p.exists():
                raise VideoReadError(f"{self.name}: no such file")
            if p.is_dir():
                raise VideoReadError(f"{self.name}: is a folder; pass the folder as an image sequence or a video file")
            if p.stat().st_size == 0:
                raise VideoReadError(f"{self.name}: file is empty (0 bytes)")
        kwargs: dict[str, Any] = {"options": options or {}}
        if fmt:
            kwargs["format"] = fmt
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            self._container = av.open(str(target), mode="r", **kwargs)
        except av.error.FFmpegError as e:
            hint = ""
            if not live and str(target).lower().endswith((".mp4", ".mov", ".m4v")):
                hint = " (an MP4/MOV whose index ('moov' atom) is missing: truncated before it was finished?)"
            raise VideoReadError(f"{self.name}: cannot open as a video: {_reason(e)}{hint}") from None
        except OSError as e:
            raise VideoReadError(f"{self.name}: cannot open: {e}") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoReadError(f"{self.name}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        self.rate = Fraction(rate) if rate else Fraction(DEFAULT_SEQUENCE_FPS)
        self.fps = float(self.rate)
        self.time_base = self._stream.time_base or Fraction(1, max(1, round(self.fps)))
        self.frame_count = int(self._stream.frames) if self._stream.frames and not live else None
        ctx = self._stream.codec_context
        self._closed = False
        if ctx.width and ctx.height:
            self.size = (int(ctx.height), int(ctx.width))
            self._check_size(int(ctx.width), int(ctx.height))

    def _check_size(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            self.close()
            raise VideoReadError(f"{self.name}: {width}x{height} frames = {width * height:,} pixels exceed the limit "
                                 f"of {self.max_pixels:,}")

    def __iter__(self) -> Iterator[Frame]:
        import av

        first_pts: int | None = None
        last_pts = -1
        index = 0
        frames = self._container.decode(self._stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                self.error = self._short_read(index, last_pts)
                return
            except (av.error.FFmpegError, OSError) as e:
                # Truncated or corrupt data: stop here and let the caller finish the output.
                self.error = f"decoding stopped after {index} frames: {_reason(e)}"
                return
            self._check_size(frame.width, frame.height)
            rgb = _rotate(frame.to_ndarray(format="rgb24"), int(getattr(frame, "rotation", 0) or 0))
            if self.size is None or index == 0:
                self.size = (rgb.shape[0], rgb.shape[1])
            pts = frame.pts
            if pts is None:  # some raw streams carry no timestamps: derive them from the rate
                pts = round(index / self.fps / self.time_base)
            if first_pts is None:
                first_pts = pts
            pts -= first_pts
            if pts <= last_pts:  # the encoder needs strictly increasing timestamps
                pts = last_pts + 1
            last_pts = pts
            yield Frame(index, rgb, int(pts), float(pts * self.time_base))
            index += 1

    def _short_read(self, decoded: int, last_pts: int) -> str | None:
        """Why a file that decoded without an error still looks cut short, or None.

        Threaded decoding reports a truncated tail as a plain end of stream, so compare with what the
        container header promised: its frame count, else its duration (with two frames of slack).
        """
        if self.live:
            return None
        if self.frame_count and decoded + 2 < self.frame_count:  # slack: edit lists may hide a frame or two
            return (f"only {decoded} of the {self.frame_count} frames the container lists could be decoded "
                    "(truncated or corrupt file?)")
        if self._stream.duration and self._stream.time_base:
            duration = float(self._stream.duration * self._stream.time_base)
        elif self._container.duration and len(self._container.streams) == 1:  # else audio may be longer
            duration = self._container.duration / 1_000_000
        else:
            return None
        if decoded and self.fps > 0:
            shown = float(last_pts * self.time_base) + 1 / self.fps
            if duration - shown > max(2 / self.fps, 0.1):
                return (f"decoding ended at {shown:.2f} s of the {duration:.2f} s the container lists "
                        "(truncated or corrupt file?)")
        return None

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._container.close()
            self._closed = True


def _reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return str(text).rstrip(".")


def _natural_key(p: Path) -> list[Any]:
    """Sort ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def list_sequence(spec: str | Path) -> list[Path]:
    """Image files of a folder (not recursive) or a glob pattern, in natural order.

    Raises:
        VideoReadError: nothing matches, naming the folder or pattern.
    """
    text = str(spec)
    if any(c in text for c in "*?["):
        files = [Path(f) for f in globlib.glob(text, recursive=True)]
        files = [f for f in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        where = f"pattern {text!r}"
    else:
        folder = Path(text)
        if not folder.is_dir():
            raise VideoReadError(f"{text}: no such folder")
        files = [f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
        where = f"folder {text}"
    if not files:
        raise VideoReadError(f"{where}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return sorted(files, key=_natural_key)


class ImageSequenceSource(FrameSource):
    """Numbered images as a video at ``fps`` frames per second (all frames must have the first one's size).

    Raises:
        VideoReadError: no images; while iterating, an unreadable image or one of another size (naming it).
    """

    def __init__(self, spec: str | Path, fps: float = DEFAULT_SEQUENCE_FPS,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.name = str(spec)
        self.files = list_sequence(spec)
        self.rate = Fraction(fps).limit_denominator(1001)
        self.fps = float(self.rate)
        self.time_base = 1 / self.rate
        self.frame_count = len(self.files)
        self.max_pixels = max_pixels

    def __iter__(self) -> Iterator[Frame]:
        for i, f in enumerate(self.files):
            try:
                rgb = read_image(f, max_pixels=self.max_pixels).rgb
            except ImageReadError as e:
                raise VideoReadError(f"image sequence {self.name}, frame {i}: {e}") from None
            if self.size is None:
                self.size = (rgb.shape[0], rgb.shape[1])
            elif rgb.shape[:2] != self.size:
                raise VideoReadError(f"image sequence {self.name}, frame {i}: {f} is {rgb.shape[1]}x{rgb.shape[0]}, "
                                     f"the sequence started at {self.size[1]}x{self.size[0]}")
            yield Frame(i, rgb, i, float(i * self.time_base))


def open_source(spec: str | Path, *, fps: float | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                timeout: float = 10.0) -> FrameSource:
    """Open whatever ``spec`` names.

    * a folder or a glob pattern (``frames/*.png``): an image sequence at ``fps`` (default 30);
    * ``/dev/videoN`` or a bare camera number ``N``: a Linux webcam (V4L2);
    * ``rtsp://``, ``http(s)://``, ``rtmp://``, ``udp://``, ... : a network stream;
    * anything else: a video file (any container and codec FFmpeg decodes), with its own timing.

    ``fps`` sets the rate of image sequences and asks a webcam for that rate; files keep their timestamps.

    Raises:
        VideoReadError: the input does not exist or cannot be opened, naming it.
    """
    text = str(spec)
    if text.isdigit():
        text = f"/dev/video{text}"
    if text.startswith("/dev/video"):
        opts = {"framerate": f"{fps:g}"} if fps else {}
        source: FrameSource = AVSource(text, fmt="v4l2", options=opts, live=True, timeout=timeout,
                                       max_pixels=max_pixels)
    elif text.lower().startswith(STREAM_PREFIXES):
        opts = {"rtsp_transport": "tcp"} if text.lower().startswith(("rtsp://", "rtsps://")) else {}
        source = AVSource(text, options=opts, live=True, timeout=timeout, max_pixels=max_pixels)
    elif any(c in text for c in "*?[") or Path(text).is_dir():
        source = ImageSequenceSource(text, fps or DEFAULT_SEQUENCE_FPS, max_pixels)
    else:
        source = AVSource(text, max_pixels=max_pixels)  # a file keeps its own timestamps; ``fps`` does not apply
    return source
