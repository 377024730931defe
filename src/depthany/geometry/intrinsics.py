"""Pinhole camera intrinsics in pixels, and how they change when an image is resized or re-oriented.

Conventions (the OpenCV ones, used everywhere in :mod:`depthany.geometry`):

* Pixel coordinates ``(u, v)``: ``u`` to the right, ``v`` down, **pixel centres at integer coordinates**; the
  image covers ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, so the geometric centre is ``((W - 1) / 2, (H - 1) / 2)``.
* Camera coordinates ``(x, y, z)`` in metres: ``x`` right, ``y`` down, ``z`` forward along the optical axis.
* Projection: ``u = fx * x / z + cx``, ``v = fy * y / z + cy``; ``fx``, ``fy``, ``cx``, ``cy`` are in pixels.
* Field of view across ``n`` pixels: ``fov = 2 * atan(n / (2 f))`` -- the full extent of the image, edge to edge.

The official ``depth_to_pointcloud.py`` scripts put the principal point at ``(W / 2, H / 2)`` and use a fixed
470.4 px focal length for every image; neither is done here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

FovAxis = Literal["horizontal", "vertical", "diagonal"]
FOV_AXES: tuple[str, ...] = ("horizontal", "vertical", "diagonal")

# EXIF orientation -> (swap axes, mirror the displayed u axis, mirror the displayed v axis). This is exactly what
# ``PIL.ImageOps.exif_transpose`` (and therefore ``depthany.io.image.read_image``) does to the stored pixels:
# 2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose, 6 rotate 90 clockwise, 7 transverse,
# 8 rotate 90 counter-clockwise.
_ORIENT: dict[int, tuple[bool, bool, bool]] = {
    1: (False, False, False),
    2: (False, True, False),
    3: (False, True, True),
    4: (False, False, True),
    5: (True, False, False),
    6: (True, True, False),
    7: (True, True, True),
    8: (True, False, True),
}


def focal_from_fov(fov_deg: float, size_px: float) -> float:
    """Focal length in pixels that spans ``size_px`` pixels (edge to edge) with a ``fov_deg`` field of view.

    Raises:
        ValueError: ``fov_deg`` outside (0, 180) or ``size_px`` not positive.
    """
    fov = float(fov_deg)
    if not (math.isfinite(fov) and 0.0 < fov < 180.0):
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov_deg!r}")
    if not (math.isfinite(float(size_px)) and size_px > 0):
        raise ValueError(f"size_px must be positive, got {size_px!r}")
    return float(size_px) / (2.0 * math.tan(math.radians(fov) / 2.0))


def fov_from_focal(f_px: float, size_px: float) -> float:
    """Field of view in degrees across ``size_px`` pixels for a focal length of ``f_px`` pixels."""
    if not (math.isfinite(float(f_px)) and f_px > 0):
        raise ValueError(f"focal length must be a positive number of pixels, got {f_px!r}")
    return math.degrees(2.0 * math.atan(float(size_px) / (2.0 * float(f_px))))


def orientation_transform(orientation: int) -> tuple[bool, bool, bool]:
    """(swap, mirror_u, mirror_v) applied to stored pixels for an EXIF orientation 1..8.

    Raises:
        ValueError: orientation not in 1..8.
    """
    try:
        return _ORIENT[int(orientation)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"orientation must be an EXIF orientation 1..8, got {orientation!r}") from None


def orient_coords(u: np.ndarray, v: np.ndarray, orientation: int, raw_size: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Map pixel coordinates in the stored (un-rotated) image to the displayed image.

    Args:
        u, v: pixel coordinates in the stored image (any shape, pixel centres at integers).
        orientation: EXIF orientation 1..8.
        raw_size: (H, W) of the stored image, in pixels.

    Returns:
        (u', v') in the image as :func:`depthany.io.image.read_image` returns it.
    """
    swap, mu, mv = orientation_transform(orientation)
    h, w = raw_size
    p, q = (np.asarray(v, dtype=np.float64), np.asarray(u, dtype=np.float64)) if swap else (
        np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))
    w2, h2 = (h, w) if swap else (w, h)
    return (w2 - 1 - p if mu else p), (h2 - 1 - q if mv else q)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics for one image size.

    Attributes:
        fx, fy: focal lengths in pixels (``fx != fy`` for non-square pixels or a non-uniform resize).
        cx, cy: principal point in pixels (pixel centres at integer coordinates).
        width, height: the image size these numbers belong to, in pixels.
        source: where they came from: ``"user"``, ``"user-fov"``, ``"exif-35mm"``, ``"exif-focal-plane"`` or
            ``"default"``.
        detail: a human-readable note (which EXIF fields, which default, rescaling applied).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    source: str = "user"
    detail: str = ""

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            val = getattr(self, name)
            if not (isinstance(val, (int, float, np.floating, np.integer)) and math.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be a positive number of pixels, got {val!r}")
        for name in ("cx", "cy"):
            val = getattr(self, name)
            if not (isinstance(val, (int, float, np.floating, np.integer)) and math.isfinite(val)):
                raise ValueError(f"{name} must be a finite number of pixels, got {val!r}")
        for name in ("width", "height"):
            val = getattr(self, name)
            if not (isinstance(val, (int, np.integer)) and val >= 1):
                raise ValueError(f"{name} must be a positive integer number of pixels, got {val!r}")
        # Normalise numpy scalars to plain Python numbers so JSON and equality behave.
        for name in ("fx", "fy", "cx", "cy"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    # ------------------------------------------------------------------------------------------ construction

    @classmethod
    def from_fov(cls, fov_deg: float, width: int, height: int, axis: FovAxis = "horizontal",
                 source: str = "user-fov", detail: str = "") -> Intrinsics:
        """Square pixels, principal point at the image centre, and the given field of view along ``axis``.

        ``axis="diagonal"`` uses the image diagonal ``sqrt(W^2 + H^2)``.
        """
        if axis not in FOV_AXES:
            raise ValueError(f"fov_axis must be one of {', '.join(FOV_AXES)}, got {axis!r}")
        span = {"horizontal": width, "vertical": height, "diagonal": math.hypot(width, height)}[axis]
        f = focal_from_fov(fov_deg, span)
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0, width, height, source,
                   detail or f"{float(fov_deg):g} deg {axis} field of view")

    @classmethod
    def from_K(cls, K: np.ndarray, width: int, height: int, source: str = "user", detail: str = "") -> Intrinsics:
        """From a 3x3 matrix ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``; skew must be 0.

        Raises:
            ValueError: not 3x3, non-zero skew, or a last row other than (0, 0, 1).
        """
        k = np.asarray(K, dtype=np.float64)
        if k.shape != (3, 3):
            raise ValueError(f"K must be a 3x3 matrix, got shape {k.shape}")
        if abs(k[0, 1]) > 1e-9 * abs(k[0, 0]) or not np.allclose(k[2], [0, 0, 1]) or k[1, 0] != 0:
            raise ValueError(f"K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew), got {k.tolist()}")
        return cls(k[0, 0], k[1, 1], k[0, 2], k[1, 2], width, height, source, detail)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Intrinsics:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(float(d["fx"]), float(d["fy"]), float(d["cx"]), float(d["cy"]), int(d["width"]),
                       int(d["height"]), str(d.get("source", "user")), str(d.get("detail", "")))
        except KeyError as e:
            raise ValueError(f"intrinsics are missing the field {e.args[0]!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict with every field."""
        return asdict(self)

    # ------------------------------------------------------------------------------------------ views

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the standard name of the matrix
        """(3, 3) float64 calibration matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) in pixels, the order image arrays use."""
        return self.height, self.width

    @property
    def fov_x(self) -> float:
        """Horizontal field of view in degrees (edge to edge)."""
        return fov_from_focal(self.fx, self.width)

    @property
    def fov_y(self) -> float:
        """Vertical field of view in degrees (edge to edge)."""
        return fov_from_focal(self.fy, self.height)

    def describe(self) -> str:
        """One line: numbers, fields of view and where they came from."""
        note = f", {self.detail}" if self.detail else ""
        return (f"fx={self.fx:.2f} fy={self.fy:.2f} cx={self.cx:.2f} cy={self.cy:.2f} px for {self.width}x"
                f"{self.height} (fov {self.fov_x:.1f} x {self.fov_y:.1f} deg; source: {self.source}{note})")

    # ------------------------------------------------------------------------------------------ transforms

    def scaled(self, *, width: int, height: int) -> Intrinsics:
        """The same camera for the image resized (whole frame, no crop) to ``width`` x ``height`` pixels.

        With pixel centres at integers a stored coordinate ``u`` lands at ``(u + 0.5) * s - 0.5`` where
        ``s = width / self.width``; so ``fx' = s * fx`` and ``cx' = (cx + 0.5) * s - 0.5`` (likewise for y).
        """
        if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer))
                and width >= 1 and height >= 1):
            raise ValueError(f"width and height must be positive integers, got {width!r} x {height!r}")
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        note = f"rescaled from {self.width}x{self.height}"
        return replace(self, fx=self.fx * sx, fy=self.fy * sy, cx=(self.cx + 0.5) * sx - 0.5,
                       cy=(self.cy + 0.5) * sy - 0.5, width=int(width), height=int(height),
                       detail=f"{self.detail}; {note}" if self.detail else note)

    def oriented(self, orientation: int) -> Intrinsics:
        """Intrinsics of the displayed image, given these describe the stored sensor image.

        EXIF fields describe the stored (un-rotated) pixels; :func:`depthany.io.image.read_image` rotates and
        mirrors them by the EXIF orientation. A 90 degree turn swaps ``fx``/``fy`` and width/height and moves the
        principal point with the pixels; a mirror maps ``cx`` to ``W - 1 - cx``. Mirrored orientations (2, 4, 5,
        7) describe a mirror image: points back-projected from it are the mirror image of the scene.
        """
        swap, mu, mv = orientation_transform(orientation)
        if orientation == 1:
            return self
        fx, fy, p, q = (self.fy, self.fx, self.cy, self.cx) if swap else (self.fx, self.fy, self.cx, self.cy)
        w2, h2 = (self.height, self.width) if swap else (self.width, self.height)
        note = f"EXIF orientation {orientation} applied"
        return replace(self, fx=fx, fy=fy, cx=(w2 - 1 - p) if mu else p, cy=(h2 - 1 - q) if mv else q,
                       width=w2, height=h2, detail=f"{self.detail}; {note}" if self.detail else note)
