"""``depthany controlnet-data``: label images with a depth model once, then write ControlNet training triples.

    depthany controlnet-data photos/ --model da2-large --captions captions.jsonl --out cn-data/
    torchrun --nproc_per_node=8 -m depthany controlnet-data shards/train-{000000..000999}.tar \\
        --model da2-large --layout folder,webdataset --out /shared/cn-data/

Step 1 is ``depthany pseudo-label`` itself (:func:`depthany.pseudo.pseudo_label`) into ``OUT/labels``: sharded
inputs (tar shards, image folders), one depth forward pass per image, DataLoader readers, ``torchrun`` ranks,
and resume (finished shards are skipped, partial ones redone, so every image is labelled exactly once). Step 2
converts each finished label shard (:func:`depthany.controlnet_data.convert.convert_shard`; rank ``r`` of
``w`` takes shards ``r, r + w, ...``, in ``workers`` processes); a shard is done when its ``parts/<name>.json``
exists. When all ranks have finished, rank 0 joins the parts into ``imagefolder/train/metadata.jsonl`` and
writes ``report.json``.

Layout of ``OUT``::

    controlnet_data.json                     the job's settings (a rerun must match them)
    labels/                                  the pseudo-label folder (depth at network resolution, float16)
    imagefolder/train/metadata.jsonl         per sample: file_name, conditioning_image_file_name, text, and
                                             shard, key, source (where it came from)
    imagefolder/train/images/SSSSSS/NNNNNN.<ext>           (shard number, sample number; see convert.py)
    imagefolder/train/conditioning_images/SSSSSS/NNNNNN.png
    webdataset/train/SSSSSS.tar              NNNNNN.<ext>, NNNNNN.depth.png, NNNNNN.txt, NNNNNN.json
    parts/<shard>.json                       per-shard rows, failures and images without captions
    report.json                              counts, failures, images without captions

``imagefolder`` is what diffusers' ``examples/controlnet/train_controlnet.py --train_data_dir OUT/imagefolder``
reads through ``datasets`` (columns ``image``, ``conditioning_image``, ``text``: its defaults); see
docs/generate.md.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..budget import DEFAULT_MAX_TOKENS
from ..io.atomic import write_text_atomic
from ..pseudo import LabelJob, PlanError, pseudo_label
from ..pseudo.plan import read_manifest
from ..runtime.dist import setup, teardown
from .captions import Captions
from .convert import FOLDER, LAYOUTS, WDS, convert_shard, part_path

SETTINGS = "controlnet_data.json"
REPORT = "report.json"
FORMAT = "depthany-controlnet-data"
MAX_LISTED = 20  # failures / uncaptioned keys listed in the report (all are in the parts)


@dataclass(frozen=True)
class ControlNetDataJob:
    """A ControlNet training-data job.

    Attributes:
        inputs: tar shards (paths, globs, ``{000..099}`` ranges) and/or image files, folders, globs, lists.
        out: output folder (see the module docstring).
        model: depth model: zoo name or alias, Hugging Face repo id, or weights path; None = the bundled model.
        captions: ``sidecar``, ``filename`` or a caption file (:mod:`depthany.controlnet_data.captions`).
        layouts: ``folder`` (image folder + metadata.jsonl) and/or ``webdataset`` (tar shards).
        input_size, batch_size, workers, shard_size, device, precision, resize, max_tokens: as for
            :class:`depthany.pseudo.LabelJob` (``workers`` also sets the conversion processes).
    """

    inputs: tuple[str, ...]
    out: Path
    model: str | None = None
    captions: str = "sidecar"
    layouts: tuple[str, ...] = ("folder",)
    input_size: int | None = None
    batch_size: int = 16
    workers: int = 2
    shard_size: int = 1000
    device: str = "auto"
    precision: str = "fp32"
    resize: str = "exact"
    max_tokens: int = DEFAULT_MAX_TOKENS


@dataclass
class DataReport:
    """What the job holds once finished (or, on a process that did not finish it, what this process did).

    Attributes:
        complete: every shard converted and ``metadata.jsonl`` written.
        samples: training samples; shards: shards converted (all processes, all sessions);
        labelled: images the depth model labelled in this session; label_failures: images it could not read;
        failed: images dropped while converting; missing_captions: samples with an empty caption.
    """

    complete: bool
    samples: int
    shards: int
    shards_total: int
    labelled: int
    label_failures: int
    failed: int
    missing_captions: int
    failures: list[dict[str, str]] = field(default_factory=list)
    uncaptioned: list[str] = field(default_factory=list)


def _settings(job: ControlNetDataJob, captions: Captions) -> dict[str, Any]:
    return {"format": FORMAT, "version": 1, "model": job.model, "captions": captions.describe(),
            "layouts": sorted(job.layouts)}


def _check_out(job: ControlNetDataJob) -> None:
    """The output folder must not lie inside an input folder: a rerun would read its own copies as inputs."""
    out = Path(job.out).resolve()
    for arg in job.inputs:
        p = Path(arg).expanduser()
        if p.is_dir() and out.is_relative_to(p.resolve()):
            raise PlanError(f"--out {job.out} is inside the input folder {arg}; put it elsewhere (a rerun would "
                            "read the copied images as new inputs)")


def controlnet_data(job: ControlNetDataJob, echo: Callable[[str], None] = print) -> DataReport:
    """Run the job; every torchrun process calls this. Rerun the same job to resume.

    Raises:
        PlanError: bad inputs, an output folder inside an input folder, or one started with other settings.
        CaptionError: a caption file that cannot be read.
        WeightsError / ValueError: the depth model cannot be loaded, or a bad option.
    """
    from ..weights import resolve_checkpoint

    bad = [lay for lay in job.layouts if lay not in LAYOUTS]
    if bad or not job.layouts:
        raise ValueError(f"layouts must be some of {', '.join(LAYOUTS)}, got {', '.join(job.layouts) or 'none'}")
    _check_out(job)
    captions = Captions(job.captions)
    out = Path(job.out)
    wanted = _settings(job, captions)
    stored_path = out / SETTINGS
    if stored_path.exists():
        stored = json.loads(stored_path.read_text())
        diff = [k for k in wanted if stored.get(k) != wanted[k]]
        if diff:
            raise PlanError(f"{out}: made with {diff[0]} {stored.get(diff[0])!r}, this run asks for "
                            f"{wanted[diff[0]]!r}; use another --out folder")
    elif int(os.environ.get("RANK", "0")) == 0:
        write_text_atomic(stored_path, json.dumps(wanted, indent=1), durable=True)

    # The depth model's post-processing (corner convention of the bilinear upsampling) goes with its weights.
    _, spec = resolve_checkpoint(job.model)
    align = spec.preprocess.output_align_corners if spec is not None else True

    labels = out / "labels"
    label_job = LabelJob(job.inputs, labels, job.model, job.input_size, job.batch_size, job.workers,
                         job.shard_size, job.device, job.precision, job.resize, job.max_tokens)  # type: ignore[arg-type]
    # Join the process group first: pseudo_label then uses it (and leaves it open) and the ranks can meet again.
    env = setup(job.device)
    try:
        labelled = pseudo_label(label_job, echo=echo)
        manifest = read_manifest(labels)
        assert manifest is not None  # pseudo_label wrote it
        names = [s["name"] for s in manifest["shards"]]
        todo = [n for n in names[env.rank::env.world]
                if (labels / f"{n}.tar").is_file() and not part_path(out, n).is_file()]
        echo(f"controlnet-data: converting {len(todo)} shard(s) in this process "
             f"({sum(part_path(out, n).is_file() for n in names)} of {len(names)} already done)")
        _convert_all(labels, out, [(n, names.index(n)) for n in todo], captions, align, tuple(job.layouts),
                     job.workers, echo)
        if env.world > 1:
            torch.distributed.barrier()
        done = sum(part_path(out, n).is_file() for n in names)
        report = _merge(out, names, write=env.is_main) if done == len(names) else None
        if env.world > 1:
            torch.distributed.barrier()  # rank 0 has written metadata.jsonl before anyone returns
    finally:
        teardown(env)
    if report is None:
        report = DataReport(False, 0, done, len(names), 0, 0, 0, 0)
        echo(f"controlnet-data: {done} of {len(names)} shards converted (some label shards are missing: see "
             "above); rerun the same command to finish")
    else:
        echo(f"controlnet-data: {report.samples} samples in {out / FOLDER}"
             f"{' and ' + str(out / WDS) if 'webdataset' in job.layouts else ''}; "
             f"{report.failed} image(s) dropped, {report.missing_captions} without a caption")
    report.labelled, report.label_failures = labelled.images, labelled.failed
    return report


def _convert_all(labels: Path, out: Path, shards: list[tuple[str, int]], captions: Captions, align: bool,
                 layouts: tuple[str, ...], workers: int, echo: Callable[[str], None]) -> None:
    if workers <= 1 or len(shards) <= 1:
        for n, i in shards:
            part = convert_shard(labels, out, n, i, captions, align, layouts)
            echo(f"{n}: {len(part['rows'])} samples" + (f", {len(part['failures'])} failed" if part["failures"] else ""))
        return
    # spawn, not fork: the parent holds torch (and maybe CUDA) state that forked children must not inherit
    with ProcessPoolExecutor(max_workers=min(workers, len(shards)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {n: pool.submit(convert_shard, labels, out, n, i, captions, align, layouts) for n, i in shards}
        for n, fut in futures.items():
            part = fut.result()
            echo(f"{n}: {len(part['rows'])} samples" + (f", {len(part['failures'])} failed" if part["failures"] else ""))


def _merge(out: Path, names: list[str], write: bool = True) -> DataReport:
    """Concatenate the parts (manifest order) into metadata.jsonl and write report.json (when ``write``)."""
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    missing: list[str] = []
    for n in names:
        part = json.loads(part_path(out, n).read_text())
        rows += part["rows"]
        failures += part["failures"]
        missing += part["missing_captions"]
    report = DataReport(True, len(rows), len(names), len(names), 0, 0, len(failures), len(missing),
                        failures[:MAX_LISTED], missing[:MAX_LISTED])
    if write:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        write_text_atomic(out / FOLDER / "metadata.jsonl", lines, durable=True)
        write_text_atomic(out / REPORT, json.dumps(asdict(report), indent=1), durable=True)
    return report
