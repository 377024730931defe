"""Synthetic worlds, geometry: rendered depth against closed forms computed independently in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depthany.synth import Box, Camera, Cylinder, Plane, Sphere
from depthany.synth.raycast import trace


def _grid(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (u, v), each (H, W) float64."""
    v, u = np.mgrid[0:cam.height, 0:cam.width].astype(np.float64)
    return u, v


def _front_camera(w: int = 64, h: int = 48, f: float = 50.0, cx: float | None = None,
                  cy: float | None = None) -> Camera:
    """At the origin, looking along world +y: camera x = world x, camera y = world -z."""
    return Camera(w, h, f, f * 1.01, (w - 1) / 2 if cx is None else cx, (h - 1) / 2 if cy is None else cy)


def _front_rays(cam: Camera) -> np.ndarray:
    """(3, H, W) float64 world directions for ``_front_camera`` (camera-frame z = 1), written out by hand."""
    u, v = _grid(cam)
    return np.stack([(u - cam.cx) / cam.fx, np.ones_like(u), -(v - cam.cy) / cam.fy])


@pytest.mark.parametrize("dist", [0.7, 3.0, 41.5])
def test_fronto_parallel_plane_has_constant_depth(dist: float) -> None:
    cam = _front_camera(cx=20.3, cy=30.1)  # off-centre principal point: depth must still be exactly dist
    depth, ids = trace(cam, [Plane((0, 1, 0), dist)])
    assert (ids == 0).all()
    np.testing.assert_array_equal(depth, np.float32(dist))


def test_plane_perpendicular_to_a_rotated_optical_axis() -> None:
    cam = Camera(40, 30, 35.0, 35.0, 19.5, 14.5, (1.0, -2.0, 1.5), yaw=0.7, pitch=-0.3, roll=0.2)
    fwd = cam.rotation[:, 2]
    offset = float(fwd @ np.asarray(cam.position)) + 5.0
    depth, _ = trace(cam, [Plane(tuple(fwd), offset)])
    np.testing.assert_allclose(depth, 5.0, rtol=2e-6)


@pytest.mark.parametrize("pitch", [-0.1, -0.45, -1.2])
def test_ground_plane_depth_matches_closed_form(pitch: float) -> None:
    h, f = 1.7, 40.0
    cam = Camera(64, 48, f, f, 31.5, 23.5, (0.0, 0.0, h), yaw=0.4, pitch=pitch)
    depth, ids = trace(cam, [Plane((0, 0, 1), 0.0)])
    _, v = _grid(cam)
    # A camera pitched by p sees the ground z = 0 at planar depth h / (cos p (v - cy)/fy - sin p);
    # yaw does not matter for a horizontal plane. Rows with a negative denominator look above the horizon.
    denom = math.cos(pitch) * (v - cam.cy) / cam.fy - math.sin(pitch)
    below, above = denom > 1e-3, denom < -1e-3
    assert below.any()
    np.testing.assert_allclose(depth[below], (h / denom)[below], rtol=1e-5)
    assert np.isinf(depth[above]).all() and (ids[above] == -1).all()


def test_sphere_silhouette_and_depth_match_closed_form() -> None:
    cam = _front_camera(80, 60, 60.0, cx=41.0, cy=28.0)
    c, r = np.array([0.6, 6.0, -0.4]), 1.3
    depth, ids = trace(cam, [Sphere(tuple(c), r)])
    d = _front_rays(cam)
    dd = (d * d).sum(0)
    dc = np.tensordot(c, d, axes=1)
    disc = dc**2 - dd * (c @ c - r * r)  # ray-sphere quadratic in float64
    inside = disc >= 0
    # Silhouette: identical pixel sets, up to pixels whose centre grazes the rim within float32 rounding.
    mismatch = inside != (ids == 0)
    assert not (mismatch & (np.abs(disc) > 1e-4 * dd * r * r)).any()
    assert inside.sum() > 200
    t = (dc - np.sqrt(np.maximum(disc, 0))) / dd  # nearest root = planar depth (camera-frame z of d is 1)
    sure = inside & (disc > 1e-3 * dd * r * r)
    np.testing.assert_allclose(depth[sure], t[sure], rtol=2e-6)
    assert np.isinf(depth[~inside & ~mismatch]).all()


def test_sphere_far_away_keeps_float32_accuracy() -> None:
    # The closest-approach form keeps small far spheres accurate where the raw quadratic cancels badly.
    cam = _front_camera(64, 48, 800.0)
    depth, ids = trace(cam, [Sphere((0.0, 150.0, 0.0), 0.5)])
    d = _front_rays(cam)
    dd = (d * d).sum(0)
    disc = (150.0 * d[1]) ** 2 - dd * (150.0**2 - 0.25)
    sure = disc > 1e-2 * dd * 0.25
    t = (150.0 * d[1] - np.sqrt(np.maximum(disc, 0))) / dd
    assert sure.sum() > 20
    np.testing.assert_allclose(depth[sure], t[sure], rtol=3e-6)


def test_box_front_face_depth_and_extent() -> None:
    cam = _front_camera(64, 48, 40.0)
    dist, hx, hz = 4.0, 1.0, 0.5
    box = Box((0.0, dist + 0.8, 0.0), (hx, 0.8, hz))
    depth, ids = trace(cam, [box])
    u, v = _grid(cam)
    x, z = (u - cam.cx) / cam.fx * dist, -(v - cam.cy) / cam.fy * dist  # where each ray meets y = dist
    on_face = (np.abs(x) < hx - 1e-3) & (np.abs(z) < hz - 1e-3)
    off_face = (np.abs(x) > hx + 1e-3) | (np.abs(z) > hz + 1e-3)
    np.testing.assert_array_equal(depth[on_face], np.float32(dist))
    assert np.isinf(depth[off_face]).all()  # beyond the front face's edges the box is out of sight
    p = np.stack([x[on_face], np.full(on_face.sum(), dist), z[on_face]]).astype(np.float32)
    np.testing.assert_allclose(box.normal_at(p), np.array([[0], [-1], [0]]) * np.ones((1, p.shape[1])), atol=1e-6)


def test_rotated_box_matches_slab_intersection_in_world_frame() -> None:
    cam = Camera(48, 40, 45.0, 45.0, 23.5, 19.5, (0.3, -1.0, 1.2), yaw=0.1, pitch=-0.2, roll=0.05)
    center, half, yaw = np.array([0.5, 5.0, 0.8]), np.array([0.9, 0.4, 0.7]), 0.6
    depth, _ = trace(cam, [Box(tuple(center), tuple(half), yaw)])
    d = cam.ray_directions(np.float64).reshape(3, -1)
    o = np.asarray(cam.position)
    axes = [np.array([math.cos(yaw), math.sin(yaw), 0.0]), np.array([-math.sin(yaw), math.cos(yaw), 0.0]),
            np.array([0.0, 0.0, 1.0])]
    lo, hi = np.full(d.shape[1], -np.inf), np.full(d.shape[1], np.inf)
    for a, h in zip(axes, half):  # Kay-Kajiya: intersect the three slabs |a . (x - c)| <= h
        s0, ds = a @ (o - center), a @ d
        t1, t2 = (-h - s0) / ds, (h - s0) / ds
        lo, hi = np.maximum(lo, np.minimum(t1, t2)), np.minimum(hi, np.maximum(t1, t2))
    hit = (lo <= hi) & (hi > 0)
    margin = hi - lo > 1e-3  # skip rays that only graze an edge
    np.testing.assert_allclose(depth.reshape(-1)[hit & margin], lo[hit & margin], rtol=1e-5)
    assert np.isinf(depth.reshape(-1)[~hit]).all()
    assert (hit & margin).sum() > 100


def test_cylinder_side_and_cap_depth() -> None:
    # From the side: the wall's nearest root; from straight above: the top cap at constant depth.
    cam = _front_camera(64, 48, 50.0)
    cyl = Cylinder((0.2, 3.0), -0.5, 0.4, 0.6)
    depth, ids = trace(cam, [cyl])
    d = _front_rays(cam)
    a = d[0] ** 2 + d[1] ** 2
    b = 0.2 * d[0] + 3.0 * d[1]
    disc = b * b - a * (0.2**2 + 3.0**2 - 0.36)
    t = (b - np.sqrt(np.maximum(disc, 0))) / a
    z = t * d[2]
    side = (disc > 1e-3 * a) & (z > -0.5 + 1e-3) & (z < 0.4 - 1e-3)
    assert side.sum() > 100
    np.testing.assert_allclose(depth[side], t[side], rtol=2e-6)
    top = Camera(32, 32, 30.0, 30.0, 15.5, 15.5, (0.2, 3.0, 5.0), pitch=-math.pi / 2)
    depth_top, _ = trace(top, [cyl])
    u, v = _grid(top)
    on_cap = ((u - 15.5) ** 2 + (v - 15.5) ** 2) * (4.6 / 30.0) ** 2 < 0.6**2 - 1e-3
    np.testing.assert_allclose(depth_top[on_cap], 4.6, rtol=1e-6)


def test_pixel_ray_point_pixel_round_trip() -> None:
    rng = np.random.default_rng(0)
    cam = Camera(320, 240, 250.0, 251.0, 161.2, 118.7, (2.0, -3.0, 1.4), yaw=-2.1, pitch=0.3, roll=-0.08)
    u, v, z = rng.uniform(-0.5, 319.5, 500), rng.uniform(-0.5, 239.5, 500), rng.uniform(0.1, 80.0, 500)
    pts = cam.unproject(u, v, z)
    u2, v2, z2 = cam.project(pts)
    np.testing.assert_allclose(np.stack([u2, v2, z2]), np.stack([u, v, z]), rtol=1e-9, atol=1e-9)
    # The renderer's ray through pixel centre (u, v) is ((u - cx)/fx, (v - cy)/fy, 1) in the camera frame.
    d = cam.ray_directions(np.float64)
    uu, vv = _grid(cam)
    cam_d = np.einsum("ji,jhw->ihw", cam.rotation, d)
    np.testing.assert_allclose(cam_d, np.stack([(uu - cam.cx) / cam.fx, (vv - cam.cy) / cam.fy,
                                                np.ones_like(uu)]), atol=1e-12)
    np.testing.assert_allclose(cam.rotation.T @ cam.rotation, np.eye(3), atol=1e-12)


def test_rendered_depth_unprojects_onto_the_surface() -> None:
    cam = Camera(60, 40, 45.0, 45.0, 30.2, 19.1, (0.5, 0.2, 1.6), yaw=0.9, pitch=-0.35, roll=0.1)
    n = np.array([0.2, -0.1, 1.0])
    n /= np.linalg.norm(n)
    plane = Plane(tuple(n), -0.3)
    depth, _ = trace(cam, [plane])
    u, v = _grid(cam)
    ok = np.isfinite(depth) & (depth < 30)
    pts = cam.unproject(u[ok], v[ok], depth[ok].astype(np.float64))
    np.testing.assert_allclose(n @ pts, -0.3, atol=2e-5 * depth[ok].max())
    u2, v2, _ = cam.project(pts)
    np.testing.assert_allclose(u2, u[ok], atol=1e-3)
    np.testing.assert_allclose(v2, v[ok], atol=1e-3)


def test_occlusion_keeps_the_nearest_surface() -> None:
    cam = _front_camera(64, 48, 40.0)
    shapes = [Plane((0, 1, 0), 10.0), Sphere((0.0, 5.0, 0.0), 1.0), Box((0.0, 3.0, 0.0), (0.2, 0.2, 0.2))]
    depth, ids = trace(cam, shapes)
    centre = (23, 31)  # pixel nearest the optical axis: box in front of sphere in front of wall
    assert ids[centre] == 2 and depth[centre] == pytest.approx(2.8, rel=1e-6)
    assert set(np.unique(ids)) == {0, 1, 2}
    assert (depth[ids == 0] == np.float32(10.0)).all()


def test_screen_rect_never_culls_a_visible_pixel() -> None:
    rng = np.random.default_rng(3)
    cam = Camera(50, 40, 30.0, 30.0, 24.5, 19.5, (0.0, 0.0, 1.0), yaw=0.3, pitch=-0.1)
    d = cam.ray_directions()
    for _ in range(40):
        s = Sphere(tuple(rng.uniform([-4, 0.5, -2], [4, 8, 3])), float(rng.uniform(0.1, 2.0)))
        t_all = s.intersect(np.asarray(cam.position, np.float32), d, 1e-4)
        rect = cam.screen_rect(*s.bounds())  # type: ignore[misc]
        inside = np.zeros(t_all.shape, bool)
        if rect is not None:
            inside[rect[0]:rect[1], rect[2]:rect[3]] = True
        assert not (np.isfinite(t_all) & ~inside).any()


def test_shape_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="radius"):
        Sphere((0, 0, 0), 0.0)
    with pytest.raises(ValueError, match="half extents"):
        Box((0, 0, 0), (1, 0, 1))
    with pytest.raises(ValueError, match="z1 > z0"):
        Cylinder((0, 0), 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="normal"):
        Plane((0, 0, 0), 1.0)
    with pytest.raises(ValueError, match="focal"):
        Camera(10, 10, 0.0, 1.0, 4.5, 4.5)


def test_signed_distances() -> None:
    box = Box((1.0, 2.0, 3.0), (1.0, 0.5, 0.2), yaw=0.7)
    assert box.distance(np.array([1.0, 2.0, 3.0])) == pytest.approx(-0.2)
    assert box.distance(np.array([1.0, 2.0, 4.0])) == pytest.approx(0.8)
    corner = np.array([1.0, 2.0, 3.2]) + 1.0 * np.array([math.cos(0.7), math.sin(0.7), 0.0])
    assert box.distance(corner + np.array([0.0, 0.0, 0.3])) == pytest.approx(0.3)
    cyl = Cylinder((0.0, 0.0), 0.0, 2.0, 0.5)
    assert cyl.distance(np.array([1.5, 0.0, 1.0])) == pytest.approx(1.0)
    assert cyl.distance(np.array([1.5, 0.0, 3.0])) == pytest.approx(math.sqrt(2))
    assert cyl.distance(np.array([0.0, 0.0, 1.9])) == pytest.approx(-0.1)
    assert Sphere((0, 0, 0), 2.0).distance(np.array([0.0, 3.0, 0.0])) == pytest.approx(1.0)
    assert Plane((0, 0, 2), 1.0).distance(np.array([5.0, 5.0, -1.0])) == pytest.approx(2.0)
