"""The bundled colour-map LUTs against matplotlib (the official V2 scripts' colouring) and OpenCV."""

from __future__ import annotations

import numpy as np
import pytest

from depthany.io.colormap import (
    COLORMAPS,
    DEFAULT_CMAP,
    cmap_name,
    colorize,
    get_lut,
    normalize_u8,
    official_cmap,
)


@pytest.mark.parametrize("name", COLORMAPS)
def test_lut_is_bit_identical_to_matplotlib(name: str) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    cmap = matplotlib.colormaps[name]
    expected = np.stack([(np.asarray(cmap(i))[:3] * 255).astype(np.uint8) for i in range(256)])
    lut = get_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    np.testing.assert_array_equal(lut, expected)


def test_colorize_reproduces_official_v2_run_py() -> None:
    """V2 run.py: ``(depth - min) / (max - min) * 255.0 -> uint8 -> (cmap(d)[:, :, :3] * 255).astype(uint8)``."""
    matplotlib = pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    depth = (rng.random((37, 53)) * 7.3 + 0.2).astype(np.float32)
    d = ((depth - depth.min()) / (depth.max() - depth.min()) * 255.0).astype(np.uint8)
    expected = (matplotlib.colormaps["Spectral_r"](d)[:, :, :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(colorize(depth, "Spectral_r"), expected)


def test_inferno_is_within_one_level_of_opencv_inferno() -> None:
    cv2 = pytest.importorskip("cv2")
    levels = np.arange(256, dtype=np.uint8)[None]
    cv = cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO)[0, :, ::-1].astype(int)
    diff = np.abs(cv - get_lut("inferno").astype(int))
    assert diff.max() == 1  # OpenCV rounds where matplotlib truncates (documented in colormap.py)


def test_nan_and_mask_are_invalid_and_do_not_move_the_range() -> None:
    v = np.array([[0.0, 1.0, np.nan], [2.0, np.inf, 4.0]], dtype=np.float32)
    levels, ok = normalize_u8(v)
    np.testing.assert_array_equal(ok, [[True, True, False], [True, False, True]])
    np.testing.assert_array_equal(levels, [[0, 63, 0], [127, 0, 255]])
    rgb = colorize(v, "gray", invalid_color=(1, 2, 3))
    np.testing.assert_array_equal(rgb[0, 2], (1, 2, 3))
    np.testing.assert_array_equal(rgb[1, 1], (1, 2, 3))
    np.testing.assert_array_equal(rgb[1, 2], (255, 255, 255))
    masked, ok2 = normalize_u8(v, valid=np.array([[True, True, True], [True, True, False]]))
    assert masked[1, 0] == 255 and not ok2[1, 2]  # max over valid pixels is now 2.0


def test_fixed_range_clips_and_constant_map_is_safe() -> None:
    v = np.array([[-5.0, 0.0, 5.0, 10.0, 50.0]])
    levels, _ = normalize_u8(v, vmin=0.0, vmax=10.0)
    np.testing.assert_array_equal(levels, [[0, 0, 127, 255, 255]])
    const = colorize(np.full((3, 4), 2.5, dtype=np.float32), "turbo")
    np.testing.assert_array_equal(const, np.broadcast_to(get_lut("turbo")[0], (3, 4, 3)))
    all_nan = colorize(np.full((2, 2), np.nan), "inferno")
    np.testing.assert_array_equal(all_nan, 0)


def test_names() -> None:
    assert cmap_name("spectral_r") == "Spectral_r"
    assert cmap_name("INFERNO") == "inferno"
    assert not np.array_equal(get_lut("Spectral"), get_lut("Spectral_r"))
    with pytest.raises(ValueError, match="unknown colour map 'viridis'"):
        get_lut("viridis")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        colorize(np.zeros((2, 2, 3)))


def test_official_colour_maps_per_family() -> None:
    """V1 ``run.py`` colours with ``cv2.COLORMAP_INFERNO``, V2 ``run.py`` with matplotlib's ``Spectral_r``
    (LiheYoung/Depth-Anything@1d03336 and DepthAnything/Depth-Anything-V2@a561b84, ``run.py``)."""
    assert official_cmap("v1") == "inferno"
    assert official_cmap("v2") == "Spectral_r" == DEFAULT_CMAP
