"""The training data stream: sources mixed by weight, a deterministic order, disjoint shards per process.

The whole stream is a pure function of the recipe seed and one *cursor* per source (how many samples have
been drawn from it so far):

* **which source** fills the next slot: the one furthest behind its share, ``argmax_i w_i * (n + 1) - c_i``
  (n = slots filled so far, c_i = cursor of source i). Long-run proportions equal the weights exactly and
  every batch is close to them; no random numbers are involved.
* **which sample**: the k-th draw from source i is ``perm_i,e[k mod N_i]`` with ``e = k // N_i`` the epoch
  and ``perm_i,e`` a permutation seeded by (seed, i, e): every sample once per epoch, a new order each epoch.
* **its augmentation**: a generator seeded by (seed, i, k).

So the cursors are the whole data position: a checkpoint stores them and a resumed run continues the exact
same stream. A global batch of ``batch_size`` slots is cut into ``world * grad_accum`` micro-batches; process r
takes micro-batches r, r + world, ... so processes never see the same draw, and the samples (and their
augmentations) do not depend on how many processes share the work.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..data.rgbd import RGBDFolder
from ..zoo import Preprocess
from .augment import training_sample
from .config import DataCfg, RecipeError, SourceCfg

PERM_STREAM, AUG_STREAM = 0, 1  # separate seed streams for epoch permutations and augmentations

Batch = dict[str, Tensor]


class Draw(NamedTuple):
    """One slot of the stream: source number, sample number within that source, and the per-source serial k."""

    source: int
    item: int
    serial: int


class SampleSource(Protocol):
    """A readable, augmentable collection: what a ``data.sources`` entry becomes.

    ``load`` returns a dict of tensors of the same keys and shapes for every sample: for RGB-D folders
    ``image`` (3, S, S) normalised, ``depth`` (S, S) metres and ``valid`` (S, S) bool.
    """

    def __len__(self) -> int: ...

    def load(self, index: int, rng: np.random.Generator) -> Batch: ...


class RGBDSource:
    """A depthany RGB-D folder (see ``docs/rgbd_format.md``) with random resized crops and flips."""

    def __init__(self, cfg: SourceCfg, data: DataCfg, pre: Preprocess, key: str = "data.sources") -> None:
        if cfg.options:
            raise RecipeError(f"{key}.options: the rgbd source takes no options, got {sorted(cfg.options)}")
        try:
            self.folder = RGBDFolder(cfg.path, cfg.split)
        except ValueError as e:
            raise RecipeError(f"{key}.path: {e}") from None
        if len(self.folder) == 0:
            raise RecipeError(f"{key}.path: {cfg.path} holds no samples")
        self.data, self.pre = data, pre

    def __len__(self) -> int:
        return len(self.folder)

    def load(self, index: int, rng: np.random.Generator) -> Batch:
        s = self.folder[index]
        return training_sample(s.rgb, s.depth, s.valid, self.data, self.pre, rng)


# kind -> "module:attribute". Extensions add one line here; modules are imported only when used.
SOURCE_KINDS: dict[str, str] = {
    "rgbd": "depthany.train.data:RGBDSource",
    # the evaluation readers' training splits (depthany.train.eval_sources)
    "nyuv2": "depthany.train.eval_sources:NYUv2TrainSource",
    "kitti": "depthany.train.eval_sources:KITTITrainSource",
    "eval": "depthany.train.eval_sources:EvalSplitSource",
    # the V2 metric models' training lists (depthany.train.v2_metric_sources)
    "hypersim": "depthany.train.v2_metric_sources:HypersimSource",
    "vkitti2": "depthany.train.v2_metric_sources:VKITTI2Source",
    # the student stage (docs/teacher_student.md)
    "labeled": "depthany.train.student_data:LabeledSource",
    "pseudo": "depthany.train.student_data:PseudoSource",
    # semantic segmentation, task: semseg (docs/segmentation.md)
    "semseg": "depthany.train.seg_sources:SegSource",
    "cityscapes": "depthany.train.seg_sources:SegSource",
    "ade20k": "depthany.train.seg_sources:SegSource",
    # clips of RGB-D sequences, task: video (docs/video_depth_anything.md)
    "video": "depthany.train.video_task:ClipSource",
}


def require_sources(data: DataCfg) -> None:
    """Refuse a recipe without training data, before anything is built from it.

    Raises:
        RecipeError: ``data.sources`` is empty, with how to give data.
    """
    if not data.sources:
        raise RecipeError("data.sources: no training data; pass --data FOLDER or --set data.sources.0.path=FOLDER")


def build_sources(data: DataCfg, pre: Preprocess) -> list[SampleSource]:
    """One :class:`SampleSource` per ``data.sources`` entry.

    Raises:
        RecipeError: no sources, an unknown kind, or an unreadable folder (naming ``data.sources.N``).
    """
    require_sources(data)
    out = []
    for i, cfg in enumerate(data.sources):
        key = f"data.sources.{i}"
        if cfg.kind not in SOURCE_KINDS:
            raise RecipeError(f"{key}.kind: unknown source kind {cfg.kind!r}; known: {', '.join(SOURCE_KINDS)}")
        mod, attr = SOURCE_KINDS[cfg.kind].split(":")
        out.append(getattr(importlib.import_module(mod), attr)(cfg, data, pre, key))
    return out


class MixPlan:
    """The deterministic draw order over several sources (see the module docstring).

    Args:
        sizes: number of samples in each source.
        weights: mixing weights (>= 0, not all 0).
        seed: the recipe seed.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], seed: int) -> None:
        total = float(sum(weights))
        if len(sizes) != len(weights) or total <= 0 or any(w < 0 for w in weights) or any(n < 1 for n in sizes):
            raise ValueError(f"bad mix: sizes {list(sizes)}, weights {list(weights)}")
        self.sizes = list(sizes)
        self.shares = [w / total for w in weights]
        self.seed = seed
        self._perm_cache: dict[tuple[int, int], np.ndarray] = {}

    def _perm(self, source: int, epoch: int) -> np.ndarray:
        key = (source, epoch)
        if key not in self._perm_cache:
            if len(self._perm_cache) > 2 * len(self.sizes):
                self._perm_cache.clear()
            rng = np.random.default_rng([self.seed, PERM_STREAM, source, epoch])
            self._perm_cache[key] = rng.permutation(self.sizes[source])
        return self._perm_cache[key]

    def draws(self, cursors: Sequence[int], count: int) -> tuple[list[Draw], list[int]]:
        """The next ``count`` draws after ``cursors``, and the cursors after them (inputs are not modified)."""
        c = list(cursors)
        filled = sum(c)
        out = []
        for _ in range(count):
            deficits = [s * (filled + 1) - ci if s > 0 else -np.inf for s, ci in zip(self.shares, c)]
            i = int(np.argmax(deficits))  # ties go to the lowest index
            k = c[i]
            n = self.sizes[i]
            out.append(Draw(i, int(self._perm(i, k // n)[k % n]), k))
            c[i] += 1
            filled += 1
        return out, c


def micro_slices(batch_size: int, world: int, accum: int, rank: int) -> list[slice]:
    """The slots of a global batch that process ``rank`` uses, one slice per accumulation micro-step."""
    parts = world * accum
    if batch_size % parts:
        raise RecipeError(f"train.batch_size {batch_size} must be divisible by processes x grad_accum = "
                          f"{world} x {accum} = {parts}")
    micro = batch_size // parts
    return [slice((m * world + rank) * micro, (m * world + rank + 1) * micro) for m in range(accum)]


class StepBatches:
    """Batch sampler for a ``DataLoader``: yields this process's micro-batches (lists of :class:`Draw`) for
    ``steps`` optimiser steps starting at ``cursors``."""

    def __init__(self, plan: MixPlan, cursors: Sequence[int], steps: int, batch_size: int, world: int,
                 rank: int, accum: int) -> None:
        self.plan, self.cursors, self.steps, self.batch_size = plan, list(cursors), steps, batch_size
        self.slices = micro_slices(batch_size, world, accum, rank)

    def __len__(self) -> int:
        return self.steps * len(self.slices)

    def __iter__(self) -> Iterator[list[Draw]]:
        c = self.cursors
        for _ in range(self.steps):
            draws, c = self.plan.draws(c, self.batch_size)
            for sl in self.slices:
                yield draws[sl]


class TrainSet(Dataset):
    """Map-style dataset indexed by :class:`Draw`: loads and augments one sample, tags it with its origin."""

    def __init__(self, sources: Sequence[SampleSource], seed: int) -> None:
        self.sources, self.seed = list(sources), seed

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitem__(self, draw: Draw) -> Batch:  # type: ignore[override]
        rng = np.random.default_rng([self.seed, AUG_STREAM, draw.source, draw.serial])
        sample = self.sources[draw.source].load(draw.item, rng)
        sample["source"] = torch.tensor(draw.source)
        sample["index"] = torch.tensor(draw.item)
        return sample


def collate(samples: list[Batch]) -> Batch:
    """Stack per-sample dicts into a batch dict; every sample must carry the same keys."""
    keys = list(samples[0])
    for s in samples[1:]:
        if list(s) != keys:
            raise ValueError(f"samples in one batch carry different keys: {sorted(keys)} vs {sorted(s)}")
    return {k: torch.stack([s[k] for s in samples]) for k in keys}


def make_loader(dataset: TrainSet, sampler: StepBatches, num_workers: int, pin_memory: bool) -> DataLoader[Any]:
    """A ``DataLoader`` over ``sampler``'s micro-batches; workers only prefetch, they never change the order.

    The loader gets its own generator: starting an iterator draws a seed from it, and drawing that from the
    global torch generator would shift the random stream of objectives that sample (Mask2Former's points) by one
    draw after every resume. Samples are augmented with their own numpy generators (:class:`TrainSet`).
    """
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate,
                      pin_memory=pin_memory, generator=torch.Generator().manual_seed(0))
