"""Where the engine backends' peak memory goes: resident memory after each phase of a job, per engine.

Each job runs in a fresh process (peak RSS only grows) and prints, after every phase, the current resident set
(``VmRSS``) and the peak so far (``VmHWM``), both in MiB:

* ``imports``: Python, torch, the engine;
* ``weights``: the model loaded from its ``.safetensors`` file (PyTorch's copy; transformers: ``from_pretrained``);
* ``runner``: the backend built (ONNX Runtime creates its session here; OpenVINO compiles lazily);
* ``released``: PyTorch's copy released, as ``DepthPredictor.from_pretrained`` does for engine backends;
* ``first``: the first forward pass at the size (OpenVINO reads and compiles the model here);
* ``second``: a second forward pass (steady state).

Variants of the OpenVINO job show what each step costs: ``openvino-ir`` compiles from an OpenVINO IR
(``.xml`` + ``.bin``, memory-mapped) instead of the ONNX file; ``int8`` runs a quantised IR.

Usage (weights written by ``depthany bench``'s helpers or any depthany ``.safetensors``; the ONNX export must be
cached already, e.g. by one ``depthany bench`` run, so the jobs measure serving, not the export)::

    python benchmarks/engine_memory.py --weights vits.safetensors --hf vits-hf --size 518x518 --threads 2
    python benchmarks/engine_memory.py --weights vits.safetensors --int8 vits-int8.xml --jobs openvino,int8
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

JOBS = ("transformers", "torch", "onnxruntime", "openvino", "openvino-ir", "int8")


def _mem() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0][2:].lower()] = round(int(line.split()[1]) / 1024, 1)
    return out


def child(job: str, weights: str, hf: str | None, int8: str | None, h: int, w: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    phases: dict[str, Any] = {}
    x = torch.randn(1, 3, h, w)
    if job == "transformers":
        from depthany.bench.baseline import load_transformers

        phases["imports"] = _mem()
        model = load_transformers(hf).eval()
        phases["weights"] = _mem()
        with torch.inference_mode():
            model(pixel_values=x)
            phases["first"] = _mem()
            model(pixel_values=x)
            phases["second"] = _mem()
    else:
        from depthany import backends
        from depthany.backends.onnx_cache import model_onnx
        from depthany.backends.openvino_backend import OpenVinoRunner
        from depthany.weights import load_model

        if job.startswith(("openvino", "int8")):
            import openvino  # noqa: F401
        elif job == "onnxruntime":
            import onnxruntime  # noqa: F401
        phases["imports"] = _mem()
        net, spec = load_model(weights=weights)
        phases["weights"] = _mem()
        runner: Any
        if job == "openvino-ir":
            import openvino as ov

            ir = model_onnx(net, spec.name).with_suffix(".ir.xml")
            if not ir.exists():
                ov.save_model(ov.Core().read_model(str(model_onnx(net, spec.name))), str(ir), compress_to_fp16=False)
            runner = OpenVinoRunner(ir, "fp32", threads=threads)
        elif job == "int8":
            runner = OpenVinoRunner(int8 or "", "int8", threads=threads)
        else:
            runner = backends.make_runner(job, net, "fp32", name=spec.name, threads=threads)
        phases["runner"] = _mem()
        if job != "torch":
            net.to("meta")
        phases["released"] = _mem()
        runner(x)
        phases["first"] = _mem()
        runner(x)
        phases["second"] = _mem()
    print(json.dumps(phases), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, help="depthany .safetensors")
    p.add_argument("--hf", default=None, help="the same weights as a transformers folder (for the baseline)")
    p.add_argument("--int8", default=None, help="a quantised .xml (depthany quantize) for the int8 job")
    p.add_argument("--size", default="518x518")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--jobs", default=",".join(JOBS))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    h, w = (int(v) for v in a.size.split("x"))
    if a.child:
        child(a.child, a.weights, a.hf, a.int8, h, w, a.threads)
        return
    results = {}
    for job in a.jobs.split(","):
        if (job == "transformers" and not a.hf) or (job == "int8" and not a.int8):
            continue
        cmd = [sys.executable, __file__, "--child", job, "--weights", a.weights, "--size", a.size, "--threads",
               str(a.threads)] + (["--hf", a.hf] if a.hf else []) + (["--int8", a.int8] if a.int8 else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        results[job] = json.loads(lines[-1]) if lines else {"error": proc.stderr.strip().splitlines()[-1:]}
        phases = results[job]
        cells = "  ".join(f"{k} {v['rss']:.0f}/{v['hwm']:.0f}" for k, v in phases.items() if isinstance(v, dict))
        print(f"{job:>13}: {cells or phases}  (MiB, current/peak)", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
