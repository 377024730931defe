"""Read images the way the official pipeline sees them, and fail clearly on anything else.

The official scripts call ``cv2.imread(path)`` and convert BGR to RGB. ``cv2.imread`` applies the EXIF
orientation, drops alpha (keeping the stored colours), reduces 16-bit samples to 8 bits by keeping the high
byte, repeats grayscale to three channels, expands palettes and converts CMYK JPEGs with its own integer
formula. This module reproduces all of that with Pillow (the tests compare pixel for pixel with OpenCV), and
adds what a tool needs: alpha composited on a stated background (white by default), a pixel limit against
decompression bombs, and one :class:`ImageReadError` naming the file for every failure.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's hard decompression-bomb limit (2x its warning threshold)
DEFAULT_BACKGROUND: tuple[int, int, int] = (255, 255, 255)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm",
                            ".pbm", ".jp2", ".avif", ".heic", ".jfif"})

_PILLOW_LIMIT_LOCK = threading.Lock()


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
        had_alpha: whether the file had an alpha channel (composited on the background, or dropped).
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
    try:
        orientation = int(exif.get(0x0112, 1) or 1)
    except (TypeError, ValueError):
        orientation = 1
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


def _cmyk_jpeg_to_rgb(img: Image.Image) -> np.ndarray:
    """CMYK JPEG -> (H, W, 3) uint8 with OpenCV's integer formula (Pillow's own conversion differs by 1).

    Pillow always inverts the stored JPEG samples (Adobe convention, with or without the Adobe marker);
    OpenCV computes ``R = k - ((255 - c) * k >> 8)`` on the stored samples.
    """
    stored = 255 - np.asarray(img, dtype=np.int32)
    k = stored[..., 3:4]
    rgb = k - (((255 - stored[..., :3]) * k) >> 8)
    return rgb.astype(np.uint8)


def _to_rgb_uint8(
    img: Image.Image, background: tuple[int, int, int] | None, cmyk_jpeg: bool = False
) -> tuple[np.ndarray, bool]:
    """Convert any Pillow mode to (H, W, 3) uint8 RGB, like cv2.imread(IMREAD_COLOR) plus alpha handling.

    ``cmyk_jpeg`` describes the file (a transposed copy no longer knows its format). Large images are
    converted in bands of rows (:func:`_by_bands`), so the temporaries stay small.
    """
    mode = img.mode
    had_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return _by_bands(img, _high_byte_gray), False
    if mode == "F":
        raise ImageReadError("a floating-point image is not a photograph; convert it to 8 or 16 bit first")
    if mode == "CMYK" and cmyk_jpeg:
        return _by_bands(img, _cmyk_jpeg_to_rgb), False
    if had_alpha:
        return _by_bands(img, lambda band: _composite(band, background)), True
    return _by_bands(img, lambda band: np.asarray(band if band.mode == "RGB" else band.convert("RGB"),
                                                  dtype=np.uint8)), False


def _high_byte_gray(img: Image.Image) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint16:
        a = np.clip(a, 0, 65535).astype(np.uint16)
    gray = (a >> 8).astype(np.uint8)  # cv2 reduces 16-bit to 8-bit by keeping the high byte
    return np.repeat(gray[..., None], 3, axis=2)


def _composite(img: Image.Image, background: tuple[int, int, int] | None) -> np.ndarray:
    rgba = np.asarray(img.convert("RGBA"))
    if background is None:  # official behaviour: drop alpha, keep the stored colour values
        return rgba[..., :3]
    alpha = rgba[..., 3:4].astype(np.float64) / 255.0
    bg = np.asarray(background, dtype=np.float64).reshape(1, 1, 3)
    out = rgba[..., :3].astype(np.float64) * alpha + bg * (1.0 - alpha)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


_BAND_PIXELS = 1 << 22


def _by_bands(img: Image.Image, convert: Callable[[Image.Image], np.ndarray]) -> np.ndarray:
    """A new, writable (H, W, 3) uint8 array of ``convert`` applied to ``img``, band by band when large.

    ``np.asarray(img)`` goes through ``tobytes()`` (a second full copy) and the float conversions make several
    more, so above :data:`_BAND_PIXELS` pixels the image is converted in bands of rows: peak memory is the
    decoded image, the result and one band, whatever the size (a 108-megapixel RGB JPEG: ~0.65 GB, not ~1 GB;
    with alpha, not ~8 GB of float64 temporaries).
    """
    w, h = img.size
    if w * h <= _BAND_PIXELS:
        return np.array(convert(img), dtype=np.uint8, copy=True)
    out = np.empty((h, w, 3), dtype=np.uint8)
    step = max(1, _BAND_PIXELS // w)
    for r in range(0, h, step):
        out[r:r + step] = convert(img.crop((0, r, w, min(h, r + step))))
    return out


def _open(data: Any, max_pixels: int) -> Image.Image:
    """``Image.open`` (header only) with Pillow's bomb check left to :func:`read_image`'s own limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit decides, not Pillow's
        pillow_hard = Image.MAX_IMAGE_PIXELS
        if pillow_hard is None or max_pixels <= 2 * pillow_hard:
            return Image.open(data)
        with _PILLOW_LIMIT_LOCK:  # the caller trusts bigger images than Pillow would open
            try:
                Image.MAX_IMAGE_PIXELS = None
                return Image.open(data)
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_hard


def _check_background(background: tuple[int, int, int] | None) -> None:
    if background is None:
        return
    if len(background) != 3 or any(not isinstance(c, (int, np.integer)) or not 0 <= c <= 255 for c in background):
        raise ValueError(f"alpha_background must be three integers in 0..255 (R, G, B) or None, got {background!r}")


def read_image(
    source: str | Path | bytes | Image.Image,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    alpha_background: tuple[int, int, int] | None = DEFAULT_BACKGROUND,
    exif_orientation: bool = True,
) -> LoadedImage:
    """Decode an image file (or bytes, or a PIL image) to RGB uint8 with EXIF orientation applied.

    Pixels equal ``cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)`` (the official reader) for 8- and
    16-bit, gray, palette, CMYK JPEG and WebP files, except where alpha is composited.

    Args:
        source: path, encoded bytes, or an already-open PIL image.
        max_pixels: refuse images with more pixels than this (decompression bombs, absurd sizes). The size is
            read from the header, before anything is decoded.
        alpha_background: RGB colour (0..255) that transparent pixels are composited on; None drops alpha and
            keeps the stored colours (what ``cv2.imread`` does).
        exif_orientation: turn the pixels as the EXIF orientation says (what ``cv2.imread`` and viewers do);
            False keeps the stored orientation (what ``PIL.Image.open(path).convert("RGB")`` does, the official
            Depth Anything 3 reader); the result's ``orientation`` is then 1 (nothing applied).

    Returns:
        a :class:`LoadedImage` with ``rgb`` (H, W, 3) uint8.

    Raises:
        ImageReadError: missing, empty, truncated, corrupt, non-image or too-large input; names the file.
        ValueError: ``max_pixels`` or ``alpha_background`` is invalid.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    _check_background(alpha_background)
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
            img = _open(data, max_pixels)
        w, h = img.size
        if w * h > max_pixels:
            raise ImageReadError(f"{name}: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
                                 "(possible decompression bomb); raise --max-pixels if the file is trusted")
        orientation, exif = _exif_fields(img)
        if not exif_orientation:
            orientation = 1  # the stored pixels, unturned: EXIF focal lengths still apply to them as they are
        img.load()
        raw_size = (img.size[1], img.size[0])
        cmyk_jpeg = img.mode == "CMYK" and img.format == "JPEG"
        try:
            if not exif_orientation:
                pass
            elif isinstance(source, Image.Image):  # the caller's image: leave it as it is
                img = ImageOps.exif_transpose(img) or img
            else:  # our own: no full copy when there is nothing to turn (Pillow copies otherwise)
                ImageOps.exif_transpose(img, in_place=True)
        except Exception:  # unreadable EXIF: keep the stored orientation rather than fail the image
            orientation = 1
        rgb, had_alpha = _to_rgb_uint8(img, alpha_background, cmyk_jpeg)
    except ImageReadError as e:
        if not str(e).startswith(name):
            raise ImageReadError(f"{name}: {e}") from None
        raise
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{name}: refused, too many pixels (possible decompression bomb): {e}") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(f"{name}: not an image file, or an unsupported format") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageReadError(f"{name}: corrupt or truncated image ({e})") from e
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageReadError(f"{name}: image has no pixels")
    return LoadedImage(rgb, name if isinstance(source, (str, Path)) else None, orientation, raw_size, exif, had_alpha)


def as_rgb(image: LoadedImage | np.ndarray | str | Path | bytes | Image.Image, **kwargs: Any) -> LoadedImage:
    """Accept a :class:`LoadedImage` (returned as is), an (H, W, 3) RGB array (used as is; (H, W) gray is
    repeated, a 4th channel dropped), or anything :func:`read_image` reads (``kwargs`` go to it)."""
    if isinstance(image, LoadedImage):
        return image
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ImageReadError(f"<array>: expected (H, W, 3) RGB, got shape {image.shape}")
        if image.shape[2] == 4:
            image = image[..., :3]
        return LoadedImage(np.ascontiguousarray(image), None, 1, image.shape[:2])
    return read_image(image, **kwargs)


def parse_background(text: str | None) -> tuple[int, int, int] | None:
    """``"R,G,B"`` (0..255 each) -> a tuple; ``"none"`` -> None (drop alpha like ``cv2.imread``).

    Also accepts ``"white"`` and ``"black"``.

    Raises:
        ValueError: naming the bad value.
    """
    if text is None:
        return DEFAULT_BACKGROUND
    t = text.strip().lower()
    named = {"none": None, "white": (255, 255, 255), "black": (0, 0, 0)}
    if t in named:
        return named[t]
    parts = [s.strip() for s in t.split(",")]
    try:
        rgb = tuple(int(s) for s in parts)
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or any(not 0 <= c <= 255 for c in rgb):
        raise ValueError(f"alpha background must be R,G,B with each 0..255, 'white', 'black' or 'none'; got {text!r}")
    return rgb  # type: ignore[return-value]
