"""Depth-map files: float32 ``.npy``, 16-bit PNG with its decoding in metadata, PFM, EXR and 8-bit PNG.

Every writer goes through :func:`depthany.io.atomic.atomic_path` (temporary file + rename) and returns the
paths it wrote. Every float format has a reader, and the tests round-trip each one (and read PFM with OpenCV
and EXR with OpenEXR as independent readers).

The 16-bit PNG never casts floats to integers bare (the official demos' "16-bit raw" output truncates and
looks black). It stores ``q = round((value - offset) / scale)`` and writes ``scale``, ``offset``, the kind
of value and its unit in a PNG text chunk *and* in a JSON sidecar, so ``value = offset + scale * q``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .atomic import atomic_path

PNG16_KEY = "depthany"  # PNG text chunk (and sidecar) holding the decoding metadata
PNG16_FORMAT = "depthany-png16"
_QMAX = 65535
_BAND_PIXELS = 1 << 20  # png16 quantises large maps in bands of rows (same numbers, bounded temporaries)


def _as_2d_float32(values: np.ndarray, what: str = "values") -> np.ndarray:
    v = np.asarray(values)
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
        raise ValueError(f"{what} must be a non-empty (H, W) array, got shape {v.shape}")
    if not np.issubdtype(v.dtype, np.floating) and not np.issubdtype(v.dtype, np.integer):
        raise TypeError(f"{what} must be numeric, got dtype {v.dtype}")
    return v.astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------------------- npy


def write_npy(path: str | Path, values: np.ndarray) -> Path:
    """Save (H, W) values as a float32 ``.npy`` (NaN kept). Returns ``path``."""
    v = _as_2d_float32(values)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, v, allow_pickle=False)
    return Path(path)


def read_npy(path: str | Path) -> np.ndarray:
    """Load a ``.npy`` written by :func:`write_npy`: (H, W) float32."""
    return _as_2d_float32(np.load(path, allow_pickle=False), str(path))


# ----------------------------------------------------------------------------------------------- png16


def png16_encode(
    values: np.ndarray, scale: float | None = None, offset: float | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Quantise (H, W) floats to uint16 codes and say how to decode them.

    Without ``scale``: the finite range [min, max] maps to 0..65535 (1..65535 when some pixels are NaN/inf,
    which get code 0 = ``nodata``), so the decoding error is at most (max - min) / 65535 / 2 (plus float32
    rounding). With ``scale`` (and ``offset``, default 0): ``q = round((v - offset) / scale)``, clipped to the
    code range; ``clipped_pixels`` counts the values that did not fit.

    Returns:
        ((H, W) uint16 codes, metadata dict with ``scale``, ``offset``, ``nodata``, ``min``, ``max``,
        ``clipped_pixels``). Decode with ``offset + scale * q`` where ``q != nodata``.
    """
    v = _as_2d_float32(values)  # float64 arithmetic below, one band of rows at a time (huge images)
    ok = np.isfinite(v)
    nodata = None if ok.all() else 0
    qmin = 0 if nodata is None else 1
    vmin = float(np.min(v, where=ok, initial=np.inf)) if ok.any() else 0.0
    vmax = float(np.max(v, where=ok, initial=-np.inf)) if ok.any() else 0.0
    if scale is None:
        if offset is not None:
            raise ValueError("png16 offset given without scale; give both, or neither for the automatic range")
        span = vmax - vmin
        scale = span / (_QMAX - qmin) if span > 0 else 1.0
        offset = vmin - qmin * scale
    else:
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"png16 scale must be a positive number, got {scale!r}")
        offset = 0.0 if offset is None else float(offset)
        if not math.isfinite(offset):
            raise ValueError(f"png16 offset must be finite, got {offset!r}")
    codes = np.zeros(v.shape, dtype=np.uint16)
    clipped = 0
    step = max(1, _BAND_PIXELS // v.shape[1])
    for r in range(0, v.shape[0], step):
        good = ok[r:r + step]
        q = np.zeros(good.shape, dtype=np.float64)
        q[good] = np.round((v[r:r + step][good].astype(np.float64) - offset) / scale)
        clipped += int(np.count_nonzero(good & ((q < qmin) | (q > _QMAX))))
        codes[r:r + step] = np.where(good, np.clip(q, qmin, _QMAX), 0).astype(np.uint16)
    meta = {"scale": float(scale), "offset": float(offset), "nodata": nodata, "min": vmin, "max": vmax,
            "clipped_pixels": clipped}
    return codes, meta


def png16_decode(codes: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`png16_encode`: (H, W) uint16 codes -> (H, W) float32, NaN where ``q == nodata``."""
    q = np.asarray(codes).astype(np.float64)
    out = float(meta["offset"]) + float(meta["scale"]) * q
    if meta.get("nodata") is not None:
        out[np.asarray(codes) == int(meta["nodata"])] = np.nan
    return out.astype(np.float32)


def png16_sidecar(path: str | Path) -> Path:
    """The JSON sidecar that goes with a 16-bit PNG: same name, ``.json`` suffix."""
    return Path(path).with_suffix(".json")


def write_png16(
    path: str | Path,
    values: np.ndarray,
    kind: str = "relative_disparity",
    unit: str | None = None,
    scale: float | None = None,
    offset: float | None = None,
    sidecar: bool = True,
    extra: dict[str, Any] | None = None,
) -> list[Path]:
    """Write (H, W) floats as a single-channel 16-bit PNG plus its decoding metadata.

    Args:
        path: the ``.png`` to write; the sidecar is :func:`png16_sidecar` of it.
        values: (H, W) float values (NaN/inf = no value).
        kind: what the values are, ``"relative_disparity"`` or ``"metric_depth"``.
        unit: ``"m"`` for metric depth, None for relative disparity.
        scale, offset: fixed quantisation (``value = offset + scale * q``), e.g. ``scale=0.001`` for
            millimetres; default: the image's own [min, max] mapped to the full 16-bit range.
        sidecar: also write the JSON sidecar.
        extra: more provenance for the metadata (model name, source image, ...).

    Returns:
        the paths written (PNG, then sidecar).
    """
    codes, enc = png16_encode(values, scale, offset)
    meta: dict[str, Any] = {
        "format": PNG16_FORMAT,
        "version": 1,
        "decode": "value = offset + scale * q, where q is the stored uint16 and q == nodata means no value",
        **enc,
        "kind": kind,
        "unit": unit,
        **(extra or {}),
    }
    text = json.dumps(meta)
    info = PngInfo()
    info.add_text(PNG16_KEY, text)
    written = [Path(path)]
    with atomic_path(path) as tmp:
        Image.fromarray(codes).save(tmp, format="PNG", pnginfo=info)
    if sidecar:
        side = png16_sidecar(path)
        with atomic_path(side) as tmp:
            tmp.write_text(json.dumps(meta, indent=2) + "\n")
        written.append(side)
    return written


def read_png16(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a 16-bit PNG written by :func:`write_png16`.

    The metadata comes from the PNG text chunk, else from the JSON sidecar.

    Returns:
        ((H, W) float32 values, NaN where there is no value; the metadata dict).

    Raises:
        ValueError: not a 16-bit single-channel PNG, or no decoding metadata found (names the file).
    """
    p = Path(path)
    with Image.open(p) as img:
        if img.mode not in ("I;16", "I;16B", "I;16L", "I"):
            raise ValueError(f"{p}: not a 16-bit single-channel PNG (mode {img.mode})")
        codes = np.asarray(img)
        text = getattr(img, "text", {}).get(PNG16_KEY)
    if text is None and png16_sidecar(p).exists():
        text = png16_sidecar(p).read_text()
    if text is None:
        raise ValueError(f"{p}: no '{PNG16_KEY}' metadata in the PNG and no sidecar {png16_sidecar(p).name}; "
                         "cannot tell how to decode the 16-bit values")
    meta = json.loads(text)
    if meta.get("format") != PNG16_FORMAT:
        raise ValueError(f"{p}: metadata format {meta.get('format')!r} is not {PNG16_FORMAT!r}")
    return png16_decode(codes.astype(np.uint16), meta), meta


# ------------------------------------------------------------------------------------------------- pfm


def write_pfm(path: str | Path, values: np.ndarray) -> Path:
    """Write (H, W) float32 as a grayscale PFM: header ``Pf``, ``W H``, scale ``-1`` (little-endian), then the
    rows bottom to top. Returns ``path``."""
    v = _as_2d_float32(values)
    header = f"Pf\n{v.shape[1]} {v.shape[0]}\n-1\n".encode("ascii")
    data = np.ascontiguousarray(v[::-1]).astype("<f4").tobytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + data)
    return Path(path)


def read_pfm(path: str | Path) -> np.ndarray:
    """Read a PFM file: (H, W) float32 for ``Pf``, (H, W, 3) in the file's R, G, B order for ``PF``.

    Raises:
        ValueError: malformed header or short data (names the file).
    """
    p = Path(path)
    data = p.read_bytes()
    tokens: list[bytes] = []
    pos = 0
    while len(tokens) < 4:  # type, width, height, scale; separated by whitespace
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            raise ValueError(f"{p}: truncated PFM header")
        tokens.append(data[start:pos])
    pos += 1  # exactly one whitespace character ends the header
    kind = tokens[0]
    if kind not in (b"Pf", b"PF"):
        raise ValueError(f"{p}: not a PFM file (starts with {kind[:8]!r})")
    try:
        width, height, scale = int(tokens[1]), int(tokens[2]), float(tokens[3])
    except ValueError as e:
        raise ValueError(f"{p}: malformed PFM header ({e})") from e
    channels = 3 if kind == b"PF" else 1
    count = width * height * channels
    dtype = "<f4" if scale < 0 else ">f4"
    if len(data) - pos < 4 * count:
        raise ValueError(f"{p}: PFM data is short: {len(data) - pos} bytes for {width}x{height}x{channels} floats")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=pos).astype(np.float32)
    arr = arr.reshape((height, width, channels) if channels == 3 else (height, width))
    return np.ascontiguousarray(arr[::-1])


# ------------------------------------------------------------------------------------------------- exr


def write_exr(path: str | Path, values: np.ndarray, half: bool = False,
              meta: dict[str, Any] | None = None) -> Path:
    """Write (H, W) values as a single-channel OpenEXR file, channel ``Y``, ZIP compression.

    ``Y`` is the channel name other readers (OpenCV among them) treat as a gray image. ``half`` stores
    float16. ``meta`` (kind, unit, model...) goes into a string header attribute ``depthany`` as JSON.
    """
    import OpenEXR  # type: ignore[import-not-found]

    v = _as_2d_float32(values)
    v = np.ascontiguousarray(v.astype(np.float16) if half else v)
    header: dict[str, Any] = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    if meta:
        header[PNG16_KEY] = json.dumps(meta)
    with atomic_path(path) as tmp:
        OpenEXR.File(header, {"Y": v}).write(str(tmp))
    return Path(path)


def read_exr(path: str | Path, channel: str = "Y") -> np.ndarray:
    """Read one channel of an OpenEXR file as (H, W) float32.

    Raises:
        ValueError: the channel is missing (names the file and the channels present).
    """
    import OpenEXR  # type: ignore[import-not-found]

    with OpenEXR.File(str(path)) as f:
        channels = f.channels()
        if channel not in channels:
            raise ValueError(f"{path}: no channel {channel!r} (has {', '.join(channels)})")
        return np.asarray(channels[channel].pixels, dtype=np.float32).copy()


# ------------------------------------------------------------------------------------------ 8-bit PNG


def write_png8(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W) or (H, W, 3) uint8 image as PNG. Returns ``path``."""
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise ValueError(f"expected (H, W) or (H, W, 3) uint8, got {a.dtype} {a.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(a)).save(tmp, format="PNG")
    return Path(path)
