"""Augmentation geometry and the deterministic, mixed, sharded data stream."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from depthany import zoo
from depthany.train.augment import apply_crop, nearest_source_indices, sample_crop
from depthany.train.config import DataCfg, RecipeError, SourceCfg
from depthany.train.data import MixPlan, StepBatches, TrainSet, build_sources, collate, micro_slices
from depthany.transforms import normalize_image, resize_bicubic
from train_worlds import write_planes

PRE = zoo.get_spec("da2-mini").preprocess


def unique_sample(h: int = 30, w: int = 45) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rgb, depth, valid where every pixel's depth is unique (its flat index + 1) and rgb encodes (row, col)."""
    depth = (np.arange(h * w, dtype=np.float32) + 1).reshape(h, w)
    rows, cols = np.mgrid[0:h, 0:w]
    rgb = np.stack([rows * 5, cols * 5, np.full_like(rows, 7)], -1).astype(np.uint8)
    valid = (rows + cols) % 3 != 0
    return rgb, depth, valid


# ------------------------------------------------------------------------------------------- augmentation


def test_sample_crop_is_deterministic_and_in_bounds() -> None:
    for seed in range(50):
        a = sample_crop(30, 45, 28, (1.0, 1.5), 0.5, np.random.default_rng(seed))
        b = sample_crop(30, 45, 28, (1.0, 1.5), 0.5, np.random.default_rng(seed))
        assert a == b
        rh, rw = a.resized
        assert min(rh, rw) >= 28 and 0 <= a.top <= rh - 28 and 0 <= a.left <= rw - 28
        assert abs(rw / rh - 45 / 30) < 0.05  # aspect ratio kept
    flips = [sample_crop(30, 45, 28, (1.0, 1.0), 0.5, np.random.default_rng(s)).flip for s in range(200)]
    assert 60 < sum(flips) < 140
    assert not any(sample_crop(30, 45, 28, (1.0, 1.0), 0.0, np.random.default_rng(s)).flip for s in range(20))


def test_unscaled_crop_is_an_exact_aligned_slice() -> None:
    rgb, depth, valid = unique_sample(28, 45)
    p = sample_crop(28, 45, 28, (1.0, 1.0), 0.0, np.random.default_rng(3))
    assert p.resized == (28, 45) and p.left > 0  # the short side already equals the crop: no resize
    img, d, v = apply_crop(rgb, depth, valid, p)
    ys, xs = slice(p.top, p.top + 28), slice(p.left, p.left + 28)
    assert torch.equal(img, torch.from_numpy(rgb[ys, xs]).permute(2, 0, 1).float() / 255)
    assert np.array_equal(d.numpy(), depth[ys, xs]) and np.array_equal(v.numpy(), valid[ys, xs])
    # flipping mirrors image, depth and mask together
    img_f, d_f, v_f = apply_crop(rgb, depth, valid, type(p)(p.resized, p.top, p.left, p.size, True))
    assert torch.equal(img_f, img.flip(-1)) and torch.equal(d_f, d.flip(-1)) and torch.equal(v_f, v.flip(-1))


def test_resized_crop_uses_nearest_depth_and_bicubic_image() -> None:
    rgb, depth, valid = unique_sample()
    p = sample_crop(30, 45, 28, (1.3, 1.3), 0.0, np.random.default_rng(5))
    rh, rw = p.resized
    assert (rh, rw) == (37, 56)  # short side ceil(28 * 1.3) = 37, aspect kept
    img, d, v = apply_crop(rgb, depth, valid, p)
    # every depth is an input depth (no interpolation across edges), at OpenCV nearest indices
    rows = np.minimum(np.floor(np.arange(p.top, p.top + 28) * (30 / rh)).astype(int), 29)
    cols = np.minimum(np.floor(np.arange(p.left, p.left + 28) * (45 / rw)).astype(int), 44)
    assert np.array_equal(d.numpy(), depth[np.ix_(rows, cols)])
    assert np.array_equal(v.numpy(), valid[np.ix_(rows, cols)])
    assert np.array_equal(nearest_source_indices(30, rh, p.top, 28), rows)
    full = resize_bicubic(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, (rh, rw))[0]
    assert torch.equal(img, full[:, p.top:p.top + 28, p.left:p.left + 28])
    # image and depth stay registered: the green channel (column * 5) follows the depth's column
    depth_col = (d.numpy().astype(int) - 1) % 45
    green = img[1].numpy() * 255 / 5
    assert np.abs(green - depth_col).mean() < 1.0


def test_normalize_image_uses_spec_numbers() -> None:
    img = torch.full((3, 2, 2), 0.5)
    out = normalize_image(img, PRE.mean, PRE.std)
    assert out[:, 0, 0].tolist() == pytest.approx([(0.5 - m) / s for m, s in zip(PRE.mean, PRE.std)])


# ------------------------------------------------------------------------------------------------- stream


def test_mix_plan_proportions_are_exact_and_spread() -> None:
    plan = MixPlan([5, 50], [1.0, 3.0], seed=0)
    draws, cursors = plan.draws([0, 0], 400)
    assert cursors == [100, 300]
    for b in range(100):  # every batch of 4 holds 1 draw of source 0 and 3 of source 1
        assert Counter(d.source for d in draws[4 * b:4 * b + 4]) == {0: 1, 1: 3}
    assert [d.serial for d in draws if d.source == 0] == list(range(100))


def test_zero_weight_source_is_never_drawn() -> None:
    draws, cursors = MixPlan([3, 4], [0.0, 1.0], seed=0).draws([0, 0], 20)
    assert cursors == [0, 20] and all(d.source == 1 for d in draws)


def test_epochs_cover_every_sample_once_in_new_orders() -> None:
    plan = MixPlan([7], [1.0], seed=3)
    draws, _ = plan.draws([0], 21)
    epochs = [[d.item for d in draws[7 * e:7 * e + 7]] for e in range(3)]
    assert all(sorted(e) == list(range(7)) for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3
    assert MixPlan([7], [1.0], seed=4).draws([0], 7)[0] != draws[:7]  # the seed changes the order


def test_stream_is_a_pure_function_of_cursors() -> None:
    plan = MixPlan([6, 9], [2.0, 1.0], seed=1)
    first, mid = plan.draws([0, 0], 10)
    second, end = plan.draws(mid, 14)
    fresh = MixPlan([6, 9], [2.0, 1.0], seed=1)
    whole, end2 = fresh.draws([0, 0], 24)
    assert first + second == whole and end == end2


def test_ranks_get_disjoint_micro_batches_that_cover_the_global_batch() -> None:
    plan = MixPlan([10, 10], [1.0, 1.0], seed=0)
    world, accum, batch, steps = 2, 2, 8, 3
    per_rank = [list(StepBatches(plan, [0, 0], steps, batch, world, r, accum)) for r in range(world)]
    assert all(len(p) == steps * accum and all(len(m) == 2 for m in p) for p in per_rank)
    globals_, c = [], [0, 0]
    for _ in range(steps):
        d, c = plan.draws(c, batch)
        globals_.append(d)
    for s in range(steps):
        got = [dr for r in range(world) for dr in sum(per_rank[r][s * accum:(s + 1) * accum], [])]
        assert sorted(got) == sorted(globals_[s])  # together: exactly the global batch, nothing twice
    seen = [set(sum(p, [])) for p in per_rank]
    assert not seen[0] & seen[1]
    assert micro_slices(8, 2, 2, 1) == [slice(2, 4), slice(6, 8)]
    with pytest.raises(RecipeError, match="divisible"):
        micro_slices(6, 2, 2, 0)


def test_trainset_samples_are_deterministic(tmp_path: Path) -> None:
    root = write_planes(tmp_path / "w", n=3, size=(30, 40))
    data = DataCfg(sources=(SourceCfg(str(root)),), crop_size=28, scale=(1.0, 1.4))
    ds = TrainSet(build_sources(data, PRE), seed=0)
    draws, _ = MixPlan([3], [1.0], seed=0).draws([0], 6)
    a, b = ds[draws[0]], ds[draws[0]]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["image"].shape == (3, 28, 28) and a["depth"].shape == (28, 28) and a["valid"].dtype == torch.bool
    # draw 3 is the same sample in the next epoch but has its own augmentation
    same_index = [d for d in draws if d.item == draws[0].item]
    assert len(same_index) == 2
    assert not torch.equal(ds[same_index[0]]["image"], ds[same_index[1]]["image"])
    batch = collate([ds[d] for d in draws[:4]])
    assert batch["image"].shape == (4, 3, 28, 28) and batch["source"].tolist() == [0] * 4
    # a different recipe seed gives different augmentations of the same sample
    other = TrainSet(build_sources(data, PRE), seed=1)[draws[0]]
    assert not torch.equal(other["image"], a["image"])


def test_source_errors_name_the_entry(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="data.sources: no training data"):
        build_sources(DataCfg(), PRE)
    with pytest.raises(RecipeError, match=r"data\.sources\.0\.path: .*not a depthany RGB-D folder"):
        build_sources(DataCfg(sources=(SourceCfg(str(tmp_path)),)), PRE)
    with pytest.raises(RecipeError, match=r"data\.sources\.0\.kind: unknown source kind 'webdataset'"):
        build_sources(DataCfg(sources=(SourceCfg(str(tmp_path), kind="webdataset"),)), PRE)
