"""Model FLOPs per input size and a measured matrix-multiply peak, for "achieved GFLOP/s of peak".

FLOPs are counted by ``torch.utils.flop_counter`` on a model built on the ``meta`` device (no memory, no
weights): matmuls (2 per multiply-add), convolutions and attention. ViT-S at 518x518 is 115.3 GFLOP, ViT-B
380.7 GFLOP. Element-wise work (norms, activations, resizes) is not counted, as usual.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from ..models import DepthAnything
from ..zoo import Arch

# GEMM shapes (M, K, N) of the ViT-S/B linears at 518x518 (1370 tokens): qkv, fc1, fc2; the peak is the best.
PEAK_SHAPES: tuple[tuple[int, int, int], ...] = ((1370, 384, 1536), (1370, 768, 3072), (1370, 3072, 768))


@functools.lru_cache(maxsize=64)
def model_flops(arch: Arch, height: int, width: int, batch: int = 1) -> int:
    """FLOPs of one forward pass of ``arch`` on a (batch, 3, height, width) input (multiply-add = 2)."""
    with torch.device("meta"):
        model = DepthAnything(arch).eval()
    x = torch.empty(batch, 3, height, width, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops())


def _best_time(fn: Callable[[], None], repeats: int) -> float:
    """Fastest of ``repeats`` timed calls after one warm-up (the peak is a best case by definition)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@dataclass(frozen=True)
class GemmProbe:
    """One GEMM (library, shape, precision) to time: ``fn()`` does ``flops`` floating-point operations."""

    name: str
    flops: int
    fn: Callable[[], None]


def gemm_probes(precision: str = "fp32", device: torch.device | str = "cpu") -> list[GemmProbe]:
    """The model's linear shapes through ``torch.mm`` (MKL for fp32, oneDNN for bf16 on the CPU; cuBLAS on
    CUDA) and, on the CPU, oneDNN's packed linear (``torch.ops.mkldnn._linear_pointwise``, weights reordered
    once)."""
    dev = torch.device(device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    probes = []
    for m, k, n in PEAK_SHAPES:
        a = torch.randn(m, k, device=dev, dtype=dtype)
        w = torch.randn(n, k, device=dev, dtype=dtype)
        flops = 2 * m * k * n

        def mm(a: Tensor = a, wt: Tensor = w.t()) -> None:
            torch.mm(a, wt)
            sync()

        probes.append(GemmProbe(f"torch.mm@{m}x{k}x{n}", flops, mm))
        if dev.type == "cpu" and torch.backends.mkldnn.is_available():
            try:
                packed = torch.ops.mkldnn._reorder_linear_weight(w, m)

                def onednn(a: Tensor = a, packed: Tensor = packed) -> None:
                    torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], "")

                onednn()
                probes.append(GemmProbe(f"onednn@{m}x{k}x{n}", flops, onednn))
            except (RuntimeError, AttributeError):  # op missing in this build, or dtype unsupported
                pass
    return probes


def matmul_peak(precision: str = "fp32", device: torch.device | str = "cpu", repeats: int = 5
                ) -> tuple[dict[str, float], GemmProbe]:
    """Best measured GEMM throughput (GFLOP/s) over :func:`gemm_probes`.

    Returns:
        (``{"gflops": best, "<library>@MxKxN": gflops, ...}``, the fastest probe). The benchmark times that
        probe again in every round, so its share-of-peak figures use a peak measured under the same load.
    """
    results: dict[str, float] = {}
    best: GemmProbe | None = None
    for probe in gemm_probes(precision, device):
        results[probe.name] = probe.flops / _best_time(probe.fn, repeats) / 1e9
        if best is None or results[probe.name] > results[best.name]:
            best = probe
    assert best is not None  # torch.mm always runs
    return {"gflops": results[best.name], **results}, best
