"""Segmentation inference with mmseg's semantics: sliding windows (positions, count normalisation) against an
independent re-implementation, resize rules, multi-scale + flip, Segmenter, and self-describing weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthany import zoo
from depthany.seg.infer import normalize, ratio_size, rescale_size, segment, segment_scores, slide_scores
from depthany.seg.model import SegmentationModel
from depthany.seg.segmenter import Segmenter
from depthany.seg.spec import InferenceCfg, spec_from_json, spec_to_json
from depthany.seg.weights import init_encoder, load_seg_model, read_encoder_checkpoint, save_seg_weights
from depthany.weights import WeightsError, save_weights
from seg_helpers import ENC, lively


def mmseg_slide_oracle(model: SegmentationModel, x: torch.Tensor, crop: int, stride: int) -> torch.Tensor:
    """mmseg EncoderDecoder.slide_inference, written out from its description (F.pad accumulation)."""
    b, _, h_img, w_img = x.shape
    h_grids = max(h_img - crop + stride - 1, 0) // stride + 1
    w_grids = max(w_img - crop + stride - 1, 0) // stride + 1
    preds = torch.zeros(b, model.spec.num_classes, h_img, w_img)
    count = torch.zeros(b, 1, h_img, w_img)
    for hi in range(h_grids):
        for wi in range(w_grids):
            y1, x1 = hi * stride, wi * stride
            y2, x2 = min(y1 + crop, h_img), min(x1 + crop, w_img)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            logit = model.seg_logits(x[:, :, y1:y2, x1:x2])
            preds += F.pad(logit, (x1, w_img - x2, y1, h_img - y2))
            count[:, :, y1:y2, x1:x2] += 1
    assert (count == 0).sum() == 0
    return preds / count


@pytest.mark.parametrize("head", ["linear", "mask2former"])
def test_slide_inference_equals_mmseg_semantics(head: str) -> None:
    model = lively(head)
    x = torch.randn(1, 3, 70, 98)
    with torch.no_grad():
        got = slide_scores(model, x, 56, 28)
        ref = mmseg_slide_oracle(model, x, 56, 28)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    # overlapping windows really were averaged: the result differs from one whole-image pass
    assert (got - model.seg_logits(x)).abs().max() > 1e-3


def test_slide_windows_cover_the_image_and_are_counted() -> None:
    seen: list[tuple[int, int, int, int]] = []

    class Ones(SegmentationModel):
        def seg_logits(self, x: torch.Tensor) -> torch.Tensor:  # channel 0 holds the row, 1 the column
            seen.append((int(x[0, 0, 0, 0]), int(x[0, 1, 0, 0]), *x.shape[-2:]))
            return torch.ones(x.shape[0], self.spec.num_classes, *x.shape[-2:])

    def coords(h: int, w: int) -> torch.Tensor:
        yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
        return torch.stack([yy, xx, yy])[None]

    m = Ones(lively().spec)
    out = slide_scores(m, coords(100, 150), 56, 28)
    assert torch.equal(out, torch.ones_like(out))  # sum of ones / number of windows covering each pixel
    # grids (100 - 56 + 27) // 28 + 1 = 3 and (150 - 56 + 27) // 28 + 1 = 5; the last ones shifted back inside
    assert sorted({(y, x) for y, x, _, _ in seen}) == [(y, x) for y in (0, 28, 44) for x in (0, 28, 56, 84, 94)]
    assert {(h, w) for _, _, h, w in seen} == {(56, 56)}
    seen.clear()
    slide_scores(m, coords(30, 150), 56, 28)  # shorter than the crop: the whole height, never padded
    assert {(y, h, w) for y, _, h, w in seen} == {(0, 30, 56)}


def test_seg_logits_pads_non_multiples_of_14_and_crops_back() -> None:
    model = lively()
    x = torch.randn(1, 3, 50, 61)
    with torch.no_grad():
        out = model.seg_logits(x)
        padded = model.seg_logits(F.pad(x, (0, 9, 0, 6)))
    assert out.shape == (1, 4, 50, 61)
    torch.testing.assert_close(out, padded[..., :50, :61])


def test_resize_rules_of_mmcv() -> None:
    assert rescale_size(1024, 2048, (3584, 896)) == (896, 1792)  # Cityscapes
    assert rescale_size(512, 683, (3584, 896)) == (896, 1195)  # ADE20K: 683 * 1.75 = 1195.25
    assert rescale_size(300, 1500, (3584, 896)) == (717, 3584)  # the long side limits: factor 3584/1500
    assert ratio_size(1024, 2048, 0.75) == (768, 1536)
    assert ratio_size(375, 500, 1.25) == (469, 625)  # int(468.75 + 0.5), int(625.5) -> 625


def test_normalisation_is_mmseg_float32_on_the_0_255_scale() -> None:
    rgb = np.array([[[0, 128, 255]]], np.uint8)
    x = normalize(rgb)
    expected = (np.array([0, 128, 255], np.float32) - np.array([123.675, 116.28, 103.53], np.float32)) / \
        np.array([58.395, 57.12, 57.375], np.float32)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), expected, rtol=1e-6)


def test_flip_tta_is_mirror_equivariant_and_multiscale_averages_softmax() -> None:
    model = lively("linear", 3)
    rgb = np.random.default_rng(0).integers(0, 255, (40, 52, 3)).astype(np.uint8)
    cfg = InferenceCfg(mode="whole", resize=None, flip=True)
    a = segment_scores(model, rgb, cfg)
    b = segment_scores(model, np.ascontiguousarray(rgb[:, ::-1]), cfg)
    torch.testing.assert_close(b, a.flip(-1), rtol=1e-5, atol=1e-6)
    single = segment_scores(model, rgb, InferenceCfg(mode="whole", resize=None))
    assert (a - single.softmax(0)).abs().max() > 1e-4  # the mirrored view changed something
    one_ratio = segment_scores(model, rgb, InferenceCfg(mode="whole", resize=None, ratios=(1.0,)))
    torch.testing.assert_close(one_ratio, single.softmax(0))
    two = segment_scores(model, rgb, InferenceCfg(mode="whole", resize=None, ratios=(1.0, 1.5)))
    big = segment_scores(model, rgb, InferenceCfg(mode="whole", resize=(78, 60)))  # 1.5x as one view
    torch.testing.assert_close(two, (single.softmax(0) + big.softmax(0)) / 2, rtol=1e-5, atol=1e-6)
    assert torch.allclose(two.sum(0), torch.ones(40, 52))


def test_segmenter_round_trip_through_weights(tmp_path: Path) -> None:
    model = lively("mask2former", 1, inference=InferenceCfg(mode="slide", crop=56, stride=28, resize=(224, 84)))
    path = save_seg_weights(model, tmp_path / "m.safetensors")
    seg = Segmenter.from_weights(path)
    assert seg.spec == model.spec and seg.classes.names == ("a", "b", "c", "d")
    rgb = np.random.default_rng(1).integers(0, 255, (30, 45, 3)).astype(np.uint8)
    res = seg.segment(rgb, return_scores=True)
    np.testing.assert_array_equal(res.labels, segment(model, rgb))
    assert res.labels.shape == (30, 45) and res.scores is not None and res.scores.shape == (4, 30, 45)
    np.testing.assert_array_equal(res.color()[res.labels == 1], np.tile([0, 255, 0], ((res.labels == 1).sum(), 1)))
    over = res.overlay(rgb, 0.25)
    np.testing.assert_array_equal(over, np.round(0.75 * rgb + 0.25 * res.color().astype(float)).astype(np.uint8))
    assert res.label_image().mode == "P" and np.array_equal(np.asarray(res.label_image()), res.labels)
    whole = seg.segment(rgb, mode="whole", resize=None)
    assert whole.inference is not None and whole.inference.mode == "whole"
    assert spec_from_json(spec_to_json(model.spec)) == model.spec
    with pytest.raises(TypeError):
        Segmenter.from_weights(path, strides=3)


def test_weights_errors_name_the_file(tmp_path: Path) -> None:
    depth = tmp_path / "depth.safetensors"
    spec = zoo.ModelSpec("d", zoo.Arch(ENC, (0, 1, 2, 3), 16, (8, 16, 32, 32)), zoo.V2_PRE, (), "x")
    from depthany.models import DepthAnything

    save_weights(DepthAnything(spec.arch).state_dict(), spec, depth)
    with pytest.raises(WeightsError, match="depth.safetensors: not a depthany segmentation model"):
        load_seg_model(depth)
    with pytest.raises(WeightsError, match="no such"):
        load_seg_model(tmp_path / "missing.safetensors")
    other = lively()
    path = save_seg_weights(other, tmp_path / "lin.safetensors")
    raw = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(WeightsError, match="trunc.safetensors"):
        load_seg_model(tmp_path / "trunc.safetensors")


def test_encoder_initialised_from_depth_and_dinov2_checkpoints(tmp_path: Path) -> None:
    from depthany.models import DepthAnything

    arch = zoo.Arch(ENC, (0, 1, 2, 3), 16, (8, 16, 32, 32))
    spec = zoo.ModelSpec("d", arch, zoo.V2_PRE, (), "x")
    torch.manual_seed(5)
    depth = DepthAnything(arch)
    for p in depth.parameters():
        torch.nn.init.normal_(p)
    for fmt, name in (("depthany", "d.safetensors"), ("official", "d.pth"), ("dinov2", "dinov2.pth")):
        path = save_weights(depth.state_dict(), spec, tmp_path / name, fmt)  # type: ignore[arg-type]
        model = lively("mask2former")
        init_encoder(model, read_encoder_checkpoint(path))
        for k, v in depth.pretrained.state_dict().items():
            torch.testing.assert_close(model.pretrained.state_dict()[k], v, rtol=0, atol=0)
    small = zoo.Arch(zoo.EncoderSpec("seg-test-2", 48, 4, 2), (0, 1, 2, 3), 16, (8, 16, 32, 32))
    path = save_weights(DepthAnything(small).state_dict(), zoo.ModelSpec("s", small, zoo.V2_PRE, (), "x"),
                        tmp_path / "wrong.safetensors")
    with pytest.raises(WeightsError, match="wrong.safetensors: weights do not fit"):
        init_encoder(lively(), read_encoder_checkpoint(path))
    with pytest.raises(WeightsError, match="neither an existing"):
        read_encoder_checkpoint("no-such-model")
