"""Intrinsics: FoV <-> focal, resizing, EXIF orientation (checked against Pillow and numpy), the resolver chain."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from PIL import Image, ImageOps

from depthany.geometry import (
    DEFAULT_FOV_DEG,
    Intrinsics,
    IntrinsicsWarning,
    focal_from_fov,
    fov_from_focal,
    orient_coords,
    resolve_intrinsics,
)


def test_fov_focal_closed_form() -> None:
    # 90 degrees across 640 px: tan(45 deg) = 1, so f = 320 px exactly.
    assert focal_from_fov(90.0, 640) == pytest.approx(320.0, rel=1e-12)
    # 60 degrees: f = (W / 2) / tan(30 deg) = 320 * sqrt(3).
    assert focal_from_fov(60.0, 640) == pytest.approx(320.0 * math.sqrt(3.0), rel=1e-12)
    for fov in (1.0, 37.5, 60.0, 120.0, 179.0):
        assert fov_from_focal(focal_from_fov(fov, 1234), 1234) == pytest.approx(fov, rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, 180.0, -5.0, float("nan")])
def test_fov_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="fov"):
        focal_from_fov(bad, 100)


def test_from_fov_axes() -> None:
    w, h = 400, 300
    kh = Intrinsics.from_fov(70.0, w, h, "horizontal")
    kv = Intrinsics.from_fov(70.0, w, h, "vertical")
    kd = Intrinsics.from_fov(70.0, w, h, "diagonal")
    assert kh.fov_x == pytest.approx(70.0)
    assert kv.fov_y == pytest.approx(70.0)
    # diagonal FoV: 2 atan(diag / 2f) with diag = 500 px
    assert 2 * math.degrees(math.atan(500 / (2 * kd.fx))) == pytest.approx(70.0)
    assert (kh.cx, kh.cy) == (199.5, 149.5)  # pixel centres at integers: centre is (W - 1) / 2
    with pytest.raises(ValueError, match="fov_axis"):
        Intrinsics.from_fov(70.0, w, h, "sideways")  # type: ignore[arg-type]


def test_K_and_dict_round_trip() -> None:
    k = Intrinsics(500.0, 510.0, 300.25, 200.75, 640, 480, "user", "test")
    assert np.array_equal(k.K, [[500, 0, 300.25], [0, 510, 200.75], [0, 0, 1]])
    assert Intrinsics.from_K(k.K, 640, 480) == Intrinsics(500.0, 510.0, 300.25, 200.75, 640, 480)
    assert Intrinsics.from_dict(k.to_dict()) == k
    with pytest.raises(ValueError, match="skew"):
        Intrinsics.from_K(np.array([[500, 3, 300], [0, 500, 200], [0, 0, 1]]), 640, 480)
    with pytest.raises(ValueError, match="fx"):
        Intrinsics(-1.0, 500.0, 0, 0, 10, 10)
    with pytest.raises(ValueError, match="width"):
        Intrinsics(1.0, 1.0, 0, 0, 0, 10)


def test_scaled_matches_resampling_a_projected_point() -> None:
    """A 3D point projects to the same *image position* before and after a resize (pixel-centre convention)."""
    k = Intrinsics(500.0, 450.0, 310.0, 250.0, 640, 480)
    pt = np.array([0.3, -0.2, 2.0])
    u = k.fx * pt[0] / pt[2] + k.cx
    v = k.fy * pt[1] / pt[2] + k.cy
    for w2, h2 in [(320, 240), (1280, 960), (700, 300)]:
        k2 = k.scaled(width=w2, height=h2)
        u2 = k2.fx * pt[0] / pt[2] + k2.cx
        v2 = k2.fy * pt[1] / pt[2] + k2.cy
        # The continuous image coordinate of pixel-edge 0 .. W maps linearly: (u + 0.5) / W is invariant.
        assert (u2 + 0.5) / w2 == pytest.approx((u + 0.5) / 640, abs=1e-12)
        assert (v2 + 0.5) / h2 == pytest.approx((v + 0.5) / 480, abs=1e-12)
    # halving: centre of a 640 px image (319.5) goes to the centre of a 320 px image (159.5), not 159.75
    assert Intrinsics.from_fov(60, 640, 480).scaled(width=320, height=240).cx == 159.5
    # FoV does not change under resizing
    kk = Intrinsics.from_fov(60, 640, 480).scaled(width=123, height=77)
    assert kk.fov_x == pytest.approx(60.0)


def _labelled(h: int, w: int) -> np.ndarray:
    return np.arange(h * w, dtype=np.int32).reshape(h, w)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_coords_matches_pillow_exif_transpose(orientation: int) -> None:
    h, w = 5, 7
    stored = _labelled(h, w)
    im = Image.fromarray(stored, mode="I")
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    shown = np.asarray(ImageOps.exif_transpose(im))
    v, u = np.mgrid[0:h, 0:w]
    u2, v2 = orient_coords(u, v, orientation, (h, w))
    assert shown[v2.astype(int), u2.astype(int)].tolist() == stored.tolist()


def _ray_angles(k: Intrinsics, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot((u - k.cx) / k.fx, (v - k.cy) / k.fy)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_oriented_intrinsics_preserve_every_pixel_ray(orientation: int) -> None:
    """Turning or mirroring an image turns the camera about its optical axis: each pixel's angle to the axis
    stays the same. Checked pixel by pixel with numpy-rotated label images and an off-centre, non-square
    camera, which catches a wrong fx/fy swap or a wrong principal-point move."""
    h, w = 6, 9
    k = Intrinsics(7.0, 11.0, 2.3, 4.1, w, h)
    stored = _labelled(h, w)
    numpy_ops = {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud, 5: lambda a: a.T,
                 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).T, 8: lambda a: np.rot90(a, 1)}
    shown = numpy_ops[orientation](stored)
    k2 = k.oriented(orientation)
    assert (k2.height, k2.width) == shown.shape
    v2, u2 = np.mgrid[0:shown.shape[0], 0:shown.shape[1]]
    label = shown[v2, u2]
    v, u = np.divmod(label, w)  # where each displayed pixel sat in the stored image
    np.testing.assert_allclose(_ray_angles(k2, u2, v2), _ray_angles(k, u, v), rtol=1e-12)


def test_orientation_6_and_8_swap_focal_and_move_principal_point() -> None:
    k = Intrinsics(100.0, 200.0, 30.0, 10.0, 64, 48)
    k6 = k.oriented(6)  # 90 deg clockwise: (u, v) -> (H - 1 - v, u)
    assert (k6.fx, k6.fy, k6.cx, k6.cy, k6.width, k6.height) == (200.0, 100.0, 47 - 10.0, 30.0, 48, 64)
    k8 = k.oriented(8)  # 90 deg counter-clockwise: (u, v) -> (v, W - 1 - u)
    assert (k8.fx, k8.fy, k8.cx, k8.cy, k8.width, k8.height) == (200.0, 100.0, 10.0, 63 - 30.0, 48, 64)
    with pytest.raises(ValueError, match="orientation"):
        k.oriented(9)


def test_resolver_user_values_win_and_conflicts_are_named() -> None:
    exif = {"FocalLengthIn35mmFilm": 26}
    k = resolve_intrinsics(640, 480, fx=500.0, exif=exif)
    assert (k.fx, k.fy, k.cx, k.cy, k.source) == (500.0, 500.0, 319.5, 239.5, "user")
    k = resolve_intrinsics(640, 480, fov=90.0, exif=exif)
    assert k.source == "user-fov" and k.fx == pytest.approx(320.0)
    k = resolve_intrinsics(640, 480, intrinsics=Intrinsics(1000.0, 1000.0, 639.5, 479.5, 1280, 960))
    assert (k.fx, k.cx, k.cy) == (500.0, 319.5, 239.5)
    with pytest.raises(ValueError, match="only one of"):
        resolve_intrinsics(640, 480, fx=500.0, fov=60.0)
    with pytest.raises(ValueError, match="rotated"):
        resolve_intrinsics(640, 480, intrinsics=Intrinsics(500.0, 500.0, 239.5, 319.5, 480, 640))
    with pytest.raises(ValueError, match="fy"):
        resolve_intrinsics(640, 480, fy=500.0)


def test_resolver_default_warns_and_uses_longer_side() -> None:
    with pytest.warns(IntrinsicsWarning, match="60 deg horizontal"):
        k = resolve_intrinsics(640, 480)
    assert k.source == "default" and k.fov_x == pytest.approx(DEFAULT_FOV_DEG)
    with pytest.warns(IntrinsicsWarning, match="vertical"):
        kp = resolve_intrinsics(480, 640)  # portrait: the longer side is vertical
    assert kp.fov_y == pytest.approx(DEFAULT_FOV_DEG) and kp.fx == pytest.approx(k.fx)
    assert k.fx != pytest.approx(470.4)  # not the official scripts' constant
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_intrinsics(640, 480, warn=False)
