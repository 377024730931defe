"""What ``POST /v1/depth`` can answer with, and how the client's choice is read.

=========  ===========================  ====================================================================
format     media type                   body
=========  ===========================  ====================================================================
``png16``  ``image/png``                single-channel 16-bit PNG; ``value = offset + scale * q``, with
                                        scale/offset/kind/unit in the PNG text chunk ``depthany`` (the
                                        :mod:`depthany.io.depth` convention, readable with ``read_png16``)
``npy``    ``application/x-npy``        (H, W) float32 ``.npy`` of the values (``np.load(io.BytesIO(body))``)
``color``  ``image/png``                (H, W, 3) 8-bit colour picture of nearness (near = top of the cmap)
``json``   ``application/json``         metadata plus the 16-bit PNG, base64-encoded
=========  ===========================  ====================================================================

``?format=`` wins; otherwise the ``Accept`` header decides (``image/png`` -> png16, ``application/x-npy`` or
``application/octet-stream`` -> npy, ``application/json`` -> json, by q-value); otherwise json.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..io.colormap import DEFAULT_CMAP
from ..io.depth import PNG16_FORMAT, PNG16_KEY, png16_encode
from ..io.visual import depth_color
from ..result import DepthResult

FORMATS: tuple[str, ...] = ("png16", "npy", "color", "json")
MEDIA_TYPES: dict[str, str] = {"png16": "image/png", "npy": "application/x-npy", "color": "image/png",
                               "json": "application/json"}
_ACCEPT: dict[str, str] = {"image/png": "png16", "application/x-npy": "npy", "application/octet-stream": "npy",
                           "application/json": "json"}


class NotAcceptable(ValueError):
    """The Accept header names no format the service produces."""


def choose_format(format_param: str | None, accept: str | None, default: str = "json") -> str:
    """The response format from ``?format=`` or the Accept header (see the module docstring).

    Raises:
        ValueError: an unknown ``format`` value.
        NotAcceptable: an Accept header that allows none of the media types (and no ``*/*``).
    """
    if format_param:
        if format_param not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format_param!r}")
        return format_param
    if not accept:
        return default
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media, q = fields[0].lower(), 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q > 0 and media:
            ranked.append((-q, i, media))
    for _, _, media in sorted(ranked):
        if media in _ACCEPT:
            return _ACCEPT[media]
        if media == "*/*":
            return default
        if media.endswith("/*"):  # image/* or application/*: the default if it fits, else the first that does
            for f in (default, *FORMATS):
                if MEDIA_TYPES[f].startswith(media[:-1]):
                    return f
    raise NotAcceptable(f"cannot answer with {accept!r}; this endpoint produces image/png (16-bit depth, or colour "
                        "with ?format=color), application/x-npy and application/json")


def budget_header(budget: dict[str, Any]) -> str:
    """``X-Input-Budget``: ``"ok"``, or ``"shrunk from HxW"`` (the official network size) when shrunk."""
    if not budget.get("shrunk"):
        return "ok"
    oh, ow = budget["official_size"]
    return f"shrunk from {oh}x{ow}"


def _metadata(result: DepthResult) -> dict[str, Any]:
    v = result.values
    finite = v[np.isfinite(v)]
    return {
        "model": result.model,
        "kind": result.kind,
        "unit": result.unit,
        "width": int(v.shape[1]),
        "height": int(v.shape[0]),
        "network_size": [int(x) for x in result.network_size],
        "input_budget": result.meta.get("input_budget"),
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "meaning": ("depth in metres along the optical axis" if result.is_metric else
                    "relative depth: bigger = farther, unknown scale, no unit" if result.is_depth else
                    "relative disparity: bigger = nearer, unknown scale and shift, no unit"),
    }


def png16_bytes(result: DepthResult, extra: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
    """The result as 16-bit PNG bytes in the :mod:`depthany.io.depth` convention, and its decoding metadata.

    Returns:
        (PNG bytes, metadata: ``scale``, ``offset``, ``nodata``, ``kind``, ``unit``, ...).
    """
    codes, enc = png16_encode(result.values)
    meta = {"format": PNG16_FORMAT, "version": 1,
            "decode": "value = offset + scale * q, where q is the stored uint16 and q == nodata means no value",
            **enc, "kind": result.kind, "unit": result.unit, "model": result.model, **(extra or {})}
    info = PngInfo()
    info.add_text(PNG16_KEY, json.dumps(meta))
    buf = io.BytesIO()
    Image.fromarray(codes).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue(), meta


def npy_bytes(result: DepthResult) -> bytes:
    """(H, W) float32 values as ``.npy`` bytes."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(result.values, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def color_png_bytes(result: DepthResult, cmap: str) -> bytes:
    """8-bit RGB PNG of the result's nearness through colour map ``cmap`` (own min..max)."""
    buf = io.BytesIO()
    Image.fromarray(depth_color(result, cmap)).save(buf, format="PNG")
    return buf.getvalue()


def encode(result: DepthResult, fmt: str, cmap: str = DEFAULT_CMAP,
           extra: dict[str, Any] | None = None) -> tuple[bytes, str, dict[str, str]]:
    """(body, media type, extra headers) of ``result`` in format ``fmt``.

    Headers always say ``X-Depth-Kind``, ``X-Depth-Unit`` (``none`` for relative) and ``X-Depth-Model``;
    png16 adds ``X-Depth-Scale``/``X-Depth-Offset``/``X-Depth-Nodata``.
    """
    headers = {"X-Depth-Kind": result.kind, "X-Depth-Unit": result.unit or "none", "X-Depth-Model": result.model}
    if fmt == "png16":
        body, meta = png16_bytes(result, extra)
        headers.update({"X-Depth-Scale": repr(meta["scale"]), "X-Depth-Offset": repr(meta["offset"]),
                        "X-Depth-Nodata": "none" if meta["nodata"] is None else str(meta["nodata"])})
        return body, MEDIA_TYPES[fmt], headers
    if fmt == "npy":
        return npy_bytes(result), MEDIA_TYPES[fmt], headers
    if fmt == "color":
        return color_png_bytes(result, cmap), MEDIA_TYPES[fmt], headers
    if fmt == "json":
        body, meta = png16_bytes(result, extra)
        doc = {**_metadata(result), **(extra or {}),
               "png16": {"base64": base64.b64encode(body).decode("ascii"), "scale": meta["scale"],
                         "offset": meta["offset"], "nodata": meta["nodata"]}}
        return json.dumps(doc).encode(), MEDIA_TYPES[fmt], headers
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
