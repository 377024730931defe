"""Depth Anything 3 pre/postprocessing as pure functions, and end to end (image -> official outputs).

The expected preprocessing is written here from the official ``InputProcessor``
(ByteDance-Seed/Depth-Anything-3 @ 2c21ea8, ``utils/io/input_processor.py``) with OpenCV calls of its own.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import da3_reference as ref
from depthany import zoo
from depthany.da3 import (
    metric_depth,
    plan_resize,
    predict_mono,
    predict_views,
    preprocess,
    scale_intrinsics,
    sky_fill,
    sky_mask,
)
from depthany.models import DepthAnything3
from depthany.weights import load_into, read_checkpoint
from test_da3_models import ANY, MONO, tiny_arch

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth structure plus noise, so that every interpolation kernel gives a different result."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([127 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0), 255.0 * x / w, 255 * (1 - y / h)], -1)
    noise = np.random.default_rng(seed).normal(0, 25, base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def official_input(img: np.ndarray, res: int = 504, method: str = "upper_bound_resize") -> np.ndarray:
    """The official steps, independently: bound resize, multiple-of-14 resize/crop, ToTensor, Normalize."""
    h, w = img.shape[:2]
    side = max(h, w) if method.startswith("upper") else min(h, w)
    if side != res:
        s = res / float(side)
        nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_CUBIC if s > 1.0 else cv2.INTER_AREA)
    h, w = img.shape[:2]
    if method.endswith("resize"):
        def near(x: int) -> int:
            down = x // 14 * 14
            return down + 14 if abs(down + 14 - x) <= abs(x - down) else down

        nh, nw = near(h), near(w)
        if (nh, nw) != (h, w):
            up = nw > w or nh > h
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA)
    else:
        nh, nw = h // 14 * 14, w // 14 * 14
        top, left = (h - nh) // 2, (w - nw) // 2
        img = img[top:top + nh, left:left + nw]
    t = img.astype(np.float32) / np.float32(255)
    return ((t - MEAN) / STD).transpose(2, 0, 1)


@pytest.mark.parametrize("size,bounded,final", [
    ((480, 640), (378, 504), (378, 504)),
    ((1000, 700), (504, 353), (504, 350)),  # shrink (area), then the width shrinks to a multiple (area)
    ((120, 90), (504, 378), (504, 378)),  # enlarge (cubic)
    ((60, 93), (325, 504), (322, 504)),  # enlarge, then shrink to a multiple
    ((333, 1008), (166, 504), (168, 504)),  # 166.5 rounds half to even; then 166 -> 168
    ((504, 371), (504, 371), (504, 378)),  # no bound resize; 371 = 26.5 * 14 ties upwards
])
def test_plan_sizes(size, bounded, final) -> None:
    plan = plan_resize(*size)
    assert (plan.bounded, plan.final) == (bounded, final)
    assert plan.enlarge == (max(size) < 504)


def test_other_methods_and_errors() -> None:
    plan = plan_resize(480, 640, 504, "lower_bound_resize")
    assert (plan.bounded, plan.final) == ((504, 672), (504, 672))
    crop = plan_resize(1000, 700, 504, "upper_bound_crop")
    assert (crop.bounded, crop.final, crop.crop) == ((504, 353), (504, 350), (0, 1))
    with pytest.raises(ValueError, match="process_res_method"):
        plan_resize(10, 10, 504, "lower_bound")
    with pytest.raises(ValueError, match="positive"):
        plan_resize(0, 10)
    with pytest.raises(TypeError, match="uint8"):
        preprocess(np.zeros((20, 20, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        preprocess(np.zeros((20, 20), np.uint8))


@pytest.mark.parametrize("size,method", [((30, 40), "upper_bound_resize"), ((700, 530), "upper_bound_resize"),
                                         ((60, 93), "upper_bound_resize"), ((1000, 700), "upper_bound_resize"),
                                         ((1000, 700), "upper_bound_crop"), ((200, 310), "lower_bound_resize")])
def test_preprocess_is_the_official_input_bit_for_bit(size, method) -> None:
    img = image(*size)
    pre = zoo.Preprocess(504, resize=method)
    got, plan = preprocess(img, pre)
    want = official_input(img, 504, method)
    assert got.dtype == torch.float32 and tuple(got.shape[1:]) == plan.final
    assert torch.equal(got, torch.from_numpy(want))


@pytest.mark.parametrize("size", [(30, 40), (700, 530)])
def test_each_resize_branch_matters(size) -> None:
    """Swapping INTER_AREA / INTER_CUBIC in the bound resize changes the input far beyond rounding."""
    img = image(*size)
    plan = plan_resize(*size)
    h, w = plan.bounded
    right = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC if plan.enlarge else cv2.INTER_AREA)
    wrong = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if plan.enlarge else cv2.INTER_CUBIC)
    assert np.abs(right.astype(int) - wrong.astype(int)).mean() > 1.0


def test_second_resize_branch_matters() -> None:
    """60 x 93 is enlarged to 325 x 504 (cubic), then shrunk to 322 x 504 (area, since no side grows)."""
    plan = plan_resize(60, 93)
    assert (plan.bounded, plan.final) == ((325, 504), (322, 504))
    small = cv2.resize(image(60, 93), (504, 325), interpolation=cv2.INTER_CUBIC)
    area = cv2.resize(small, (504, 322), interpolation=cv2.INTER_AREA).astype(int)
    cubic = cv2.resize(small, (504, 322), interpolation=cv2.INTER_CUBIC).astype(int)
    assert (area != cubic).mean() > 0.05 and np.abs(area - cubic).max() >= 2  # >= 0.03 after normalising
    got, _ = preprocess(image(60, 93))
    assert torch.equal(got, torch.from_numpy(((area.astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1)))


def test_intrinsics_follow_the_resizes() -> None:
    k = np.array([[500.0, 0, 320], [0, 510, 240], [0, 0, 1]])
    plan = plan_resize(1000, 700)  # -> 504 x 353 -> 504 x 350
    got = scale_intrinsics(k, plan)
    sx, sy = (353 / 700) * (350 / 353), (504 / 1000) * (504 / 504)
    assert np.allclose(got, [[500 * sx, 0, 320 * sx], [0, 510 * sy, 240 * sy], [0, 0, 1]], rtol=1e-12)
    crop = scale_intrinsics(k, plan_resize(1000, 700, 504, "upper_bound_crop"))
    assert np.allclose(crop[0], [500 * 353 / 700, 0, 320 * 353 / 700 - 1]) and np.isclose(crop[1, 2], 240 * 0.504)


def test_sky_fill_against_a_direct_quantile() -> None:
    g = torch.Generator().manual_seed(0)
    depth = torch.rand(3, 40, 50, generator=g) * 10 + 1
    sky = torch.rand(3, 40, 50, generator=g)
    sky[2, :, :] = 0.0  # no sky: unchanged
    sky[2, 0, :10] = 1.0  # 10 sky pixels are not enough
    out = sky_fill(depth, sky)
    for i in range(2):
        keep = (sky[i] < 0.3).numpy()
        want = depth[i].numpy().copy()
        want[~keep] = np.quantile(depth[i].numpy()[keep].astype(np.float64), 0.99)
        assert np.allclose(out[i].numpy(), want, rtol=1e-6)
        assert np.allclose(out[i].numpy(), ref.sky_fill(depth[i], sky[i]).numpy(), rtol=1e-6)
        assert (out[i] != depth[i]).any()  # the fill matters
    assert torch.equal(out[2], depth[2])
    # each image from its own statistics: filling a batch equals filling its images one by one
    assert torch.equal(out[1], sky_fill(depth[1:2], sky[1:2])[0])
    assert torch.equal(sky_mask(torch.tensor([0.29, 0.3, 0.49, 0.5])), torch.tensor([False, False, False, True]))


def test_sky_fill_is_deterministic_above_the_official_sample_size() -> None:
    """Over 100,000 non-sky pixels the official code samples randomly; here the quantile uses every pixel."""
    g = torch.Generator().manual_seed(1)
    depth, sky = torch.rand(400, 400, generator=g), torch.rand(400, 400, generator=g)
    keep = (sky < 0.3).numpy()
    assert keep.sum() > 100_000 - 60_000 and (~keep).sum() > 10
    out = sky_fill(depth, sky)
    assert torch.equal(out, sky_fill(depth, sky))
    want = np.quantile(depth.numpy()[keep].astype(np.float64), 0.99)
    assert np.allclose(out.numpy()[~keep], want, rtol=1e-6)


def test_metric_depth_rule() -> None:
    d = torch.tensor([[1.0, 2.0]])
    assert torch.allclose(metric_depth(d, 300.0, 300.0, 300.0), d)
    assert torch.allclose(metric_depth(d, 400.0, 500.0, 300.0), d * 1.5)


def _mono(tmp_path, head: str = "depth", seed: int = 0) -> tuple[DepthAnything3, dict]:
    sd = ref.lively_state(MONO, seed, sky_bias=0.25)
    folder = ref.write_official_folder(tmp_path / "mono", sd, "da3mono-large")
    model = DepthAnything3(tiny_arch(MONO, head)).eval()
    load_into(model, read_checkpoint(folder))
    return model, sd


@pytest.mark.parametrize("size", [(40, 30), (150, 200)])  # enlarged (cubic) and shrunk (area) to 70 px
def test_predict_mono_end_to_end(tmp_path, size) -> None:
    model, sd = _mono(tmp_path)
    img = image(*size, seed=3)
    pred = predict_mono(model, img, process_res=70)
    x = torch.from_numpy(official_input(img, 70))
    want_depth, want_sky = ref.mono_forward(x, sd, MONO)
    assert pred.depth.shape == tuple(x.shape[1:]) == pred.plan.final and pred.depth.dtype == np.float32
    assert np.allclose(pred.depth, want_depth.numpy(), rtol=1e-4, atol=1e-5)
    assert np.array_equal(pred.sky_mask, want_sky.numpy() >= 0.5)
    assert pred.kind == "relative_depth" and pred.metres is None and np.array_equal(pred.values, pred.depth)
    assert 0.05 < pred.sky_mask.mean() < 0.95 and pred.depth.std() > 0.05 * pred.depth.mean()


def test_predict_metric_end_to_end(tmp_path) -> None:
    model, sd = _mono(tmp_path, "focal_metric", seed=1)
    img = image(150, 200, seed=4)
    k = np.array([[180.0, 0, 100], [0, 170, 75], [0, 0, 1]])
    pred = predict_mono(model, img, intrinsics=k, process_res=70)
    assert pred.plan.final == (56, 70)  # 150x200 -> 52.5 -> 52 x 70 -> 56 x 70
    fx, fy = 180 * (70 / 200) * (70 / 70), 170 * (52 / 150) * (56 / 52)
    assert pred.intrinsics is not None and np.allclose(pred.intrinsics[:2, :2].diagonal(), [fx, fy])
    assert pred.kind == "metric_depth" and pred.metres is not None
    assert np.allclose(pred.metres, pred.depth * ((fx + fy) / 2) / 300, rtol=1e-6)
    without = predict_mono(model, img, process_res=70)
    assert without.metres is None and np.array_equal(without.depth, pred.depth)


def test_predict_views_end_to_end_and_errors(tmp_path) -> None:
    sd = ref.lively_state(ANY, 0)
    model = DepthAnything3(tiny_arch(ANY)).eval()
    load_into(model, read_checkpoint(ref.write_official_folder(tmp_path / "any", sd, "da3-small")))
    imgs = [image(60, 80, seed=s) for s in range(3)]
    pred = predict_views(model, imgs, process_res=56)
    x = torch.stack([torch.from_numpy(official_input(i, 56)) for i in imgs])
    want = ref.views_forward(x, sd, ANY)
    for name in ("depth", "conf", "extrinsics", "intrinsics"):
        got = getattr(pred, name)
        assert got.dtype == np.float32
        assert np.allclose(got, want[name].numpy(), rtol=2e-4, atol=2e-5), name
    assert pred.depth.shape == (3, 42, 56) and pred.extrinsics.shape == (3, 3, 4) and pred.reference == int(
        want["reference"])
    with pytest.raises(ValueError, match="different processing sizes.*view 2: 80x60"):
        predict_views(model, imgs[:2] + [image(80, 60)], process_res=56)
    with pytest.raises(ValueError, match="at least one view"):
        predict_views(model, [])
    with pytest.raises(ValueError, match="predict_mono"):
        predict_views(_mono(tmp_path)[0], imgs)
    with pytest.raises(ValueError, match="predict_views"):
        predict_mono(model, imgs[0])
