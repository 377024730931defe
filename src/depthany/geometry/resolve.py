"""Which intrinsics an image gets: user-given, then EXIF, then a stated default (with a warning).

The chain, first match wins, and the result records its ``source``:

1. **user**: an :class:`Intrinsics`, a 3x3 ``K``, or ``fx`` (``fy`` defaults to ``fx``; ``cx``, ``cy`` to the
   centre) -- source ``"user"``; or a field of view ``fov`` in degrees along ``fov_axis`` (horizontal, vertical
   or diagonal) -- source ``"user-fov"``. They describe the image as displayed (EXIF orientation applied) and
   are rescaled if given for another size of the same frame.
2. **EXIF** of the photo (see :mod:`depthany.geometry.exif`), computed for the stored sensor image, turned by the
   EXIF orientation, then rescaled to the prediction's size.
3. **default**: :data:`DEFAULT_FOV_DEG` = 60 degrees across the *longer* image side (horizontal for landscape,
   vertical for portrait: turning a camera does not change its lens), square pixels, principal point at the
   centre, and a :class:`IntrinsicsWarning`. 60 degrees is a middle-of-the-road guess (phone main cameras are
   about 65-70 degrees across the long side, many webcams 55-65); a wrong focal length stretches or flattens
   the point cloud along z relative to x and y, so give the real one when metres matter.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from .exif import intrinsics_from_exif
from .intrinsics import Intrinsics

DEFAULT_FOV_DEG = 60.0


class IntrinsicsWarning(UserWarning):
    """Intrinsics had to be guessed (no user value, no usable EXIF)."""


def _displayed_size(raw_size: tuple[int, int], orientation: int) -> tuple[int, int]:
    h, w = raw_size
    return (w, h) if int(orientation) in (5, 6, 7, 8) else (h, w)


def _user(width: int, height: int, intrinsics: Intrinsics | np.ndarray | None, fx: float | None,
          fy: float | None, cx: float | None, cy: float | None, fov: float | None, fov_axis: str
          ) -> Intrinsics | None:
    given = [n for n, v in (("intrinsics", intrinsics), ("fx", fx), ("fov", fov)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give only one of intrinsics, fx/fy/cx/cy or fov; got {', '.join(given)}")
    if fy is not None and fx is None:
        raise ValueError("fy was given without fx; give fx (and optionally fy, cx, cy)")
    if (cx is not None or cy is not None) and fx is None and fov is None:
        raise ValueError("cx/cy were given without a focal length; add fx or fov")
    if intrinsics is not None:
        if not isinstance(intrinsics, Intrinsics):
            intrinsics = Intrinsics.from_K(np.asarray(intrinsics), width, height, "user", "K matrix")
        if (intrinsics.width, intrinsics.height) == (height, width) and width != height:
            raise ValueError(f"intrinsics are for {intrinsics.width}x{intrinsics.height} but the image is "
                             f"{width}x{height} (rotated?); use Intrinsics.oriented() to turn them first")
        return intrinsics.scaled(width=width, height=height)
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    if fx is not None:
        k = Intrinsics(fx, fy if fy is not None else fx, cx if cx is not None else centre[0],
                       cy if cy is not None else centre[1], width, height, "user", "fx/fy/cx/cy")
        return k
    if fov is not None:
        k = Intrinsics.from_fov(fov, width, height, fov_axis, "user-fov")  # type: ignore[arg-type]
        if cx is not None or cy is not None:
            k = replace(k, cx=cx if cx is not None else k.cx, cy=cy if cy is not None else k.cy)
        return k
    return None


def resolve_intrinsics(
    width: int,
    height: int,
    *,
    intrinsics: Intrinsics | np.ndarray | None = None,
    fx: float | None = None,
    fy: float | None = None,
    cx: float | None = None,
    cy: float | None = None,
    fov: float | None = None,
    fov_axis: str = "horizontal",
    exif: dict[str, Any] | None = None,
    orientation: int = 1,
    raw_size: tuple[int, int] | None = None,
    default_fov: float = DEFAULT_FOV_DEG,
    warn: bool = True,
) -> Intrinsics:
    """Intrinsics for a ``width`` x ``height`` image (as displayed), first match of user > EXIF > default.

    Args:
        width, height: size of the depth map / displayed image, in pixels.
        intrinsics: an :class:`Intrinsics` or a 3x3 K, for this image (rescaled if for another size).
        fx, fy, cx, cy: pixels; ``fy`` defaults to ``fx`` and ``cx``, ``cy`` to the image centre.
        fov, fov_axis: a field of view in degrees along "horizontal", "vertical" or "diagonal".
        exif: the photo's raw EXIF fields (``DepthResult.meta["exif"]``).
        orientation: EXIF orientation 1..8 that was applied to the pixels.
        raw_size: (H, W) of the stored pixels before orientation; defaults to the displayed size turned back.
        default_fov: field of view in degrees across the longer side when nothing else is known.
        warn: emit an :class:`IntrinsicsWarning` when the default is used.

    Raises:
        ValueError: conflicting or invalid user values, naming them.
    """
    if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer))
            and width >= 1 and height >= 1):
        raise ValueError(f"width and height must be positive integers, got {width!r} x {height!r}")
    width, height = int(width), int(height)
    user = _user(width, height, intrinsics, fx, fy, cx, cy, fov, fov_axis)
    if user is not None:
        return user

    reason = "no EXIF"
    if exif:
        raw = raw_size if raw_size is not None and raw_size[0] > 0 and raw_size[1] > 0 else (
            _displayed_size((height, width), orientation))
        k_raw, reason = intrinsics_from_exif(exif, raw)
        if k_raw is not None:
            return k_raw.oriented(orientation).scaled(width=width, height=height)

    axis = "horizontal" if width >= height else "vertical"
    k = Intrinsics.from_fov(default_fov, width, height, axis, "default",  # type: ignore[arg-type]
                            f"assumed {default_fov:g} deg across the longer side ({axis}); {reason}")
    if warn:
        warnings.warn(f"no camera intrinsics given and none usable in EXIF ({reason}); assuming a "
                      f"{default_fov:g} deg {axis} field of view (fx = fy = {k.fx:.1f} px for {width}x{height}). "
                      "Pass fx/fov for metric-accurate point clouds.", IntrinsicsWarning, stacklevel=2)
    return k


def intrinsics_for_result(result: Any, **kwargs: Any) -> Intrinsics:
    """:func:`resolve_intrinsics` for a :class:`~depthany.result.DepthResult` (its size, EXIF, orientation).

    Keyword arguments are those of :func:`resolve_intrinsics` (``intrinsics``, ``fx``..., ``fov``, ...).
    """
    h, w = np.asarray(getattr(result, "values", result)).shape[:2]  # a bare (H, W) array works too
    meta = getattr(result, "meta", None) or {}
    raw = meta.get("raw_size")
    kwargs.setdefault("exif", meta.get("exif"))
    kwargs.setdefault("orientation", int(meta.get("orientation", 1) or 1))
    kwargs.setdefault("raw_size", tuple(raw) if raw else None)
    return resolve_intrinsics(int(w), int(h), **kwargs)
