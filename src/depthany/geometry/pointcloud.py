"""Point clouds as PLY files, written with numpy alone.

Layout: one ``vertex`` element with ``float x, y, z`` (metres, OpenCV camera coordinates: x right, y down,
z forward) and, when colours are given, ``uchar red, green, blue``. Binary little-endian by default (15 bytes a
coloured point), ASCII on request (``float32`` values printed with 9 significant digits, which round-trips
exactly). Header comments record the units, the frame and the intrinsics used. Files are written to a temporary
name in the same folder and renamed, so a crash never leaves a half-written ``.ply`` behind.

Many viewers (MeshLab, CloudCompare) show y up; a cloud in camera coordinates then looks upside down. Flip y
and z in the viewer, or rotate 180 degrees about x.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import atomic_write
from .backproject import DEFAULT_FLYING_RTOL, depth_to_points, metric_depth_array
from .intrinsics import Intrinsics
from .resolve import intrinsics_for_result

_XYZ = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
_RGB = [("red", "u1"), ("green", "u1"), ("blue", "u1")]


def _header(n: int, colours: bool, fmt: str, comments: Sequence[str]) -> bytes:
    lines = ["ply", f"format {fmt} 1.0"]
    for c in comments:
        text = " ".join(str(c).split())  # one line, no control characters
        lines.append(f"comment {text}")
    lines.append(f"element vertex {n}")
    lines += [f"property float {name}" for name, _ in _XYZ]
    if colours:
        lines += [f"property uchar {name}" for name, _ in _RGB]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii", errors="replace")


def _atomic_write(path: Path, chunks: Sequence[bytes]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            for c in chunks:
                f.write(c)

    atomic_write(path, write)


def write_ply(path: str | Path, xyz: np.ndarray, rgb: np.ndarray | None = None, *, ascii: bool = False,
              comments: Sequence[str] = ()) -> Path:
    """Write points (and colours) to a PLY file, atomically.

    Args:
        path: output file.
        xyz: (N, 3) float, metres; must be finite. Stored as float32.
        rgb: (N, 3) uint8 colours, or None for an uncoloured cloud.
        ascii: write ``format ascii 1.0`` instead of ``binary_little_endian 1.0``.
        comments: header comment lines.

    Returns:
        the path written.

    Raises:
        ValueError: wrong shapes or dtypes, or non-finite coordinates, naming the argument.
    """
    p = np.asarray(xyz)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"xyz must have shape (N, 3), got {p.shape}")
    if not np.issubdtype(p.dtype, np.number):
        raise ValueError(f"xyz must be numeric, got dtype {p.dtype}")
    p32 = p.astype("<f4")
    if not np.all(np.isfinite(p32)):
        raise ValueError("xyz contains non-finite coordinates (NaN/inf, or beyond float32); drop them first")
    if rgb is not None:
        c = np.asarray(rgb)
        if c.shape != p.shape:
            raise ValueError(f"rgb must have the same shape as xyz {p.shape}, got {c.shape}")
        if c.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8 (0..255), got dtype {c.dtype}")
    out = Path(path)
    n = p.shape[0]
    header = _header(n, rgb is not None, "ascii" if ascii else "binary_little_endian", comments)
    if ascii:
        cols: list[np.ndarray] = [p32[:, i] for i in range(3)]
        fmt = "%.9g %.9g %.9g"
        if rgb is not None:
            cols += [np.asarray(rgb)[:, i].astype(np.int64) for i in range(3)]
            fmt += " %d %d %d"
        body = "\n".join(fmt % row for row in zip(*(col.tolist() for col in cols)))
        _atomic_write(out, [header, (body + "\n").encode("ascii") if n else b""])
    else:
        rec = np.empty(n, dtype=_XYZ + (_RGB if rgb is not None else []))
        rec["x"], rec["y"], rec["z"] = p32[:, 0], p32[:, 1], p32[:, 2]
        if rgb is not None:
            c8 = np.asarray(rgb)
            rec["red"], rec["green"], rec["blue"] = c8[:, 0], c8[:, 1], c8[:, 2]
        _atomic_write(out, [header, rec.tobytes()])
    return out


def write_result_ply(
    result: Any,
    rgb: np.ndarray | None,
    path: str | Path,
    *,
    intrinsics: Intrinsics | np.ndarray | None = None,
    fx: float | None = None,
    fy: float | None = None,
    cx: float | None = None,
    cy: float | None = None,
    fov: float | None = None,
    fov_axis: str = "horizontal",
    drop_flying: bool = True,
    flying_rtol: float = DEFAULT_FLYING_RTOL,
    max_depth: float | None = None,
    mask: np.ndarray | None = None,
    drop_sky: bool = True,
    ascii: bool = False,
) -> Path:
    """A metric (or relative-depth) :class:`~depthany.result.DepthResult` as a coloured point cloud.

    Intrinsics: ``intrinsics`` (an :class:`Intrinsics` or 3x3 K), ``fx`` (pixels; ``fy`` defaults to ``fx``,
    ``cx``/``cy`` to the image centre) or ``fov`` (degrees along ``fov_axis``) if given, else the photo's EXIF
    (``result.meta``), else a 60 degree default with a warning (:func:`depthany.geometry.resolve_intrinsics`).
    The intrinsics used are written into the header.

    Args:
        result: metric DepthResult (or a calibrated one), or an (H, W) array of metres; relative disparity is
            refused.
        rgb: (H, W, 3) uint8 image the depth belongs to, or None for no colours.
        path: output ``.ply``.
        drop_flying, flying_rtol: remove pixels on depth discontinuities (see
            :func:`depthany.geometry.flying_pixel_mask`).
        max_depth: drop depth >= this many metres (sky sits near the model's maximum: 20 m / 80 m).
        mask: (H, W) bool, True = keep.
        drop_sky: drop the pixels of the result's sky mask (Depth Anything 3: their depth is a fill value, the
            0.99 quantile of the other pixels, not a surface).
        ascii: ASCII PLY instead of binary.

    Returns:
        the path written.

    Raises:
        ValueError: relative disparity, mismatched sizes, bad options.
    """
    depth = metric_depth_array(result, "result")
    sky = getattr(result, "sky", None)
    if drop_sky and sky is not None and sky.shape == depth.shape:
        mask = ~sky if mask is None else (np.asarray(mask, dtype=bool) & ~sky)
    if rgb is not None:
        im = np.asarray(rgb)
        if im.ndim != 3 or im.shape[:2] != depth.shape or im.shape[2] < 3:
            raise ValueError(f"rgb must be (H, W, 3) matching the depth map {depth.shape}, got shape {im.shape}")
    k = intrinsics_for_result(result, intrinsics=intrinsics, fx=fx, fy=fy, cx=cx, cy=cy, fov=fov, fov_axis=fov_axis)
    cloud = depth_to_points(depth, k, mask=mask, max_depth=max_depth, drop_flying=drop_flying,
                            flying_rtol=flying_rtol)
    if cloud.xyz.shape[0] == 0:
        warnings.warn(f"{path}: no valid points left (all {depth.size} pixels invalid, masked or flying); "
                      "writing an empty point cloud", UserWarning, stacklevel=2)
    colours = cloud.colors(np.asarray(rgb)) if rgb is not None else None
    unit = "metres" if getattr(result, "kind", "metric_depth") == "metric_depth" else "relative units (unknown scale)"
    comments = [
        f"depthany point cloud: {unit}, OpenCV camera frame (x right, y down, z forward)",
        f"model {getattr(result, 'model', 'unknown')}",
        f"intrinsics fx {k.fx:.6g} fy {k.fy:.6g} cx {k.cx:.6g} cy {k.cy:.6g} width {k.width} height {k.height}",
        f"intrinsics_source {k.source}",
        f"dropped invalid {cloud.n_invalid} flying {cloud.n_flying}",
    ]
    return write_ply(path, cloud.xyz, colours, ascii=ascii, comments=comments)
