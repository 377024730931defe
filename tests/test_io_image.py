"""Image input robustness: every case is a file the test writes, and the oracle is ``cv2.imread``.

``cv2.imread(path)`` (IMREAD_COLOR) followed by BGR->RGB is exactly what the official Depth Anything scripts
feed the network, so ``read_image`` must give the same pixels wherever no alpha compositing is asked for.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depthany.io.image import ImageReadError, as_rgb, parse_background, read_image

cv2 = pytest.importorskip("cv2")


@pytest.fixture(autouse=True, params=["whole", "bands"])
def conversion(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: images above ``_BAND_PIXELS`` are converted in bands of rows (bounded memory for huge
    images); a 97-pixel band forces that path on these small images, against the same oracles."""
    if request.param == "bands":
        from depthany.io import image as image_module

        monkeypatch.setattr(image_module, "_BAND_PIXELS", 97)
    return str(request.param)


def cv2_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, f"cv2 could not read {path}"
    return bgr[..., ::-1]


@pytest.fixture
def photo() -> np.ndarray:
    """(24, 36, 3) uint8 with structure in every channel (no symmetric case hides a wrong rotation)."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:24, 0:36]
    base = np.stack([x * 7, y * 10, (x * y) % 256], -1)
    return np.clip(base + rng.integers(0, 20, base.shape), 0, 255).astype(np.uint8)


# Orientation -> what a viewer shows, from the EXIF specification, written out independently of Pillow.
ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: np.transpose(a, (1, 0, 2)),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: np.transpose(np.rot90(a, k=2), (1, 0, 2)),  # transverse: out[i, j] = a[H-1-j, W-1-i]
    8: lambda a: np.rot90(a, k=1),
}


@pytest.mark.parametrize("ext", ["png", "jpg"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_cv2(tmp_path: Path, photo: np.ndarray, ext: str, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.{ext}"
    Image.fromarray(photo).save(path, exif=exif, **({"quality": 95} if ext == "jpg" else {}))
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.rgb, cv2_rgb(path))
    assert loaded.orientation == orientation
    assert loaded.raw_size == photo.shape[:2]
    if ext == "png":  # lossless: the stored pixels are known, so check the geometry against the spec too
        np.testing.assert_array_equal(loaded.rgb, ORIENT[orientation](photo))


def _rgba(photo: np.ndarray) -> np.ndarray:
    alpha = np.linspace(0, 255, photo.shape[1]).round().astype(np.uint8)
    alpha = np.broadcast_to(alpha, photo.shape[:2])
    return np.dstack([photo, alpha])


def test_alpha_is_composited_on_white_by_default(tmp_path: Path, photo: np.ndarray) -> None:
    rgba = _rgba(photo)
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    loaded = read_image(path)
    a = rgba[..., 3:4] / 255.0
    expected = np.round(photo * a + 255 * (1 - a)).astype(np.uint8)
    np.testing.assert_array_equal(loaded.rgb, expected)
    assert loaded.had_alpha
    np.testing.assert_array_equal(loaded.rgb[:, 0], 255)  # fully transparent column -> background
    np.testing.assert_array_equal(loaded.rgb[:, -1], photo[:, -1])  # opaque column -> stored colour


def test_alpha_background_colour_and_drop(tmp_path: Path, photo: np.ndarray) -> None:
    rgba = _rgba(photo)
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    black = read_image(path, alpha_background=(0, 0, 0)).rgb
    np.testing.assert_array_equal(black, np.round(photo * (rgba[..., 3:4] / 255.0)).astype(np.uint8))
    dropped = read_image(path, alpha_background=None).rgb  # like cv2: alpha ignored, stored colours kept
    np.testing.assert_array_equal(dropped, cv2_rgb(path))
    np.testing.assert_array_equal(dropped, photo)


def test_gray_alpha_png_drop_matches_cv2(tmp_path: Path, photo: np.ndarray) -> None:
    la = np.dstack([photo[..., 0], photo[..., 1]])
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    np.testing.assert_array_equal(read_image(path, alpha_background=None).rgb, cv2_rgb(path))


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_grayscale_matches_cv2(tmp_path: Path, photo: np.ndarray, ext: str) -> None:
    path = tmp_path / f"g.{ext}"
    Image.fromarray(photo[..., 0]).save(path)
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.rgb, cv2_rgb(path))
    assert loaded.rgb.shape == (*photo.shape[:2], 3)


def test_16bit_gray_png_matches_cv2(tmp_path: Path) -> None:
    a = np.random.default_rng(1).integers(0, 65536, (20, 30), dtype=np.uint16)
    path = tmp_path / "g16.png"
    assert cv2.imwrite(str(path), a)
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.rgb, cv2_rgb(path))
    np.testing.assert_array_equal(loaded.rgb[..., 0], (a >> 8).astype(np.uint8))  # high byte, not a rescale


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_png_matches_cv2(tmp_path: Path, channels: int) -> None:
    a = np.random.default_rng(2).integers(0, 65536, (20, 30, channels), dtype=np.uint16)
    path = tmp_path / f"c16_{channels}.png"
    assert cv2.imwrite(str(path), a)  # cv2 stores BGR(A)
    loaded = read_image(path, alpha_background=None)
    np.testing.assert_array_equal(loaded.rgb, cv2_rgb(path))
    np.testing.assert_array_equal(loaded.rgb, (a[..., 2::-1] >> 8).astype(np.uint8))


def test_palette_png_matches_cv2(tmp_path: Path, photo: np.ndarray) -> None:
    path = tmp_path / "p.png"
    Image.fromarray(photo).quantize(16).save(path)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(read_image(path).rgb, cv2_rgb(path))


def test_palette_png_with_transparency(tmp_path: Path, photo: np.ndarray) -> None:
    pal = Image.fromarray(photo).quantize(16)
    path = tmp_path / "pt.png"
    pal.save(path, transparency=3)
    index = np.asarray(Image.open(path))
    assert Image.open(path).info.get("transparency") == 3
    np.testing.assert_array_equal(read_image(path, alpha_background=None).rgb, cv2_rgb(path))
    composited = read_image(path).rgb
    np.testing.assert_array_equal(composited[index == 3], 255)  # the transparent entry shows the background
    np.testing.assert_array_equal(composited[index != 3], cv2_rgb(path)[index != 3])


def _strip_adobe_marker(data: bytes) -> bytes:
    """Remove the APP14 'Adobe' segment from a JPEG so the CMYK samples are read as stored."""
    i = data.find(b"\xff\xee")
    assert i > 0 and data[i + 4:i + 9] == b"Adobe"
    length = struct.unpack(">H", data[i + 2:i + 4])[0]
    return data[:i] + data[i + 2 + length:]


@pytest.mark.parametrize("adobe", [True, False])
def test_cmyk_jpeg_matches_cv2(tmp_path: Path, photo: np.ndarray, adobe: bool) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(photo).convert("CMYK").save(path, quality=95)
    if not adobe:
        path.write_bytes(_strip_adobe_marker(path.read_bytes()))
    assert Image.open(path).mode == "CMYK"
    np.testing.assert_array_equal(read_image(path).rgb, cv2_rgb(path))


def test_oriented_cmyk_jpeg_matches_cv2(tmp_path: Path, photo: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "cmyk6.jpg"
    Image.fromarray(photo).convert("CMYK").save(path, quality=95, exif=exif)
    np.testing.assert_array_equal(read_image(path).rgb, cv2_rgb(path))


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_matches_cv2(tmp_path: Path, photo: np.ndarray, lossless: bool) -> None:
    path = tmp_path / "w.webp"
    Image.fromarray(photo).save(path, lossless=lossless, quality=80)
    got, ref = read_image(path).rgb, cv2_rgb(path)
    np.testing.assert_array_equal(got, ref)
    if lossless:
        np.testing.assert_array_equal(got, photo)


def test_bytes_and_pil_sources(tmp_path: Path, photo: np.ndarray) -> None:
    path = tmp_path / "x.png"
    Image.fromarray(photo).save(path)
    np.testing.assert_array_equal(read_image(path.read_bytes()).rgb, photo)
    np.testing.assert_array_equal(read_image(Image.open(path)).rgb, photo)
    loaded = read_image(path)
    assert as_rgb(loaded) is loaded
    assert loaded.path == str(path)


# ------------------------------------------------------------------------------------------ bad inputs


def _jpeg_bytes(photo: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png_bytes(photo: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("case", ["zero", "text", "random", "trunc_jpg", "trunc_png", "bad_png_crc", "missing",
                                  "folder"])
def test_bad_inputs_raise_image_read_error_naming_the_file(tmp_path: Path, photo: np.ndarray, case: str) -> None:
    path = tmp_path / f"bad_{case}.jpg"
    if case == "zero":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not an image\n")
    elif case == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif case == "trunc_jpg":
        path.write_bytes(_jpeg_bytes(photo)[:300])
    elif case == "trunc_png":
        path = tmp_path / "bad_trunc.png"
        path.write_bytes(_png_bytes(photo)[:-200])
    elif case == "bad_png_crc":
        path = tmp_path / "bad_crc.png"
        data = bytearray(_png_bytes(photo))
        data[40] ^= 0xFF  # inside the IDAT payload: the CRC no longer matches
        path.write_bytes(bytes(data))
    elif case == "folder":
        path = tmp_path / "a_folder.png"
        path.mkdir()
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, ValueError)  # callers that only know ValueError still catch it


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with a few bytes of image data."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_header_is_refused_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(100_000, 100_000))  # 10^10 pixels claimed; 30 GB if decoded
    with pytest.raises(ImageReadError, match="pixels") as err:
        read_image(path)
    assert str(path) in str(err.value)
    path2 = tmp_path / "big.png"
    path2.write_bytes(_png_header_only(5000, 4000))  # 2e7 pixels: under Pillow's limits, over ours
    with pytest.raises(ImageReadError, match="exceeds the limit of 1,000,000"):
        read_image(path2, max_pixels=1_000_000)


def test_max_pixels_above_pillow_limit_is_honoured(tmp_path: Path, photo: np.ndarray, monkeypatch) -> None:
    path = tmp_path / "x.png"
    Image.fromarray(photo).save(path)  # 864 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone would refuse > 200 pixels
    with pytest.raises(ImageReadError):
        read_image(path, max_pixels=150)
    np.testing.assert_array_equal(read_image(path, max_pixels=10_000).rgb, photo)
    assert Image.MAX_IMAGE_PIXELS == 100  # restored


def test_parse_background() -> None:
    assert parse_background("none") is None
    assert parse_background("255, 0,10") == (255, 0, 10)
    assert parse_background("white") == (255, 255, 255)
    assert parse_background(None) == (255, 255, 255)
    for bad in ("1,2", "1,2,300", "red", "-1,0,0"):
        with pytest.raises(ValueError, match="alpha background"):
            parse_background(bad)
    with pytest.raises(ValueError, match="alpha_background"):
        read_image(b"x", alpha_background=(1, 2))  # type: ignore[arg-type]
