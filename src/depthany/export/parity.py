"""Numerical parity of an exported model against the PyTorch model, written next to the exported file.

For each probe size, a seeded random input runs through the PyTorch model (fp32, eager: the exact path) and
through every installed engine that can read the file (ONNX Runtime; OpenVINO with f32 inference precision).
The report holds the errors per engine and size and whether each is exact:

* within 1e-5 of PyTorch fp32 (max error relative to the output range), or
* if not, at least as close to a float64 evaluation of the same model as PyTorch fp32 itself is. Two fp32
  implementations that round differently can sit 1e-5 apart while both are 5e-6 from the float64 result; the
  engine is then no less exact than the reference, and the report says so (``exact_by: "float64"``).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..accuracy import EXACT_TOLERANCE, error_report, max_rel_error
from ..models import Network
from ..precision import strict_fp32

# Square (the 518 shortcut), landscape and portrait (the official 480x640 -> 518x686 case), off-grid sizes,
# a small size and a batch of 2.
DEFAULT_SIZES: tuple[tuple[int, int, int], ...] = (
    (1, 518, 518), (1, 518, 686), (1, 686, 518), (1, 364, 490), (1, 140, 252), (2, 518, 700),
)


def parity_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.parity.json`` (beside it)."""
    p = Path(model_path)
    return p.with_name(p.stem + ".parity.json")


def _engines() -> list[str]:
    names = []
    if importlib.util.find_spec("onnxruntime") is not None:
        names.append("onnxruntime")
    if importlib.util.find_spec("openvino") is not None:
        names.append("openvino")
    return names


def _run_engine(engine: str, onnx_path: Path, x: np.ndarray) -> np.ndarray:
    if engine == "onnxruntime":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]
    if engine == "openvino":
        import openvino as ov

        from ..runtime.altstack import kept_sigaltstack

        with kept_sigaltstack():  # OpenVINO replaces the thread's alternate signal stack (runtime/altstack.py)
            compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return compiled([x])[compiled.output(0)]
    raise ValueError(f"unknown engine {engine!r}")


class _Float64Reference:
    """The model evaluated in float64 on the CPU (built on first use: a copy of the weights in float64)."""

    def __init__(self, model: Network) -> None:
        self._model = model
        self._double: Network | None = None
        self._last: tuple[Tensor, np.ndarray] | None = None

    def __call__(self, x: Tensor) -> np.ndarray:
        if self._last is not None and self._last[0] is x:
            return self._last[1]
        if self._double is None:
            self._double = copy.deepcopy(self._model).cpu().double().eval()
        with torch.inference_mode():
            out = self._double(x.double()).numpy()
        self._last = (x, out)
        return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parity_report(
    model: Network,
    onnx_path: str | Path,
    sizes: Sequence[tuple[int, int, int]] = DEFAULT_SIZES,
    engines: Sequence[str] | None = None,
    seed: int = 0,
    write: bool = True,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare the exported file with ``model`` at each (batch, height, width) in ``sizes``.

    Args:
        model: the PyTorch model that was exported (run on the CPU in fp32 here).
        onnx_path: the exported file.
        sizes: probe inputs; sizes the file cannot take (a static export) are reported as skipped.
        engines: ``"onnxruntime"`` and/or ``"openvino"``; default: those installed.
        seed: input generator seed.
        write: write the report to :func:`parity_path` as JSON.
        meta: extra fields for the report (model name, export options).

    Returns:
        the report: ``{"ok": bool, "tolerance": 1e-5, "results": [{engine, batch, height, width, max_rel,
        absrel, max_abs, mean_abs, ok}, ...], ...}``. ``ok`` is False if any run exceeds the tolerance.
    """
    onnx_path = Path(onnx_path)
    engines = list(engines) if engines is not None else _engines()
    g = torch.Generator().manual_seed(seed)
    model = model.eval()
    device = next(model.parameters()).device
    results: list[dict[str, Any]] = []
    fp64 = _Float64Reference(model)
    for b, h, w in sizes:
        x = torch.randn(b, 3, h, w, generator=g)
        with torch.inference_mode(), strict_fp32():  # the exact path, whatever the process's TF32 settings
            ref = model(x.to(device)).float().cpu().numpy()
        for engine in engines:
            row: dict[str, Any] = {"engine": engine, "batch": b, "height": h, "width": w}
            try:
                out = _run_engine(engine, onnx_path, x.numpy())
            except Exception as e:  # a static export cannot take other sizes: say so and go on
                row.update(ok=None, skipped=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
                results.append(row)
                continue
            row.update(error_report(out, ref))
            row["ok"] = bool(row["max_rel"] <= EXACT_TOLERANCE)
            row["exact_by"] = "fp32" if row["ok"] else None
            if not row["ok"]:  # is the engine or the fp32 reference the less exact one?
                ref64 = fp64(x)
                row["max_rel_fp64"] = max_rel_error(out, ref64)
                row["reference_max_rel_fp64"] = max_rel_error(ref, ref64)
                if row["max_rel_fp64"] <= max(row["reference_max_rel_fp64"], EXACT_TOLERANCE / 10):
                    row.update(ok=True, exact_by="float64")
            results.append(row)
    checked = [r for r in results if r.get("ok") is not None]
    report: dict[str, Any] = {
        "file": onnx_path.name,
        "sha256": sha256_file(onnx_path) if onnx_path.exists() else None,
        "reference": "depthany PyTorch model, fp32 eager, CPU",
        "criterion": "max|out - ref| / (max ref - min ref) <= tolerance, or no further from a float64 run than the "
                     "fp32 reference is",
        "tolerance": EXACT_TOLERANCE,
        "ok": bool(checked) and all(r["ok"] for r in checked),
        "results": results,
        "versions": _versions(engines),
        "machine": platform.machine(),
        **(meta or {}),
    }
    if write:
        parity_path(onnx_path).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _versions(engines: Sequence[str]) -> dict[str, str]:
    from .. import __version__

    out = {"depthany": __version__, "torch": torch.__version__}
    for mod in ("onnx", *engines):
        try:
            out[mod] = str(getattr(importlib.import_module(mod), "__version__", "?"))
        except ImportError:
            pass
    return out

