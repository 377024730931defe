"""Read images the way the official pipeline sees them, and fail clearly on anything else.

The official scripts call ``cv2.imread(path)`` (BGR, EXIF orientation applied, alpha dropped, 16-bit reduced
to 8-bit by ``>> 8``, grayscale repeated to three channels) and convert to RGB. This module reproduces that
with Pillow, and adds what a tool needs: alpha composited on a stated background, size limits against
decompression bombs, and one :class:`ImageReadError` naming the file for every failure.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's hard decompression-bomb limit (2x its warning threshold)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm",
                            ".pbm", ".jp2", ".avif", ".heic", ".jfif"})


class ImageReadError(ValueError):
    """An input could not be read as an image. The message names the file and the reason."""


@dataclass
class LoadedImage:
    """An RGB image plus what the file said about itself.

    Attributes:
        rgb: (H, W, 3) uint8 RGB, EXIF orientation applied (the orientation a viewer shows).
        path: source file, if any.
        orientation: EXIF orientation tag (1..8) of the file, 1 when absent.
        raw_size: (H, W) of the stored pixels before orientation was applied.
        exif: selected EXIF fields (FocalLength, FocalLengthIn35mmFilm, Make, Model, ...), raw values.
        had_alpha: whether an alpha channel was composited away.
    """

    rgb: np.ndarray
    path: str | None = None
    orientation: int = 1
    raw_size: tuple[int, int] = (0, 0)
    exif: dict[str, Any] = field(default_factory=dict)
    had_alpha: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return self.rgb.shape[0], self.rgb.shape[1]


_EXIF_FIELDS = {
    0x920A: "FocalLength",
    0xA405: "FocalLengthIn35mmFilm",
    0x010F: "Make",
    0x0110: "Model",
    0xA20E: "FocalPlaneXResolution",
    0xA20F: "FocalPlaneYResolution",
    0xA210: "FocalPlaneResolutionUnit",
    0xA002: "PixelXDimension",
    0xA003: "PixelYDimension",
}


def _exif_fields(img: Image.Image) -> tuple[int, dict[str, Any]]:
    try:
        exif = img.getexif()
    except Exception:  # a broken EXIF block must not make a readable image unreadable
        return 1, {}
    orientation = int(exif.get(0x0112, 1) or 1)
    out: dict[str, Any] = {}
    try:
        sub = exif.get_ifd(0x8769)  # Exif sub-IFD holds the camera fields
    except Exception:
        sub = {}
    for tag, name in _EXIF_FIELDS.items():
        val = sub.get(tag, exif.get(tag))
        if val is not None:
            out[name] = val
    return orientation if 1 <= orientation <= 8 else 1, out


def _to_rgb_uint8(img: Image.Image, background: tuple[int, int, int] | None) -> tuple[np.ndarray, bool]:
    """Convert any Pillow mode to (H, W, 3) uint8 RGB, like cv2.imread(IMREAD_COLOR) plus alpha handling."""
    mode = img.mode
    had_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img)
        if a.dtype != np.uint16:
            a = np.clip(a, 0, 65535).astype(np.uint16)
        gray = (a >> 8).astype(np.uint8)  # cv2 reduces 16-bit to 8-bit by dropping the low byte
        return np.repeat(gray[..., None], 3, axis=2), False
    if mode == "F":
        raise ImageReadError("floating-point images are not photographs; convert to 8/16-bit first")
    if had_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        if background is None:  # official behaviour: drop alpha, keep the stored colour values
            return np.ascontiguousarray(rgba[..., :3]), True
        alpha = rgba[..., 3:4].astype(np.float64) / 255.0
        bg = np.asarray(background, dtype=np.float64).reshape(1, 1, 3)
        out = rgba[..., :3].astype(np.float64) * alpha + bg * (1.0 - alpha)
        return np.clip(np.round(out), 0, 255).astype(np.uint8), True
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy(), False


def read_image(
    source: str | Path | bytes | Image.Image,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    alpha_background: tuple[int, int, int] | None = (255, 255, 255),
) -> LoadedImage:
    """Decode an image file (or bytes, or a PIL image) to RGB uint8 with EXIF orientation applied.

    Args:
        source: path, encoded bytes, or an already-open PIL image.
        max_pixels: refuse images with more pixels than this (decompression bombs, absurd sizes).
        alpha_background: RGB colour that transparent pixels are composited on; None drops alpha and keeps
            the stored colours (what ``cv2.imread`` does).

    Raises:
        ImageReadError: missing, empty, truncated, corrupt, non-image or too-large input; names the file.
    """
    name = str(source) if isinstance(source, (str, Path)) else ("<bytes>" if isinstance(source, bytes) else "<image>")
    try:
        if isinstance(source, Image.Image):
            img = source
        else:
            if isinstance(source, (str, Path)):
                p = Path(source)
                if not p.exists():
                    raise ImageReadError(f"{name}: no such file")
                if p.is_dir():
                    raise ImageReadError(f"{name}: is a folder, not an image")
                if p.stat().st_size == 0:
                    raise ImageReadError(f"{name}: file is empty (0 bytes)")
                data: Any = str(p)
            else:
                if len(source) == 0:
                    raise ImageReadError(f"{name}: empty upload (0 bytes)")
                data = io.BytesIO(source)
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(data)
        w, h = img.size
        if w * h > max_pixels:
            raise ImageReadError(f"{name}: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
                                 "(possible decompression bomb); raise --max-pixels if the file is trusted")
        orientation, exif = _exif_fields(img)
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        img.load()
        raw_size = (img.size[1], img.size[0])
        img = ImageOps.exif_transpose(img) or img
        rgb, had_alpha = _to_rgb_uint8(img, alpha_background)
    except ImageReadError as e:
        if not str(e).startswith(name):
            raise ImageReadError(f"{name}: {e}") from None
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(f"{name}: refused, too many pixels (possible decompression bomb): {e}") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(f"{name}: not an image file, or an unsupported format") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{name}: corrupt or truncated image ({e})") from e
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageReadError(f"{name}: image has no pixels")
    return LoadedImage(rgb, name if isinstance(source, (str, Path)) else None, orientation, raw_size, exif, had_alpha)


def as_rgb(image: np.ndarray | str | Path | bytes | Image.Image, **kwargs: Any) -> LoadedImage:
    """Accept an (H, W, 3) uint8 RGB array (used as is), or anything :func:`read_image` reads."""
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ImageReadError(f"<array>: expected (H, W, 3) RGB, got shape {image.shape}")
        if image.shape[2] == 4:
            image = image[..., :3]
        return LoadedImage(np.ascontiguousarray(image), None, 1, image.shape[:2])
    return read_image(image, **kwargs)
