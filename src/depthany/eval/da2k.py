"""DA-2K (Depth Anything V2): pairwise relative-depth ordering accuracy, per scenario and overall.

``root/annotations.json`` maps an image path (relative to ``root``) to a list of
``{"point1": [h, w], "point2": [h, w], "closer_point": "point1"}`` (row, column in pixels of the image as
stored; the release always names point1 as the closer one). A pair is correct when the prediction orders it
the same way: for disparity outputs the closer point has the **larger** value, for depth outputs the
**smaller** one. Ties count as wrong. Accuracy = correct / pairs, per scenario and over all pairs.

The scenario is the first folder of the image path that names one of the eight DA-2K scenarios (else the
first folder). No official scoring script exists; this follows the paper's definition and a third-party
``eval_da2k`` (predict, upsample bilinearly to image size, compare).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from .datasets.base import DatasetError, read_rgb
from .report import PROTOCOL_NOTE, software_versions, utc_now, write_csv, write_json
from .runner import resize_to
from .sources import PredictionSource

log = logging.getLogger(__name__)

SCENARIOS = ("indoor", "outdoor", "non_real", "transparent_reflective", "adverse_style", "aerial", "underwater",
             "object")
PROTOCOL_ID = "da2k_pairwise"


@dataclass(frozen=True)
class PointPair:
    """One annotation: ``closer`` is ``"point1"`` or ``"point2"``; points are (row, col) pixels."""

    point1: tuple[int, int]
    point2: tuple[int, int]
    closer: str = "point1"


def read_annotations(path: str | Path) -> dict[str, list[PointPair]]:
    """Parse ``annotations.json``.

    Raises:
        DatasetError: missing file, or an entry without two [h, w] points and a valid ``closer_point``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"da2k: annotations not found: {path}")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected an object mapping image paths to annotation lists")
    out: dict[str, list[PointPair]] = {}
    for image, items in raw.items():
        pairs = []
        for j, a in enumerate(items):
            try:
                p1, p2 = a["point1"], a["point2"]
                closer = a.get("closer_point", "point1")
                pair = PointPair((round(p1[0]), round(p1[1])), (round(p2[0]), round(p2[1])), closer)
            except (KeyError, TypeError, IndexError) as e:
                raise DatasetError(f"{path}: {image} annotation {j} is malformed ({e!r}): {a}") from e
            if closer not in ("point1", "point2"):
                raise DatasetError(f"{path}: {image} annotation {j}: closer_point must be point1 or point2")
            pairs.append(pair)
        out[image] = pairs
    return out


def scenario_of(image_path: str) -> str:
    """The DA-2K scenario named by the path's folders (first folder as fallback, ``"unknown"`` if none)."""
    parts = PurePosixPath(image_path.replace("\\", "/")).parts[:-1]
    for part in parts:
        if part in SCENARIOS:
            return part
    return parts[0] if parts else "unknown"


def pair_correct(values: np.ndarray, pair: PointPair, kind: str) -> bool:
    """Whether the (H, W) prediction orders ``pair`` correctly (strict: ties are wrong).

    Args:
        values: disparity (bigger = closer) when ``kind == "disparity"``, depth (smaller = closer) for ``"depth"``.

    Raises:
        ValueError: a point outside the image, or an unknown kind.
    """
    h, w = values.shape
    for r, c in (pair.point1, pair.point2):
        if not (0 <= r < h and 0 <= c < w):
            raise ValueError(f"point ({r}, {c}) outside the {h}x{w} prediction")
    near, far = (pair.point1, pair.point2) if pair.closer == "point1" else (pair.point2, pair.point1)
    a, b = float(values[near]), float(values[far])
    if kind == "disparity":
        return a > b
    if kind == "depth":
        return a < b
    raise ValueError(f"kind must be 'disparity' or 'depth', got {kind!r}")


@dataclass
class Da2kReport:
    """DA-2K result: per-image rows (``id``, ``scenario``, ``pairs``, ``correct`` or a skip reason)."""

    provenance: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def accuracy(self) -> dict[str, Any]:
        """``{"overall": acc, "per_scenario": {name: acc}, "pairs": n, "pairs_per_scenario": {...}}`` (fractions)."""
        ok = [r for r in self.rows if r["status"] == "ok"]
        per: dict[str, list[int]] = {}
        for r in ok:
            c = per.setdefault(r["scenario"], [0, 0])
            c[0] += r["correct"]
            c[1] += r["pairs"]
        total_c, total_n = sum(c for c, _ in per.values()), sum(n for _, n in per.values())
        return {"overall": total_c / total_n if total_n else None, "pairs": total_n,
                "per_scenario": {k: v[0] / v[1] for k, v in sorted(per.items()) if v[1]},
                "pairs_per_scenario": {k: v[1] for k, v in sorted(per.items())}}

    def counts(self) -> dict[str, int]:
        ok = sum(1 for r in self.rows if r["status"] == "ok")
        return {"listed": len(self.rows), "evaluated": ok, "skipped": len(self.rows) - ok}

    def save(self, out_dir: str | Path) -> tuple[Path, Path]:
        out = Path(out_dir)
        json_path, csv_path = out / "metrics.json", out / "per_image.csv"
        write_json(json_path, {"metrics": self.accuracy(), "counts": self.counts(), "provenance": self.provenance,
                               "note": PROTOCOL_NOTE})
        write_csv(csv_path, self.rows, ["id", "scenario", "status", "reason", "pairs", "correct"])
        return json_path, csv_path

    def table(self) -> str:
        acc, n = self.accuracy(), self.counts()
        src = self.provenance.get("source", {})
        lines = [f"protocol  {PROTOCOL_ID}   dataset da2k   source {src.get('source')}: "
                 f"{src.get('model') or src.get('baseline') or src.get('folder')}",
                 f"images    {n['evaluated']} evaluated, {n['skipped']} skipped; {acc['pairs']} pairs"]
        for name, a in acc["per_scenario"].items():
            lines.append(f"  {name:<24} {100 * a:6.2f} %  ({acc['pairs_per_scenario'][name]} pairs)")
        if acc["overall"] is not None:
            lines.append(f"  {'overall':<24} {100 * acc['overall']:6.2f} %")
        return "\n".join(lines)


def _image_size(path: Path) -> tuple[int, int]:
    if not path.is_file():
        raise DatasetError(f"image not found: {path}")
    with Image.open(path) as im:
        return im.height, im.width


def evaluate_da2k(root: str | Path, source: PredictionSource, limit: int | None = None, progress: bool = True,
                  annotations: str | Path | None = None, extra_provenance: dict[str, Any] | None = None,
                  on_sample: Callable[[dict[str, Any]], None] | None = None,
                  save_predictions: str | Path | None = None) -> Da2kReport:
    """Score ``source`` on DA-2K.

    Args:
        root: folder with ``annotations.json`` and the images at the annotated relative paths.
        source: a model or saved predictions (``<folder>/<image path without extension>.npy``).
        limit: only the first ``limit`` images (annotation order).
        annotations: a different annotations file (same format; image paths relative to ``root``).
        save_predictions: also write each prediction (at image size, float32) to
            ``<folder>/<image path without extension>.npy``, which a later run reads as saved predictions.
    """
    root = Path(root)
    save_dir = Path(save_predictions) if save_predictions else None
    ann = read_annotations(annotations or root / "annotations.json")
    provenance = {"protocol": {"id": PROTOCOL_ID, "summary": "pairwise ordering accuracy (closer = larger "
                               "disparity / smaller depth); ties are wrong", "reference": "DA-V2 paper §6, DA-2K.md"},
                  "dataset": {"dataset": "da2k", "root": str(root), "num_listed": len(ann),
                              "annotations": str(annotations or root / "annotations.json")},
                  "source": source.describe(), "limit": limit, "software": software_versions(),
                  "created": utc_now(), **(extra_provenance or {})}
    report = Da2kReport(provenance)
    items: Any = list(ann.items())[: limit if limit is not None else None]
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="eval da2k", unit="img", leave=False)
    for image, pairs in items:
        sid = str(PurePosixPath(image).with_suffix(""))
        row: dict[str, Any] = {"id": sid, "scenario": scenario_of(image), "status": "skipped", "reason": "",
                               "pairs": len(pairs)}
        path = root / image
        try:
            size = _image_size(path)
            pred = resize_to(source.predict(sid, functools.partial(read_rgb, path), size), size)
            if save_dir is not None:
                out = save_dir / f"{sid}.npy"
                out.parent.mkdir(parents=True, exist_ok=True)
                np.save(out, pred.astype(np.float32))
            row["correct"] = sum(pair_correct(pred, pair, source.kind) for pair in pairs)
            row["status"] = "ok"
        except Exception as e:  # a bad image is reported and skipped; the run goes on
            row["reason"] = f"{type(e).__name__}: {e}"
            log.warning("skipping %s: %s", image, row["reason"])
        report.rows.append(row)
        if on_sample is not None:
            on_sample(row)
    return report
