"""Output-format registry and the 8-bit pictures, checked against the official scripts' formulas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depthany import outputs
from depthany.io.colormap import get_lut
from depthany.io.depth import read_npy, read_png16
from depthany.outputs import FORMATS, OutputContext, OutputFormat, OutputFormatError, parse_formats
from depthany.result import DepthResult


def _result(values: np.ndarray, kind: str = "relative_disparity") -> DepthResult:
    return DepthResult(values=values.astype(np.float32), kind=kind, model="test", image_size=values.shape,
                       network_size=(14, 14), source="x.jpg")  # type: ignore[arg-type]


@pytest.fixture
def scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    disp = (rng.random((18, 26)) * 3 + 0.5).astype(np.float32)
    rgb = rng.integers(0, 256, (18, 26, 3), dtype=np.uint8)
    return disp, rgb


def _official_u8(d: np.ndarray) -> np.ndarray:
    """Official V1/V2 run.py: ``((d - d.min()) / (d.max() - d.min()) * 255.0).astype(np.uint8)``."""
    return ((d - d.min()) / (d.max() - d.min()) * 255.0).astype(np.uint8)


def test_parse_formats() -> None:
    got = parse_formats("npy, PNG16,npy")
    assert [f.name for f in got] == ["npy", "png16"]
    assert [f.name for f in parse_formats(["color,gray", "sbs"])] == ["color", "gray", "sbs"]
    with pytest.raises(OutputFormatError, match="unknown output format 'tiff'.*choose from npy"):
        parse_formats("npy,tiff")
    with pytest.raises(OutputFormatError, match="no output format"):
        parse_formats(" , ")


def test_lazy_format_with_missing_code_fails_clearly(monkeypatch) -> None:
    fake = OutputFormat("fake", "depthany.io.no_such_module:write", (".fake",), "missing on purpose")
    monkeypatch.setitem(FORMATS, "fake", fake)
    with pytest.raises(OutputFormatError, match="'fake' is not available: depthany.io.no_such_module:write"):
        parse_formats("npy,fake")
    monkeypatch.setitem(FORMATS, "fake2", OutputFormat("fake2", "depthany.io.depth:no_such_fn", (".x",), ""))
    with pytest.raises(OutputFormatError, match="AttributeError"):
        parse_formats("fake2")


def test_all_relative_formats(tmp_path: Path, scene) -> None:
    disp, rgb = scene
    fmts = [f for f in parse_formats(",".join(n for n in FORMATS if n not in ("ply", "sky")))]
    ctx = OutputContext(_result(disp), rgb, tmp_path / "sub" / "x", cmap="Spectral_r")
    written = outputs.write_outputs(ctx, fmts)
    assert sorted(p.name for p in written) == sorted(p.name for p in outputs.planned_paths(ctx.base, fmts))
    assert all(p.exists() for p in written)
    assert not [p for p in (tmp_path / "sub").iterdir() if ".tmp" in p.name]
    np.testing.assert_array_equal(read_npy(ctx.path(".npy")), disp)
    back, meta = read_png16(ctx.path("_depth16.png"))
    assert np.abs(back - disp).max() <= (disp.max() - disp.min()) / 65535
    assert meta["model"] == "test" and meta["source"] == "x.jpg"

    level = _official_u8(disp)
    colour = np.asarray(Image.open(ctx.path("_color.png")))
    np.testing.assert_array_equal(colour, get_lut("Spectral_r")[level])
    np.testing.assert_array_equal(np.asarray(Image.open(ctx.path("_gray.png"))), level)
    cn = np.asarray(Image.open(ctx.path("_controlnet.png")))
    assert cn.shape == (18, 26, 3)
    np.testing.assert_array_equal(cn, np.repeat(level[..., None], 3, axis=2))
    assert cn[np.unravel_index(np.argmax(disp), disp.shape)][0] == 255  # nearest pixel is brightest
    sbs = np.asarray(Image.open(ctx.path("_sbs.png")))
    assert sbs.shape == (18, 26 + 50 + 26, 3)
    np.testing.assert_array_equal(sbs[:, :26], rgb)
    np.testing.assert_array_equal(sbs[:, 26:76], 255)
    np.testing.assert_array_equal(sbs[:, 76:], colour)


def test_official_v2_colour_picture_with_matplotlib(tmp_path: Path, scene) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    disp, rgb = scene
    ctx = OutputContext(_result(disp), rgb, tmp_path / "x")
    outputs.write_outputs(ctx, parse_formats("color"))
    expected = (matplotlib.colormaps["Spectral_r"](_official_u8(disp))[:, :, :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(ctx.path("_color.png"))), expected)


def test_metric_pictures_show_inverse_depth(tmp_path: Path, scene) -> None:
    disp, rgb = scene
    depth = (1.0 / disp).astype(np.float32)  # metres
    depth[0, 0] = 0.0  # no value
    ctx = OutputContext(_result(depth, "metric_depth"), rgb, tmp_path / "m", cmap="inferno")
    outputs.write_outputs(ctx, parse_formats("gray,color,png16,exr"))
    gray = np.asarray(Image.open(ctx.path("_gray.png")))
    inv = np.where(depth > 0, 1.0 / np.where(depth > 0, depth, 1), np.nan).astype(np.float32)
    ok = np.isfinite(inv)
    lo, hi = inv[ok].min(), inv[ok].max()
    expected = np.zeros_like(gray)
    expected[ok] = ((inv[ok] - lo) / (hi - lo) * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(gray, expected)
    near = np.unravel_index(np.argmin(np.where(depth > 0, depth, np.inf)), depth.shape)
    assert gray[near] == 255
    colour = np.asarray(Image.open(ctx.path("_color.png")))
    np.testing.assert_array_equal(colour[near], get_lut("inferno")[255])
    np.testing.assert_array_equal(colour[0, 0], 0)  # invalid pixel
    _, meta = read_png16(ctx.path("_depth16.png"))
    assert meta["kind"] == "metric_depth" and meta["unit"] == "m"


def test_ply_through_the_registry(tmp_path: Path, scene) -> None:
    plyfile = pytest.importorskip("plyfile")
    disp, rgb = scene
    depth = (2.0 + 0.1 * disp).astype(np.float32)
    metric = _result(depth, "metric_depth")
    ctx = OutputContext(metric, rgb, tmp_path / "p", options={"ply": {"fx": 20.0, "drop_flying": False}})
    written = outputs.write_outputs(ctx, parse_formats("ply"))
    assert written == [tmp_path / "p.ply"]
    vertices = plyfile.PlyData.read(str(written[0]))["vertex"]
    assert vertices.count == depth.size
    np.testing.assert_allclose(np.sort(vertices["z"]), np.sort(depth.ravel()), rtol=1e-6)
    with pytest.raises(ValueError):  # relative disparity has no metric geometry
        outputs.write_outputs(OutputContext(_result(disp), rgb, tmp_path / "r"), parse_formats("ply"))
    assert not (tmp_path / "r.ply").exists()


def test_size_mismatch_is_an_error(tmp_path: Path, scene) -> None:
    disp, rgb = scene
    with pytest.raises(ValueError, match="sizes differ"):
        outputs.write_outputs(OutputContext(_result(disp), rgb[:-1], tmp_path / "x"), parse_formats("npy"))
