"""Calibration: recovery of a known scale/shift under noise and gross outliers, scale-only exactness, anchors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depthany.align import fit_scale_shift
from depthany.geometry import (
    Anchors,
    Calibration,
    CalibrationError,
    CalibrationWarning,
    anchors_from_sparse,
    fit_calibration,
    iter_apply,
    read_points_csv,
    read_sparse_depth,
    robust_disparity_fit,
)
from depthany.result import DepthResult

H, W = 60, 80
S0, T0 = 0.35, 0.02  # true relation 1/depth = S0 * d + T0


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A relative disparity map that is *linear* in (u, v) (bilinear sampling is then exact) and its depth."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    d = 0.2 + 0.02 * u + 0.03 * v  # 0.2 .. 3.57
    z = 1.0 / (S0 * d + T0)  # about 0.8 .. 11 m
    return d, z


def _noisy_anchors(rng: np.random.Generator, n: int, noise: float, outlier_frac: float
                   ) -> tuple[Anchors, np.ndarray]:
    _, z = _scene()
    u = rng.integers(0, W, n).astype(np.float64)
    v = rng.integers(0, H, n).astype(np.float64)
    depth = z[v.astype(int), u.astype(int)] * (1 + noise * rng.standard_normal(n))
    bad = rng.random(n) < outlier_frac
    # gross errors: wrong by a factor 1.5..4 either way (LiDAR hitting the wrong surface, a mis-clicked pixel)
    factor = rng.uniform(1.5, 4.0, n) ** rng.choice([-1, 1], n)
    depth[bad] *= factor[bad]
    return Anchors(u, v, depth, "synthetic"), bad


@pytest.mark.parametrize("seed,outlier_frac", [(0, 0.2), (1, 0.3), (2, 0.25)])
def test_recovers_scale_shift_under_noise_and_outliers(seed: int, outlier_frac: float) -> None:
    rng = np.random.default_rng(seed)
    d, z = _scene()
    anchors, bad = _noisy_anchors(rng, 80, noise=0.02, outlier_frac=outlier_frac)
    cal, res = fit_calibration(d, anchors, inlier_tol=0.1)
    assert cal.mode == "scale_shift"
    assert cal.scale == pytest.approx(S0, rel=0.05)
    assert cal.shift == pytest.approx(T0, abs=0.015)
    depth = cal.apply(d)
    rel = np.abs(depth / z - 1)
    assert np.median(rel) < 0.015 and rel.max() < 0.05
    # every gross outlier is rejected; most good points are kept
    assert not np.any(res.inlier & bad)
    assert res.inlier[~bad].mean() > 0.9
    assert cal.inliers == int(res.inlier.sum()) and cal.n_points == 80
    assert cal.residuals["abs_rel_median"] < 0.03 and cal.residuals["abs_rel_max"] <= 0.1
    # plain least squares on all points is badly off: the robust step is what recovers the truth
    s_ls, t_ls = fit_scale_shift(d[anchors.v.astype(int), anchors.u.astype(int)], 1 / anchors.depth)
    depth_ls = 1 / np.clip(s_ls * d + t_ls, 1e-6, None)
    assert np.median(np.abs(depth_ls / z - 1)) > 3 * np.median(rel)


def test_two_exact_points_and_determinism(rng: np.random.Generator) -> None:
    d, z = _scene()
    pts = [(5, 7, z[7, 5]), (70, 50, z[50, 70])]
    cal, _ = fit_calibration(d, pts)
    assert (cal.scale, cal.shift) == (pytest.approx(S0, rel=1e-9), pytest.approx(T0, abs=1e-9))
    assert any("too little redundancy" in n for n in cal.notes)
    anchors, _ = _noisy_anchors(rng, 300, 0.02, 0.25)
    a, _ = fit_calibration(d, anchors, seed=3, max_trials=200)
    b, _ = fit_calibration(d, anchors, seed=3, max_trials=200)
    assert (a.scale, a.shift, a.inliers) == (b.scale, b.shift, b.inliers)


def test_scale_only_from_one_point_is_exact_at_the_point() -> None:
    d, z = _scene()
    u, v = 33, 21
    cal, res = fit_calibration(d, [(u, v, z[v, u])])
    assert cal.mode == "scale" and cal.shift == 0.0
    assert cal.scale == pytest.approx(1.0 / (z[v, u] * d[v, u]), rel=1e-14)
    assert cal.apply(d)[v, u] == pytest.approx(z[v, u], rel=1e-6)  # float32 output
    assert res.predicted[0] == pytest.approx(z[v, u], rel=1e-14)
    assert any("shift assumed 0" in n for n in cal.notes)
    # with a true shift of 0 the whole map is recovered exactly from that one point
    z0 = 1.0 / (S0 * d)
    cal0, _ = fit_calibration(d, [(u, v, z0[v, u])])
    np.testing.assert_allclose(cal0.apply(d), z0, rtol=1e-6)


def test_scale_only_with_outliers() -> None:
    rng = np.random.default_rng(5)
    d = _scene()[0]
    z0 = 1.0 / (S0 * d)
    anchors = Anchors(rng.integers(0, W, 40).astype(float), rng.integers(0, H, 40).astype(float), np.ones(40))
    depth = z0[anchors.v.astype(int), anchors.u.astype(int)] * (1 + 0.01 * rng.standard_normal(40))
    depth[:12] *= 2.5  # 30 % outliers
    cal, res = fit_calibration(d, Anchors(anchors.u, anchors.v, depth), mode="scale")
    assert cal.scale == pytest.approx(S0, rel=0.01)
    assert not res.inlier[:12].any() and res.inlier[12:].all()


def test_sparse_map_at_lower_resolution_maps_pixel_centres() -> None:
    """A 20x15 depth map of the same view (like ARKit's depth next to the photo): noise-free, so the fit must be
    exact, which only happens when sparse pixel centres are mapped with (j + 0.5) * W / w - 0.5."""
    d, _ = _scene()
    h, w = 15, 20
    jj, ii = np.meshgrid(np.arange(w), np.arange(h))
    u = (jj + 0.5) * W / w - 0.5
    v = (ii + 0.5) * H / h - 0.5
    sparse = 1.0 / (S0 * (0.2 + 0.02 * u + 0.03 * v) + T0)
    sparse[::2, ::3] = 0.0  # unknown pixels
    cal, res = fit_calibration(d, sparse)
    assert cal.n_points == int((sparse > 0).sum())
    assert (cal.scale, cal.shift) == (pytest.approx(S0, rel=1e-9), pytest.approx(T0, abs=1e-9))
    np.testing.assert_allclose(res.predicted, res.depth, rtol=1e-9)
    with pytest.raises(ValueError, match="aspect ratio"):
        anchors_from_sparse(np.ones((10, 10)), (H, W))


def test_metric_prediction_correction() -> None:
    _, z = _scene()
    pred = DepthResult((1.15 * z).astype(np.float32), "metric_depth", "da2-metric-indoor-small", (H, W), (H, W))
    pts = [(10, 10, z[10, 10]), (60, 40, z[40, 60]), (30, 50, z[50, 30])]
    cal, _ = fit_calibration(pred, pts, mode="scale")
    assert cal.input_kind == "metric_depth" and cal.scale == pytest.approx(1.15, rel=1e-6)
    out = cal.apply_result(pred)
    assert out.kind == "metric_depth" and out.meta["calibration"]["scale"] == cal.scale
    np.testing.assert_allclose(out.values, z, rtol=1e-5)


def test_relative_depth_takes_a_scale_from_one_distance() -> None:
    """Depth Anything 3's relative depth is depth up to one scale: a single known distance makes it metres."""
    _, z = _scene()
    pred = DepthResult((z / 3.7).astype(np.float32), "relative_depth", "da3-mono-large", (H, W), (H, W))
    cal, _ = fit_calibration(pred, [(20, 30, z[30, 20])], mode="scale")
    assert cal.input_kind == "relative_depth" and cal.scale == pytest.approx(1 / 3.7, rel=1e-6)
    out = cal.apply_result(pred)
    assert out.kind == "metric_depth"
    np.testing.assert_allclose(out.values, z, rtol=1e-5)


def test_apply_result_guards_and_non_positive_depth() -> None:
    d, _ = _scene()
    rel = DepthResult(d.astype(np.float32), "relative_disparity", "da2-small", (H, W), (H, W))
    cal = Calibration("scale_shift", 0.5, -0.1, 2, 2, model="da2-small")
    d2 = d.copy()
    d2[:3, :] = 0.0  # sky: relative models output 0 there
    with pytest.warns(CalibrationWarning, match="240 of 4800"):
        depth = cal.apply(d2)
    assert np.all(depth[:3] == 0) and np.all(depth[3:] > 0)
    assert np.isnan(cal.apply(d2, fill=np.nan, warn=False)[0, 0])
    with pytest.warns(CalibrationWarning, match="da2-large"):
        cal.apply_result(DepthResult(d.astype(np.float32), "relative_disparity", "da2-large", (H, W), (H, W)))
    with pytest.raises(ValueError, match="fitted on relative_disparity"):
        cal.apply_result(DepthResult(d.astype(np.float32), "metric_depth", "x", (H, W), (H, W)))
    assert cal.apply_result(rel).kind == "metric_depth"
    frames = [d, 2 * d, d2]
    with pytest.warns(CalibrationWarning, match="across the stream"):
        for got, frame in zip(iter_apply(cal, frames), frames):
            assert np.array_equal(got, cal.apply(frame, warn=False))


def test_fit_warns_about_pixels_without_depth() -> None:
    d, _ = _scene()
    z = 1.0 / (S0 * d - 0.05)  # a negative true shift: d = 0 (sky) lies beyond the horizon, no depth
    d = d.copy()
    d[0, :] = 0.0
    pts = [(5, 7, z[7, 5]), (70, 50, z[50, 70]), (40, 30, z[30, 40])]
    with pytest.warns(CalibrationWarning, match="no depth"):
        cal, _ = fit_calibration(d, pts)
    assert cal.shift == pytest.approx(-0.05, abs=1e-9)
    assert cal.residuals["invalid_fraction"] == pytest.approx(W / (W * H))
    assert np.count_nonzero(cal.apply(d, warn=False) == 0) == W


def test_degenerate_and_bad_anchors() -> None:
    d, z = _scene()
    flat = np.ones((H, W))
    with pytest.raises(CalibrationError, match="same predicted disparity"):
        fit_calibration(flat, [(1, 1, 2.0), (5, 5, 3.0)], mode="scale_shift")
    with pytest.raises(ValueError, match="outside the 80x60 image"):
        fit_calibration(d, [(1, 1, 2.0), (85, 5, 3.0)])
    with pytest.raises(ValueError, match="positive depth"):
        Anchors.from_points([(1, 1, -2.0)])
    with pytest.raises(CalibrationError, match="scale is <= 0|every candidate"):
        robust_disparity_fit(np.array([1.0, 2.0]), np.array([1.0, 0.5]) ** -1)  # nearer where d is smaller
    with pytest.raises(ValueError, match="mode"):
        fit_calibration(d, [(1, 1, 2.0)], mode="affine")


def test_json_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    d, _ = _scene()
    anchors, _ = _noisy_anchors(rng, 30, 0.01, 0.2)
    cal, _ = fit_calibration(d, anchors, model="da2-small")
    p = cal.save(tmp_path / "cal.json")
    assert json.loads(p.read_text())["format"] == "depthany-calibration"
    back = Calibration.load(p)
    assert back == cal
    assert np.array_equal(back.apply(d), cal.apply(d))
    assert "inliers" in cal.report() and "1/depth =" in cal.report()
    (tmp_path / "bad.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="bad.json.*not a depthany calibration"):
        Calibration.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no such calibration"):
        Calibration.load(tmp_path / "missing.json")


def test_read_points_csv(tmp_path: Path) -> None:
    p = tmp_path / "pts.csv"
    p.write_text("# measured with a tape\nu,v,depth_m\n10,20,1.5\n 30.5 , 40 , 2.25\n\n")
    a = read_points_csv(p)
    assert a.u.tolist() == [10, 30.5] and a.v.tolist() == [20, 40] and a.depth.tolist() == [1.5, 2.25]
    p.write_text("depth,x,y\n1.5,10,20\n")
    assert read_points_csv(p).u.tolist() == [10.0]
    p.write_text("10,20,1.5\n")
    assert len(read_points_csv(p)) == 1
    p.write_text("u,v,depth_m\n10,20,1.5\n10,abc,2\n")
    with pytest.raises(ValueError, match=r"pts.csv:3: v 'abc'"):
        read_points_csv(p)
    p.write_text("u,v,depth_m\n10,20,0\n")
    with pytest.raises(ValueError, match=r"pts.csv:2: depth_m must be positive"):
        read_points_csv(p)
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="no column named"):
        read_points_csv(p)


def test_read_sparse_depth_png16_and_npy(tmp_path: Path) -> None:
    mm = np.zeros((6, 8), np.uint16)
    mm[2, 3] = 1500
    mm[4, 5] = 65535
    Image.fromarray(mm).save(tmp_path / "s.png")
    m = read_sparse_depth(tmp_path / "s.png")
    assert m[2, 3] == pytest.approx(1.5) and m[4, 5] == pytest.approx(65.535) and m[0, 0] == 0
    assert read_sparse_depth(tmp_path / "s.png", depth_scale=1 / 256)[2, 3] == pytest.approx(1500 / 256)
    np.save(tmp_path / "s.npy", np.where(mm > 0, mm / 1000.0, np.nan).astype(np.float32))
    n = read_sparse_depth(tmp_path / "s.npy")
    assert n[2, 3] == pytest.approx(1.5) and n[0, 0] == 0.0
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / "g.png")
    with pytest.raises(ValueError, match="g.png.*not a depth map"):
        read_sparse_depth(tmp_path / "g.png")
