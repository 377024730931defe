"""Where int8 hurts a trained model, and which NNCF settings win the accuracy back (docs/performance.md, "int8").

For one model (a zoo name or ``--weights``) this script calibrates NNCF post-training quantisation on
``--calibration`` images and measures each variant with the accuracy gate's own metric (:mod:`depthany.quantize.gate`:
mean AbsRel of the int8 map against the PyTorch fp32 map on held-out images). The variants:

* ``base``: NNCF's defaults (performance preset, fast bias correction; what ``depthany quantize`` did before
  2026-12-04; it now adds ``overflow-fix-all`` and ``act-minmax``) with the default kept-float ops;
* ``overflow-fix-*``: 7-bit weights in every layer / none (NNCF's default: the first layer only). CPUs without
  VNNI multiply int8 through 16-bit saturating instructions, which 8-bit weights can overflow;
* ``act-minmax``: activation ranges from the extreme values over all calibration images (NNCF's default for
  per-tensor activations: the mean over images of each image's min and max);
* settings: ``mixed`` (asymmetric activations), ``bias-full`` (full bias correction), ``smoothquant-A``
  (NNCF's transformer scheme: SmoothQuant at alpha A, attention matmuls quantised too), ``transformer-nosq``;
* one group kept in float at a time: every block's ``attn.qkv``, ``attn.proj``, ``mlp.fc1``, ``mlp.fc2``, the whole
  DPT head, and block by block (``block-i``), which ranks where the error comes from;
* ``accuracy-control-D``: NNCF's accuracy-aware quantisation down to AbsRel D on calibration images (did not
  finish within 50 CPU-minutes on da2-mini here, see docs/performance.md).

Prints one JSON line per variant and writes them all to ``--out``. Usage (the numbers in docs/performance.md)::

    python experiments/int8/sensitivity.py da2-mini -c data/synth-train/rgb --holdout data/synth-test/rgb \\
        --count 32 --out experiments/int8/da2-mini.jsonl
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def variants(blocks: int) -> dict[str, dict[str, Any]]:
    """name -> {"keep": extra kept-float patterns, "nncf": keyword arguments for nncf.quantize}."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
        OverflowFix,
    )
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from depthany.quantize.openvino_int8 import settings

    def sq(alpha: float) -> dict[str, Any]:
        return {"model_type": nncf.ModelType.TRANSFORMER, "advanced_parameters": AdvancedQuantizationParameters(
            smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=alpha))}

    def adv(**kw: Any) -> dict[str, Any]:
        return {"advanced_parameters": AdvancedQuantizationParameters(**kw)}

    minmax = RangeEstimatorParametersSet.MINMAX
    out: dict[str, dict[str, Any]] = {
        "base": {"keep": [], "nncf": {}},
        "overflow-fix-all": {"keep": [], "nncf": adv(overflow_fix=OverflowFix.ENABLE)},
        "overflow-fix-none": {"keep": [], "nncf": adv(overflow_fix=OverflowFix.DISABLE)},
        "act-minmax": {"keep": [], "nncf": adv(activations_range_estimator_params=minmax)},
        # both: depthany quantize's settings
        "act-minmax+overflow-fix-all": {"keep": [], "nncf": {"advanced_parameters": settings()["advanced_parameters"]}},
        "mixed": {"keep": [], "nncf": {"preset": nncf.QuantizationPreset.MIXED}},
        "bias-full": {"keep": [], "nncf": {"fast_bias_correction": False}},
        "transformer-nosq": {"keep": [], "nncf": sq(-1)},
        "smoothquant-0.5": {"keep": [], "nncf": sq(0.5)},
        "smoothquant-0.95": {"keep": [], "nncf": sq(0.95)},
        "float-qkv": {"keep": [r"\.attn\.qkv/"], "nncf": {}},
        "float-proj": {"keep": [r"\.attn\.proj/"], "nncf": {}},
        "float-fc1": {"keep": [r"\.mlp\.fc1/"], "nncf": {}},
        "float-fc2": {"keep": [r"\.mlp\.fc2/"], "nncf": {}},
        "float-head": {"keep": [r"^depth_head"], "nncf": {}},
        "float-encoder": {"keep": [r"^pretrained"], "nncf": {}},
    }
    for i in range(blocks):
        out[f"block-{i}"] = {"keep": [rf"^pretrained\.blocks\.{i}\."], "nncf": {}}
    return out


def control_variants(drops: list[float]) -> dict[str, dict[str, Any]]:
    """``accuracy-control-D``: NNCF's accuracy-aware quantisation with depthany's settings, reverting the
    operations that cost the most until the validation AbsRel is within D."""
    from depthany.quantize.openvino_int8 import settings

    params = settings()["advanced_parameters"]
    return {f"accuracy-control-{d:g}": {"keep": [], "max_drop": d,
                                         "nncf": {"advanced_quantization_parameters": params}} for d in drops}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=None, help="zoo name (default: from --weights)")
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("-c", "--calibration", type=Path, required=True, help="folder of calibration images")
    ap.add_argument("--holdout", type=Path, required=True, help="folder of held-out images")
    ap.add_argument("--count", type=int, default=32, help="calibration images (default 32)")
    ap.add_argument("--holdout-count", type=int, default=16)
    ap.add_argument("--only", nargs="*", default=None, help="run only these variants")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-drop", type=float, nargs="*", default=[0.012],
                    help="AbsRel bounds for the accuracy-control variants (default 0.012)")
    ap.add_argument("--validation-count", type=int, default=16,
                    help="calibration images (not held out) the accuracy control validates on")
    ap.add_argument("--out", type=Path, required=True, help="JSON lines, one per variant")
    args = ap.parse_args()

    import nncf
    import openvino as ov
    import torch

    from depthany.accuracy import absrel
    from depthany.backends.onnx_cache import model_onnx
    from depthany.backends.openvino_backend import OpenVinoRunner
    from depthany.backends.torch_backend import TorchRunner
    from depthany.inference import pipeline_for
    from depthany.io.image import IMAGE_SUFFIXES
    from depthany.quantize import gate
    from depthany.quantize.calibration import network_input, split_images
    from depthany.quantize.openvino_int8 import count_quantised, save
    from depthany.quantize.scopes import KEEP_FLOAT, WEIGHTED_TYPES, kept_float, onnx_scopes, op_scopes
    from depthany.runtime.altstack import kept_sigaltstack
    from depthany.weights import load_model

    torch.set_num_threads(args.threads)
    nncf.set_log_level(logging.ERROR)

    def images(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    sets = split_images(images(args.calibration), images(args.holdout), args.count, args.holdout_count)
    net, spec = load_model(args.model, args.weights)
    net = net.float().eval()
    pipeline = pipeline_for(spec)
    onnx_path = model_onnx(net, spec.name)
    scopes = onnx_scopes(onnx_path)
    reference = TorchRunner(net, "fp32")
    blocks = len(net.pretrained.blocks)
    to_input = functools.partial(network_input, pipeline)
    dataset = nncf.Dataset(list(sets.calibration), to_input)
    # accuracy control validates on calibration images (never the held-out ones): the metric is minus the gate's
    # AbsRel at network resolution, against the PyTorch fp32 output of the same input
    val_inputs = [to_input(p) for p in sets.calibration[:: max(1, len(sets.calibration) // args.validation_count)]]
    with torch.inference_mode():
        val_refs = [net(torch.from_numpy(x)).numpy() for x in val_inputs]
    validation = nncf.Dataset(list(zip(val_inputs, val_refs, strict=True)), lambda item: item[0])

    def validate(compiled: Any, items: Any) -> tuple[float, list[float]]:
        per = [-absrel(np.asarray(compiled([x])[0]), ref) for x, ref in items]
        return float(np.mean(per)), per

    def quantised_ops(m: Any) -> set[str]:
        """Weighted operations whose activation input comes through a FakeQuantize."""
        return {op.get_friendly_name() for op in m.get_ordered_ops() if op.get_type_name() in WEIGHTED_TYPES
                and op.input_value(0).get_node().get_type_name() == "FakeQuantize"}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{spec.name}: {len(sets.calibration)} calibration, {len(sets.holdout)} held-out images; "
          f"{blocks} blocks; input {pipeline.input_size}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp, args.out.open("w") as sink:
        todo = {**variants(blocks), **control_variants(args.max_drop)}
        if args.only:
            unknown = [o for o in args.only if o not in todo]
            if unknown:
                raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(todo)}")
            todo = {k: todo[k] for k in args.only}
        for name, v in todo.items():
            started = time.perf_counter()
            model = ov.Core().read_model(str(onnx_path))
            kept = kept_float(model, scopes, [*KEEP_FLOAT, *v["keep"]])
            kwargs = {"preset": nncf.QuantizationPreset.PERFORMANCE, "fast_bias_correction": True, **v["nncf"]}
            ignored = nncf.IgnoredScope(names=sorted(kept), validate=False)
            restored: list[str] = []
            with kept_sigaltstack():
                if "max_drop" in v:
                    q = nncf.quantize_with_accuracy_control(
                        model, dataset, validation, validate, max_drop=v["max_drop"],
                        drop_type=nncf.DropType.ABSOLUTE, subset_size=len(sets.calibration), ignored_scope=ignored,
                        **kwargs)
                    plain_kwargs = {k: x for k, x in kwargs.items() if k != "advanced_quantization_parameters"}
                    plain = nncf.quantize(model, dataset, subset_size=len(sets.calibration), ignored_scope=ignored,
                                          advanced_parameters=kwargs["advanced_quantization_parameters"],
                                          **plain_kwargs)
                    names = op_scopes(plain, scopes)
                    restored = sorted(names.get(n, n) for n in quantised_ops(plain) - quantised_ops(q))
                else:
                    q = nncf.quantize(model, dataset, subset_size=len(sets.calibration), ignored_scope=ignored,
                                      **kwargs)
            xml = save(q, Path(tmp) / f"{name}.xml")
            n_fq = count_quantised(q)
            del q, model
            runner = OpenVinoRunner(xml, "int8", threads=args.threads)
            rows = gate.measure(pipeline, reference, runner, sets.holdout)
            a = np.array([r["absrel"] for r in rows])
            d = np.array([r["delta1"] for r in rows])
            line = {"model": spec.name, "variant": name, "keep": v["keep"], "restored_to_float": restored,
                    "nncf": {k: str(x) for k, x in v["nncf"].items()}, "kept_ops": len(kept),
                    "fake_quantize": n_fq, "absrel": float(a.mean()), "absrel_worst": float(a.max()),
                    "delta1": float(d.mean()), "calibration": len(sets.calibration), "holdout": len(sets.holdout),
                    "seconds": round(time.perf_counter() - started, 1)}
            print(json.dumps(line), flush=True)
            sink.write(json.dumps(line) + "\n")
            sink.flush()
            del runner
    return 0


if __name__ == "__main__":
    sys.exit(main())
