"""The official high-level V1 metric inference (``infer_pil``) against the functional oracle (tests/zoe_oracle.py).

Padding, the core's resize, bicubic upsampling and flip averaging are each shown to change the output by more
than the tolerance, and our pipeline matches only the official combination.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import zoe_oracle as oracle
from depthany import zoe_pipeline, zoo
from test_official_pipeline import photo
from test_zoedepth_model import BASE, loaded, tiny_zoe_arch

TOL = 1e-5  # of the output range


def err(a: np.ndarray, ref: np.ndarray) -> float:
    span = float(ref.max() - ref.min())
    assert span > 0.3  # metres: the map is not flat
    return float(np.abs(a - ref).max()) / span


@pytest.fixture(scope="module")
def setup() -> tuple[zoo.Arch, dict[str, torch.Tensor], np.ndarray]:
    arch = tiny_zoe_arch()
    return arch, oracle.official_state(arch, seed=7), photo(50, 67, seed=3)


def test_infer_pil_matches_the_official_oracle(setup) -> None:
    arch, sd, rgb = setup
    ref = oracle.infer_pil(sd, arch, rgb)
    model = loaded(arch, sd)
    got = zoe_pipeline.infer_pil(model, rgb)
    assert got.shape == rgb.shape[:2] and got.dtype == np.float32
    assert err(got, ref) < TOL
    assert np.array_equal(zoe_pipeline.infer_pil(model, Image.fromarray(rgb)), got)  # PIL in, same numbers


@pytest.mark.parametrize("step", ["pad_input", "with_flip_aug", "resize_align_corners", "upsampling", "keep_aspect"])
def test_each_step_matters(setup, step) -> None:
    """Getting one step wrong moves the output well beyond the tolerance; where the step is an official option
    (padding, flip, the keep-aspect config), ours follows the oracle with it switched too."""
    arch, sd, rgb = setup
    if step == "keep_aspect":  # a portrait image: the landscape one happens to round to 42x56 either way
        rgb = photo(70, 45, seed=4)
    ref = oracle.infer_pil(sd, arch, rgb)
    wrong = {"pad_input": False, "with_flip_aug": False, "resize_align_corners": False, "upsampling": "bilinear",
             "keep_aspect": True}[step]
    other = oracle.infer_pil(sd, arch, rgb, oracle.Official(**{step: wrong}))
    assert err(other, ref) > 100 * TOL
    model = loaded(arch, sd)
    if step in ("pad_input", "with_flip_aug"):
        assert err(zoe_pipeline.infer_pil(model, rgb, **{step: False}), other) < TOL
    if step == "keep_aspect":
        keep = dataclasses.replace(arch, zoe=dataclasses.replace(arch.zoe, keep_aspect=True))
        assert err(zoe_pipeline.infer_pil(loaded(keep, sd), rgb), other) < TOL


def test_batch_equals_single_images(setup) -> None:
    arch, sd, _ = setup
    model = loaded(arch, sd)
    images = [photo(40, 60, seed=s) for s in (1, 2)]
    batch = torch.cat([zoe_pipeline.image_tensor(im) for im in images])
    out = zoe_pipeline.infer(model, batch)
    assert out.shape == (2, 1, 40, 60)
    for i, im in enumerate(images):
        assert np.allclose(out[i, 0].numpy(), zoe_pipeline.infer_pil(model, im), atol=1e-5)


def test_raw_forward_is_at_the_network_size(setup) -> None:
    arch, sd, rgb = setup
    x = zoe_pipeline.image_tensor(rgb)
    with torch.no_grad():
        out = zoe_pipeline.forward(loaded(arch, sd), x)
    assert out.shape == (1, 1, *arch.zoe.img_size)
    assert torch.allclose(out, oracle.forward(sd, arch, x), atol=TOL * float(out.max() - out.min()))


def test_padding_amounts() -> None:
    """int(sqrt(H / 2) * 3) rows, int(sqrt(W / 2) * 3) columns (depth_model.py, fh = fw = 3)."""
    assert zoe_pipeline.pad_amounts(480, 640) == (46, 53)  # sqrt(240) * 3 = 46.48, sqrt(320) * 3 = 53.67
    assert zoe_pipeline.pad_amounts(375, 1242) == (41, 74)  # 41.08, 74.76
    assert zoe_pipeline.pad_amounts(5, 5) == (4, 4)
    with pytest.raises(ValueError, match="too small.*pad_input=False"):
        zoe_pipeline.pad_amounts(4, 100)


def test_network_size() -> None:
    """The official Resize in "minimal" mode, multiple of 14 (base_models/depth_anything.py)."""
    eval_cfg = zoo.ZoeConfig()
    assert zoe_pipeline.network_size(480 + 92, 640 + 106, eval_cfg) == (392, 518)  # any size: exactly img_size
    assert zoe_pipeline.network_size(1000, 300, eval_cfg) == (392, 518)
    infer_cfg = dataclasses.replace(eval_cfg, keep_aspect=True)  # force_keep_ar: the scale closest to 1
    assert zoe_pipeline.network_size(480, 640, infer_cfg) == (392, 518)  # 0.8167 * 640 = 522.7 -> 518
    assert zoe_pipeline.network_size(1000, 500, infer_cfg) == (1036, 518)  # width's 1.036 is closer to 1
    assert zoe_pipeline.network_size(352, 1216, zoo.ZOE_PRESETS["normed"]) == (378, 770)  # 384x768 rounded
    with pytest.raises(ValueError, match="too elongated"):
        zoe_pipeline.network_size(392, 20000, infer_cfg)


def test_bad_images() -> None:
    model = loaded(tiny_zoe_arch(dataclasses.replace(BASE, n_bins=8)),
                   oracle.official_state(tiny_zoe_arch(dataclasses.replace(BASE, n_bins=8))))
    with pytest.raises(TypeError, match="uint8"):
        zoe_pipeline.infer_pil(model, np.zeros((20, 20, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        zoe_pipeline.infer_pil(model, np.zeros((20, 20), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        zoe_pipeline.infer_pil(model, np.zeros((3, 20, 3), np.uint8))
    assert zoe_pipeline.infer_pil(model, np.zeros((3, 20, 3), np.uint8), pad_input=False).shape == (3, 20)
