"""Focal length in pixels from a photo's EXIF fields.

Two routes, tried in this order:

1. ``FocalLengthIn35mmFilm`` (35 mm-equivalent focal length, mm). Converted with the **diagonal** convention of
   CIPA DC-008 (the one Depth Pro uses): the equivalent lens gives the same *diagonal* angle of view on a
   36 x 24 mm frame (diagonal 43.27 mm) as the real lens on the real sensor, so

       f_px = f_35mm * sqrt(W^2 + H^2) / sqrt(36^2 + 24^2).

   It needs no sensor size and does not change when the file is downscaled. It assumes the picture covers the
   whole frame the manufacturer used for the equivalence; a 16:9 crop of a 4:3 sensor is off by a few percent.
2. ``FocalLength`` (mm) plus ``FocalPlaneXResolution`` / ``FocalPlaneYResolution`` (pixels per unit) and
   ``FocalPlaneResolutionUnit`` (2 inch -- the EXIF default --, 3 cm, 4 mm, 5 um):

       fx_px = f_mm * XResolution / unit_mm,   fy_px = f_mm * YResolution / unit_mm,

   rescaled by ``W / PixelXDimension`` when the file was resized after the camera wrote those fields.

``FocalLength`` alone (no sensor size) cannot give pixels and is ignored. Results whose field of view falls
outside 3..175 degrees are rejected as broken metadata. The numbers are for the **stored** (un-rotated) image;
:meth:`Intrinsics.oriented` turns them into the displayed image's intrinsics.
"""

from __future__ import annotations

import math
from typing import Any

from .intrinsics import Intrinsics, fov_from_focal

FRAME_35MM_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.2666 mm
# FocalPlaneResolutionUnit -> millimetres per unit. 4 and 5 are outside EXIF 2.3 but written by some software.
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}
_UNIT_NAME = {2: "inch", 3: "cm", 4: "mm", 5: "um"}
_FOV_RANGE_DEG = (3.0, 175.0)


def exif_number(value: Any) -> float | None:
    """A positive finite float from an EXIF value (int, float, Pillow ``IFDRational``, (num, den) pair, or a
    one-element sequence); ``None`` for missing, zero ("unknown" in EXIF), negative or malformed values."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        if isinstance(value, (tuple, list)):
            if len(value) == 2:
                num, den = float(value[0]), float(value[1])
                x = num / den if den else math.nan
            elif len(value) == 1:
                x = float(value[0])
            else:
                return None
        else:
            x = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def _plausible(f_px: float, span_px: float) -> bool:
    lo, hi = _FOV_RANGE_DEG
    return lo <= fov_from_focal(f_px, span_px) <= hi


def intrinsics_from_exif(exif: dict[str, Any] | None, raw_size: tuple[int, int]) -> tuple[Intrinsics | None, str]:
    """Intrinsics of the **stored** image from EXIF, or ``None`` with the reason.

    Args:
        exif: raw EXIF fields by name, as :func:`depthany.io.image.read_image` collects them.
        raw_size: (H, W) of the stored pixels (before orientation), in pixels.

    Returns:
        (intrinsics or None, a sentence saying what was used or why nothing could be).
        The principal point is the image centre ``((W - 1) / 2, (H - 1) / 2)``; EXIF does not record it.
    """
    h, w = int(raw_size[0]), int(raw_size[1])
    if h < 1 or w < 1:
        return None, f"invalid raw image size {raw_size}"
    if not exif:
        return None, "no EXIF focal length"
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    reasons: list[str] = []

    f35 = exif_number(exif.get("FocalLengthIn35mmFilm"))
    if f35 is not None:
        f = f35 * math.hypot(w, h) / FRAME_35MM_DIAGONAL_MM
        if _plausible(f, math.hypot(w, h)):
            detail = f"FocalLengthIn35mmFilm={f35:g} mm, 36x24 mm diagonal convention"
            return Intrinsics(f, f, cx, cy, w, h, "exif-35mm", detail), detail
        reasons.append(f"FocalLengthIn35mmFilm={f35:g} mm gives an implausible field of view")

    f_mm = exif_number(exif.get("FocalLength"))
    xres = exif_number(exif.get("FocalPlaneXResolution"))
    yres = exif_number(exif.get("FocalPlaneYResolution")) or xres
    unit_raw = exif_number(exif.get("FocalPlaneResolutionUnit"))
    unit = int(unit_raw) if unit_raw is not None else 2  # EXIF default: inches
    if f_mm is not None and xres is not None and yres is not None:
        if unit not in _UNIT_MM:
            reasons.append(f"FocalPlaneResolutionUnit={unit} has no physical length")
        else:
            fx = f_mm * xres / _UNIT_MM[unit]
            fy = f_mm * yres / _UNIT_MM[unit]
            # The focal-plane resolution refers to the image the camera wrote (PixelX/YDimension); a resized
            # file keeps the tags, so rescale to the pixels we actually have.
            px_w = exif_number(exif.get("PixelXDimension"))
            px_h = exif_number(exif.get("PixelYDimension"))
            note = ""
            # (a file that stores them in displayed order, swapped, was not resized: leave it alone)
            if px_w and px_h and (round(px_w), round(px_h)) not in ((w, h), (h, w)):
                fx *= w / px_w
                fy *= h / px_h
                note = f", rescaled from PixelXDimension x PixelYDimension {px_w:g}x{px_h:g}"
            if _plausible(fx, w) and _plausible(fy, h):
                detail = (f"FocalLength={f_mm:g} mm, FocalPlaneX/YResolution={xres:g}/{yres:g} per "
                          f"{_UNIT_NAME[unit]}{note}")
                return Intrinsics(fx, fy, cx, cy, w, h, "exif-focal-plane", detail), detail
            reasons.append(f"FocalLength={f_mm:g} mm with the focal-plane resolution gives an implausible "
                           "field of view")
    elif f_mm is not None:
        reasons.append(f"FocalLength={f_mm:g} mm but no 35 mm equivalent or sensor size")
    return None, "; ".join(reasons) or "no EXIF focal length"
