"""The device a job runs on: ``--device`` strings checked against what this machine has."""

from __future__ import annotations

import torch


def pick_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is checked to exist.

    Raises:
        ValueError: the requested device is not available, naming it.
    """
    if device is None or str(device) == "cpu":
        return torch.device("cpu")
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} requested but MPS is not available on this machine")
    return dev
