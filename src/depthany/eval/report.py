"""Evaluation results with full provenance: per-image rows, the per-image mean, JSON, CSV and a text table.

The dataset score is the unweighted mean over evaluated images of per-image metrics (Marigold
``MetricTracker``, ZoeDepth ``RunningAverageDict``, BTS), never a pixel-pooled value.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import platform
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOCOL_NOTE = ("Numbers are labelled with the protocol that produced them. The Depth Anything zero-shot "
                 "evaluation code and settings were never released, so no protocol here is claimed to "
                 "reproduce the papers' tables; compare numbers only under the same protocol id.")
TABLE_METRICS = ("abs_rel", "delta1", "delta2", "delta3", "rmse", "rmse_log", "sq_rel", "log10", "silog_bts")


def software_versions() -> dict[str, str]:
    """Versions of depthany and the libraries that influence the numbers."""
    from .. import __version__

    out = {"depthany": __version__, "python": platform.python_version(), "numpy": _version("numpy")}
    for mod in ("torch", "PIL", "h5py", "scipy"):
        if mod in sys.modules or mod == "torch":
            out[mod] = _version(mod)
    return out


def _version(module: str) -> str:
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", "unknown"))
    except ImportError:
        return "not installed"


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _json_safe(x: Any) -> Any:
    """inf/NaN are not JSON: write them as null (the provenance records ``max_depth_is_inf``)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    return x


def write_json(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n")


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})


@dataclass
class EvalReport:
    """The outcome of one evaluation run.

    Attributes:
        provenance: protocol, dataset, split, settings (range, crop, mask), prediction source (model,
            weights, input size), software versions, date and command.
        rows: one dict per listed sample: ``id``, ``status`` ("ok" or "skipped"), ``reason``, ``n_valid``,
            ``scale``, ``shift``, ``degenerate_fit`` and every metric.
        metric_names: the metrics computed, in order.
    """

    provenance: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    metric_names: list[str] = field(default_factory=list)

    @property
    def evaluated(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def num_evaluated(self) -> int:
        return len(self.evaluated)

    @property
    def num_skipped(self) -> int:
        return len(self.rows) - self.num_evaluated

    def skip_reasons(self) -> dict[str, int]:
        return dict(Counter(r["reason"].split(":")[0] for r in self.rows if r["status"] != "ok"))

    def mean(self) -> dict[str, float]:
        """Unweighted mean over evaluated images of each per-image metric (empty when none evaluated)."""
        ok = self.evaluated
        if not ok:
            return {}
        return {m: math.fsum(r[m] for r in ok) / len(ok) for m in self.metric_names}

    def counts(self) -> dict[str, Any]:
        return {"listed": len(self.rows), "evaluated": self.num_evaluated, "skipped": self.num_skipped,
                "skip_reasons": self.skip_reasons(),
                "degenerate_fit": sum(1 for r in self.evaluated if r.get("degenerate_fit")),
                "dropped_by_reader": self.provenance.get("dataset", {}).get("dropped", {})}

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.mean(), "counts": self.counts(), "provenance": self.provenance,
                "note": PROTOCOL_NOTE}

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``metrics.json`` (means, counts, provenance) and ``per_image.csv``; returns both paths."""
        out = Path(out_dir)
        json_path, csv_path = out / "metrics.json", out / "per_image.csv"
        write_json(json_path, self.to_dict())
        columns = ["id", "status", "reason", "n_valid", "n_fit", "scale", "shift", "degenerate_fit",
                   "n_nonfinite", *self.metric_names]
        write_csv(csv_path, self.rows, columns)
        return json_path, csv_path

    def table(self, metrics: tuple[str, ...] = TABLE_METRICS) -> str:
        """A short human-readable summary: header lines with provenance, then one metric per line."""
        p = self.provenance
        ds, st, src = p.get("dataset", {}), p.get("settings", {}), p.get("source", {})
        what = src.get("model") or src.get("baseline") or src.get("folder")
        max_d = "inf" if st.get("max_depth_is_inf") else st.get("max_depth")
        lines = [
            f"protocol  {p.get('protocol', {}).get('id')}   dataset {ds.get('dataset')} ({ds.get('split')})   "
            f"source {src.get('source')}: {what}",
            f"range     ({st.get('min_depth')}, {max_d}) m   crop {st.get('crop')}"
            + (f" [{st.get('crop_order')}]" if str(st.get("crop", "")).startswith("kitti") else "")
            + f"   mask {st.get('mask_mode')}   fit max res {st.get('alignment_max_res')}",
            f"images    {self.num_evaluated} evaluated, {self.num_skipped} skipped"
            + (f" {self.skip_reasons()}" if self.num_skipped else ""),
        ]
        mean = self.mean()
        if mean:
            width = max(len(m) for m in metrics)
            lines += [f"  {m:<{width}}  {mean[m]:.4f}" for m in metrics if m in mean]
        return "\n".join(lines)
