"""Back-projection against closed-form pinhole geometry; flying pixels; refusal of relative disparity."""

from __future__ import annotations

import numpy as np
import pytest

from depthany.geometry import (
    Intrinsics,
    backproject,
    depth_to_points,
    flying_pixel_mask,
    project,
    valid_depth_mask,
)
from depthany.result import DepthResult

K = Intrinsics(fx=200.0, fy=180.0, cx=40.5, cy=29.25, width=80, height=60)


def test_fronto_parallel_plane() -> None:
    d = 3.5
    pts = backproject(np.full((60, 80), d, np.float32), K)
    assert pts.shape == (60, 80, 3) and pts.dtype == np.float32
    assert np.all(pts[..., 2] == np.float32(d))
    # x = (u - cx) / fx * z, y = (v - cy) / fy * z, spot-checked at explicit pixels
    for v, u in [(0, 0), (29, 40), (59, 79), (10, 70)]:
        np.testing.assert_allclose(pts[v, u], [(u - 40.5) / 200 * d, (v - 29.25) / 180 * d, d], rtol=1e-6)
    # the plane's spacing is z / f per pixel
    np.testing.assert_allclose(np.diff(pts[..., 0], axis=1), d / 200, rtol=1e-5)
    np.testing.assert_allclose(np.diff(pts[..., 1], axis=0), d / 180, rtol=1e-5)


def test_tilted_plane_is_planar_in_3d(rng: np.random.Generator) -> None:
    """Depth of the plane n . X = c rendered by ray casting back-projects onto that plane."""
    n = np.array([0.1, -0.5, 1.0])
    c = 4.0
    v, u = np.mgrid[0:60, 0:80].astype(np.float64)
    rays = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u)], -1)
    z = c / (rays @ n)  # z-depth where the ray hits the plane
    pts = backproject(z, K).astype(np.float64)
    np.testing.assert_allclose(pts @ n, c, rtol=1e-6)


def test_project_backproject_round_trip(rng: np.random.Generator) -> None:
    pts = np.column_stack([rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50), rng.uniform(0.5, 9, 50)])
    uv = project(pts, K)
    # a known point: on the optical axis -> principal point
    assert project(np.array([0.0, 0.0, 2.0]), K).tolist() == [40.5, 29.25]
    # place each point's depth into a map at integer pixels and back-project: same point
    ui, vi = np.round(uv).astype(int).T
    inside = (ui >= 0) & (ui < 80) & (vi >= 0) & (vi < 60)
    _, first = np.unique(vi * 80 + ui, return_index=True)  # one point per pixel
    inside &= np.isin(np.arange(50), first)
    assert inside.sum() > 10
    depth = np.zeros((60, 80))
    # use points moved exactly onto pixel centres so the round trip is exact
    snapped = np.column_stack([(ui - K.cx) / K.fx * pts[:, 2], (vi - K.cy) / K.fy * pts[:, 2], pts[:, 2]])
    depth[vi[inside], ui[inside]] = pts[inside, 2]
    grid = backproject(depth, K)
    np.testing.assert_allclose(grid[vi[inside], ui[inside]], snapped[inside], rtol=1e-6)
    np.testing.assert_allclose(project(snapped[inside], K), np.column_stack([ui, vi])[inside], atol=1e-9)
    with pytest.raises(ValueError, match="z <= 0"):
        project(np.array([[0.0, 0.0, -1.0]]), K)


def test_relative_disparity_is_refused_metric_passes() -> None:
    rel = DepthResult(np.ones((60, 80), np.float32), "relative_disparity", "da2-small", (60, 80), (518, 686))
    with pytest.raises(ValueError, match="relative disparity.*calibrate"):
        depth_to_points(rel, K)
    with pytest.raises(ValueError, match="calibrate"):
        backproject(rel, K)
    met = DepthResult(np.full((60, 80), 2.0, np.float32), "metric_depth", "da2-metric-indoor-small", (60, 80),
                      (518, 686))
    cloud = depth_to_points(met, K, drop_flying=False)
    assert cloud.xyz.shape == (4800, 3) and np.all(cloud.xyz[:, 2] == 2.0)


def test_size_mismatch_and_bad_mask_are_named() -> None:
    with pytest.raises(ValueError, match="intrinsics are for 80x60"):
        backproject(np.ones((30, 40)), K)
    with pytest.raises(ValueError, match="mask"):
        depth_to_points(np.ones((60, 80)), K, mask=np.ones((60, 80), np.uint8))


def test_invalid_pixels_and_mask() -> None:
    z = np.full((60, 80), 5.0)
    z[0, :10] = np.nan
    z[1, :5] = -1.0
    z[2, :3] = 0.0
    z[3, :7] = 85.0  # sky at a saturated outdoor model's far end
    mask = np.ones((60, 80), bool)
    mask[50:, :] = False
    ok = valid_depth_mask(z, max_depth=80.0, mask=mask)
    assert int((~ok).sum()) == 10 + 5 + 3 + 7 + 10 * 80
    cloud = depth_to_points(z, K, max_depth=80.0, mask=mask, drop_flying=False)
    assert cloud.xyz.shape[0] == int(ok.sum()) and cloud.n_invalid == int((~ok).sum())
    assert np.all(np.isfinite(cloud.xyz))
    # points are listed in row-major order of the kept pixels
    v, u = np.nonzero(ok)
    np.testing.assert_allclose(cloud.xyz[:, 0], (u - K.cx) / K.fx * 5.0, rtol=1e-6)


def test_flying_pixels_on_a_step_are_removed_flat_regions_kept() -> None:
    z = np.full((60, 80), 2.0)
    z[:, 40:] = 6.0  # a wall 4 m behind an object: a depth step between columns 39 and 40
    z[:, 40] = 4.0  # one interpolated "flying" column in between, as bilinear upsampling produces
    fly = flying_pixel_mask(z)
    assert fly[:, 39:42].all()  # the flying column and both edges of the step
    assert not fly[:, :39].any() and not fly[:, 42:].any()  # flat parts stay
    cloud = depth_to_points(z, K)
    assert cloud.n_flying == 60 * 3
    assert not np.any((cloud.xyz[:, 2] > 2.0) & (cloud.xyz[:, 2] < 6.0))  # nothing left floating in between


def test_flying_pixels_keep_gentle_slopes_and_respect_threshold() -> None:
    v, u = np.mgrid[0:60, 0:80].astype(np.float64)
    ramp = 3.0 + 0.01 * u  # 1 cm per pixel at 3 m: ~0.7 % over a 3x3 window
    assert not flying_pixel_mask(ramp).any()
    step = np.where(u < 40, 3.0, 3.09)  # a 3 % step: below the 5 % default
    assert not flying_pixel_mask(step).any()
    assert flying_pixel_mask(step, rtol=0.02)[:, 39:41].all()
    # invalid neighbours do not count: a valid pixel next to NaN/0 is not flagged
    holes = np.full((10, 10), 2.0)
    holes[5, 5] = np.nan
    holes[2, 2] = 0.0
    assert not flying_pixel_mask(holes).any()
    with pytest.raises(ValueError, match="rtol"):
        flying_pixel_mask(ramp, rtol=0)
