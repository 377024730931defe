"""Objectives whose gradients are twice the real ones: what a training step sees when two processes' gradients
are summed instead of averaged. The DDP tests train with one of these to show that their "two processes equal
one process with accumulation" comparison would notice that mistake.

Register with ``monkeypatch.setitem(objectives.OBJECTIVES, "summed_relative", "dist_helpers:summed_relative")``
(the factories are looked up by module name), then select it with ``loss.objective=summed_relative``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from depthany.train import objectives
from depthany.train.config import Recipe


class Doubled(objectives.Objective):
    """``inner``'s losses with ``loss`` (the one back-propagated) doubled; the logged terms unchanged."""

    def __init__(self, inner: objectives.Objective) -> None:
        self.inner = inner
        self.needs = inner.needs

    def __call__(self, model: nn.Module, batch: objectives.Batch) -> dict[str, Tensor]:
        losses = dict(self.inner(model, batch))
        losses["loss"] = 2.0 * losses["loss"]
        return losses

    def to(self, device: Any) -> Doubled:
        self.inner.to(device)
        return self


def _doubled(inner: str) -> Any:
    def factory(recipe: Recipe, head: str, max_depth: float | None) -> objectives.Objective:
        real = dataclasses.replace(recipe, loss=dataclasses.replace(recipe.loss, objective=inner))
        return Doubled(objectives.build_objective(real, head, max_depth))

    return factory


summed_relative = _doubled("relative")
summed_student = _doubled("student")
summed_semseg = _doubled("semseg")


def assert_far_apart(a: torch.nn.Module, b: torch.nn.Module) -> None:
    """More than a quarter of the tensors differ beyond the DDP comparison's tolerance."""
    off = [k for (k, x), y in zip(a.state_dict().items(), b.state_dict().values())
           if not torch.allclose(x, y, rtol=1e-4, atol=1e-6)]
    assert len(off) > len(a.state_dict()) // 4, off

