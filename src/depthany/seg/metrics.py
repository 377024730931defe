"""Semantic-segmentation metrics exactly as mmsegmentation computes them (``IoUMetric``).

mmsegmentation (``mmseg/evaluation/metrics/iou_metric.py``, open-mmlab/mmsegmentation):

* per image, pixels whose ground truth equals ``ignore_index`` (255) are dropped; ``torch.histc`` with
  ``num_classes`` bins over [0, num_classes - 1] counts, per class, the intersection (prediction == label),
  the predicted pixels and the labelled pixels; union = pred + label - intersection. Values outside
  [0, num_classes - 1] fall outside every bin: a label such as 200 (not 255) still removes nothing, but
  counts for no class, while the prediction at that pixel is counted;
* the four per-class areas are **summed over the whole dataset** (not averaged per image);
* ``aAcc = sum(intersection) / sum(label)``, per class ``IoU = intersection / union`` and
  ``Acc = intersection / label``: 0/0 gives NaN, so a class absent from both ground truth and prediction has
  IoU NaN and a class absent from the ground truth has Acc NaN (even if predicted: then its IoU is 0);
* ``mIoU`` / ``mAcc`` are ``np.nanmean`` over classes (NaN classes excluded), and every summary is x100 and
  rounded to 2 decimals.

Here counts are exact int64 and ratios float64; summaries are in percent and *not* rounded (mmseg rounds).
``torch.histc`` returns float32, so mmseg accumulates the areas in float32: for a class with more than 2**24
(16.7 M) pixels over a dataset the sums can round. :meth:`IoUAccumulator.mmseg_summary` repeats that float32
arithmetic and the rounding, to compare with numbers mmseg printed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

IGNORE_INDEX = 255


@dataclass(frozen=True)
class Areas:
    """Per-class pixel counts of one image or a whole dataset, each (C,) int64."""

    intersect: np.ndarray
    union: np.ndarray
    pred: np.ndarray
    label: np.ndarray

    def __add__(self, other: Areas) -> Areas:
        return Areas(self.intersect + other.intersect, self.union + other.union, self.pred + other.pred,
                     self.label + other.label)


def _check_num_classes(num_classes: int) -> None:
    if not isinstance(num_classes, int) or num_classes < 2:
        # torch.histc with min == max uses the data range instead: mmseg's metric is undefined for 1 class
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")


def intersect_and_union(pred: np.ndarray, label: np.ndarray, num_classes: int,
                        ignore_index: int = IGNORE_INDEX) -> Areas:
    """mmseg's ``IoUMetric.intersect_and_union`` for one image.

    Args:
        pred: (H, W) integer predicted class indices.
        label: (H, W) integer ground truth, ``ignore_index`` = no label.
        num_classes: C.
        ignore_index: ground-truth value excluded from every count.

    Returns:
        :class:`Areas` of shape (C,) each.

    Raises:
        ValueError: shapes differ, non-integer arrays, or fewer than 2 classes.
    """
    _check_num_classes(num_classes)
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction {pred.shape} and label {label.shape} shapes differ")
    for name, a in (("prediction", pred), ("label", label)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    keep = label != ignore_index
    p = pred[keep].astype(np.int64)
    g = label[keep].astype(np.int64)

    def hist(v: np.ndarray) -> np.ndarray:  # histc: values outside [0, C-1] are in no bin
        v = v[(v >= 0) & (v < num_classes)]
        return np.bincount(v, minlength=num_classes).astype(np.int64)

    inter = hist(p[p == g])
    area_pred, area_label = hist(p), hist(g)
    return Areas(inter, area_pred + area_label - inter, area_pred, area_label)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(num, np.float64) / np.asarray(den, np.float64)


@dataclass(frozen=True)
class SegMetrics:
    """Dataset-level results.

    Attributes:
        aAcc, mIoU, mAcc: percent, unrounded (mmseg's values before its ``np.round(x, 2)``); NaN when nothing
            was labelled.
        iou, acc: (C,) float64 fractions per class; NaN where mmseg gives NaN.
        areas: the accumulated :class:`Areas`.
    """

    aAcc: float
    mIoU: float
    mAcc: float
    iou: np.ndarray
    acc: np.ndarray
    areas: Areas


def _nanmean_percent(x: np.ndarray) -> float:
    finite = x[~np.isnan(x)]
    return float(finite.mean() * 100) if finite.size else math.nan


def total_area_to_metrics(areas: Areas) -> SegMetrics:
    """mmseg's ``total_area_to_metrics`` + the summary of ``compute_metrics`` (without the rounding)."""
    total_label = int(areas.label.sum())
    a_acc = float(areas.intersect.sum()) / total_label * 100 if total_label else math.nan
    iou, acc = _ratio(areas.intersect, areas.union), _ratio(areas.intersect, areas.label)
    return SegMetrics(a_acc, _nanmean_percent(iou), _nanmean_percent(acc), iou, acc, areas)


@dataclass
class IoUAccumulator:
    """Sums per-class areas over a dataset, image by image, in int64 (exact) and float32 (as mmseg).

    Example:
        >>> acc = IoUAccumulator(3)
        >>> _ = acc.add(np.array([[0, 1], [2, 2]]), np.array([[0, 1], [1, 255]]))
        >>> round(acc.summary().mIoU, 4)
        66.6667
    """

    num_classes: int
    ignore_index: int = IGNORE_INDEX
    images: int = 0
    _total: Areas | None = field(default=None, repr=False)
    _f32: list[np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_num_classes(self.num_classes)

    def add(self, pred: np.ndarray, label: np.ndarray) -> Areas:
        """Count one image; returns its own :class:`Areas`."""
        a = intersect_and_union(pred, label, self.num_classes, self.ignore_index)
        self.add_areas(a)
        return a

    def add_areas(self, a: Areas) -> None:
        """Add counts computed elsewhere (another process, a cache)."""
        self._total = a if self._total is None else self._total + a
        parts = [a.intersect, a.union, a.pred, a.label]
        # python's sum() over float32 histc tensors, in image order, as mmseg's compute_metrics does
        self._f32 = [p.astype(np.float32) for p in parts] if self._f32 is None else \
            [np.float32(0) + s + p.astype(np.float32) for s, p in zip(self._f32, parts)]
        self.images += 1

    @property
    def areas(self) -> Areas:
        """The accumulated counts (zeros before any image)."""
        if self._total is None:
            z = np.zeros(self.num_classes, np.int64)
            return Areas(z, z.copy(), z.copy(), z.copy())
        return self._total

    def summary(self) -> SegMetrics:
        """aAcc, mIoU, mAcc (percent, unrounded) and per-class IoU / Acc from the exact counts."""
        return total_area_to_metrics(self.areas)

    def mmseg_summary(self) -> dict[str, float]:
        """aAcc, mIoU, mAcc computed with mmseg's float32 sums and ``np.round(np.nanmean(x) * 100, 2)``."""
        if self._f32 is None:
            return {"aAcc": math.nan, "mIoU": math.nan, "mAcc": math.nan}
        inter, union, _, label = self._f32
        with np.errstate(divide="ignore", invalid="ignore"):
            values = {"aAcc": inter.sum() / label.sum(), "mIoU": inter / union, "mAcc": inter / label}
        out = {}
        for k, v in values.items():
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(v) if np.any(~np.isnan(v)) else np.float32(np.nan)
            out[k] = round(float(np.round(mean * 100, 2)), 2)  # float32 84.8 -> 84.8, not 84.80000305
        return out


def per_image_scores(areas: Areas) -> dict[str, float]:
    """aAcc, mIoU, mAcc (percent) of a single image's counts (for per-image tables; not a dataset score)."""
    m = total_area_to_metrics(areas)
    return {"aAcc": m.aAcc, "mIoU": m.mIoU, "mAcc": m.mAcc}


def class_rows(metrics: SegMetrics, names: Sequence[str]) -> dict[str, dict[str, float | int | None]]:
    """Per-class IoU / Acc in percent (None where mmseg gives NaN) and pixel counts, keyed by class name."""
    if len(names) != len(metrics.iou):
        raise ValueError(f"{len(names)} class names for {len(metrics.iou)} classes")

    def pct(x: float) -> float | None:
        return None if math.isnan(x) else float(x) * 100

    a = metrics.areas
    return {n: {"IoU": pct(metrics.iou[i]), "Acc": pct(metrics.acc[i]), "gt_pixels": int(a.label[i]),
                "pred_pixels": int(a.pred[i])} for i, n in enumerate(names)}
