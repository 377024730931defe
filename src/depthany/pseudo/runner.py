"""The labelling loop: a teacher over input shards, one output shard each, distributed and resumable.

One process::

    depthany pseudo-label shards/train-{000000..000099}.tar --teacher da2-large --out labels/

Several processes or machines (each rank takes ``shards[rank::world]``)::

    torchrun --standalone --nproc_per_node=8 -m depthany pseudo-label ... --out labels/
    torchrun --nnodes=4 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 --rdzv-id=label-1 \\
        -m depthany pseudo-label ... --out /shared/labels/

Inside a rank, ``workers`` DataLoader processes each read whole shards (``mine[worker::workers]``), decode and
preprocess images; the main process groups images by network size into batches, runs the teacher and appends
each result to the open output shard of its input shard. When a worker reports that a shard ended, pending
batches holding its images are run and the shard is committed (temporary file renamed into place).

Resume: a rerun skips shards whose output exists and redoes the others from scratch (deleting temporary
files of killed runs), so every image is labelled exactly once. Two runs writing one folder at the same time
are not supported.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .. import transforms
from ..backends.torch_backend import TorchRunner
from ..budget import DEFAULT_MAX_TOKENS, check_max_tokens
from ..inference import InferencePipeline, pipeline_for
from ..io.atomic import write_text_atomic
from ..io.image import IMAGE_SUFFIXES, read_image
from ..precision import check_precision
from ..runtime.dist import DistEnv, all_reduce_sum, setup, teardown
from ..runtime.progress import format_duration
from ..transforms import normalize_image
from ..weights import load_model
from ..zoo import Preprocess
from .labeller import Item, ShardLabeller, progress_line
from .plan import (
    MANIFEST,
    InputShard,
    assign,
    check_manifest,
    is_finished,
    manifest_dict,
    plan_shards,
    read_manifest,
    remove_partial,
)
from .shards import ShardError, iter_shard

REPORT = "report.json"
KILL_ENV = "DEPTHANY_PSEUDO_KILL_AFTER"  # fault injection for tests: "N" or "RANK:N" images, then SIGKILL
IMAGE_EXTS = frozenset(s[1:] for s in IMAGE_SUFFIXES)  # member extensions read as the image
Resize = Literal["exact", "fast"]


@dataclass(frozen=True)
class LabelJob:
    """A labelling job.

    Attributes:
        inputs: tar shards (paths, globs, ``{000..099}`` ranges) and/or image files, folders, globs, lists.
        out: output folder (label shards, ``manifest.json``, ``report.json``).
        teacher: zoo name or alias, Hugging Face repo id, or a weights path; None = the bundled model.
        input_size: network short side (default: the teacher's).
        max_tokens: network-input budget in patch tokens (:mod:`depthany.budget`); larger images are labelled
            at a smaller network size (recorded in the label's ``input_budget``), too-thin ones fail.
        batch_size: images per forward pass (same network size only).
        workers: DataLoader worker processes per rank (0 = read in the main process).
        shard_size: images per file shard (image-file inputs only).
        device: ``auto``, ``cpu``, ``cuda`` (``cuda:LOCAL_RANK`` under torchrun), ``cuda:N``, ``mps``.
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast.
        resize: ``exact`` (the official OpenCV float64 cubic path of :func:`depthany.transforms.preprocess`,
            bit-identical to inference) or ``fast`` (float32 ``F.interpolate`` bicubic, the training kernel;
            about 5x faster on large photos and within ~2e-3 of ``exact`` after normalisation).
    """

    inputs: tuple[str, ...]
    out: Path
    teacher: str | None = None
    input_size: int | None = None
    batch_size: int = 16
    workers: int = 2
    shard_size: int = 1000
    device: str = "auto"
    precision: str = "fp32"
    resize: Resize = "exact"
    max_tokens: int = DEFAULT_MAX_TOKENS


@dataclass
class LabelReport:
    """What a labelling session did, summed over all processes.

    Attributes:
        shards_total: shards in the job; shards_skipped: already finished before this session;
        shards_done: finished in this session; shards_broken: unreadable input shards (not written).
        images: images labelled in this session; failed: images that could not be read (listed in
            ``OUT/<shard>.failures.json``).
        seconds: wall time of the labelling loop (slowest process); images_per_s: images / seconds.
        model_images_per_s: images per second of teacher forward passes alone (per process, averaged).
        collection_images: images in the whole job (exact for file inputs, estimated for tar shards from the
            shards read so far); collection_hours: time to label all of them at this session's speed.
        world: processes.
    """

    shards_total: int
    shards_skipped: int
    shards_done: int
    shards_broken: int
    images: int
    failed: int
    seconds: float
    images_per_s: float
    model_images_per_s: float
    collection_images: float
    collection_hours: float
    world: int
    broken: list[str] = field(default_factory=list)


def _raw_samples(shard: InputShard) -> Iterator[tuple[str, bytes | None, dict[str, Any], str]]:
    """(key, encoded image or None, source description, why None) for every sample of an input shard."""
    if shard.tar is None:
        for key, path in shard.files:
            try:
                yield key, path.read_bytes(), {"type": "file", "path": str(path.resolve())}, ""
            except OSError as e:
                yield key, None, {"type": "file", "path": str(path)}, f"cannot read {path}: {e}"
        return
    tar = str(shard.tar.resolve())
    for s in iter_shard(shard.tar):
        ext = next((e for e in sorted(s.members) if e.lower() in IMAGE_EXTS), None)
        if ext is None:
            yield s.key, None, {"type": "tar", "path": tar}, f"no image member (has {sorted(s.members)})"
            continue
        m = s.members[ext]
        yield s.key, m.data, {"type": "tar", "path": tar, "member": m.name, "offset": m.offset, "size": m.size}, ""


class ShardReader(IterableDataset):  # type: ignore[type-arg]
    """Decodes and preprocesses the images of whole shards; worker w of W reads shards w, w + W, ...

    Yields :class:`Item` s: one ``image`` ((3, h, w) normalised input) or ``failed`` per sample, then ``end``
    per shard, or ``broken`` when the shard itself cannot be read. ``pipeline`` decides the network size
    (under its token budget) and, for ``resize="exact"``, does the preprocessing.
    """

    def __init__(self, shards: list[InputShard], pipeline: InferencePipeline, resize: Resize = "exact") -> None:
        self.shards, self.pipeline, self.resize = shards, pipeline, resize

    def __iter__(self) -> Iterator[Item]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        for idx in range(wid, len(self.shards), nw):
            yield from self._read(idx)

    def _read(self, idx: int) -> Iterator[Item]:
        try:
            for key, data, src, why in _raw_samples(self.shards[idx]):
                if data is None:
                    yield Item("failed", idx, key, None, {"error": why})
                    continue
                try:
                    img = read_image(data)
                    if self.resize == "exact":
                        prep = self.pipeline.prepare(img.rgb)
                        x, fit = prep.x[0], prep.fit
                    else:
                        fit = self.pipeline.fit(*img.size)
                        x = fast_preprocess(img.rgb, self.pipeline.spec.preprocess, fit.network_size)
                except Exception as e:  # a bad image fails itself, not the shard
                    yield Item("failed", idx, key, None, {"error": f"{type(e).__name__}: {e}"})
                    continue
                meta = {"image_size": list(img.size), "src": src}
                if fit.shrunk:
                    meta["input_budget"] = fit.as_meta()
                yield Item("image", idx, key, x, meta)
        except ShardError as e:
            yield Item("broken", idx, "", None, {"error": str(e)})
            return
        yield Item("end", idx, "", None, {})


def fast_preprocess(rgb: np.ndarray, pre: Preprocess, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, h, w) normalised input at network ``size`` = (h, w) like
    :func:`depthany.transforms.preprocess`, in float32 with ``F.interpolate`` bicubic (a = -0.75, no antialias)
    instead of the float64 OpenCV replica."""
    x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    x = transforms.resize_bicubic(x, size)[0]
    return normalize_image(x, pre.mean, pre.std).contiguous()


def _identity(item: Item) -> Item:
    return item


def _kill_after(rank: int) -> int | None:
    """Fault injection (tests): the image count after which this rank kills itself, from ``KILL_ENV``."""
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return None
    if ":" in spec:
        r, n = spec.split(":", 1)
        return int(n) if int(r) == rank else None
    return int(spec)


def pseudo_label(job: LabelJob, echo: Callable[[str], None] = print) -> LabelReport:
    """Label every image of ``job.inputs`` with the teacher; under torchrun every process calls this.

    Raises:
        PlanError: bad inputs, or an output folder started with another teacher, size or inputs.
        WeightsError / ValueError: the teacher cannot be loaded, or a bad device / precision / size.
    """
    check_precision(job.precision)
    check_max_tokens(job.max_tokens)
    if job.resize not in ("exact", "fast"):
        raise ValueError(f"resize must be 'exact' or 'fast', got {job.resize!r}")
    if job.batch_size < 1 or job.workers < 0:
        raise ValueError(f"batch_size must be >= 1 and workers >= 0, got {job.batch_size} and {job.workers}")
    env = setup(job.device)
    try:
        return _run(job, env, echo if env.is_main else lambda _: None)
    finally:
        teardown(env)


@dataclass
class _Plan:
    """What one process labels, and with what (:func:`_prepare`)."""

    shards: list[InputShard]  # the whole job
    todo: list[InputShard]  # this process's shards not finished yet
    skipped: int  # this process's shards finished before this session
    pipeline: InferencePipeline
    runner: TorchRunner
    metric: bool  # the teacher predicts metres (labels store 1 / metres)
    base_meta: dict[str, Any]  # every label's metadata


def _run(job: LabelJob, env: DistEnv, echo: Callable[[str], None]) -> LabelReport:
    """Plan, label this process's shards, then sum the counts of all processes into the report."""
    out = Path(job.out)
    plan = _prepare(job, env, out, echo)
    t_start = time.perf_counter()

    def on_shard(name: str, count: int, fails: int) -> None:
        echo(progress_line(name, count, fails, labeller.stats, time.perf_counter() - t_start, len(plan.todo),
                           len(plan.shards), env.world))

    labeller = ShardLabeller(out, plan.todo, plan.pipeline, plan.runner, batch_size=job.batch_size,
                             metric=plan.metric, base_meta=plan.base_meta, rank=env.rank,
                             kill_after=_kill_after(env.rank), on_shard=on_shard)
    loader: DataLoader[Item] = DataLoader(ShardReader(plan.todo, plan.pipeline, job.resize), batch_size=None,
                                          num_workers=min(job.workers, len(plan.todo)),
                                          collate_fn=_identity)  # type: ignore[arg-type]  # batch_size=None: one item
    for item in loader:
        labeller.take(item)
    del loader
    report = _summarise(labeller, plan, env, time.perf_counter() - t_start)
    if env.is_main:
        write_text_atomic(out / REPORT, json.dumps(asdict(report), indent=1), durable=True)
    echo(f"labelled {report.images} images ({report.failed} failed) in {format_duration(report.seconds)}: "
         f"{report.images_per_s:.1f} images/s over {env.world} process(es), teacher alone "
         f"{report.model_images_per_s:.1f} images/s per process; whole collection "
         f"(~{report.collection_images:,.0f} images) at this speed: {format_duration(report.collection_hours * 3600)}")
    return report


def _prepare(job: LabelJob, env: DistEnv, out: Path, echo: Callable[[str], None]) -> _Plan:
    """Plan the shards, load the teacher, check (or write) the manifest, and pick this process's work."""
    shards = plan_shards(list(job.inputs), job.shard_size, exclude=(out,))
    model, spec = load_model(job.teacher, device=env.device)
    if spec.arch.zoe is not None:  # its pipeline averages a flip pair and pads: not a network-size label
        raise ValueError(f"teacher {spec.name} is a V1 metric (ZoeDepth) model; pseudo-labels come from Depth "
                         "Anything teachers (relative or V2 metric)")
    pipeline = pipeline_for(spec, job.input_size, job.max_tokens)  # validates the size and the budget
    size = pipeline.input_size
    wanted = manifest_dict(shards, spec.name, spec.extra.get("weights"), size, job.max_tokens)
    stored = read_manifest(out)
    if stored is not None:
        check_manifest(stored, wanted, out)
    elif env.is_main:
        write_text_atomic(out / MANIFEST, json.dumps(wanted, indent=1), durable=True)

    mine = assign(shards, env.rank, env.world)
    todo = [s for s in mine if not is_finished(out, s)]
    for s in todo:
        remove_partial(out, s)
    known = sum(len(s.files) for s in shards if s.tar is None)
    echo(f"pseudo-label: {len(shards)} shards ({sum(s.tar is not None for s in shards)} tar, "
         f"{known} image files), {env.world} process(es) x {job.workers} reader(s); teacher {spec.name} at "
         f"{size}, batch {job.batch_size}, {env.device} {job.precision}")
    echo(f"this process: {len(mine)} shards, {len(mine) - len(todo)} already finished")
    base_meta = {"teacher": spec.name, "weights": spec.extra.get("weights"), "kind": "disparity",
                 "teacher_head": spec.arch.head, "input_size": size, "max_tokens": job.max_tokens,
                 "resize": job.resize}
    return _Plan(shards, todo, len(mine) - len(todo), pipeline, TorchRunner(model, job.precision, env.device),
                 spec.arch.head == "metric", base_meta)


def _summarise(labeller: ShardLabeller, plan: _Plan, env: DistEnv, elapsed: float) -> LabelReport:
    """Sum every process's counts (the slowest process's time) into the job's report."""
    stats = labeller.stats
    totals = torch.tensor([stats["images"], stats["failed"], stats["done"], stats["broken"], plan.skipped,
                           stats["tar_done"], stats["tar_images"], stats["model_s"]], dtype=torch.float64)
    longest = torch.tensor([elapsed], dtype=torch.float64)
    if env.world > 1:  # gloo reduces CPU tensors, NCCL needs them on the GPU
        totals = all_reduce_sum(totals.to(env.device), env).cpu()
        longest = longest.to(env.device)
        torch.distributed.all_reduce(longest, op=torch.distributed.ReduceOp.MAX)
        longest = longest.cpu()
    images, failed, done, n_broken, n_skipped, tar_done, tar_images, model_s = totals.tolist()
    seconds = float(longest.item())
    rate = images / seconds if seconds > 0 else 0.0
    known = sum(len(s.files) for s in plan.shards if s.tar is None)
    n_tar = sum(s.tar is not None for s in plan.shards)
    # tar shards are not counted in advance (that would read them all): extrapolate from those read
    collection = known + (n_tar * tar_images / tar_done if tar_done else (float("nan") if n_tar else 0.0))
    return LabelReport(len(plan.shards), int(n_skipped), int(done), int(n_broken), int(images), int(failed),
                       seconds, rate, images / model_s if model_s else 0.0, float(collection),
                       collection / rate / 3600 if rate else float("nan"), env.world, labeller.broken)
