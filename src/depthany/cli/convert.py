"""``depthany convert``: rewrite weights in another layout (lossless; optional dtype cast)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import model_option

_FORMATS = ("depthany", "official", "v1_hub", "transformers", "dinov2")  # checked against OUT_FORMATS in tests


@click.command("convert")
@click.argument("source", metavar="INPUT")
@click.argument("output", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--to", "to", type=click.Choice(_FORMATS), required=True,
              help="Layout to write: depthany (.safetensors with the spec inside), official (.pth), v1_hub "
                   "(folder: config.json + pytorch_model.bin), transformers (folder: config.json + "
                   "model.safetensors), dinov2 (encoder-only .pth).")
@model_option(help_text="Zoo name of the input, for official .pth files whose name does not say (V1, V2 or metric).")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default=None,
              help="Cast floating-point tensors (default: keep the stored dtype).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def convert(source: str, output: Path, to: str, model: str | None, dtype: str | None, overwrite: bool) -> None:
    """Convert INPUT (a weights file or folder in any supported layout, or a zoo name / Hugging Face repo id)
    to OUTPUT in the layout given by --to. The weights are checked strictly against the architecture first.

    \b
    Examples:
      depthany convert depth_anything_v2_vits.pth da2-small.safetensors --to depthany
      depthany convert da2-small da2-small-hf --to transformers
      depthany convert depth_anything_vitb14.pth vitb-hub --to v1_hub --model da1-base
    """
    from ..weights.convert import convert_weights

    try:
        r = convert_weights(source, output, to, model=model, dtype=dtype, overwrite=overwrite)
    except ValueError as e:  # WeightsError is a ValueError: bad file, wrong architecture, bad option
        raise click.ClickException(str(e)) from e
    click.echo(f"wrote {r.output} ({r.to}, {r.tensors} tensors, {r.dtype}) from {r.source} "
               f"({r.source_layout}, model {r.model})")
    if r.filled:
        click.echo(f"note: {', '.join(r.filled)} absent from the input, written as zeros (unused at inference)")
