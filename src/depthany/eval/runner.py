"""Run a protocol over a dataset split: load, predict, resize, score, aggregate, record provenance.

Example:
    >>> from depthany.eval import runner
    >>> from depthany.eval.datasets import open_dataset
    >>> from depthany.eval.sources import DirectorySource
    >>> ds = open_dataset("nyuv2", "/data/nyu")                                 # doctest: +SKIP
    >>> rep = runner.evaluate(ds, DirectorySource("preds/"), "disparity_lsq_eval_depth")  # doctest: +SKIP
    >>> rep.mean()["abs_rel"]                                                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as metrics_mod
from .datasets.base import EvalDataset
from .protocols import Protocol, check_compatible, get_protocol, score_sample
from .report import EvalReport, software_versions, utc_now
from .settings import EvalSettings
from .sources import PredictionSource

log = logging.getLogger(__name__)


def resize_to(pred: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (``align_corners=True``, as DA and ZoeDepth) of an (h, w) map to ``size`` = (H, W)."""
    if pred.shape == tuple(size):
        return pred
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(pred, dtype=np.float32))[None, None]
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=True)[0, 0].numpy()


def evaluate(dataset: EvalDataset, source: PredictionSource, protocol: str | Protocol,
             settings: EvalSettings | None = None, limit: int | None = None,
             save_predictions: str | Path | None = None, progress: bool = True,
             metric_names: list[str] | None = None, extra_provenance: dict[str, Any] | None = None,
             on_sample: Callable[[dict[str, Any]], None] | None = None) -> EvalReport:
    """Evaluate ``source`` on ``dataset`` under ``protocol``.

    Args:
        dataset: an indexed split (:func:`depthany.eval.datasets.open_dataset`).
        source: model, saved predictions or baseline (:mod:`depthany.eval.sources`).
        protocol: a protocol id or object (:data:`depthany.eval.protocols.PROTOCOLS`).
        settings: range/crop/mask settings; default: the dataset's reference settings for the protocol family.
        limit: evaluate only the first ``limit`` samples.
        save_predictions: also write each raw prediction (before alignment, at GT size) to
            ``<folder>/<id>.npy`` so later runs can use ``DirectorySource``.
        progress: show a tqdm bar on stderr.
        metric_names: subset of :data:`depthany.eval.metrics.METRICS` (default all).
        extra_provenance: merged into the report's provenance (e.g. the command line).
        on_sample: called with each per-image row as it is produced.

    Returns:
        an :class:`EvalReport`; bad samples are recorded as skipped with their reason, never fatal.

    Raises:
        ValueError: the prediction kind does not suit the protocol (checked before any work).
    """
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    check_compatible(proto, source.kind)
    settings = settings or dataset.settings(proto.family)
    names = list(metric_names or metrics_mod.METRICS)
    unknown = [n for n in names if n not in metrics_mod.METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(metrics_mod.METRICS)}")
    provenance = {
        "protocol": {"id": proto.id, "family": proto.family, "alignment": proto.alignment,
                     "fit_space": proto.fit_space, "metric_space": proto.metric_space,
                     "flip_tta": proto.flip_tta, "summary": proto.summary, "reference": proto.reference},
        "dataset": dataset.describe(),
        "settings": settings.to_dict(),
        "source": source.describe(),
        "limit": limit,
        "software": software_versions(),
        "created": utc_now(),
        **(extra_provenance or {}),
    }
    report = EvalReport(provenance, metric_names=names)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    save_dir = Path(save_predictions) if save_predictions else None

    indices: Any = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"eval {dataset.name}/{proto.id}", unit="img", leave=False)
    for i in indices:
        row = _evaluate_one(dataset, i, source, proto, settings, names, save_dir)
        report.rows.append(row)
        if on_sample is not None:
            on_sample(row)
    return report


def _evaluate_one(dataset: EvalDataset, index: int, source: PredictionSource, proto: Protocol,
                  settings: EvalSettings, names: list[str], save_dir: Path | None) -> dict[str, Any]:
    sid = dataset.ids[index]
    row: dict[str, Any] = {"id": sid, "status": "skipped", "reason": ""}
    try:
        sample = dataset.load(index)
        row["id"] = sample.id
        pred = source.predict(sample.id, sample.rgb, sample.depth.shape)
        pred = resize_to(pred, sample.depth.shape)
        if save_dir is not None:
            path = save_dir / f"{sample.id}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, pred.astype(np.float32))
        score = score_sample(pred, source.kind, sample.depth, proto, settings, sample.mask, sample.full_shape,
                             sample.offset, names)
    except Exception as e:  # a bad sample is reported and skipped; the run goes on
        row["reason"] = f"{type(e).__name__}: {e}"
        log.warning("skipping %s: %s", sid, row["reason"])
        return row
    row.update(status="ok", n_valid=score.n_valid, n_fit=score.n_fit, scale=score.scale, shift=score.shift,
               degenerate_fit=score.degenerate_fit, n_nonfinite=score.n_nonfinite, **score.metrics)
    return row
