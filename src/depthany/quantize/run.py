"""``quantize_model``: calibrate, quantise, save, gate, cache. What ``depthany quantize`` runs."""

from __future__ import annotations

import functools
import hashlib
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..backends.int8_cache import install
from ..backends.onnx_cache import model_onnx, weights_digest
from ..budget import DEFAULT_MAX_TOKENS
from ..inference import pipeline_for
from ..models import DepthAnything
from ..zoo import ModelSpec
from . import gate
from .calibration import (
    DEFAULT_CALIBRATION,
    DEFAULT_HOLDOUT,
    ImageSets,
    network_input,
    readable,
    split_images,
)
from .openvino_int8 import QuantizeError, count_quantised, engine_info, quantize_onnx, require, save
from .scopes import KEEP_FLOAT, check_patterns

T = TypeVar("T")


class AccuracyGateError(QuantizeError):
    """The quantised model is further from fp32 than the bound allows; ``report`` holds the measurements.

    The model and its report are still written (to inspect), but not cached, so ``--precision int8`` does not
    pick it up.
    """

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class QuantizeResult:
    """What :func:`quantize_model` wrote and measured.

    Attributes:
        model_path: the quantised OpenVINO IR ``.xml`` (its weights in the ``.bin`` beside it).
        gate_path: the accuracy gate report (``<name>.gate.json``).
        report: the gate report (``ok``, ``absrel``, ``delta1``, per image, kept-float layers, ...).
        cached: the cache copy that ``--precision int8`` uses, or None (gate failed, or caching was off).
        unreadable: (path, reason) of inputs that could not be read and were skipped.
    """

    model_path: Path
    gate_path: Path
    report: dict[str, Any]
    cached: Path | None = None
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.report["ok"])


def _bar(desc: str, enabled: bool) -> Callable[[Sequence[T]], Iterable[T]]:
    def wrap(items: Sequence[T]) -> Iterable[T]:
        if not enabled:
            return items
        from tqdm import tqdm  # type: ignore[import-untyped]

        return tqdm(items, desc=desc, unit="image", file=sys.stderr, dynamic_ncols=True)

    return wrap


def quantize_model(
    model: DepthAnything,
    spec: ModelSpec,
    calibration: Sequence[str | Path],
    out: str | Path,
    *,
    holdout: Sequence[str | Path] | None = None,
    count: int = DEFAULT_CALIBRATION,
    holdout_count: int = DEFAULT_HOLDOUT,
    max_absrel: float = gate.DEFAULT_MAX_ABSREL,
    keep_float: Sequence[str] = (),
    input_size: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    cache: bool = True,
    progress: bool = True,
    threads: int | None = None,
) -> QuantizeResult:
    """Quantise ``model`` to int8 for OpenVINO on the user's images and check it against fp32.

    Args:
        model: the fp32 network (CPU).
        spec: its zoo spec (preprocessing, name).
        calibration: image files to calibrate on (unreadable ones are reported and skipped).
        out: the ``.xml`` to write (``.bin`` and ``.gate.json`` go beside it).
        holdout: image files for the accuracy gate; default: every k-th calibration image is held out instead.
        count: calibration images used at most (spread over the list).
        holdout_count: held-out images used at most.
        max_absrel: the gate's bound on the mean AbsRel (int8 vs fp32), default 1.5 %.
        keep_float: extra regular expressions on module scopes to keep in floating point (on top of
            :data:`depthany.quantize.scopes.KEEP_FLOAT`).
        input_size: network short side (default: the model's), as ``predict --input-size``.
        max_tokens: network-input budget (:mod:`depthany.budget`).
        cache: copy a model that passes the gate into the int8 cache (``--precision int8`` then finds it).
        progress: progress bars on stderr.
        threads: OpenVINO threads for the gate (default: torch's).

    Returns:
        a :class:`QuantizeResult` (the gate passed).

    Raises:
        QuantizeError: nncf/openvino missing, or quantisation failed.
        AccuracyGateError: the gate failed (the model and report are written, not cached).
        ValueError: too few readable images, a held-out image among the calibration images, bad patterns.
    """
    require()
    out = Path(out)
    if out.suffix != ".xml":
        raise ValueError(f"the quantised model is an OpenVINO IR: give a .xml output path, got {out}")
    patterns = [*KEEP_FLOAT, *check_patterns(keep_float)]
    pipeline = pipeline_for(spec, input_size, max_tokens)
    started = time.perf_counter()
    # choose first, then decode only the chosen images (a folder of 100,000 photos costs ``count`` decodes)
    chosen = split_images([Path(p) for p in calibration], None if holdout is None else [Path(p) for p in holdout],
                          count, holdout_count)
    cal, bad = readable(chosen.calibration, _bar("reading calibration images", progress))
    held, bad_held = readable(chosen.holdout, _bar("reading held-out images", progress))
    bad += bad_held
    if not cal or not held:
        raise ValueError(f"no readable {'calibration' if not cal else 'held-out'} image among those chosen "
                         f"({len(bad)} unreadable, e.g. {bad[0][0]}: {bad[0][1]})")
    sets = ImageSets(tuple(cal), tuple(held))
    model = model.float().cpu().eval()
    onnx_path = model_onnx(model, spec.name)
    qmodel, kept = quantize_onnx(onnx_path, sets.calibration, functools.partial(network_input, pipeline), patterns)
    if count_quantised(qmodel) == 0:
        raise QuantizeError("NNCF quantised no operation of the model")
    save(qmodel, out)
    del qmodel
    calibrated = time.perf_counter() - started

    from ..backends.openvino_backend import OpenVinoRunner
    from ..backends.torch_backend import TorchRunner

    runner = OpenVinoRunner(out, "int8", threads=threads)
    rows = gate.measure(pipeline, TorchRunner(model, "fp32"), runner, sets.holdout, _bar("accuracy gate", progress))
    digest = weights_digest(model)
    meta = {
        "model": spec.name,
        "file": out.name,
        "weights": spec.extra.get("weights"),
        "weights_digest": digest,
        "reference": "depthany PyTorch model, fp32 eager (strict IEEE fp32), CPU",
        "engine": {"name": "openvino", "precision": "int8 (float parts f32)", **engine_info(),
                   "executed_precision": runner.executed_precision},
        "input_size": pipeline.input_size,
        "max_tokens": pipeline.max_tokens,
        "kept_float": {"patterns": {p: KEEP_FLOAT.get(p, "--keep-float") for p in patterns},
                       "operations": dict(sorted(kept.items(), key=lambda kv: kv[1]))},
        "calibration": {"images": len(sets.calibration), "files_sha1": _list_digest(sets.calibration),
                        "first": [str(p) for p in sets.calibration[:5]]},
        "holdout": {"images": len(sets.holdout), "from": "--holdout" if holdout is not None else
                    "every k-th calibration image, not used for calibration"},
        "unreadable": [{"image": p, "reason": r} for p, r in bad],
        "seconds": {"calibrate_and_quantise": round(calibrated, 1),
                    "gate": round(time.perf_counter() - started - calibrated, 1)},
    }
    rep = gate.report(rows, max_absrel, meta)
    gate_file = gate.write(rep, out)
    if not rep["ok"]:
        raise AccuracyGateError(
            f"int8 accuracy gate failed: mean AbsRel {100 * rep['absrel']:.2f} % against fp32 on {rep['images']} "
            f"held-out images exceeds the bound {100 * max_absrel:.2f} % (delta1 {rep['delta1']:.4f}); the model "
            f"and the report are in {out.parent} but not cached, so --precision int8 will not use them. Try more "
            "or more representative calibration images, or keep more layers in float (--keep-float)", rep)
    cached = install(out, spec.name, digest) if cache else None
    return QuantizeResult(out, gate_file, rep, cached, bad)


def _list_digest(paths: Sequence[Path]) -> str:
    return hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()
