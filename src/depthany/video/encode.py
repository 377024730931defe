"""H.264 MP4 that browsers play, written frame by frame with PyAV (no ``ffmpeg`` on PATH).

Browsers (and Gradio's ``Video``) play H.264 in MP4 with 4:2:0 chroma; the official scripts write ``mp4v``
(MPEG-4 Part 2), which they do not. 4:2:0 needs even width and height, so odd frames are padded by one
row/column that repeats the edge (the picture is never scaled). Frames keep the source's timestamps and time
base, so the output has the source's frame rate and timing, variable rate included. The index goes to the
front of the file (``+faststart``) when the file is closed, so a browser can start playing before it has the
whole file; :meth:`VideoEncoder.close` also runs when a run is interrupted, which leaves a valid, playable
file with the frames written so far.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np


def even_size(height: int, width: int) -> tuple[int, int]:
    """(H, W) rounded up to even numbers (what 4:2:0 chroma subsampling needs)."""
    return height + (height & 1), width + (width & 1)


def pad_even(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H', W', 3) with H', W' even, repeating the last row/column where needed."""
    h, w = rgb.shape[:2]
    ph, pw = even_size(h, w)
    if (ph, pw) == (h, w):
        return rgb
    return np.pad(rgb, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")


class Retimer:
    """Timestamps for the output: the source's, snapped to its nominal frame grid where they sit on it.

    Containers store time in ticks; Matroska uses milliseconds, so a 23.976 fps video there says 0, 42, 83,
    125 ms... Copied as is, an MP4 of it would report 24.015 fps. A timestamp within one source tick of frame
    ``n`` of the nominal ``rate`` is therefore written as exactly ``n / rate``; any other (variable-rate) time is
    kept. The output time base is fine enough for both (the least common multiple of the two denominators),
    unless that is absurdly fine, in which case the source's time base is used unchanged.

    Args:
        rate: nominal frame rate of the source (a fraction such as 24000/1001).
        time_base: the source's time base.
    """

    MAX_TIMESCALE = 1 << 20

    def __init__(self, rate: Fraction, time_base: Fraction) -> None:
        self.rate, self.source_tb = Fraction(rate), Fraction(time_base)
        per_frame = 1 / self.rate  # seconds per frame
        lcm = _lcm(per_frame.denominator, self.source_tb.denominator)
        self.snap = self.rate > 0 and lcm <= self.MAX_TIMESCALE
        self.time_base = Fraction(1, lcm) if self.snap else self.source_tb

    def __call__(self, pts: int) -> int:
        """Source ``pts`` (source time base) -> output pts (:attr:`time_base`)."""
        t = pts * self.source_tb
        if not self.snap:
            return int(pts)
        n = round(t * self.rate)
        if abs(t - n / self.rate) < self.source_tb:
            t = n / self.rate
        return int(round(t / self.time_base))


def _lcm(a: int, b: int) -> int:
    from math import gcd

    return a * b // gcd(a, b)


class VideoEncoder:
    """Write (H, W, 3) uint8 RGB frames to an H.264 (yuv420p) MP4.

    Args:
        path: output file (``.mp4``; ``.mov`` and ``.mkv`` also work).
        height, width: frame size in pixels (padded to even numbers in the file).
        time_base: unit of the timestamps passed to :meth:`write`, in seconds.
        fps: nominal frame rate (written as the stream's rate), a float or an exact fraction.
        crf: x264 constant rate factor, 0 (lossless) .. 51; 18 is visually lossless for depth pictures.
        preset: x264 speed/size trade-off (``ultrafast`` .. ``veryslow``).

    Use as a context manager, or call :meth:`close`; closing flushes the encoder and writes the index.
    """

    def __init__(self, path: str | Path, height: int, width: int, time_base: Fraction, fps: float | Fraction,
                 crf: int = 18, preset: str = "medium") -> None:
        import av

        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf}")
        if height < 1 or width < 1:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = (height, width)
        self.frames = 0
        self._last_pts = -1
        options = {"movflags": "+faststart"} if self.path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
        self._container: Any = av.open(str(self.path), mode="w", options=options)
        rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        if not rate > 0:
            rate = Fraction(30)
        self._stream: Any = self._container.add_stream("libx264", rate=rate)
        eh, ew = even_size(height, width)
        self._stream.width, self._stream.height = ew, eh
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = time_base
        self._stream.codec_context.time_base = time_base
        # Convert with the BT.709 matrix and say so in the stream: untagged files leave players guessing
        # between BT.601 and BT.709, which shifts colours visibly (red 200 -> 213).
        self._stream.options = {"crf": str(crf), "preset": preset,
                                "x264-params": "colorprim=bt709:transfer=bt709:colormatrix=bt709"}
        self.time_base = time_base
        self._closed = False

    def write(self, rgb: np.ndarray, pts: int) -> None:
        """Encode one (H, W, 3) uint8 RGB frame shown at ``pts`` (in ``time_base`` units).

        Raises:
            ValueError: wrong shape or dtype.
        """
        import av
        from av.video.reformatter import Colorspace

        if rgb.dtype != np.uint8 or rgb.shape != (*self.size, 3):
            raise ValueError(f"expected a {self.size[1]}x{self.size[0]} uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
        pts = max(int(pts), self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pad_even(rgb)), format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709)
        frame.pts = pts
        frame.time_base = self.time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
