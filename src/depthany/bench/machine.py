"""What a benchmark ran on: CPU, cores, instruction sets, threads, accelerator and library versions."""

from __future__ import annotations

import importlib
import os
import platform
from typing import Any

import torch

# CPU flags that decide which kernels run (AVX-512, VNNI, bf16, AMX) - reported so numbers are comparable.
INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16",
                     "amx_int8", "amx_fp16")
VERSIONED = ("depthany", "torch", "numpy", "onnx", "onnxscript", "onnxruntime", "openvino", "transformers")


def cpu_info() -> dict[str, Any]:
    """Model name, logical cores and the relevant instruction-set flags (from /proc/cpuinfo on Linux)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and ":" in line:
                    flags = set(line.split(":", 1)[1].split())
                if name and flags:
                    break
    except OSError:
        pass
    return {"model": name, "logical_cores": os.cpu_count(),
            "flags": [f for f in INTERESTING_FLAGS if f in flags]}


def memory_total_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers (absent packages are left out)."""
    out = {"python": platform.python_version()}
    for mod in VERSIONED:
        try:
            out[mod] = str(getattr(importlib.import_module(mod), "__version__", "?"))
        except Exception:  # noqa: BLE001 - a broken optional install must not stop a benchmark
            continue
    return out


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """Everything about the machine that a results table needs."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": cpu_info(),
        "memory_gb": memory_total_gb(),
        "torch_threads": torch.get_num_threads(),
    }
    if device is not None and device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                       "capability": f"{props.major}.{props.minor}"}
    return info
