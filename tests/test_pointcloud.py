"""PLY files read back with plyfile (an independent reader): exact coordinates and colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from plyfile import PlyData

from depthany.geometry import Intrinsics, IntrinsicsWarning
from depthany.geometry.pointcloud import write_ply, write_result_ply
from depthany.result import DepthResult


def _cloud(rng: np.random.Generator, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    xyz = rng.normal(0, 3, (n, 3)).astype(np.float32)
    xyz[0] = [1e-30, -3.4e38, 0.1]  # extremes of float32 survive both encodings
    rgb = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    return xyz, rgb


@pytest.mark.parametrize("ascii", [False, True])
def test_write_ply_round_trip(tmp_path: Path, rng: np.random.Generator, ascii: bool) -> None:
    xyz, rgb = _cloud(rng)
    p = write_ply(tmp_path / "c.ply", xyz, rgb, ascii=ascii, comments=["hello world"])
    ply = PlyData.read(str(p))
    assert ply.text == ascii
    if not ascii:
        assert ply.byte_order == "<"
    v = ply["vertex"]
    assert [prop.name for prop in v.properties] == ["x", "y", "z", "red", "green", "blue"]
    got = np.column_stack([v["x"], v["y"], v["z"]])
    assert np.array_equal(got.astype(np.float32), xyz)  # bit-exact, also through the ASCII text
    assert np.array_equal(np.column_stack([v["red"], v["green"], v["blue"]]), rgb)
    assert "hello world" in ply.comments
    assert [q.name for q in tmp_path.iterdir()] == ["c.ply"]  # no temporary file left behind


def test_binary_layout_is_15_bytes_per_point(tmp_path: Path, rng: np.random.Generator) -> None:
    xyz, rgb = _cloud(rng, 100)
    p = write_ply(tmp_path / "c.ply", xyz, rgb)
    data = p.read_bytes()
    body = data[data.index(b"end_header\n") + len(b"end_header\n"):]
    assert len(body) == 100 * 15
    assert np.frombuffer(body[:12], "<f4").tolist() == xyz[0].tolist()
    assert list(body[12:15]) == rgb[0].tolist()


def test_uncoloured_and_empty_clouds(tmp_path: Path) -> None:
    p = write_ply(tmp_path / "xyz.ply", np.array([[1.0, 2.0, 3.0]]))
    v = PlyData.read(str(p))["vertex"]
    assert [prop.name for prop in v.properties] == ["x", "y", "z"] and v["z"].tolist() == [3.0]
    for ascii in (False, True):
        e = write_ply(tmp_path / f"empty{ascii}.ply", np.zeros((0, 3)), np.zeros((0, 3), np.uint8), ascii=ascii)
        assert PlyData.read(str(e))["vertex"].count == 0


def test_write_ply_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xyz"):
        write_ply(tmp_path / "a.ply", np.zeros((4, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        write_ply(tmp_path / "a.ply", np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="uint8"):
        write_ply(tmp_path / "a.ply", np.zeros((1, 3)), np.zeros((1, 3), np.float32))
    assert not list(tmp_path.iterdir())


def _metric(h: int = 40, w: int = 50) -> DepthResult:
    z = np.full((h, w), 2.0, np.float32)
    z[:, w // 2:] = 5.0
    z[0, 0] = np.nan
    return DepthResult(z, "metric_depth", "da2-metric-indoor-small", (h, w), (518, 644))


def test_write_result_ply_geometry_colours_and_header(tmp_path: Path, rng: np.random.Generator) -> None:
    res = _metric()
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    k = Intrinsics(60.0, 60.0, 24.5, 19.5, 50, 40)
    p = write_result_ply(res, rgb, tmp_path / "r.ply", intrinsics=k, drop_flying=True)
    ply = PlyData.read(str(p))
    v = ply["vertex"]
    # expected: every valid pixel except the 2-column band around the step (columns 24 and 25)
    keep = np.isfinite(res.values)
    keep[:, 24:26] = False
    vv, uu = np.nonzero(keep)
    z = res.values[vv, uu].astype(np.float64)
    want = np.column_stack([(uu - 24.5) / 60 * z, (vv - 19.5) / 60 * z, z]).astype(np.float32)
    got = np.column_stack([v["x"], v["y"], v["z"]])
    assert np.array_equal(got, want)
    assert np.array_equal(np.column_stack([v["red"], v["green"], v["blue"]]), rgb[vv, uu])
    assert any("fx 60 fy 60 cx 24.5 cy 19.5" in c for c in ply.comments)
    assert "intrinsics_source user" in ply.comments


def test_write_result_ply_options(tmp_path: Path) -> None:
    res = _metric()
    with pytest.warns(IntrinsicsWarning):
        p = write_result_ply(res, None, tmp_path / "d.ply", drop_flying=False, ascii=True)
    assert PlyData.read(str(p))["vertex"].count == 40 * 50 - 1
    p = write_result_ply(res, None, tmp_path / "f.ply", fov=90.0, max_depth=4.0, drop_flying=False)
    v = PlyData.read(str(p))["vertex"]
    assert v.count == 40 * 25 - 1 and np.all(v["z"] == 2.0)
    # fov 90 across 50 px: fx = 25, so the left edge u = 0 at 2 m is at x = -24.5 / 25 * 2
    assert float(np.min(v["x"])) == pytest.approx(-24.5 / 25 * 2, rel=1e-6)
    p2 = write_result_ply(res, None, tmp_path / "fx.ply", fx=25.0, max_depth=4.0, drop_flying=False)
    v2 = PlyData.read(str(p2))["vertex"]
    assert np.array_equal(v2["x"], v["x"]) and "intrinsics_source user" in PlyData.read(str(p2)).comments
    with pytest.raises(ValueError, match="only one of"):
        write_result_ply(res, None, tmp_path / "no.ply", fx=25.0, fov=90.0)
    p3 = write_result_ply(res.values, None, tmp_path / "arr.ply", fx=25.0, max_depth=4.0, drop_flying=False)
    assert np.array_equal(PlyData.read(str(p3))["vertex"]["x"], v["x"])  # a bare array of metres works too
    mask = np.zeros((40, 50), bool)
    mask[10:20, 5:15] = True
    p = write_result_ply(res, None, tmp_path / "m.ply", fov=90.0, mask=mask)
    assert PlyData.read(str(p))["vertex"].count == 100


def test_write_result_ply_refuses_relative_and_bad_rgb(tmp_path: Path) -> None:
    rel = DepthResult(np.ones((40, 50), np.float32), "relative_disparity", "da2-small", (40, 50), (518, 644))
    with pytest.raises(ValueError, match="relative disparity"):
        write_result_ply(rel, None, tmp_path / "x.ply", fov=60.0)
    with pytest.raises(ValueError, match="rgb"):
        write_result_ply(_metric(), np.zeros((10, 10, 3), np.uint8), tmp_path / "x.ply", fov=60.0)
    assert not list(tmp_path.iterdir())
