"""Model FLOPs per input size and a measured matrix-multiply peak, for "achieved GFLOP/s of peak".

FLOPs are counted by ``torch.utils.flop_counter`` on a model built on the ``meta`` device (no memory, no
weights): matmuls (2 per multiply-add), convolutions and attention. ViT-S at 518x518 is 115.3 GFLOP, ViT-B
380.7 GFLOP. Element-wise work (norms, activations, resizes) is not counted, as usual.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

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


def matmul_peak(precision: str = "fp32", device: torch.device | str = "cpu", repeats: int = 5) -> dict[str, float]:
    """Best measured GEMM throughput (GFLOP/s) over the model's linear shapes and the available libraries.

    On the CPU: ``torch.mm`` (MKL for fp32, oneDNN for bf16) and oneDNN's packed linear
    (``torch.ops.mkldnn._linear_pointwise`` with pre-reordered weights). On CUDA: ``torch.mm`` (cuBLAS).

    Returns:
        ``{"gflops": best, "<library>@MxKxN": gflops, ...}``: the best and every measurement.
    """
    dev = torch.device(device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    results: dict[str, float] = {}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for m, k, n in PEAK_SHAPES:
        a = torch.randn(m, k, device=dev, dtype=dtype)
        w = torch.randn(n, k, device=dev, dtype=dtype)
        flops = 2 * m * k * n
        wt = w.t()

        def mm(a: Tensor = a, wt: Tensor = wt) -> None:
            torch.mm(a, wt)
            sync()

        results[f"torch.mm@{m}x{k}x{n}"] = flops / _best_time(mm, repeats) / 1e9
        if dev.type == "cpu" and torch.backends.mkldnn.is_available():
            try:
                packed = torch.ops.mkldnn._reorder_linear_weight(w, m)

                def onednn(a: Tensor = a, packed: Tensor = packed) -> None:
                    torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], "")

                results[f"onednn@{m}x{k}x{n}"] = flops / _best_time(onednn, repeats) / 1e9
            except (RuntimeError, AttributeError):  # op missing in this build, or dtype unsupported
                pass
    return {"gflops": max(results.values()), **results}
