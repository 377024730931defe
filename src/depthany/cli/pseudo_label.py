"""``depthany pseudo-label``: parse arguments, call :func:`depthany.pseudo.pseudo_label`. Nothing else."""

from __future__ import annotations

from pathlib import Path

import click

from .options import device_option, input_size_option, max_tokens_option, model_option, precision_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: one label shard per input shard, manifest.json, report.json.")
@model_option("--teacher", help_text="Teacher: zoo name or alias, Hugging Face repo id, or weights file (default: "
                                     "the bundled model).")
@input_size_option()
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images per forward pass (same network size).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Reader processes per rank (decode + preprocess).")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Images per output shard for image-file inputs (tar inputs keep their shards).")
@device_option()
@precision_option()
@click.option("--resize", type=click.Choice(["exact", "fast"]), default="exact", show_default=True,
              help="exact: the official OpenCV cubic resize (float64); fast: float32 bicubic, ~5x faster on "
                   "large photos, within ~2e-3 after normalisation.")
@max_tokens_option()
def pseudo_label(inputs: tuple[str, ...], out: Path, teacher: str | None, input_size: int | None, batch_size: int,
                 workers: int, shard_size: int, device: str, precision: str, resize: str, max_tokens: int) -> None:
    """Label INPUTS (tar shards, brace ranges such as shards/x-{000..099}.tar, folders, globs, .txt lists) with a
    teacher. Rerun the same command to resume: finished shards are skipped, partial ones redone.

    Several processes or machines: torchrun --nproc_per_node=8 -m depthany pseudo-label ... (see
    docs/teacher_student.md).
    """
    from ..pseudo import LabelJob, PlanError
    from ..pseudo import pseudo_label as run
    from ..weights import WeightsError

    job = LabelJob(tuple(inputs), out, teacher, input_size, batch_size, workers, shard_size, device, precision,
                   resize, max_tokens)  # type: ignore[arg-type]
    try:
        report = run(job, echo=click.echo)
    except (PlanError, WeightsError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    if report.shards_broken:
        raise click.ClickException(f"{report.shards_broken} input shard(s) could not be read and were not "
                                   f"labelled ({report.broken[0] if report.broken else 'see the messages above'}); "
                                   "fix or remove them and rerun to finish")
