"""Score segmentations over a dataset split: mmseg's mIoU / mAcc / aAcc, per class, per image, with provenance.

Predictions come from any function of a :class:`~depthany.seg.datasets.SegSample` (a model through
:class:`~depthany.seg.segmenter.Segmenter`, or saved files through :class:`PredictionFolder`). The dataset
score accumulates per-class areas over all scored images (:mod:`depthany.seg.metrics`); ``per_image.csv``
adds each image's own numbers, which are informative only (mmseg has none).

Saved predictions are ``<dir>/<sample id>.png``: 8-bit single-channel PNGs (mode L, or P whose indices are
the labels) holding class indices in the metric's space: Cityscapes train ids 0-18, ADE20K class indices
0-149 (GT 0 is ignored and GT k means class k - 1, mmseg's reduce-zero-label; note that mmseg's own
``format_only`` output adds 1 back), synthetic class indices. Values outside 0..C-1 count for no class.

A missing, unreadable or wrongly sized prediction is recorded as a skipped row with its reason and left out
of the dataset score (mmseg would stop); ``counts`` in ``metrics.json`` says how many.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.classes import ClassTable
from ..eval.report import software_versions, utc_now, write_csv, write_json
from ..io.atomic import atomic_write
from .datasets.base import DatasetError, SegDataset, SegSample
from .metrics import IoUAccumulator, SegMetrics, class_rows, per_image_scores

log = logging.getLogger(__name__)

CSV_COLUMNS = ["id", "status", "reason", "pixels", "aAcc", "mIoU", "mAcc", "classes_present"]
NOTE = ("aAcc, mIoU and mAcc are in percent and unrounded (mmseg rounds to 2 decimals; 'mmseg_rounded' repeats "
        "its float32 arithmetic and rounding). Per-class IoU is null where mmseg gives NaN (class absent from "
        "ground truth and prediction), Acc where the class is absent from the ground truth. Per-image numbers "
        "in per_image.csv are informative: the dataset score accumulates areas over all images.")


def read_prediction_png(path: Path) -> np.ndarray:
    """A saved prediction as (H, W) uint8 class indices.

    Raises:
        DatasetError: missing file, undecodable, or not an 8-bit single-channel PNG (mode L or P).
    """
    if not path.is_file():
        raise DatasetError(f"prediction not found: {path}")
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P"):
                raise DatasetError(f"{path}: a prediction must be an 8-bit single-channel PNG of class indices "
                                   f"(mode L or P), got mode {im.mode!r}")
            return np.array(im, dtype=np.uint8)
    except OSError as e:
        raise DatasetError(f"cannot decode prediction {path}: {e}") from e


def write_label_png(path: Path, labels: np.ndarray) -> Path:
    """Write (H, W) class indices (0..255) as an 8-bit PNG, atomically; creates parent folders."""
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.size and (lab.min() < 0 or lab.max() > 255):
        raise ValueError(f"{path}: label images are (H, W) with values in 0..255, got shape {lab.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(lab.astype(np.uint8))
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


@dataclass
class PredictionFolder:
    """Saved predictions ``<folder>/<sample id>.png`` (module docstring)."""

    folder: Path

    def __call__(self, sample: SegSample) -> np.ndarray:
        return read_prediction_png(Path(self.folder) / f"{sample.id}.png")

    def describe(self) -> dict[str, Any]:
        return {"source": "predictions", "folder": str(self.folder)}


@dataclass
class SegReport:
    """The outcome of one scoring run.

    Attributes:
        provenance: dataset, split, prediction source, software, date.
        classes: the class table the indices refer to.
        accumulator: the dataset's accumulated areas.
        rows: one dict per listed sample (``CSV_COLUMNS``).
    """

    provenance: dict[str, Any]
    classes: ClassTable
    accumulator: IoUAccumulator
    rows: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> SegMetrics:
        """Dataset-level aAcc / mIoU / mAcc (percent, unrounded) and per-class IoU / Acc."""
        return self.accumulator.summary()

    def counts(self) -> dict[str, Any]:
        ok = sum(1 for r in self.rows if r["status"] == "ok")
        return {"listed": len(self.rows), "scored": ok, "skipped": len(self.rows) - ok}

    def to_dict(self) -> dict[str, Any]:
        m = self.metrics()
        return {"metrics": {"aAcc": m.aAcc, "mIoU": m.mIoU, "mAcc": m.mAcc},
                "per_class": class_rows(m, self.classes.names),
                "mmseg_rounded": self.accumulator.mmseg_summary(),
                "counts": self.counts(), "provenance": self.provenance, "note": NOTE}

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``metrics.json`` and ``per_image.csv`` into ``out_dir``; returns both paths."""
        out = Path(out_dir)
        json_path, csv_path = out / "metrics.json", out / "per_image.csv"
        write_json(json_path, self.to_dict())
        write_csv(csv_path, self.rows, CSV_COLUMNS)
        return json_path, csv_path

    def table(self) -> str:
        """A short text summary: dataset, counts, the three scores."""
        m, p = self.metrics(), self.provenance
        ds = p.get("dataset", {})
        lines = [f"dataset   {ds.get('dataset')} ({ds.get('split')})   {len(self.classes)} classes   "
                 f"source {p.get('source', {}).get('source')}",
                 f"images    {self.counts()['scored']} scored, {self.counts()['skipped']} skipped"]
        lines += [f"  {k:<5} {v:.4f}" for k, v in (("aAcc", m.aAcc), ("mIoU", m.mIoU), ("mAcc", m.mAcc))]
        return "\n".join(lines)


def score(dataset: SegDataset, predict: Callable[[SegSample], np.ndarray], limit: int | None = None,
          source: dict[str, Any] | None = None, save_predictions: str | Path | None = None,
          progress: bool = False, on_sample: Callable[[dict[str, Any]], None] | None = None) -> SegReport:
    """Score ``predict`` on ``dataset``.

    Args:
        dataset: an indexed split (:func:`~depthany.seg.datasets.open_seg_dataset`).
        predict: sample -> (H, W) integer class indices (the label image's size).
        limit: score only the first ``limit`` samples.
        source: provenance of the predictions (model, weights, inference settings, or the folder).
        save_predictions: also write each prediction to ``<folder>/<id>.png`` (for later scoring).
        progress: show a tqdm bar on stderr.
        on_sample: called with each per-image row as it is produced.

    Returns:
        a :class:`SegReport`; bad samples are recorded as skipped with their reason, never fatal.
    """
    classes = dataset.classes
    acc = IoUAccumulator(len(classes), classes.ignore_index)
    report = SegReport({"dataset": dataset.describe(), "source": source or {}, "limit": limit,
                        "metric": "mmseg IoUMetric (areas accumulated over the dataset, nanmean over classes)",
                        "software": software_versions(), "created": utc_now()}, classes, acc)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    indices: Any = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"segeval {dataset.name}", unit="img", leave=False)
    save_dir = Path(save_predictions) if save_predictions else None
    for i in indices:
        row = _score_one(dataset, i, predict, acc, save_dir)
        report.rows.append(row)
        if on_sample is not None:
            on_sample(row)
    return report


def _score_one(dataset: SegDataset, index: int, predict: Callable[[SegSample], np.ndarray], acc: IoUAccumulator,
               save_dir: Path | None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": dataset.ids[index], "status": "skipped", "reason": ""}
    try:
        sample = dataset.load(index)
        pred = np.asarray(predict(sample))
        if pred.shape != sample.labels.shape:
            raise DatasetError(f"prediction is {pred.shape[1] if pred.ndim > 1 else '?'}x{pred.shape[0]} but the "
                               f"label image is {sample.labels.shape[1]}x{sample.labels.shape[0]}")
        if save_dir is not None:
            write_label_png(save_dir / f"{sample.id}.png", pred)
        areas = acc.add(pred, sample.labels)
    except Exception as e:  # a bad sample is reported and skipped; the run goes on
        row["reason"] = f"{type(e).__name__}: {e}"
        log.warning("skipping %s: %s", row["id"], row["reason"])
        return row
    scores = per_image_scores(areas)
    row.update(status="ok", pixels=int(areas.label.sum()), classes_present=int((areas.label > 0).sum()),
               **{k: (None if math.isnan(v) else v) for k, v in scores.items()})
    return row


def score_predictions(dataset: SegDataset, predictions: str | Path, limit: int | None = None,
                      progress: bool = False) -> SegReport:
    """Score saved predictions ``<predictions>/<sample id>.png`` on ``dataset`` (module docstring).

    Raises:
        DatasetError: the predictions folder does not exist.
    """
    folder = Path(predictions)
    if not folder.is_dir():
        raise DatasetError(f"--predictions {folder} is not a folder")
    src = PredictionFolder(folder)
    return score(dataset, src, limit, src.describe(), progress=progress)
