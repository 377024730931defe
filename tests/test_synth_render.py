"""Synthetic worlds, appearance: shading and shadows against closed forms, sky validity, textures,
scene JSON round trip, determinism and texture-family restriction."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from depthany.synth import (
    Box,
    Camera,
    Environment,
    Light,
    Material,
    Plane,
    Scene,
    Sensor,
    Sphere,
    Texture,
    WorldConfig,
    make_scene,
    parse_families,
    render,
)
from depthany.synth.raycast import trace
from depthany.synth.shading import shade
from depthany.synth.textures import FAMILIES, filtered_square

GREY = (0.5, 0.5, 0.5)
AMBIENT = (0.2, 0.2, 0.2)


def _plain(color: tuple[float, float, float] = GREY) -> Material:
    return Material(Texture("plain", (color, color, color)))


def _radiance(scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = scene.camera.ray_directions()
    depth, ids = trace(scene.camera, scene.shapes, d)
    return shade(scene, depth, ids, d), depth, ids


def _ground_xy(cam: Camera, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0:cam.height, 0:cam.width].astype(np.float64)
    p = cam.unproject(u, v, np.where(np.isfinite(depth), depth, 1.0).astype(np.float64))
    return p[0], p[1]


def test_sun_shadow_under_a_floating_box_matches_closed_form() -> None:
    cam = Camera(64, 64, 40.0, 40.0, 31.5, 31.5, (0.0, 0.0, 2.0), pitch=-0.5)
    box = Box((0.0, 4.0, 1.25), (0.5, 0.5, 0.25), 0.0, 1)
    env = Environment(ambient=AMBIENT, ground_ambient=(0.05, 0.05, 0.05))
    scene = Scene(cam, [Plane((0, 0, 1), 0.0, 0), box], [_plain(), _plain()],
                  [Light("sun", (0.0, 0.0, 1.0), (1.0, 1.0, 1.0), 2.0)], env)
    rad, depth, ids = _radiance(scene)
    x, y = _ground_xy(cam, depth)
    ground = ids == 0
    shadowed = ground & (np.abs(x) < 0.45) & (np.abs(y - 4.0) < 0.45)
    lit = ground & ((np.abs(x) > 0.55) | (np.abs(y - 4.0) > 0.55))
    assert shadowed.sum() > 20 and lit.sum() > 200
    # Shadow: ambient only, albedo * ambient = 0.1. Lit: plus albedo * irradiance * cos(0) = 0.5 * 2 = 1.
    np.testing.assert_allclose(rad[:, shadowed], 0.1, rtol=1e-5)
    np.testing.assert_allclose(rad[:, lit], 1.1, rtol=1e-5)


def test_point_light_shadow_matches_segment_test() -> None:
    cam = Camera(64, 64, 40.0, 40.0, 31.5, 31.5, (0.0, 0.0, 2.5), pitch=-0.7)
    light_pos, centre, r = np.array([0.3, 3.5, 3.0]), np.array([0.0, 3.0, 1.2]), 0.4
    scene = Scene(cam, [Plane((0, 0, 1), 0.0, 0), Sphere(tuple(centre), r, 0)], [_plain()],
                  [Light("point", tuple(light_pos), (1.0, 1.0, 1.0), 5.0)],
                  Environment(ambient=AMBIENT, ground_ambient=AMBIENT))
    rad, depth, ids = _radiance(scene)
    x, y = _ground_xy(cam, depth)
    p = np.stack([x, y, np.zeros_like(x)])[:, ids == 0]
    # Independent float64 segment-sphere test from each ground point to the light.
    seg = light_pos[:, None] - p
    length = np.linalg.norm(seg, axis=0)
    s = np.clip(((centre[:, None] - p) * seg).sum(0) / length**2, 0, 1)
    miss = np.linalg.norm(p + s * seg - centre[:, None], axis=0)
    dark, bright = miss < r * 0.97, miss > r * 1.03
    assert dark.sum() > 20 and bright.sum() > 200
    values = rad[0][ids == 0]
    np.testing.assert_allclose(values[dark], 0.5 * 0.2, rtol=1e-5)
    expected = 0.5 * (0.2 + 5.0 / length**2 * (seg[2] / length))  # Lambert with inverse-square falloff
    np.testing.assert_allclose(values[bright], expected[bright], rtol=1e-4)


def test_shadowed_patch_is_darker_in_the_final_image() -> None:
    cam = Camera(64, 64, 40.0, 40.0, 31.5, 31.5, (0.0, 0.0, 2.0), pitch=-0.5)
    scene = Scene(cam, [Plane((0, 0, 1), 0.0, 0), Box((0.0, 4.0, 1.25), (0.5, 0.5, 0.25), 0.0, 0)], [_plain()],
                  [Light("sun", (0.0, 0.0, 1.0), (1.0, 1.0, 1.0), 2.0)], Environment(ambient=AMBIENT),
                  Sensor(noise=0.01, blur=0.5, vignette=0.2))
    view = render(scene)
    x, y = _ground_xy(cam, view.depth)
    ground = view.shape_id == 0
    shadowed = ground & (np.abs(x) < 0.4) & (np.abs(y - 4.0) < 0.4)
    lit = ground & (np.abs(x) > 0.7) & (np.abs(y - 4.0) < 0.4)
    assert view.rgb[shadowed].mean() + 60 < view.rgb[lit].mean()


def test_specular_highlight_adds_light_towards_the_mirror_direction() -> None:
    cam = Camera(64, 64, 40.0, 40.0, 31.5, 31.5, (0.0, 0.0, 1.0), pitch=-0.4)
    env = Environment(ambient=(0, 0, 0), ground_ambient=(0, 0, 0))
    sun = [Light("sun", (0.0, 0.8, 0.6), (1.0, 1.0, 1.0), 1.0)]  # in front: mirror direction reaches the camera
    glossy = Scene(cam, [Plane((0, 0, 1), 0.0, 0)], [Material(Texture("plain", (GREY,) * 3), 0.5, 50.0)], sun, env)
    matte = Scene(cam, [Plane((0, 0, 1), 0.0, 0)], [Material(Texture("plain", (GREY,) * 3), 0.0)], sun, env)
    g, _, ids = _radiance(glossy)
    m, _, _ = _radiance(matte)
    ground = ids == 0
    np.testing.assert_allclose(m[0][ground], 0.5 * 0.6, rtol=1e-5)  # Lambert: albedo * cos(incidence)
    assert g[0][ground].max() > 2 * m[0][ground].max()


def test_sky_is_invalid_and_ground_valid() -> None:
    cam = Camera(48, 48, 30.0, 30.0, 23.5, 23.5, (0.0, 0.0, 1.5), pitch=0.15)
    scene = Scene(cam, [Plane((0, 0, 1), 0.0, 0)], [_plain()], [Light("sun", (0.3, 0.2, 0.9))],
                  Environment(clouds=0.5), max_depth=1e6)
    view = render(scene)
    sky = view.shape_id == -1
    assert sky[0].all() and not sky[-1].any()
    assert np.isinf(view.depth[sky]).all() and not view.valid[sky].any()
    assert view.valid[~sky].all()


def test_depth_beyond_max_depth_is_rendered_but_invalid() -> None:
    cam = Camera(48, 48, 30.0, 30.0, 23.5, 23.5, (0.0, 0.0, 1.5), pitch=0.0)
    scene = Scene(cam, [Plane((0, 0, 1), 0.0, 0)], [_plain()], max_depth=20.0)
    view = render(scene)
    far = np.isfinite(view.depth) & (view.depth > 20.0)
    assert far.any() and not view.valid[far].any()
    assert view.valid[np.isfinite(view.depth) & (view.depth <= 20.0)].all()


@pytest.mark.parametrize("kind", ["indoor", "outdoor"])
def test_world_validity_follows_depth(kind: str) -> None:
    cfg = WorldConfig(width=64, height=48, kind=kind)
    for index in range(3):
        scene = make_scene(5, index, cfg)
        view = render(scene)
        assert view.rgb.shape == (48, 64, 3) and view.rgb.dtype == np.uint8
        assert view.depth.dtype == np.float32 and (view.depth[np.isfinite(view.depth)] > 0).all()
        np.testing.assert_array_equal(view.valid, np.isfinite(view.depth) & (view.depth <= cfg.depth_limit))
        np.testing.assert_array_equal(np.isinf(view.depth), view.shape_id == -1)
        if kind == "indoor":  # a closed room: every ray hits something
            assert view.valid.all()


def test_same_seed_same_bytes_and_json_round_trip() -> None:
    cfg = WorldConfig(40, 56, "mixed")
    a, b = render(make_scene(3, 11, cfg)), render(make_scene(3, 11, cfg))
    assert a.rgb.tobytes() == b.rgb.tobytes() and a.depth.tobytes() == b.depth.tobytes()
    other = render(make_scene(3, 12, cfg))
    assert other.rgb.tobytes() != a.rgb.tobytes()
    scene = make_scene(3, 11, cfg)
    again = Scene.from_dict(json.loads(json.dumps(scene.to_dict())))
    c = render(again)
    assert c.rgb.tobytes() == a.rgb.tobytes() and c.depth.tobytes() == a.depth.tobytes()
    assert again.to_dict() == scene.to_dict()


def test_texture_family_restriction_applies_to_every_surface() -> None:
    for families in [("checker",), ("noise", "stripes")]:
        cfg = WorldConfig(32, 32, "mixed", families)
        for index in range(6):
            used = {m.texture.family for m in make_scene(1, index, cfg).materials}
            assert used <= set(families), used


def test_filtered_square_is_the_box_filtered_wave() -> None:
    x = np.linspace(-3, 3, 61)
    for width, duty in [(0.05, 0.5), (0.3, 0.2), (1.7, 0.7)]:
        fine = np.linspace(-0.5, 0.5, 4001)[:, None] * width + x[None]  # dense samples in each window
        reference = ((fine - np.floor(fine)) < duty).mean(0)
        np.testing.assert_allclose(filtered_square(x, np.full_like(x, width), duty), reference, atol=2e-3)


@pytest.mark.parametrize("family", FAMILIES)
def test_texture_values_and_far_field_average(family: str) -> None:
    rng = np.random.default_rng(0)
    tex = Texture(family, ((0.9, 0.1, 0.1), (0.1, 0.1, 0.9), (0.2, 0.8, 0.2)), scale=0.5, angle=0.3, seed=4,
                  grime=0.2, duty=0.3 if family != "bricks" else 0.1)
    u, v = (rng.uniform(-20, 20, 4000).astype(np.float32) for _ in range(2))
    near = tex.evaluate(u, v, 0.001)
    assert near.shape == (3, 4000) and near.dtype == np.float32
    assert near.min() >= 0 and near.max() <= 1
    if family == "checker":  # seen from far away, a checker is the mean of its two colours
        far = Texture(family, tex.colors, 0.5).evaluate(u, v, 50.0)
        np.testing.assert_allclose(far, np.array([[0.5], [0.1], [0.5]]) * np.ones((1, 4000)), atol=1e-3)
    if family in ("noise", "stripes", "checker", "bricks", "marble"):
        assert near.std(axis=1).max() > 0.05  # a pattern, not a flat colour


def test_parse_families() -> None:
    assert parse_families(None) == FAMILIES and parse_families("all") == FAMILIES
    assert parse_families("checker, noise,checker") == ("checker", "noise")
    with pytest.raises(ValueError, match="unknown texture family wood"):
        parse_families("checker,wood")
    with pytest.raises(ValueError, match="kind"):
        WorldConfig(kind="space")  # type: ignore[arg-type]


def test_camera_pose_follows_yaw_pitch_roll() -> None:
    # yaw 90 deg looks along +x; pitch up tilts the optical axis upward; roll turns x towards y (down).
    cam = Camera(10, 10, 10.0, 10.0, 4.5, 4.5, yaw=math.pi / 2, pitch=0.3, roll=0.0)
    np.testing.assert_allclose(cam.rotation[:, 2], [math.cos(0.3), 0.0, math.sin(0.3)], atol=1e-12)
    rolled = Camera(10, 10, 10.0, 10.0, 4.5, 4.5, roll=0.2)
    np.testing.assert_allclose(rolled.rotation[:, 0], [math.cos(0.2), 0.0, -math.sin(0.2)], atol=1e-12)


def test_clean_worlds_keep_the_scene_and_drop_degradations() -> None:
    for index in range(4):
        noisy = make_scene(2, index, WorldConfig(40, 40, "outdoor"))
        clean = make_scene(2, index, WorldConfig(40, 40, "outdoor", clean=True))
        assert clean.shapes == noisy.shapes and clean.camera == noisy.camera
        assert clean.sensor.noise == clean.sensor.blur == clean.sensor.vignette == 0.0
        assert clean.environment.fog_density == 0.0
        assert render(clean).depth.tobytes() == render(noisy).depth.tobytes()


def test_assembly_removes_shapes_around_the_camera() -> None:
    from depthany.synth.objects import Assembly

    asm = Assembly(np.random.default_rng(0))
    m = asm.material("any")
    asm.add(Plane((0, 0, 1), 0.0, m), label="ground")
    asm.add(Sphere((0.0, 0.0, 1.5), 2.0, m), Sphere((5.0, 0.0, 1.5), 1.0, m), Box((0.0, 0.3, 1.5), (0.1,) * 3, 0, m),
            label="tree")
    asm.add(Sphere((0.0, 9.0, 1.0), 1.0, m), label="rock")
    assert asm.clear_around((0.0, 0.0, 1.5), 0.25) == 2  # the sphere around the camera and the box at 0.2 m
    assert [type(s).__name__ for s in asm.shapes] == ["Plane", "Sphere", "Sphere"]
    assert asm.labels == ["ground", "tree", "rock"]  # class names follow their shapes
    assert asm.shapes[1].center == (5.0, 0.0, 1.5) and asm.groups == []
    with pytest.raises(ValueError, match="unknown synthetic class 'trees'"):
        asm.add(Sphere((0.0, 9.0, 1.0), 1.0, m), label="trees")


@pytest.mark.slow
def test_world_statistics_over_many_samples() -> None:
    """Guards against silently degenerate worlds (blank images, cameras inside objects, no sky)."""
    cfg = WorldConfig(96, 128, "mixed")
    kinds, sky, contrast, median_depth = [], [], [], []
    for index in range(240):
        scene = make_scene(11, index, cfg)
        view = render(scene)
        kinds.append(scene.info["kind"])
        sky.append(float((view.shape_id == -1).mean()))
        contrast.append(float(view.rgb.std()))
        median_depth.append(float(np.median(view.depth[view.valid])))
    kinds_arr, sky_arr = np.array(kinds), np.array(sky)
    assert 0.35 < (kinds_arr == "indoor").mean() < 0.65
    assert (sky_arr[kinds_arr == "indoor"] == 0).all()
    assert (sky_arr[kinds_arr == "outdoor"] > 0).mean() > 0.8
    assert min(contrast) > 5
    assert 0.5 < np.percentile(median_depth, 5) and np.percentile(median_depth, 95) < 60
