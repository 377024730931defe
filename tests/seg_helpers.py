"""Shared helpers for the segmentation tests: an independent metric oracle, Cityscapes files in the released layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from depthany import zoo
from depthany.data.classes import ClassTable, make_table
from depthany.seg.model import SegmentationModel
from depthany.seg.spec import Mask2FormerCfg, make_seg_spec


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


# cityscapesscripts/helpers/labels.py: (name, id, trainId) of the 34 labels with an id in the label images
CS_LABELS = [
    ("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255), ("out of roi", 3, 255),
    ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255), ("road", 7, 0), ("sidewalk", 8, 1),
    ("parking", 9, 255), ("rail track", 10, 255), ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4),
    ("guard rail", 14, 255), ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8), ("terrain", 22, 9), ("sky", 23, 10),
    ("person", 24, 11), ("rider", 25, 12), ("car", 26, 13), ("truck", 27, 14), ("bus", 28, 15),
    ("caravan", 29, 255), ("trailer", 30, 255), ("train", 31, 16), ("motorcycle", 32, 17), ("bicycle", 33, 18),
]


def png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def cityscapes_root(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, dict[str, np.ndarray]]:
    """Two cities in the released layout: one with labelIds only, one with mmseg's labelTrainIds too."""
    root = tmp_path / "cityscapes"
    gts = {}
    for city, frame, with_train_ids in (("frankfurt", "000000_000294", False), ("aachen", "000001_000019", True)):
        stem = f"{city}_{frame}"
        png(root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png",
            rng.integers(0, 255, (6, 8, 3)).astype(np.uint8))
        ids = rng.integers(0, 34, (6, 8)).astype(np.uint8)
        png(root / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png", ids)
        expected = np.vectorize({i: t for _, i, t in CS_LABELS}.__getitem__)(ids).astype(np.uint8)
        if with_train_ids:  # mmseg's converted file wins; make it differ so the test sees which one is read
            expected = np.where(expected == 255, expected, (expected + 1) % 19).astype(np.uint8)
            png(root / "gtFine" / "val" / city / f"{stem}_gtFine_labelTrainIds.png", expected)
        gts[f"{city}/{stem}_leftImg8bit"] = expected
    return root, gts


ENC = zoo.EncoderSpec("seg-test", 32, 4, 2)
CLASSES = make_table("toy", [("a", (255, 0, 0)), ("b", (0, 255, 0)), ("c", (0, 0, 255)), ("d", (9, 9, 9))])
M2F = Mask2FormerCfg(feat_channels=32, out_channels=32, num_queries=5, decoder_layers=2, num_heads=2,
                     ffn_channels=32, encoder_layers=1, encoder_ffn_channels=32, train_points=32)


def lively(head: str = "linear", seed: int = 0, classes: ClassTable = CLASSES, **changes: object) -> SegmentationModel:
    """A tiny model with random weights large enough that its output varies over the image."""
    spec = make_seg_spec(ENC, classes, head, (0, 1, 2, 3), mask2former=M2F, **changes)  # type: ignore[arg-type]
    model = SegmentationModel(spec)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if name.endswith("weight") and p.dim() == 1 else 0.0
            p.copy_(base + torch.randn(p.shape, generator=g) * (0.2 if p.dim() > 1 else 0.05))
    return model.eval()
