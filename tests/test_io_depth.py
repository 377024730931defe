"""Depth-map files round-trip, and independent readers (OpenCV, OpenEXR, a hand decode) agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depthany.io import depth as dio
from depthany.io.atomic import atomic_path


@pytest.fixture
def disparity() -> np.ndarray:
    """(30, 40) float32 in about [0.4, 3.1]: the magnitude of V2-Small outputs, where a bare uint16 cast
    would keep only 3 distinct levels."""
    y, x = np.mgrid[0:30, 0:40].astype(np.float64)
    return (1.7 + 1.3 * np.sin(x / 7.0) * np.cos(y / 5.0) + 0.01 * x).astype(np.float32)


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]


def test_npy_round_trip(tmp_path: Path, disparity: np.ndarray) -> None:
    v = disparity.copy()
    v[3, 4] = np.nan
    p = dio.write_npy(tmp_path / "d.npy", v)
    back = np.load(p)
    assert back.dtype == np.float32 and back.shape == v.shape
    np.testing.assert_array_equal(back, v)
    np.testing.assert_array_equal(dio.read_npy(p), v)
    assert _no_temp_files(tmp_path)


def test_png16_auto_range_round_trip(tmp_path: Path, disparity: np.ndarray) -> None:
    png, side = dio.write_png16(tmp_path / "d_depth16.png", disparity, kind="relative_disparity")
    assert side == tmp_path / "d_depth16.json"
    values, meta = dio.read_png16(png)
    span = float(disparity.max() - disparity.min())
    err = np.abs(values.astype(np.float64) - disparity)
    assert err.max() <= span / 65535 / 2 + 1e-6  # half a quantisation step (+ float32 rounding)
    # an independent reader: OpenCV's raw codes, decoded by hand with the sidecar's numbers
    cv2 = pytest.importorskip("cv2")
    codes = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert codes.dtype == np.uint16 and codes.min() == 0 and codes.max() == 65535
    sidecar = json.loads(side.read_text())
    by_hand = sidecar["offset"] + sidecar["scale"] * codes.astype(np.float64)
    assert np.abs(by_hand - disparity).max() <= span / 65535 / 2 + 1e-6
    assert sidecar == meta == json.loads(Image.open(png).text["depthany"])
    assert meta["kind"] == "relative_disparity" and meta["unit"] is None
    assert meta["min"] == pytest.approx(float(disparity.min())) and meta["nodata"] is None


def test_png16_keeps_precision_a_bare_cast_loses(tmp_path: Path, disparity: np.ndarray) -> None:
    values, _ = dio.read_png16(dio.write_png16(tmp_path / "x.png", disparity)[0])
    assert len(np.unique(disparity.astype(np.uint16))) <= 4  # what the official "16-bit raw" output keeps
    assert len(np.unique(values)) > 0.9 * len(np.unique(disparity))


def test_png16_nan_is_nodata(tmp_path: Path, disparity: np.ndarray) -> None:
    v = disparity.copy()
    v[0, :5] = np.nan
    v[1, 1] = np.inf
    png = dio.write_png16(tmp_path / "n.png", v)[0]
    codes = np.asarray(Image.open(png))
    assert (codes[0, :5] == 0).all() and codes[1, 1] == 0
    ok = np.isfinite(v)
    assert codes[ok].min() == 1 and codes[ok].max() == 65535
    back, meta = dio.read_png16(png)
    assert meta["nodata"] == 0
    np.testing.assert_array_equal(np.isnan(back), ~ok)
    span = float(v[ok].max() - v[ok].min())
    assert np.abs(back[ok] - v[ok]).max() <= span / 65534 / 2 + 1e-6


def test_png16_fixed_scale_millimetres_and_clipping(tmp_path: Path) -> None:
    depth = np.array([[0.5, 1.2346, 65.535], [70.0, 2.0, 3.0004]], dtype=np.float32)
    png = dio.write_png16(tmp_path / "m.png", depth, kind="metric_depth", unit="m", scale=0.001, offset=0.0)[0]
    codes = np.asarray(Image.open(png))
    np.testing.assert_array_equal(codes, [[500, 1235, 65535], [65535, 2000, 3000]])  # 70 m does not fit
    back, meta = dio.read_png16(png)
    assert meta["clipped_pixels"] == 1 and meta["unit"] == "m" and meta["kind"] == "metric_depth"
    ok = depth < 66
    assert np.abs(back[ok] - depth[ok]).max() <= 0.0005 + 1e-6
    with pytest.raises(ValueError, match="scale"):
        dio.write_png16(tmp_path / "bad.png", depth, scale=-1.0)
    with pytest.raises(ValueError, match="offset given without scale"):
        dio.write_png16(tmp_path / "bad.png", depth, offset=1.0)


def test_png16_constant_map_and_missing_metadata(tmp_path: Path) -> None:
    const = np.full((4, 5), 2.25, dtype=np.float32)
    back, _ = dio.read_png16(dio.write_png16(tmp_path / "c.png", const)[0])
    np.testing.assert_array_equal(back, const)
    # sidecar alone is enough
    png, side = dio.write_png16(tmp_path / "s.png", const * np.arange(5, dtype=np.float32))
    codes = np.asarray(Image.open(png))
    Image.fromarray(codes).save(png)  # re-saved without the text chunk
    assert "depthany" not in Image.open(png).text
    np.testing.assert_allclose(dio.read_png16(png)[0], const * np.arange(5), atol=1e-3)
    side.unlink()
    with pytest.raises(ValueError, match="s.png: no 'depthany' metadata"):
        dio.read_png16(png)


def test_pfm_read_by_opencv(tmp_path: Path, disparity: np.ndarray) -> None:
    cv2 = pytest.importorskip("cv2")
    v = disparity.copy()
    v[2, 3] = -1.5
    p = dio.write_pfm(tmp_path / "d.pfm", v)
    back = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert back is not None and back.dtype == np.float32
    np.testing.assert_array_equal(back, v)
    np.testing.assert_array_equal(dio.read_pfm(p), v)


def test_read_pfm_of_opencv_files(tmp_path: Path, disparity: np.ndarray) -> None:
    cv2 = pytest.importorskip("cv2")
    gray, colour = tmp_path / "g.pfm", tmp_path / "c.pfm"
    assert cv2.imwrite(str(gray), disparity)
    rgb = np.dstack([disparity, disparity * 2, -disparity])
    assert cv2.imwrite(str(colour), rgb)
    np.testing.assert_array_equal(dio.read_pfm(gray), disparity)
    # PF stores R, G, B; OpenCV swaps to BGR on both write and read
    np.testing.assert_array_equal(dio.read_pfm(colour), cv2.imread(str(colour), cv2.IMREAD_UNCHANGED)[..., ::-1])
    bad = tmp_path / "bad.pfm"
    bad.write_bytes(b"Pf\n10 10\n-1\n" + b"\0" * 12)
    with pytest.raises(ValueError, match="bad.pfm: PFM data is short"):
        dio.read_pfm(bad)
    bad.write_bytes(b"P6\n1 1\n255\n...")
    with pytest.raises(ValueError, match="not a PFM"):
        dio.read_pfm(bad)


def test_exr_read_by_openexr(tmp_path: Path, disparity: np.ndarray) -> None:
    import OpenEXR

    v = disparity.copy()
    v[1, 1] = np.nan
    p = dio.write_exr(tmp_path / "d.exr", v, meta={"kind": "metric_depth", "unit": "m"})
    with OpenEXR.File(str(p)) as f:
        assert list(f.channels()) == ["Y"]
        np.testing.assert_array_equal(f.channels()["Y"].pixels, v)
        assert json.loads(f.header()["depthany"])["unit"] == "m"
    np.testing.assert_array_equal(dio.read_exr(p), v)
    h = dio.write_exr(tmp_path / "h.exr", disparity, half=True)
    np.testing.assert_array_equal(dio.read_exr(h), disparity.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="no channel 'Z'"):
        dio.read_exr(p, "Z")


def test_exr_read_by_opencv_when_it_can(tmp_path: Path, disparity: np.ndarray) -> None:
    cv2 = pytest.importorskip("cv2")
    p = dio.write_exr(tmp_path / "d.exr", disparity)
    try:
        back = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        back = None
    if back is None:
        pytest.skip(f"this OpenCV {cv2.__version__} build cannot read EXR (OpenEXR disabled or missing)")
    np.testing.assert_array_equal(back, disparity)


def test_png8_and_validation(tmp_path: Path) -> None:
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    p = dio.write_png8(tmp_path / "g.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(p)), img)
    with pytest.raises(ValueError, match="uint8"):
        dio.write_png8(tmp_path / "x.png", img.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        dio.write_npy(tmp_path / "x.npy", np.zeros((2, 2, 2)))


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.npy"
    dio.write_npy(target, np.ones((2, 2)))
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash in the middle")
    np.testing.assert_array_equal(np.load(target), np.ones((2, 2)))
    assert _no_temp_files(target.parent)
