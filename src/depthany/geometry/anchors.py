"""Known distances ("anchors") for calibration: pixels with a measured depth in metres.

Where they come from:

* a few points a user measured: a CSV with columns ``u,v,depth_m`` (header optional; ``x``/``y``/``depth``/``z``
  are accepted as column names; ``#`` starts a comment) or a list of ``(u, v, depth_m)``;
* a sparse depth map (LiDAR, ARKit, SfM): an (h, w) array in metres where 0 (or NaN) means unknown, read from
  ``.npy`` (metres) or a 16-bit PNG / TIFF (integer units times ``depth_scale``; 0.001 = millimetres, the common
  convention; KITTI uses 1/256). A map of another size than the image is assumed to cover the same field of
  view (e.g. ARKit's 256 x 192 depth for a 1920 x 1440 photo) and its pixel centres are mapped with the
  pixel-centre convention ``u = (j + 0.5) * W / w - 0.5``.

Coordinates ``(u, v)`` are pixels of the image **as displayed** (EXIF orientation applied), ``u`` right, ``v``
down, pixel centres at integers. Depth is z-depth along the optical axis, like the metric models' output.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

_U_NAMES = ("u", "x", "col", "column")
_V_NAMES = ("v", "y", "row")
_D_NAMES = ("depth_m", "depth", "z", "distance", "distance_m", "metres", "meters", "m")


@dataclass(frozen=True)
class Anchors:
    """N pixels with known depth.

    Attributes:
        u, v: (N,) float64 pixel coordinates in the displayed image.
        depth: (N,) float64 z-depth in metres, > 0.
        source: where they came from (file name and kind), for reports.
    """

    u: np.ndarray
    v: np.ndarray
    depth: np.ndarray
    source: str = "points"

    def __post_init__(self) -> None:
        u, v, d = (np.asarray(a, dtype=np.float64).ravel() for a in (self.u, self.v, self.depth))
        if not (u.size == v.size == d.size):
            raise ValueError(f"anchor arrays differ in length: u {u.size}, v {v.size}, depth {d.size}")
        bad = np.flatnonzero(~(np.isfinite(u) & np.isfinite(v) & np.isfinite(d) & (d > 0)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{self.source}: point {i} (u={u[i]}, v={v[i]}, depth={d[i]}) needs finite pixel "
                             "coordinates and a positive depth in metres")
        object.__setattr__(self, "u", u)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "depth", d)

    def __len__(self) -> int:
        return int(self.depth.size)

    @classmethod
    def from_points(cls, points: Sequence[Sequence[float]] | np.ndarray, source: str = "points") -> Anchors:
        """From ``[(u, v, depth_m), ...]`` or an (N, 3) array."""
        a = np.asarray(points, dtype=np.float64)
        if a.ndim == 1 and a.size == 3:
            a = a[None]
        if a.ndim != 2 or a.shape[1] != 3:
            raise ValueError(f"points must be (u, v, depth_m) triples, got an array of shape {a.shape}")
        return cls(a[:, 0], a[:, 1], a[:, 2], source)

    def check_inside(self, width: int, height: int) -> None:
        """Raise ValueError naming the first point outside a ``width`` x ``height`` image."""
        out = np.flatnonzero((self.u < -0.5) | (self.u > width - 0.5) | (self.v < -0.5) | (self.v > height - 0.5))
        if out.size:
            i = int(out[0])
            raise ValueError(f"{self.source}: point {i} at (u={self.u[i]:g}, v={self.v[i]:g}) is outside the "
                             f"{width}x{height} image ({out.size} point(s) outside)")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _float(cell: str, path: Path, line: int, col: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise ValueError(f"{path}:{line}: {col} {cell.strip()!r} is not a number") from None


def read_points_csv(path: str | Path) -> Anchors:
    """Read ``u,v,depth_m`` rows (pixels, pixels, metres).

    Raises:
        ValueError: missing file, unknown header, non-numeric cells or no rows, naming file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such points file")
    rows: list[tuple[int, list[str]]] = []
    with p.open(newline="", encoding="utf-8-sig") as f:
        for i, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            rows.append((i, cells))
    if not rows:
        raise ValueError(f"{p}: no points (expected rows of u,v,depth_m)")
    cols = (0, 1, 2)
    first = rows[0][1]
    if not all(_is_number(c) for c in first[:3]):  # a header row: find the columns by name
        names = [c.lower() for c in first]

        def find(cands: tuple[str, ...]) -> int:
            for c in cands:
                if c in names:
                    return names.index(c)
            raise ValueError(f"{p}: header {first} has no column named {' / '.join(cands[:3])}")

        cols = (find(_U_NAMES), find(_V_NAMES), find(_D_NAMES))
        rows = rows[1:]
        if not rows:
            raise ValueError(f"{p}: only a header, no points")
    data = []
    for line, cells in rows:
        if len(cells) <= max(cols):
            raise ValueError(f"{p}:{line}: expected u,v,depth_m, got {','.join(cells)!r}")
        u, v, d = (_float(cells[c], p, line, n) for c, n in zip(cols, ("u", "v", "depth_m")))
        if not d > 0:
            raise ValueError(f"{p}:{line}: depth_m must be positive metres, got {d:g}")
        data.append((u, v, d))
    return Anchors.from_points(data, f"{p.name} ({len(data)} points)")


def read_sparse_depth(path: str | Path, depth_scale: float | None = None) -> np.ndarray:
    """Read a sparse depth map to (h, w) float64 metres, 0 = unknown.

    Args:
        path: ``.npy`` (float metres, or integers times ``depth_scale``), 16-bit ``.png``, or ``.tif``/``.tiff``
            (float metres or 16-bit integers).
        depth_scale: metres per stored unit for integer data; default 0.001 (millimetres). Ignored for float
            data unless given.

    Raises:
        ValueError: missing or unreadable file, 8-bit or colour images, wrong shape.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such sparse depth file")
    if depth_scale is not None and not depth_scale > 0:
        raise ValueError(f"depth_scale must be positive metres per unit, got {depth_scale}")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            a = np.load(p, allow_pickle=False)
        except Exception as e:
            raise ValueError(f"{p}: not a readable .npy array ({e})") from e
    elif suffix in (".png", ".tif", ".tiff"):
        try:
            with Image.open(p) as im:
                if im.mode in ("L", "P", "RGB", "RGBA", "1", "LA"):
                    raise ValueError(f"{p}: an {im.mode} image is not a depth map; use 16-bit PNG or float TIFF")
                a = np.asarray(im)
        except ValueError:
            raise
        except Exception as e:
            raise ValueError(f"{p}: not a readable image ({e})") from e
    else:
        raise ValueError(f"{p}: unsupported sparse depth format {suffix!r} (use .npy, 16-bit .png or .tif)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"{p}: a sparse depth map must be (H, W), got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        scale = 0.001 if depth_scale is None else depth_scale
    elif np.issubdtype(a.dtype, np.floating):
        scale = 1.0 if depth_scale is None else depth_scale
    else:
        raise ValueError(f"{p}: unsupported dtype {a.dtype}")
    out = a.astype(np.float64) * scale
    out[~np.isfinite(out)] = 0.0
    return out


def anchors_from_sparse(depth_map: np.ndarray, image_size: tuple[int, int] | None = None,
                        source: str = "sparse depth") -> Anchors:
    """Every known pixel (finite, > 0) of an (h, w) metre map as an anchor.

    Args:
        depth_map: (h, w) metres, 0 or NaN = unknown.
        image_size: (H, W) of the prediction; when it differs from (h, w) the anchor coordinates are mapped
            to it (same field of view assumed).

    Raises:
        ValueError: no known pixel, or an aspect ratio that differs by more than 1 %.
    """
    d = np.asarray(depth_map, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"{source}: expected an (H, W) map, got shape {d.shape}")
    with np.errstate(invalid="ignore"):
        known = np.isfinite(d) & (d > 0)
    v, u = np.nonzero(known)
    if v.size == 0:
        raise ValueError(f"{source}: no known depth (all pixels are 0, negative or NaN)")
    uf, vf = u.astype(np.float64), v.astype(np.float64)
    h, w = d.shape
    if image_size is not None and tuple(image_size) != (h, w):
        H, W = image_size  # noqa: N806
        if abs((W / w) / (H / h) - 1.0) > 0.01:
            raise ValueError(f"{source}: {w}x{h} map does not have the aspect ratio of the {W}x{H} image; "
                             "it must cover the same field of view")
        uf = (uf + 0.5) * (W / w) - 0.5
        vf = (vf + 0.5) * (H / h) - 0.5
    return Anchors(uf, vf, d[v, u], f"{source} ({v.size} points)")


def sample_bilinear(values: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W) map at pixel coordinates (pixel centres at integers).

    Points in the outer half-pixel are clamped to the border; points further out and points touching a
    non-finite value give NaN.

    Returns:
        (N,) float64.
    """
    a = np.asarray(values, dtype=np.float64)
    h, w = a.shape
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    inside = (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    uc = np.clip(u, 0, w - 1)
    vc = np.clip(v, 0, h - 1)
    u0 = np.minimum(np.floor(uc).astype(np.int64), max(w - 2, 0))
    v0 = np.minimum(np.floor(vc).astype(np.int64), max(h - 2, 0))
    u1 = np.minimum(u0 + 1, w - 1)
    v1 = np.minimum(v0 + 1, h - 1)
    fu, fv = uc - u0, vc - v0
    out = ((1 - fv) * ((1 - fu) * a[v0, u0] + fu * a[v0, u1]) + fv * ((1 - fu) * a[v1, u0] + fu * a[v1, u1]))
    # An integer coordinate must read its pixel exactly, even next to a NaN neighbour (weight 0 * NaN = NaN).
    exact = (uc == np.round(uc)) & (vc == np.round(vc))
    out[exact] = a[vc[exact].astype(np.int64), uc[exact].astype(np.int64)]
    out[~inside] = np.nan
    return out
