"""Fit once, apply many: a saved calibration over frames, arrays or a folder of ``.npy`` predictions.

A calibration maps one model's raw output to metres. It transfers to other images when the mapping does not
change between them: always true for a metric model's per-camera correction; for relative models only
approximately (their scale and shift are re-estimated per image by the network), so fit per image when you have
anchors for each, and check on a few frames when you do not.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io.image import IMAGE_SUFFIXES, read_image
from .calibrate import Calibration, CalibrationWarning
from .pointcloud import write_result_ply


def iter_apply(calibration: Calibration, frames: Iterable[np.ndarray], *, fill: float = 0.0
               ) -> Iterator[np.ndarray]:
    """Lazily calibrate a stream of (H, W) predictions (video frames) to (H, W) float32 metres.

    Warnings about pixels without depth are issued once per stream, not once per frame.
    """
    bad = total = 0
    for frame in frames:
        inv = calibration.inverse_depth(frame)
        with np.errstate(invalid="ignore"):
            bad += int((~(np.isfinite(inv) & (inv > 0))).sum())
        total += inv.size
        yield calibration.apply(frame, fill=fill, warn=False)
    if bad:
        warnings.warn(f"calibration left {bad} of {total} pixels without depth across the stream",
                      CalibrationWarning, stacklevel=2)


@dataclass
class FolderReport:
    """What :func:`apply_to_folder` wrote.

    Attributes:
        written: output paths (``.npy`` and ``.ply``).
        failed: (input, reason) for inputs that could not be processed.
    """

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def list_predictions(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """``.npy`` files of a folder (sorted, not recursive) or the given files.

    Raises:
        ValueError: a missing input or an empty folder, naming it.
    """
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    out: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() == ".npy" and q.is_file())
            if not found:
                raise ValueError(f"{p}: folder has no .npy predictions")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise ValueError(f"{p}: no such file or folder")
    return out


def _find_image(folder: Path, stem: str) -> Path | None:
    for q in sorted(folder.glob(f"{stem}.*")):
        if q.suffix.lower() in IMAGE_SUFFIXES:
            return q
    return None


def apply_to_folder(
    calibration: Calibration,
    inputs: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    ply: bool = False,
    images: str | Path | None = None,
    fill: float = 0.0,
    **ply_options: Any,
) -> FolderReport:
    """Calibrate saved predictions and write metric ``<stem>.npy`` (float32 metres, ``fill`` = no depth).

    Args:
        calibration: from :func:`fit_calibration` / :meth:`Calibration.load`.
        inputs: a folder of ``.npy`` predictions (raw model output of ``calibration.input_kind``) or files.
        out_dir: where ``<stem>.npy`` (and ``<stem>.ply``) go; must not be the input folder.
        ply: also write a point cloud per prediction.
        images: folder with the source photos (``<stem>.<jpg|png|...>``): colours the clouds and provides EXIF
            intrinsics.
        ply_options: passed to :func:`depthany.geometry.pointcloud.write_result_ply` (``fx``, ``fov``,
            ``max_depth``, ``drop_flying``, ...).
    """
    from ..result import DepthResult

    files = list_predictions(inputs)
    out = Path(out_dir)
    if any(f.parent.resolve() == out.resolve() for f in files):
        raise ValueError(f"out_dir {out} is the input folder; choose another so predictions are not overwritten")
    out.mkdir(parents=True, exist_ok=True)
    img_dir = Path(images) if images is not None else None
    if img_dir is not None and not img_dir.is_dir():
        raise ValueError(f"images: {img_dir} is not a folder")
    report = FolderReport()
    for f in files:
        try:
            values = np.load(f, allow_pickle=False)
            if values.ndim != 2:
                raise ValueError(f"expected an (H, W) prediction, got shape {values.shape}")
            depth = calibration.apply(values, fill=fill, warn=False)
            dst = out / f"{f.stem}.npy"
            np.save(dst, depth)
            report.written.append(dst)
            if ply:
                rgb, meta, src = None, {}, None
                if img_dir is not None and (img := _find_image(img_dir, f.stem)) is not None:
                    loaded = read_image(img)
                    if loaded.size != depth.shape:
                        raise ValueError(f"image {img.name} is {loaded.size[1]}x{loaded.size[0]} but the "
                                         f"prediction is {depth.shape[1]}x{depth.shape[0]}")
                    rgb, src = loaded.rgb, str(img)
                    meta = {"exif": loaded.exif, "orientation": loaded.orientation, "raw_size": loaded.raw_size}
                result = DepthResult(depth, "metric_depth",
                                     calibration.model or "unknown", depth.shape, depth.shape, src, meta)
                report.written.append(write_result_ply(result, rgb, out / f"{f.stem}.ply", **ply_options))
        except (ValueError, OSError) as e:
            report.failed.append((f, str(e)))
    return report
