"""``depthany bench``: latency, throughput, peak memory and accuracy per backend and precision, with the
transformers model (same weights) measured in the same run as the baseline.

For every (network size, batch) the paths are timed round-robin (:mod:`.timing`): model-only (the network call
on a preprocessed batch) and end-to-end (decode, preprocess, network, postprocess, encode; :mod:`.pipeline`).
Each path's output is compared with PyTorch eager fp32 on the same input. Achieved GFLOP/s are the model's
FLOPs over the model-only median, also as a fraction of the matmul peak: the fastest GEMM found at the
start, timed again in every round alongside the paths.

Example:
    >>> from depthany.bench import BenchConfig, run_bench                  # doctest: +SKIP
    >>> report = run_bench(BenchConfig(model="da2-small", sizes=((518, 686),)))   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import backends, zoo
from ..accuracy import error_report
from ..backends.torch_backend import TorchRunner
from ..budget import count_tokens
from ..inference import pipeline_for
from ..io.image import as_rgb
from ..models import DepthAnything, build_model
from ..runtime.devices import pick_device
from .config import BenchConfig
from .flops import matmul_peak, model_flops
from .machine import machine_info, versions
from .pipeline import STAGES, OursPipeline, image_size_for, synthetic_jpegs
from .timing import interleaved, summarize, synchronize

BASELINE = "transformers"
PEAK = "__matmul_peak__"
Log = Callable[[str], None]


def bench_model(name: str | None, weights: str, device: torch.device) -> tuple[DepthAnything, zoo.ModelSpec]:
    """The model to benchmark: seeded random weights (output bias raised so the map is not all zero), the
    zoo entry's published weights (``"pretrained"``) or a local file."""
    if weights == "random":
        spec = zoo.get_spec(name or "da2-small")
        torch.manual_seed(0)
        model = build_model(spec.arch)
        with torch.no_grad():
            last = model.depth_head.scratch.output_conv2[2]
            assert isinstance(last, torch.nn.Conv2d) and last.bias is not None
            last.bias.fill_(0.5)
        return model.to(device).eval(), spec
    from ..weights import load_model

    net, spec = load_model(name, None if weights == "pretrained" else weights, device=device)
    if not isinstance(net, DepthAnything):
        raise ValueError(f"{spec.name}: depthany bench measures the V1/V2 relative and metric models (its baseline "
                         "is transformers' DepthAnythingForDepthEstimation)")
    return net, spec


def _paths(cfg: BenchConfig, device: torch.device) -> list[tuple[str, str]]:
    """(backend, precision) pairs to run: installed, supported on the device, de-duplicated."""
    names: list[str] = []
    for b in cfg.backends:
        if b == "all":
            names += backends.available_backends()
        elif b == "auto":
            names += [backends.resolve("auto", p, device) for p in cfg.precisions]
        else:
            names.append(b)
    pairs = []
    for name in dict.fromkeys(names):
        for p in cfg.precisions:
            if backends.supports(name, p, device):
                pairs.append((name, p))
    return pairs


def check_sizes(sizes: tuple[tuple[int, int], ...], max_tokens: int, patch: int = 14) -> None:
    """Refuse network sizes over the token budget (every verb would shrink such an input).

    Raises:
        ValueError: naming the size, its tokens and the budget.
    """
    for h, w in sizes:
        if count_tokens(h, w, patch) > max_tokens:
            raise ValueError(f"size {h}x{w} has {count_tokens(h, w, patch):,} tokens, over the network-input budget "
                             f"of {max_tokens:,}; raise --max-tokens to measure it")


def _inputs(spec: zoo.ModelSpec, h: int, w: int, batch: int, max_tokens: int) -> tuple[list[bytes], Tensor]:
    images = synthetic_jpegs(batch, *image_size_for(h, w, spec.preprocess.input_size))
    pipeline = pipeline_for(spec, max_tokens=max_tokens)
    x = torch.cat([pipeline.prepare(as_rgb(b).rgb).x for b in images])
    if tuple(x.shape[-2:]) != (h, w):
        raise ValueError(f"size {h}x{w} is not a network size of the model (got {tuple(x.shape[-2:])})")
    return images, x


def _e2e(pipes: dict[str, Callable[[list[bytes]], dict[str, float]]], images: list[bytes], repeats: int,
         warmup: int) -> dict[str, dict[str, Any]]:
    """Round-robin end-to-end runs; per path the median total and the median of each stage (ms)."""
    for _ in range(warmup):
        for pipe in pipes.values():
            pipe(images)
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in pipes}
    for _ in range(repeats):
        for k, pipe in pipes.items():
            runs[k].append(pipe(images))
    out = {}
    for k, rs in runs.items():
        totals = [sum(r.values()) for r in rs]
        out[k] = {**summarize(totals),
                  "stages_ms": {s: 1e3 * statistics.median(r[s] for r in rs) for s in STAGES}}
    return out


def run_bench(cfg: BenchConfig, log: Log = lambda s: None) -> dict[str, Any]:
    """Run the benchmark described by ``cfg``; returns a JSON-ready report (see ``docs/performance.md``)."""
    check_sizes(cfg.sizes, cfg.max_tokens)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)  # "auto" (the CLI default) -> the GPU when present, else the CPU
    cfg = dataclasses.replace(cfg, device=str(device))  # memory jobs and the report get the device that ran
    model, spec = bench_model(cfg.model, cfg.weights, device)
    report: dict[str, Any] = {"config": {**dataclasses.asdict(cfg), "model": spec.name},
                              "machine": machine_info(device), "versions": versions(), "peaks": {},
                              "results": [], "skipped": []}
    pairs = _paths(cfg, device)
    probes: dict[str, Any] = {}
    if cfg.peak:
        for p in dict.fromkeys(p for _, p in pairs if p != "int8"):  # no int8 GEMM probe: int8 rows have no % peak
            log(f"measuring the {p} matmul peak ...")
            report["peaks"][p], probes[p] = matmul_peak(p, device)
    with tempfile.TemporaryDirectory(prefix="depthany-bench-") as tmp:
        runners: dict[str, Callable[[Tensor], Tensor]] = {}
        for name, precision in pairs:
            log(f"building {name} {precision} ...")
            try:
                options: dict[str, Any] = {}
                if precision == "int8":
                    options["int8_model"] = _int8_model(cfg, model, spec, Path(tmp), report, log)
                runners[f"{name}/{precision}"] = backends.make_runner(name, model, precision, device, name=spec.name,
                                                                      **options)
            except (backends.BackendUnavailable, ValueError, RuntimeError, ImportError) as e:
                report["skipped"].append({"backend": name, "precision": precision, "reason": str(e)})
        if cfg.baseline:
            from .baseline import TransformersRunner, transformers_available, transformers_model

            if transformers_available():
                runners[f"{BASELINE}/fp32"] = TransformersRunner(transformers_model(model, spec, device), device)
            else:
                report["skipped"].append({"backend": BASELINE, "precision": "fp32",
                                          "reason": "transformers is not installed: pip install transformers"})
        files = _weight_files(model, spec, Path(tmp)) if cfg.memory else {}
        files.update({k: v for k, v in report.get("int8", {}).items() if k == "int8_model"})
        for h, w in cfg.sizes:
            for batch in cfg.batches:
                log(f"{spec.name} {h}x{w} batch {batch} ...")
                report["results"] += _measure(cfg, model, spec, runners, h, w, batch, device, files, report,
                                              probes)
    return report


def _int8_model(cfg: BenchConfig, model: DepthAnything, spec: zoo.ModelSpec, tmp: Path, report: dict[str, Any],
                log: Log) -> str:
    """The quantised model int8 rows run: the cached one for these weights, or one calibrated now."""
    if "int8" in report:
        return str(report["int8"]["int8_model"])
    from ..backends.int8_cache import cached_int8
    from ..backends.onnx_cache import weights_digest
    from ..quantize import gate, quantize_model

    found = cached_int8(weights_digest(model))
    if found is not None:
        rep = gate.read(found) or {}
        report["int8"] = {"int8_model": str(found), "source": "cache (depthany quantize)",
                          "gate": {k: rep.get(k) for k in ("ok", "absrel", "delta1", "images", "calibration")}}
        return str(found)
    if cfg.calibration:
        from ..io.inputs import expand_inputs

        images = [it.path for it in expand_inputs(cfg.calibration).items]
        source = f"calibrated here on {len(images)} --calibration images"
    else:  # photo-like synthetic JPEGs of the benchmark's first size: enough for speed, not for accuracy
        h, w = image_size_for(*cfg.sizes[0], spec.preprocess.input_size)
        images = []
        for i, data in enumerate(synthetic_jpegs(20, h, w, seed=1)):
            images.append(tmp / f"calibration-{i:02d}.jpg")
            images[-1].write_bytes(data)
        source = f"calibrated here on {len(images)} synthetic photos ({h}x{w}): speed only"
    log(f"no cached int8 model for these weights: quantising ({source}) ...")
    result = quantize_model(model, spec, images, tmp / "int8" / f"{spec.name}-int8.xml", max_absrel=float("inf"),
                            max_tokens=cfg.max_tokens, cache=False, progress=False, threads=cfg.threads)
    report["int8"] = {"int8_model": str(result.model_path), "source": source,
                      "gate": {k: result.report[k] for k in ("absrel", "delta1", "images")}}
    return str(result.model_path)


def _weight_files(model: DepthAnything, spec: zoo.ModelSpec, tmp: Path) -> dict[str, str]:
    """The same weights as a depthany file and a transformers folder, for the memory children."""
    from ..weights import save_weights
    from .baseline import transformers_available

    out = {"ours": str(save_weights(model.state_dict(), spec, tmp / "model.safetensors", "depthany"))}
    if transformers_available():
        out[BASELINE] = str(save_weights(model.state_dict(), spec, tmp / "hf", "transformers"))
    return out


def _measure(cfg: BenchConfig, model: DepthAnything, spec: zoo.ModelSpec, runners: dict[str, Any], h: int,
             w: int, batch: int, device: torch.device, files: dict[str, str],
             report: dict[str, Any], probes: dict[str, Any]) -> list[dict[str, Any]]:
    images, x = _inputs(spec, h, w, batch, cfg.max_tokens)
    ref = TorchRunner(model, "fp32", device)(x).float().cpu()  # the exact path (strict fp32)
    errors = {k: error_report(r(x).float().cpu(), ref) for k, r in runners.items()}
    # The peak GEMM runs in every round too: on a shared machine "share of peak" then compares like with like.
    paths: dict[str, Callable[[], Any]] = {k: functools.partial(r, x) for k, r in runners.items()}
    paths.update({f"{PEAK}/{p}": probe.fn for p, probe in probes.items()})
    model_times = interleaved(paths, cfg.repeats, cfg.warmup, device)
    in_run_peak = {p: probe.flops / 1e9 / statistics.median(model_times[f"{PEAK}/{p}"])
                   for p, probe in probes.items()}
    e2e: dict[str, dict[str, Any]] = {}
    if cfg.e2e:
        pipes: dict[str, Any] = {}
        for k, r in runners.items():
            if k.startswith(BASELINE):
                from .pipeline import TransformersPipeline

                pipes[k] = TransformersPipeline(r.model, spec, device)
            else:
                pipes[k] = OursPipeline(r, spec, sync=lambda: synchronize(device), max_tokens=cfg.max_tokens)
        e2e = _e2e(pipes, images, cfg.repeats, cfg.warmup)
    flops = model_flops(spec.arch, h, w, batch)
    rows = []
    for k in runners:
        backend, precision = k.split("/")
        t = summarize(model_times[k])
        row: dict[str, Any] = {"model": spec.name, "height": h, "width": w, "batch": batch, "backend": backend,
                               "precision": precision, "model_ms": t, "errors": errors[k],
                               "gflop": flops / 1e9, "gflop_s": flops / 1e9 / (t["median_ms"] / 1e3)}
        desc = getattr(runners[k], "describe", None)
        if callable(desc):
            row["runner"] = desc()
        if precision in in_run_peak:
            row["peak_gflop_s_in_run"] = in_run_peak[precision]
            row["peak_fraction"] = row["gflop_s"] / in_run_peak[precision]
            row["peak_fraction_vs_start"] = row["gflop_s"] / report["peaks"][precision]["gflops"]
        if k in e2e:
            row["e2e_ms"] = e2e[k]
            row["throughput_img_s"] = batch / (e2e[k]["median_ms"] / 1e3)
        if cfg.memory:
            row["memory"] = _memory(cfg, spec, backend, precision, h, w, batch, files)
        rows.append(row)
    _ratios(rows)
    return rows


def _memory(cfg: BenchConfig, spec: zoo.ModelSpec, backend: str, precision: str, h: int, w: int, batch: int,
            files: dict[str, str]) -> dict[str, Any]:
    from .memory import MemoryJob, measure

    weights = files.get(BASELINE if backend == BASELINE else "ours")
    if weights is None:
        return {"error": "no weights file for this job"}
    return measure(MemoryJob(spec.name, weights, backend, precision, h, w, batch, cfg.device, cfg.threads,
                             max_tokens=cfg.max_tokens, int8_model=files.get("int8_model") if precision == "int8" else None))


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Speed-up and memory ratio of every row against the baseline row of the same size and batch."""
    base = next((r for r in rows if r["backend"] == BASELINE), None)
    if base is None:
        return
    for r in rows:
        r["speedup_model"] = base["model_ms"]["median_ms"] / r["model_ms"]["median_ms"]
        if "e2e_ms" in r and "e2e_ms" in base:
            r["speedup_e2e"] = base["e2e_ms"]["median_ms"] / r["e2e_ms"]["median_ms"]
        mb, mr = base.get("memory", {}).get("peak_rss_mb"), r.get("memory", {}).get("peak_rss_mb")
        if mb and mr:
            r["memory_ratio"] = mr / mb
