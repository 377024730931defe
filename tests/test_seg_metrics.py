"""mIoU / mAcc / aAcc as mmsegmentation computes them, against an independent confusion-matrix computation and
hand-computed cases: areas accumulated over the dataset, ignore index, NaN classes left out of the means."""

from __future__ import annotations

import math

import numpy as np
import pytest

from depthany.seg.metrics import Areas, IoUAccumulator, class_rows, intersect_and_union, total_area_to_metrics
from seg_helpers import confusion_oracle


def test_hand_computed_case() -> None:
    label = np.array([[0, 0, 1], [1, 255, 2]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 2, 0]], np.uint8)
    a = intersect_and_union(pred, label, 4)
    assert a.intersect.tolist() == [1, 2, 0, 0]
    assert a.pred.tolist() == [2, 3, 0, 0]  # the 2 predicted on the ignored pixel is not counted
    assert a.label.tolist() == [2, 2, 1, 0]
    assert a.union.tolist() == [3, 3, 1, 0]
    m = total_area_to_metrics(a)
    assert m.aAcc == pytest.approx(60.0)
    assert m.mIoU == pytest.approx((1 / 3 + 2 / 3 + 0) / 3 * 100)  # class 3: absent from both -> NaN, left out
    assert m.mAcc == pytest.approx((1 / 2 + 1 + 0) / 3 * 100)
    assert math.isnan(m.iou[3]) and math.isnan(m.acc[3])
    rows = class_rows(m, ["a", "b", "c", "d"])
    assert rows["d"] == {"IoU": None, "Acc": None, "gt_pixels": 0, "pred_pixels": 0}
    assert rows["b"]["IoU"] == pytest.approx(200 / 3)


def test_class_predicted_but_absent_from_gt_counts_in_miou_not_in_macc() -> None:
    label = np.array([[0, 0], [1, 1]], np.uint8)
    pred = np.array([[0, 2], [1, 1]], np.uint8)  # class 2 never in the ground truth
    m = total_area_to_metrics(intersect_and_union(pred, label, 3))
    assert m.iou[2] == 0.0 and math.isnan(m.acc[2])
    assert m.mIoU == pytest.approx((1 / 2 + 1 + 0) / 3 * 100)
    assert m.mAcc == pytest.approx((1 / 2 + 1) / 2 * 100)


def test_areas_are_accumulated_over_the_dataset_not_averaged_per_image() -> None:
    acc = IoUAccumulator(2)
    acc.add(np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint8))  # 100 px of class 0, all right
    one = np.array([[1, 0]], np.uint8)
    acc.add(one, np.array([[1, 1]], np.uint8))  # class 1: 1 of 2 right, one class-1 pixel predicted as 0
    m = acc.summary()
    # dataset areas: class 0 inter 100, union 101; class 1 inter 1, union 2
    assert m.mIoU == pytest.approx((100 / 101 + 1 / 2) / 2 * 100)
    per_image_mean = (100.0 + (0 / 1 + 1 / 2) / 2 * 100) / 2  # what averaging per image would give instead
    assert per_image_mean == 62.5 and abs(m.mIoU - per_image_mean) > 10
    assert acc.images == 2


@pytest.mark.parametrize("seed", range(5))
def test_random_images_against_the_confusion_matrix_oracle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 25))
    preds, labels = [], []
    acc = IoUAccumulator(c)
    for _ in range(int(rng.integers(1, 6))):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        g = rng.integers(0, c, (h, w)).astype(np.uint8)
        g[rng.random((h, w)) < 0.2] = 255  # ignored
        g[rng.random((h, w)) < 0.05] = 200  # out of range but not ignored (mmseg's histc drops it from bins)
        p = np.where(rng.random((h, w)) < 0.6, g, rng.integers(0, c + 3, (h, w))).astype(np.uint8)
        p[g == 255] = rng.integers(0, c, (g == 255).sum())
        preds.append(p)
        labels.append(g)
        acc.add(p, g)
    a_acc, miou, macc, iou, accs = confusion_oracle(preds, labels, c)
    m = acc.summary()
    assert m.aAcc == pytest.approx(a_acc, rel=1e-12)
    assert m.mIoU == pytest.approx(miou, rel=1e-12)
    assert m.mAcc == pytest.approx(macc, rel=1e-12)
    np.testing.assert_allclose(m.iou, iou, rtol=1e-12)
    np.testing.assert_allclose(m.acc, accs, rtol=1e-12)
    rounded = acc.mmseg_summary()  # float32 sums like mmseg, then np.round(., 2): equal at these sizes
    assert rounded == {"aAcc": round(a_acc, 2), "mIoU": round(miou, 2), "mAcc": round(macc, 2)}


def test_float32_accumulation_of_mmseg_is_reproduced() -> None:
    """mmseg sums float32 histc areas image by image; past 2**24 pixels a class's sum rounds."""
    acc = IoUAccumulator(2)
    big = 2**24 + 1  # not representable in float32
    for _ in range(3):
        acc.add_areas(Areas(np.array([big, 1]), np.array([big + 5, 4]), np.array([big + 2, 3]), np.array([big + 4, 2])))
    assert acc.areas.intersect[0] == 3 * big  # exact
    f32 = [np.float32(0)] * 4
    for _ in range(3):
        f32 = [f32[0] + np.float32(big), f32[1] + np.float32(big + 5), f32[2] + np.float32(big + 2),
               f32[3] + np.float32(big + 4)]
    inter1, union1, label1 = np.float32(3), np.float32(12), np.float32(6)
    iou = np.array([f32[0] / f32[1], inter1 / union1], np.float32)
    assert acc.mmseg_summary()["mIoU"] == round(float(np.round(np.nanmean(iou) * 100, 2)), 2)
    a_acc = (f32[0] + inter1) / (f32[3] + label1)
    assert acc.mmseg_summary()["aAcc"] == round(float(np.round(a_acc * 100, 2)), 2)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        intersect_and_union(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), 3)
    with pytest.raises(ValueError, match="integer class indices"):
        intersect_and_union(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8), 3)
    with pytest.raises(ValueError, match="num_classes"):
        IoUAccumulator(1)
    empty = IoUAccumulator(3)
    assert math.isnan(empty.summary().mIoU) and math.isnan(empty.mmseg_summary()["aAcc"])
