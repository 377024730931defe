"""EXIF focal length -> pixels, on JPEGs written here with Pillow, including EXIF orientation 6 and 8."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from depthany.geometry import Intrinsics, IntrinsicsWarning, intrinsics_for_result, intrinsics_from_exif
from depthany.geometry.exif import exif_number
from depthany.io.image import read_image
from depthany.result import DepthResult

W, H = 96, 64  # stored (sensor) size of the test photos


def _photo(path: Path, orientation: int = 1, **tags: float) -> Path:
    """A JPEG with a gradient and the given Exif sub-IFD tags (by name)."""
    codes = {"FocalLength": 0x920A, "FocalLengthIn35mmFilm": 0xA405, "FocalPlaneXResolution": 0xA20E,
             "FocalPlaneYResolution": 0xA20F, "FocalPlaneResolutionUnit": 0xA210, "PixelXDimension": 0xA002,
             "PixelYDimension": 0xA003}
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([x * 2, y * 3, (x + y) % 256], -1).astype(np.uint8)
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    for name, val in tags.items():
        sub[codes[name]] = val
    im.save(path, exif=exif, quality=95)
    return path


def _result(path: Path) -> DepthResult:
    """What the predictor produces for a photo: values at the displayed size plus the EXIF metadata."""
    img = read_image(path)
    values = np.ones(img.size, dtype=np.float32)
    return DepthResult(values, "metric_depth", "test", img.size, img.size, str(path),
                       {"exif": img.exif, "orientation": img.orientation, "raw_size": img.raw_size})


def test_35mm_equivalent_uses_the_diagonal_convention(tmp_path: Path) -> None:
    k = intrinsics_for_result(_result(_photo(tmp_path / "a.jpg", FocalLengthIn35mmFilm=26)))
    expected = 26 * math.hypot(W, H) / math.hypot(36, 24)
    assert k.source == "exif-35mm"
    assert (k.fx, k.fy) == (pytest.approx(expected, rel=1e-12), pytest.approx(expected, rel=1e-12))
    assert (k.cx, k.cy) == ((W - 1) / 2, (H - 1) / 2)
    # The diagonal angle of view equals that of a 26 mm lens on a 36x24 mm frame.
    diag_fov = 2 * math.degrees(math.atan(math.hypot(W, H) / (2 * k.fx)))
    assert diag_fov == pytest.approx(2 * math.degrees(math.atan(math.hypot(36, 24) / (2 * 26))), rel=1e-12)


def test_focal_plane_resolution(tmp_path: Path) -> None:
    # 4 mm lens, 200 px/cm horizontally and 240 px/cm vertically -> fx = 4 * 200 / 10 = 80, fy = 96 px.
    p = _photo(tmp_path / "b.jpg", FocalLength=4.0, FocalPlaneXResolution=200.0, FocalPlaneYResolution=240.0,
               FocalPlaneResolutionUnit=3)
    k = intrinsics_for_result(_result(p))
    assert k.source == "exif-focal-plane"
    assert (k.fx, k.fy) == (pytest.approx(80.0), pytest.approx(96.0))
    # inches are the EXIF default unit: 4 mm * 508 px/inch / 25.4 = 80 px
    k2 = intrinsics_for_result(_result(_photo(tmp_path / "c.jpg", FocalLength=4.0, FocalPlaneXResolution=508.0)))
    assert k2.fx == pytest.approx(80.0) and k2.fy == pytest.approx(80.0)
    # the camera wrote a 192x128 image and the file was halved afterwards: focal in pixels halves too
    k3 = intrinsics_for_result(_result(_photo(tmp_path / "d.jpg", FocalLength=4.0, FocalPlaneXResolution=400.0,
                                              FocalPlaneResolutionUnit=3, PixelXDimension=192,
                                              PixelYDimension=128)))
    assert k3.fx == pytest.approx(80.0)
    # dimensions written in displayed (swapped) order describe the same, un-resized image
    k4 = intrinsics_for_result(_result(_photo(tmp_path / "e.jpg", FocalLength=4.0, FocalPlaneXResolution=200.0,
                                              FocalPlaneResolutionUnit=3, PixelXDimension=H, PixelYDimension=W)))
    assert (k4.fx, k4.fy) == (pytest.approx(80.0), pytest.approx(80.0))


def test_35mm_has_priority_and_broken_values_fall_through(tmp_path: Path) -> None:
    both = _photo(tmp_path / "e.jpg", FocalLengthIn35mmFilm=26, FocalLength=4.0, FocalPlaneXResolution=200.0,
                  FocalPlaneResolutionUnit=3)
    assert intrinsics_for_result(_result(both)).source == "exif-35mm"
    # 0 means "unknown" in EXIF; a 0.5 mm equivalent is a > 175 deg lens: both are skipped
    for bad in (0, 0.5):
        p = _photo(tmp_path / f"f{bad}.jpg", FocalLengthIn35mmFilm=bad, FocalLength=4.0,
                   FocalPlaneXResolution=200.0, FocalPlaneResolutionUnit=3)
        assert intrinsics_for_result(_result(p)).source == "exif-focal-plane"
    only_mm = _photo(tmp_path / "g.jpg", FocalLength=4.0)
    with pytest.warns(IntrinsicsWarning, match="no 35 mm equivalent or sensor size"):
        assert intrinsics_for_result(_result(only_mm)).source == "default"
    # user values beat EXIF
    assert intrinsics_for_result(_result(both), fov=90.0).source == "user-fov"


@pytest.mark.parametrize("orientation,numpy_turn", [(6, -1), (8, 1)])
def test_orientation_turns_exif_intrinsics(tmp_path: Path, orientation: int, numpy_turn: int) -> None:
    p = _photo(tmp_path / f"o{orientation}.jpg", orientation, FocalLength=4.0, FocalPlaneXResolution=200.0,
               FocalPlaneYResolution=240.0, FocalPlaneResolutionUnit=3)
    with Image.open(p) as im:
        stored = np.asarray(im.convert("RGB"))  # decoded pixels as stored, orientation not applied
    shown = read_image(p).rgb
    assert np.array_equal(shown, np.rot90(stored, numpy_turn))  # what a viewer shows

    raw_k, _ = intrinsics_from_exif(read_image(p).exif, stored.shape[:2])
    assert raw_k is not None and (raw_k.fx, raw_k.fy) == (pytest.approx(80.0), pytest.approx(96.0))
    k = intrinsics_for_result(_result(p))
    assert (k.width, k.height) == (H, W)
    assert (k.fx, k.fy) == (pytest.approx(96.0), pytest.approx(80.0))  # swapped with the axes
    assert (k.cx, k.cy) == ((H - 1) / 2, (W - 1) / 2)

    # Each displayed pixel's ray makes the same angle with the optical axis as its stored source pixel.
    label = np.arange(W * H).reshape(H, W)
    shown_label = np.rot90(label, numpy_turn)
    v2, u2 = np.mgrid[0:W, 0:H]
    v, u = np.divmod(shown_label, W)
    ang_shown = np.hypot((u2 - k.cx) / k.fx, (v2 - k.cy) / k.fy)
    ang_stored = np.hypot((u - raw_k.cx) / raw_k.fx, (v - raw_k.cy) / raw_k.fy)
    np.testing.assert_allclose(ang_shown, ang_stored, rtol=1e-12)


def test_prediction_at_another_size_gets_rescaled_intrinsics(tmp_path: Path) -> None:
    p = _photo(tmp_path / "r.jpg", 6, FocalLengthIn35mmFilm=26)
    res = _result(p)
    half = DepthResult(np.ones((W // 2, H // 2), np.float32), "metric_depth", "t", (W // 2, H // 2),
                       (W // 2, H // 2), None, res.meta)
    k_full, k_half = intrinsics_for_result(res), intrinsics_for_result(half)
    assert k_half == k_full.scaled(width=H // 2, height=W // 2)
    assert isinstance(k_half, Intrinsics) and k_half.fx == pytest.approx(k_full.fx / 2)


def test_exif_number_parsing() -> None:
    assert exif_number(TiffImagePlugin.IFDRational(9, 2)) == 4.5
    assert exif_number((9, 2)) == 4.5
    assert exif_number(Fraction(1, 4)) == 0.25
    for bad in (None, 0, -3, (1, 0), "26", TiffImagePlugin.IFDRational(0, 1), float("inf")):
        assert exif_number(bad) is None
