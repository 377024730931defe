"""Peak memory of one job (load the weights, build the backend, run end-to-end batches), in a fresh process.

Peak resident set size only grows within a process, so each (backend, precision, size, batch) runs in its own
``python -m depthany.bench.memory '<json job>'``; the child prints one JSON line with its peak RSS. Both sides
load the same weights from files with their own loaders (depthany: a ``.safetensors`` file; transformers:
``from_pretrained`` on a folder), so the jobs are the same. The ONNX export is cached before the children start
(by the parent's run), so a job measures serving, not the one-time export.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..budget import DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class MemoryJob:
    """What one child process does. ``backend`` "transformers" runs the baseline.

    ``weights`` is a depthany ``.safetensors`` file, or for the baseline a transformers model folder;
    ``model`` names the zoo entry whose preprocessing the baseline uses; ``int8_model`` the quantised ``.xml`` an
    int8 job runs (as ``backend_options={"int8_model": ...}``).
    """

    model: str
    weights: str
    backend: str
    precision: str
    height: int
    width: int
    batch: int
    device: str = "cpu"
    threads: int | None = None
    batches: int = 2
    max_tokens: int = DEFAULT_MAX_TOKENS
    int8_model: str | None = None


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux: ``VmHWM`` from /proc/self/status. Not ``getrusage``: its ``ru_maxrss`` survives ``exec`` and
    starts at the parent's size at fork time, so every child would report at least the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def run_job(job: MemoryJob) -> dict[str, Any]:
    """Do the job in this process and report peak RSS (and peak CUDA memory on a GPU)."""
    from .pipeline import OursPipeline, TransformersPipeline, image_size_for, synthetic_jpegs

    if job.threads:
        torch.set_num_threads(job.threads)
    device = torch.device(job.device)
    pipe: Any
    if job.backend == "transformers":
        from ..zoo import get_spec
        from .baseline import load_transformers

        spec = get_spec(job.model)
        hf = load_transformers(job.weights)
        pipe = TransformersPipeline(hf.to(device).eval(), spec, device)
    else:  # exactly what a user's job does (from_pretrained frees PyTorch's weights for engine backends)
        from ..predictor import DepthPredictor

        options = {"int8_model": job.int8_model} if job.int8_model else None
        predictor = DepthPredictor.from_pretrained(weights=job.weights, device=device, precision=job.precision,  # type: ignore[arg-type]
                                                   backend=job.backend, max_tokens=job.max_tokens,
                                                   backend_options=options)
        spec = predictor.spec
        pipe = OursPipeline(predictor.runner, spec, max_tokens=job.max_tokens)
    images = synthetic_jpegs(job.batch, *image_size_for(job.height, job.width, spec.preprocess.input_size))
    for _ in range(job.batches):
        pipe(images)
    out: dict[str, Any] = {"peak_rss_mb": round(peak_rss_mb(), 1)}
    if device.type == "cuda":
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def measure(job: MemoryJob, timeout: float = 900.0) -> dict[str, Any]:
    """Run ``job`` in a child process; returns its report or ``{"error": ...}``."""
    cmd = [sys.executable, "-m", "depthany.bench.memory", json.dumps(asdict(job))]
    env = dict(os.environ)
    if job.threads:
        env["OMP_NUM_THREADS"] = str(job.threads)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {tail[0][:300]}"}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    job = MemoryJob(**json.loads(args[0]))
    print(json.dumps(run_job(job)), flush=True)


if __name__ == "__main__":
    main()
