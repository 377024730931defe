"""What every inference backend provides: a runner (B, 3, h, w) -> (B, h, w) and its stated accuracy.

A backend runs the *network only*; decoding, preprocessing and postprocessing stay in
:class:`depthany.predictor.DepthPredictor`, which calls ``runner(x)`` where it used to call the model. Every
backend is compared with the exact path (PyTorch eager, fp32) in ``tests/test_backends*.py`` within the
tolerance stated here, at square and non-square sizes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

# Stated accuracy against the exact path (PyTorch eager fp32 on the same weights and input):
# fp32 backends: max |out - ref| / (max(ref) - min(ref)), the output's range; see accuracy.max_rel_error;
# reduced precision: AbsRel with the fp32 output as ground truth, see accuracy.absrel.
EXACT_TOLERANCE = 1e-5
REDUCED_TOLERANCE = 0.015


class BackendUnavailable(ImportError):
    """A backend's engine is not installed (the message names the pip extra) or cannot run this job."""


@dataclass(frozen=True)
class BackendInfo:
    """Static facts about one backend.

    Attributes:
        name: the ``--backend`` value.
        modules: Python modules the engine needs (checked with ``importlib.util.find_spec``).
        extra: the ``pip install depthany[<extra>]`` that provides them (None: core dependency).
        precisions: the precisions it runs, per device type.
        summary: one line for ``--help`` and the docs.
    """

    name: str
    modules: tuple[str, ...]
    extra: str | None
    precisions: dict[str, tuple[str, ...]]
    summary: str

    def install_hint(self) -> str:
        mods = ", ".join(self.modules)
        if self.extra is None:
            return f"backend {self.name!r} needs {mods}"
        return f"backend {self.name!r} needs {mods}: pip install 'depthany[{self.extra}]'"


class Runner(ABC):
    """A network call: normalised (B, 3, h, w) float32 -> (B, h, w) float32 on the CPU.

    ``h`` and ``w`` are multiples of 14. The output is what :class:`depthany.models.DepthAnything` returns
    (relative disparity >= 0, or metric depth in metres), before resizing to the image size.
    """

    name: str = "base"
    precision: str = "fp32"
    device: torch.device = torch.device("cpu")

    @abstractmethod
    def __call__(self, x: Tensor) -> Tensor: ...

    @property
    def exact(self) -> bool:
        """True when the runner computes in fp32 (within :data:`EXACT_TOLERANCE` of the reference)."""
        return self.precision == "fp32"

    @property
    def tolerance(self) -> float:
        """The stated error bound: max relative error for fp32, AbsRel vs fp32 for reduced precision."""
        return EXACT_TOLERANCE if self.exact else REDUCED_TOLERANCE

    def describe(self) -> dict[str, str]:
        """Name, precision and device, for result metadata and benchmark reports."""
        return {"backend": self.name, "precision": self.precision, "device": str(self.device)}


def check_input(x: Tensor, patch: int = 14) -> None:
    """Raise ``ValueError`` unless ``x`` is (B, 3, h, w) with h, w positive multiples of ``patch``."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, h, w) tensor, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h < patch or w < patch or h % patch or w % patch:
        raise ValueError(f"input height and width must be positive multiples of {patch}, got {h}x{w}")
