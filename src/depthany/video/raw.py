"""Raw per-frame depth of a video: a 16-bit PNG sequence or one ``.npz``, both written frame by frame.

* ``png16``: ``<folder>/frame_000000.png`` ... in the :mod:`depthany.io.depth` 16-bit convention (each PNG
  carries its own ``scale``/``offset`` decoding, kind and unit in a text chunk; read with
  :func:`depthany.io.depth.read_png16`), plus ``<folder>/sequence.json`` with the frame rate, time base and
  every frame's timestamp, written when the writer is closed.
* ``npz``: one zip with ``frame_000000`` ... as (H, W) float32 arrays and, at the end, ``pts`` (int64, time
  base units), ``time`` (float64 seconds), ``scale``/``shift`` (the temporal alignment per frame) and ``meta``
  (a 0-d JSON string: ``json.loads(z["meta"].item())``). ``np.load(path)["frame_000012"]`` reads one frame without loading the others. Frames are
  streamed into the zip, so writing takes constant memory; the file is uncompressed float32 (4 bytes per
  pixel per frame), choose png16 for long videos.

Both are valid after :meth:`close`, which also runs when a run is interrupted.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..io.atomic import atomic_path
from ..io.depth import write_png16

RawFormat = Literal["png16", "npz"]
RAW_FORMATS: tuple[str, ...] = ("png16", "npz")


def frame_name(index: int) -> str:
    """``frame_000012`` for index 12."""
    return f"frame_{index:06d}"


class RawDepthWriter:
    """Common bookkeeping: frame timestamps and alignment per frame, sequence metadata.

    Args:
        path: output folder (png16) or ``.npz`` file.
        meta: sequence metadata (kind, unit, model, fps, time_base, source, ...), JSON-serialisable.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.meta = dict(meta)
        self.pts: list[int] = []
        self.times: list[float] = []
        self.scales: list[float] = []
        self.shifts: list[float] = []
        self._closed = False

    def write(self, index: int, values: np.ndarray, pts: int, time: float, scale: float = 1.0,
              shift: float = 0.0) -> None:
        """Store frame ``index``: (H, W) float values (kind and unit as in ``meta``), its timestamp and the
        temporal alignment ``aligned = scale * raw + shift`` that was applied to get ``values``."""
        self._write(index, values, pts, time, scale, shift)
        self.pts.append(int(pts))
        self.times.append(float(time))
        self.scales.append(float(scale))
        self.shifts.append(float(shift))

    def _write(self, index: int, values: np.ndarray, pts: int, time: float, scale: float, shift: float) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output (idempotent)."""
        if not self._closed:
            self._closed = True
            self._finish()

    def _finish(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> RawDepthWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Png16SequenceWriter(RawDepthWriter):
    """16-bit PNG per frame (own quantisation range each) plus ``sequence.json``."""

    def __init__(self, path: str | Path, meta: dict[str, Any]) -> None:
        super().__init__(path, meta)
        self.path.mkdir(parents=True, exist_ok=True)

    def _write(self, index: int, values: np.ndarray, pts: int, time: float, scale: float, shift: float) -> None:
        extra: dict[str, Any] = {k: self.meta[k] for k in ("model", "source") if k in self.meta}
        extra.update(frame=index, pts=int(pts), time=float(time),
                     temporal_alignment={"scale": scale, "shift": shift})
        write_png16(self.path / f"{frame_name(index)}.png", values, kind=self.meta.get("kind", "relative_disparity"),
                    unit=self.meta.get("unit"), sidecar=False, extra=extra)

    def _finish(self) -> None:
        doc = {**self.meta, "frames": len(self.pts), "files": "frame_%06d.png",
               "pts": self.pts, "time": self.times, "alignment_scale": self.scales, "alignment_shift": self.shifts}
        with atomic_path(self.path / "sequence.json") as tmp:
            tmp.write_text(json.dumps(doc, indent=1) + "\n")


class NpzStreamWriter(RawDepthWriter):
    """All frames in one ``.npz``, streamed entry by entry."""

    def __init__(self, path: str | Path, meta: dict[str, Any]) -> None:
        super().__init__(path, meta)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._zip = zipfile.ZipFile(self.path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def _put(self, name: str, array: np.ndarray) -> None:
        with self._zip.open(f"{name}.npy", mode="w", force_zip64=True) as f:
            a = np.asarray(array)
            # ascontiguousarray would turn the 0-d ``meta`` string into a 1-element array
            np.lib.format.write_array(f, a if a.flags.c_contiguous else np.ascontiguousarray(a), allow_pickle=False)

    def _write(self, index: int, values: np.ndarray, pts: int, time: float, scale: float, shift: float) -> None:
        self._put(frame_name(index), np.asarray(values, dtype=np.float32))

    def _finish(self) -> None:
        try:
            self._put("pts", np.asarray(self.pts, dtype=np.int64))
            self._put("time", np.asarray(self.times, dtype=np.float64))
            self._put("scale", np.asarray(self.scales, dtype=np.float64))
            self._put("shift", np.asarray(self.shifts, dtype=np.float64))
            self._put("meta", np.asarray(json.dumps({**self.meta, "frames": len(self.pts)})))
        finally:
            self._zip.close()


def open_raw_writer(fmt: str, path: str | Path, meta: dict[str, Any]) -> RawDepthWriter:
    """A :class:`Png16SequenceWriter` (``fmt="png16"``, ``path`` a folder) or :class:`NpzStreamWriter`.

    Raises:
        ValueError: unknown format.
    """
    if fmt == "png16":
        return Png16SequenceWriter(path, meta)
    if fmt == "npz":
        return NpzStreamWriter(path, meta)
    raise ValueError(f"raw depth format must be one of {', '.join(RAW_FORMATS)}, got {fmt!r}")
