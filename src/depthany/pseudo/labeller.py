"""The labelling steps inside one process: group reader items into same-size batches, run the teacher, write each
label into the open output shard of its input shard, commit a shard when its reader says it ended, and count.
:func:`depthany.pseudo.runner.pseudo_label` plans the job and drives this with a DataLoader."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch

from ..backends.torch_backend import TorchRunner
from ..inference import InferencePipeline
from ..io.atomic import write_text_atomic
from ..runtime.progress import format_duration
from .labels import encode_label
from .plan import InputShard, output_path
from .shards import ShardWriter

ItemKind = Literal["image", "failed", "end", "broken"]


class Item(NamedTuple):
    """What a reader worker sends: an image ready for the network, a failure, or the end of a shard."""

    kind: ItemKind
    shard: int
    key: str
    x: torch.Tensor | None
    meta: dict[str, Any]


class ShardLabeller:
    """Labels the items of ``todo`` (this process's unfinished input shards) into ``out``.

    ``stats`` counts images (labelled), failed (unreadable or unencodable), done (shards committed), broken
    (unreadable input shards), model_s (seconds in teacher forward passes), tar_done / tar_images (tar shards
    finished and the images they held); ``broken`` lists the broken shards' errors.
    """

    def __init__(self, out: Path, todo: list[InputShard], pipeline: InferencePipeline, runner: TorchRunner, *,
                 batch_size: int, metric: bool, base_meta: dict[str, Any], rank: int,
                 kill_after: int | None = None, on_shard: Callable[[str, int, int], None] | None = None) -> None:
        self.out, self.todo, self.pipeline, self.runner = out, todo, pipeline, runner
        self.batch_size, self.metric, self.base_meta, self.rank = batch_size, metric, base_meta, rank
        self.kill_after, self.on_shard = kill_after, on_shard
        self.writers: dict[int, ShardWriter] = {}
        self.failures: dict[int, list[dict[str, str]]] = {}
        self.buckets: dict[tuple[int, int], list[Item]] = {}
        self.stats: dict[str, Any] = {"images": 0, "failed": 0, "done": 0, "broken": 0, "model_s": 0.0,
                                      "tar_done": 0, "tar_images": 0}
        self.broken: list[str] = []

    def take(self, item: Item) -> None:
        """Handle one reader item (an image is batched; a shard's end commits it)."""
        if item.kind == "image" and item.x is not None:
            self._batch(item)
        elif item.kind == "failed":
            self._fail(item.shard, item.key, item.meta["error"])
        elif item.kind == "broken":
            self._drop_shard(item.shard, item.meta["error"])
        else:
            self._finish_shard(item.shard)

    def _writer(self, idx: int) -> ShardWriter:
        if idx not in self.writers:
            self.writers[idx] = ShardWriter(output_path(self.out, self.todo[idx]), index=True)
        return self.writers[idx]

    def _fail(self, shard: int, key: str, error: str) -> None:
        self.failures.setdefault(shard, []).append({"key": key, "error": error})
        self.stats["failed"] += 1

    def _batch(self, item: Item) -> None:
        assert item.x is not None
        net_size = (int(item.x.shape[-2]), int(item.x.shape[-1]))
        self.buckets.setdefault(net_size, []).append(item)
        if len(self.buckets[net_size]) >= self.batch_size:
            self._label(self.buckets.pop(net_size))

    def _label(self, items: list[Item]) -> None:
        """One forward pass over same-size ``items``; each label goes to its shard's writer."""
        t0 = time.perf_counter()
        x = torch.stack([it.x for it in items])  # type: ignore[misc]
        pred = self.pipeline.forward(self.runner, x)
        if self.metric:  # labels are always disparity-like: 1 / metres
            pred = 1.0 / pred.clamp(min=1e-6)
        pred_np = pred.cpu().numpy()
        self.stats["model_s"] += time.perf_counter() - t0
        h, w = x.shape[-2:]
        for it, d in zip(items, pred_np):
            meta = {**self.base_meta, "key": it.key, "net_size": [h, w], **it.meta}
            try:
                files = encode_label(d, meta)
            except ValueError as e:
                self._fail(it.shard, it.key, str(e))
                continue
            self._writer(it.shard).write(it.key, files)
            self.stats["images"] += 1
            if self.kill_after is not None and self.stats["images"] >= self.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)  # simulated crash: open shards stay temporary files

    def _flush(self, shard: int) -> None:
        """Run the pending batches that hold an image of ``shard``."""
        for k in list(self.buckets):
            if any(it.shard == shard for it in self.buckets[k]):
                self._label(self.buckets.pop(k))

    def _drop_shard(self, shard: int, error: str) -> None:
        """An unreadable input shard: its images are dropped and its output discarded (the next run redoes it)."""
        for k in list(self.buckets):
            self.buckets[k] = [it for it in self.buckets[k] if it.shard != shard]
            if not self.buckets[k]:
                del self.buckets[k]
        if shard in self.writers:
            self.writers.pop(shard).abort()
        self.stats["broken"] += 1
        self.broken.append(error)
        # every rank says so (echo is rank 0 only): the job is incomplete until this shard is fixed
        print(f"[rank {self.rank}] broken input shard, not labelled: {error}", file=sys.stderr)

    def _finish_shard(self, shard: int) -> None:
        """The end of a shard: everything it sent is in a writer or a bucket; label the rest and commit."""
        self._flush(shard)
        w = self._writer(shard)
        fails = self.failures.pop(shard, [])
        side = output_path(self.out, self.todo[shard]).with_suffix(".failures.json")
        if fails:
            write_text_atomic(side, json.dumps(fails, indent=1), durable=True)
        else:
            side.unlink(missing_ok=True)
        if self.todo[shard].tar is not None:
            self.stats["tar_done"] += 1
            self.stats["tar_images"] += w.count + len(fails)
        w.commit()
        del self.writers[shard]
        self.stats["done"] += 1
        if self.on_shard is not None:
            self.on_shard(self.todo[shard].name, w.count, len(fails))


def progress_line(name: str, count: int, fails: int, stats: dict[str, Any], elapsed: float, todo: int, total: int,
                  world: int) -> str:
    """One line per finished shard: throughput of this process and an ETA for this session's work."""
    rate = stats["images"] / elapsed if elapsed > 0 else 0.0
    eta = elapsed / stats["done"] * (todo - stats["done"])
    return (f"{name}.tar: {count} images" + (f", {fails} failed" if fails else "") +
            f"  |  {stats['done']}/{todo} shards of this process ({total} in all)  {rate:.1f} img/s here, "
            f"~{rate * world:.1f} img/s in all  eta {format_duration(eta)}")
