"""Interleaved timing: every path runs once per round, so load changes on a shared machine hit all paths alike.

Timing A ten times and then B ten times lets a neighbour's burst land on one path only; round-robin spreads it.
Reports keep the median (the headline) and the minimum (closest to an idle machine).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch


def synchronize(device: torch.device | None) -> None:
    """Wait for queued GPU work so wall-clock times are complete (no-op on the CPU)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: torch.device | None = None) -> float:
    """Seconds one call takes, including queued device work."""
    synchronize(device)
    t = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t


def interleaved(paths: Mapping[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1,
                device: torch.device | None = None) -> dict[str, list[float]]:
    """Run ``warmup`` untimed rounds, then ``repeats`` timed rounds; each round calls every path once.

    Returns:
        path name -> list of ``repeats`` durations in seconds.
    """
    for _ in range(warmup):
        for fn in paths.values():
            fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            times[name].append(time_call(fn, device))
    return times


def summarize(seconds: list[float]) -> dict[str, float]:
    """Median, min and max in milliseconds."""
    return {"median_ms": 1e3 * statistics.median(seconds), "min_ms": 1e3 * min(seconds),
            "max_ms": 1e3 * max(seconds), "runs": float(len(seconds))}
