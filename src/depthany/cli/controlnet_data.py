"""``depthany controlnet-data``: parse arguments, call :func:`depthany.controlnet_data.controlnet_data`."""

from __future__ import annotations

from pathlib import Path

import click

from .options import device_option, input_size_option, max_tokens_option, model_option, precision_option


@click.command("controlnet-data", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: imagefolder/ (metadata.jsonl), webdataset/, labels/, report.json.")
@model_option(help_text="Depth model: zoo name or alias, Hugging Face repo id, or weights file (default: the "
                        "bundled one).")
@click.option("--captions", default="sidecar", show_default=True, metavar="sidecar|filename|FILE",
              help="sidecar: x.txt next to x.jpg (tar: the sample's .txt/.json); filename: from the file name; "
                   "or a .txt (NAME<TAB>CAPTION), .csv, .json or .jsonl file.")
@click.option("--layout", default="folder", show_default=True,
              help="folder (image folder + metadata.jsonl), webdataset (tar shards), or folder,webdataset.")
@input_size_option()
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images per forward pass (same network size).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Reader processes per rank, and conversion processes.")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Images per shard for image-file inputs (tar inputs keep their shards).")
@device_option()
@precision_option()
@max_tokens_option()
@click.option("--resize", type=click.Choice(["exact", "fast"]), default="exact", show_default=True,
              help="Depth-network input resize, as for pseudo-label.")
def controlnet_data(inputs: tuple[str, ...], out: Path, model: str | None, captions: str, layout: str,
                    input_size: int | None, batch_size: int, workers: int, shard_size: int, device: str,
                    precision: str, max_tokens: int, resize: str) -> None:
    """Make ControlNet training data from INPUTS (image folders, files, globs, .txt lists, WebDataset tar shards):
    each image, its depth conditioning image (near = bright) and a caption. Rerun the same command to resume.

    Several processes or machines: torchrun --nproc_per_node=8 -m depthany controlnet-data ... (each image's
    depth is computed once, by one process).
    """
    from ..controlnet_data import CaptionError, ControlNetDataJob
    from ..controlnet_data import controlnet_data as run
    from ..pseudo import PlanError
    from ..weights import WeightsError

    layouts = tuple(dict.fromkeys(s.strip() for s in layout.split(",") if s.strip()))
    job = ControlNetDataJob(tuple(inputs), out, model, captions, layouts, input_size, batch_size, workers, shard_size,
                            device, precision, resize, max_tokens)
    try:
        report = run(job, echo=click.echo)
    except (PlanError, CaptionError, WeightsError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    if not report.complete:
        raise click.ClickException("not every shard is converted yet (see above); rerun the same command to finish")
