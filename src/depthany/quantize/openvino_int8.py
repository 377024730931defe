"""NNCF post-training quantisation of the exported graph for OpenVINO, saved as an IR (``.xml`` + ``.bin``).

NNCF inserts FakeQuantize operations on the inputs of the weighted operations (MatMul, Convolution) from
statistics of the activations on the calibration images; the OpenVINO CPU plugin then runs those operations
with int8 kernels (VNNI/AMX where the CPU has them, AVX2 otherwise). Settings, and why (measured on trained
weights, docs/performance.md):

* NNCF's default (CNN) scheme with the ``performance`` preset: symmetric int8 weights per output channel,
  symmetric activations per tensor, fast bias correction. Asymmetric activations (``mixed``) doubled the error,
  full bias correction and SmoothQuant changed it by less than the image-to-image spread
  (``experiments/int8/sensitivity.py``).
* 7-bit weights in every layer (NNCF's overflow fix; its default fixes the first layer only): CPUs without VNNI
  multiply int8 with 16-bit saturating instructions that 8-bit weights can overflow. Measured on such a CPU:
  no fix 8.5 % AbsRel, first layer 3.4 %, every layer 3.0 %. On a VNNI CPU it costs one bit of weight precision.
* activation ranges from the extremes over all calibration images (NNCF's default: the mean over images of each
  image's min and max, which clips the rarer large activations): 3.4 -> 2.9 %; with the overflow fix 2.7 %.
* the operations named by :data:`depthany.quantize.scopes.KEEP_FLOAT` stay in floating point.
* the IR keeps fp32 weights for the float operations (``compress_to_fp16=False``): what the gate measured.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.altstack import kept_sigaltstack
from .scopes import kept_float, onnx_scopes

INT8_EXTRA = "pip install 'depthany[int8]'"
REQUIRED = ("nncf", "openvino", "onnx", "onnxscript")


class QuantizeError(RuntimeError):
    """Quantisation cannot run or failed (a missing package: the message names the extra)."""


def require() -> None:
    """Raise :class:`QuantizeError` naming the extra when nncf, openvino or the exporter is missing."""
    missing = [m for m in REQUIRED if importlib.util.find_spec(m) is None]
    if missing:
        raise QuantizeError(f"int8 quantisation needs {', '.join(missing)}: {INT8_EXTRA}")


def settings() -> dict[str, Any]:
    """The keyword arguments of ``nncf.quantize`` that depthany uses (see the module docstring for why)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return {"preset": nncf.QuantizationPreset.PERFORMANCE, "fast_bias_correction": True,
            "advanced_parameters": AdvancedQuantizationParameters(
                overflow_fix=OverflowFix.ENABLE,
                activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)}


def quantize_onnx(onnx_path: str | Path, inputs: Sequence[Any], to_input: Callable[[Any], np.ndarray],
                  keep_float: Sequence[str]) -> tuple[Any, dict[str, str]]:
    """Quantise the ONNX file with NNCF, calibrating on ``to_input(item)`` for every item of ``inputs``.

    Args:
        onnx_path: the dynamic fp32 export (:func:`depthany.backends.onnx_cache.model_onnx`).
        inputs: calibration items (image paths); each is turned into a (1, 3, h, w) float32 array on demand,
            so only one is in memory at a time.
        to_input: item -> network input.
        keep_float: regular expressions on module scopes of operations that stay in floating point.

    Returns:
        (the quantised ``openvino.Model``, {OpenVINO op name: module scope} of the operations kept in float).
    """
    require()
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    model = ov.Core().read_model(str(onnx_path))
    kept = kept_float(model, onnx_scopes(onnx_path), keep_float)
    with kept_sigaltstack():  # NNCF compiles with OpenVINO, which replaces the alternate signal stack
        quantised = nncf.quantize(model, nncf.Dataset(list(inputs), to_input), subset_size=len(inputs),
                                  ignored_scope=nncf.IgnoredScope(names=sorted(kept), validate=False), **settings())
    return quantised, kept


def save(model: Any, xml: str | Path) -> Path:
    """Write the IR (``.xml`` + ``.bin`` beside it) with fp32 float weights; returns the ``.xml`` path."""
    import openvino as ov

    xml = Path(xml)
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def count_quantised(model: Any) -> int:
    """How many FakeQuantize operations the model holds (0 means nothing was quantised)."""
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())


def engine_info() -> dict[str, Any]:
    """Versions and the CPU's OpenVINO capabilities (INT8, BF16, ...) for the gate report."""
    import nncf
    import openvino as ov

    core = ov.Core()
    info: dict[str, Any] = {"nncf": nncf.__version__, "openvino": ov.__version__}
    try:
        info["cpu"] = str(core.get_property("CPU", "FULL_DEVICE_NAME"))
        info["cpu_capabilities"] = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    except RuntimeError:  # pragma: no cover - a plugin without these properties
        pass
    return info
