"""``depthany export``: ONNX with dynamic batch/height/width and a parity report beside it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..bench.args import parse_sizes
from .options import weights_option


@click.command("export")
@click.argument("model", required=False)
@weights_option(extra_help="Default: the zoo weights of MODEL.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .onnx file to write; the parity report goes to <name>.parity.json beside it.")
@click.option("--static", "static", default=None, metavar="HxW",
              help="Fix the input to this size (and --batch) instead of dynamic batch, height and width.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size of a --static export.")
@click.option("--opset", type=click.IntRange(min=17), default=18, show_default=True, help="ONNX opset.")
@click.option("--parity/--no-parity", default=True, show_default=True,
              help="Compare the file with PyTorch (ONNX Runtime, and OpenVINO if installed) at several sizes.")
@click.option("--parity-sizes", default=None, metavar="HxW,...",
              help="Probe sizes for the parity report (default: 518x518, 518x686, 686x518, 364x490, 140x252 "
                   "and a batch of 2 at 518x700).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def export(model: str | None, weights: Path | None, output: Path, static: str | None, batch: int, opset: int,
           parity: bool, parity_sizes: str | None, overwrite: bool) -> None:
    """Export MODEL (zoo name, Hugging Face alias, or --weights) to ONNX: input "image" (B, 3, H, W)
    normalised, H and W multiples of 14; output "depth" (B, H, W). The positional-embedding resize is built
    from the input's shape, so the file is exact at every size, not only the export size.

    \b
    Examples:
      depthany export da2-small -o da2-small.onnx
      depthany export da2-base --static 518x686 -o da2-base-518x686.onnx
      depthany export --weights my-finetune.safetensors -o mine.onnx --parity-sizes 518x518,700x518
    """
    from ..export import ExportError, export_onnx, parity_path, parity_report
    from ..export.onnx import EXAMPLE_SIZE
    from ..export.parity import DEFAULT_SIZES
    from ..weights import load_model

    if output.exists() and not overwrite:
        raise click.UsageError(f"{output} exists; pass --overwrite to replace it")
    size = parse_sizes(static, param="--static")[0] if static else EXAMPLE_SIZE
    probes = None
    if parity_sizes:
        probes = tuple((1, h, w) for h, w in parse_sizes(parity_sizes, param="--parity-sizes"))
    elif static:
        probes = ((batch, *size),)
    try:
        net, spec = load_model(model, weights)
        click.echo(f"exporting {spec.name} ({'static ' + f'{batch}x3x{size[0]}x{size[1]}' if static else 'dynamic'})"
                   f" to {output} ...", err=True)
        export_onnx(net, output, dynamic=static is None, size=size, batch=batch, opset=opset)
    except (ExportError, ValueError) as e:  # WeightsError is a ValueError
        raise click.ClickException(str(e)) from e
    click.echo(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB)")
    if not parity:
        return
    meta = {"model": spec.name, "dynamic": static is None, "opset": opset}
    report = parity_report(net, output, probes or DEFAULT_SIZES, meta=meta)
    for r in report["results"]:
        where = f"{r['engine']:12s} {r['batch']}x{r['height']}x{r['width']}"
        if r.get("ok") is None:
            click.echo(f"  {where}: skipped ({r['skipped']})")
        else:
            click.echo(f"  {where}: max rel err {r['max_rel']:.1e}  AbsRel {r['absrel']:.1e}  "
                       f"{'ok' if r['ok'] else 'FAIL'}")
    click.echo(f"parity report: {parity_path(output)}")
    if not report["results"]:
        click.echo("no engine to check parity with: pip install 'depthany[export]'", err=True)
    elif not report["ok"]:
        raise click.ClickException(f"parity check failed (tolerance {report['tolerance']:g}); see "
                                   f"{parity_path(output)}: " + json.dumps(report["versions"]))
