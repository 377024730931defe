"""The model zoo as rows for ``depthany models``: sizes computed from the architecture, cache status on disk."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .. import zoo
from .hub import source_status


@functools.cache
def count_params(arch: zoo.Arch) -> int:
    """Number of parameters of ``arch``, counted on the meta device (no memory is allocated)."""
    from ..models import build_network

    with torch.device("meta"):
        model = build_network(arch)
    return sum(p.numel() for p in model.parameters())  # shared parameters (DA3's aux LayerNorm) count once


def output_text(arch: zoo.Arch) -> str:
    """``"relative disparity"``, ``"metric depth (m), max 20"``, ``"relative depth + sky"``, ..."""
    if arch.head == "metric":
        return f"metric depth (m), max {arch.max_depth:g}" if arch.max_depth else "metric depth (m)"
    if arch.head == "depth":
        return "relative depth + sky"
    if arch.head == "focal_metric":
        return f"metric depth (m, focal/{arch.metric_focal:g}) + sky"
    if arch.head == "multiview":
        return "multi-view depth + conf + cameras"
    return "relative disparity"


@dataclass(frozen=True)
class ModelRow:
    """One zoo entry as listed by ``depthany models``.

    ``cached`` is ``"yes"``, ``"no"`` (downloadable), ``"not available"`` (bundled file missing) or
    ``"not released"``; ``repo`` is the first weight source (``owner/name``, ``spaces/owner/name`` or ``bundled``).
    """

    name: str
    family: str
    encoder: str
    params: int
    output: str
    licence: str
    cached: str
    repo: str
    aliases: tuple[str, ...]
    description: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (aliases as a list)."""
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d


def _repo_text(spec: zoo.ModelSpec) -> str:
    if not spec.weights:
        return "-"
    src = spec.weights[0]
    if src.bundled:
        return "bundled"
    return f"spaces/{src.repo_id}" if src.repo_type == "space" else str(src.repo_id)


def model_rows() -> list[ModelRow]:
    """Every zoo entry, in table order."""
    rows = []
    for spec in zoo.MODELS.values():
        a = spec.arch
        rows.append(ModelRow(spec.name, a.family, a.encoder.name, count_params(a), output_text(a), spec.licence,
                             source_status(spec), _repo_text(spec), spec.aliases, spec.description))
    return rows
