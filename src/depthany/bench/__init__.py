"""Benchmarks: latency (model-only and end-to-end), throughput, peak memory, accuracy and achieved GFLOP/s per
backend and precision, against the transformers model measured in the same run. See ``depthany bench``.

``BenchConfig`` (:mod:`.config`) imports no torch; ``run_bench`` and ``bench_model`` load :mod:`.run` on first use.
"""

from __future__ import annotations

from typing import Any

from .config import BenchConfig

__all__ = ["BenchConfig", "bench_model", "run_bench"]


def __getattr__(name: str) -> Any:
    if name in ("bench_model", "run_bench"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
