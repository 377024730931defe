"""What ``depthany bench`` measures, and its defaults (importable without torch: the CLI reads its option
defaults from here, so each is written once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..budget import DEFAULT_MAX_TOKENS


@dataclass
class BenchConfig:
    """What to measure. Sizes are *network* sizes (H, W), multiples of 14: 518x518 is the official square
    input, 518x686 what a 480x640 photo becomes.

    ``device``: ``cpu``, ``cuda[:N]``, ``mps`` or ``auto`` (a GPU when present); the CLI's default is ``auto``
    like every verb's (:mod:`depthany.cli.options`), the library's ``cpu``: the caller picks the device.
    """

    model: str | None = "da2-small"  # an official architecture (the bundled toy model would measure nothing
    # useful); None: the architecture a weights file describes
    weights: str = "random"  # "random" (seeded; speed does not depend on values), "pretrained", or a path
    backends: tuple[str, ...] = ("all",)  # backend names, "all" (every installed one) or "auto"
    precisions: tuple[str, ...] = ("fp32", "bf16")
    sizes: tuple[tuple[int, int], ...] = ((518, 518), (518, 686))
    batches: tuple[int, ...] = (1,)
    device: str = "cpu"
    threads: int | None = None
    repeats: int = 5
    warmup: int = 1
    baseline: bool = True
    e2e: bool = True
    memory: bool = True
    peak: bool = True
    max_tokens: int = DEFAULT_MAX_TOKENS  # sizes over the network-input budget are refused, as every verb would
    # int8: the model cached for the weights by `depthany quantize`, else one calibrated here on these images
    # (default: the benchmark's synthetic photos), with its gate measured but not enforced (the rows' AbsRel)
    calibration: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
