"""Shared helpers for the segmentation tests: an independent metric oracle."""

from __future__ import annotations

import math

import numpy as np


def confusion_oracle(preds: list[np.ndarray], labels: list[np.ndarray], c: int, ignore: int = 255
                     ) -> tuple[float, float, float, list[float], list[float]]:
    """An independent reading of mmseg's IoUMetric: one (C+1) x (C+1) confusion matrix over all images, where
    index C collects values outside 0..C-1 (they count for no class, but the pixel still counts for the other
    side). Returns aAcc, mIoU, mAcc in percent and per-class IoU / Acc (NaN where 0/0)."""
    conf = np.zeros((c + 1, c + 1), np.int64)
    for p, g in zip(preds, labels):
        keep = g != ignore
        gi = np.where((g >= 0) & (g < c), g, c)[keep].astype(np.int64)
        pi = np.where((p >= 0) & (p < c), p, c)[keep].astype(np.int64)
        np.add.at(conf, (gi, pi), 1)
    inter = np.diag(conf)[:c].astype(float)
    gt = conf[:c, :].sum(1).astype(float)
    pr = conf[:, :c].sum(0).astype(float)
    iou = [inter[k] / (gt[k] + pr[k] - inter[k]) if gt[k] + pr[k] - inter[k] else math.nan for k in range(c)]
    acc = [inter[k] / gt[k] if gt[k] else math.nan for k in range(c)]

    def nanmean(xs: list[float]) -> float:
        kept = [x for x in xs if not math.isnan(x)]
        return sum(kept) / len(kept) * 100

    return inter.sum() / gt.sum() * 100, nanmean(iou), nanmean(acc), iou, acc
