"""The int8 accuracy gate: the quantised model against the fp32 model it came from, on held-out images.

For every held-out image both models run the full inference path (the model's pipeline: preprocessing under
the token budget, the network, the resize back to the image size), the fp32 one through PyTorch in strict fp32
(the exact reference). Per image the gate records AbsRel and delta1 with the fp32 map as ground truth
(:func:`depthany.accuracy.absrel`, :func:`depthany.accuracy.delta1`: pixels below 1 % of the map's maximum are
left out, as for every reduced precision); the verdict is on the mean AbsRel over the images. The report is
written next to the quantised model (``<name>.gate.json``), as the export's parity report is.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from ..accuracy import REDUCED_TOLERANCE, absrel, delta1
from ..inference import InferencePipeline
from ..io.image import as_rgb

DEFAULT_MAX_ABSREL = REDUCED_TOLERANCE  # 1.5 %, the bound every reduced precision states
Runner = Callable[[Tensor], Tensor]


def gate_path(model_path: str | Path) -> Path:
    """``model-int8.xml`` -> ``model-int8.gate.json`` (beside it)."""
    p = Path(model_path)
    return p.with_name(p.stem + ".gate.json")


def measure(pipeline: InferencePipeline, reference: Runner, quantised: Runner, images: Sequence[Path],
            progress: Callable[[Sequence[Path]], Iterable[Path]] | None = None) -> list[dict[str, Any]]:
    """Per held-out image: ``{"image", "size", "network_size", "absrel", "delta1", "max_rel"}``.

    Raises:
        ImageReadError: an image cannot be read (the caller checks them first).
    """
    rows = []
    for path in progress(images) if progress is not None else images:
        prepared = pipeline.prepare(as_rgb(path).rgb)
        ref = pipeline.run_batch(reference, [prepared])[0].numpy()
        out = pipeline.run_batch(quantised, [prepared])[0].numpy()
        span = float(ref.max() - ref.min()) or 1.0
        rows.append({"image": str(path), "size": list(prepared.image_size),
                     "network_size": list(prepared.fit.network_size), "absrel": absrel(out, ref),
                     "delta1": delta1(out, ref), "max_rel": float(np.abs(out - ref).max()) / span})
    return rows


def report(rows: list[dict[str, Any]], max_absrel: float, meta: dict[str, Any]) -> dict[str, Any]:
    """The gate's verdict and summary over ``rows`` (see :func:`measure`)."""
    if not rows:
        raise ValueError("the accuracy gate needs at least one held-out image")
    a = np.array([r["absrel"] for r in rows])
    d = np.array([r["delta1"] for r in rows])
    absrel_mean = float(a.mean())
    return {
        "ok": bool(absrel_mean <= max_absrel),
        "criterion": "mean over held-out images of AbsRel(int8, fp32) <= max_absrel; AbsRel = mean |q - f| / f over "
                     "pixels where f > 1 % of max f, f = PyTorch fp32 output of the same weights at the image's size",
        "max_absrel": max_absrel,
        "absrel": absrel_mean,
        "absrel_worst": float(a.max()),
        "delta1": float(d.mean()),
        "delta1_worst": float(d.min()),
        "images": len(rows),
        "per_image": rows,
        "machine": platform.machine(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **meta,
    }


def write(report_: dict[str, Any], model_path: str | Path) -> Path:
    """Write the report as JSON beside ``model_path``; returns its path."""
    path = gate_path(model_path)
    path.write_text(json.dumps(report_, indent=2) + "\n")
    return path


def read(model_path: str | Path) -> dict[str, Any] | None:
    """The gate report beside ``model_path``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(gate_path(model_path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
