"""Benchmarks: latency (model-only and end-to-end), throughput, peak memory, accuracy and achieved GFLOP/s per
backend and precision, against the transformers model measured in the same run. See ``depthany bench``."""

from __future__ import annotations

from .run import BenchConfig, bench_model, run_bench

__all__ = ["BenchConfig", "bench_model", "run_bench"]
