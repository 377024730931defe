"""int8 post-training quantisation (NNCF, for OpenVINO) with a measured accuracy gate.

``quantize_model`` exports the model (cached ONNX), calibrates NNCF on the user's images, keeps the sensitive
layers in floating point (:mod:`.scopes`), saves an OpenVINO IR and measures it against the fp32 model on
held-out images (:mod:`.gate`): AbsRel and delta1, written beside the model as ``<name>.gate.json``. A model
within the bound (default 1.5 % AbsRel) is copied into the int8 cache under its weights digest
(:mod:`depthany.backends.int8_cache`), where ``--precision int8`` finds it. Extra: ``[int8]``.

Example:
    >>> from depthany.quantize import quantize_model                       # doctest: +SKIP
    >>> from depthany.weights import load_model                            # doctest: +SKIP
    >>> model, spec = load_model("da2-small")                              # doctest: +SKIP
    >>> result = quantize_model(model, spec, photos, "da2-small-int8.xml")  # doctest: +SKIP
    >>> result.report["absrel"], result.cached                            # doctest: +SKIP
"""

from __future__ import annotations

from .calibration import DEFAULT_CALIBRATION, DEFAULT_HOLDOUT, split_images
from .gate import DEFAULT_MAX_ABSREL, gate_path
from .openvino_int8 import INT8_EXTRA, QuantizeError
from .run import AccuracyGateError, QuantizeResult, quantize_model
from .scopes import KEEP_FLOAT

__all__ = [
    "DEFAULT_CALIBRATION", "DEFAULT_HOLDOUT", "DEFAULT_MAX_ABSREL", "INT8_EXTRA", "KEEP_FLOAT", "AccuracyGateError",
    "QuantizeError", "QuantizeResult", "gate_path", "quantize_model", "split_images",
]
