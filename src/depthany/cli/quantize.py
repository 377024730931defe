"""``depthany quantize``: int8 for OpenVINO from the user's own images, with an accuracy gate against fp32.

    depthany quantize da2-small --calibration photos/ -o da2-small-int8.xml
    depthany predict photos/ --model da2-small --precision int8 --out depth/

Exit status: 0 when the gate passed (the model is cached for ``--precision int8``), 1 when it failed (the model
and its report are written but not cached) or quantisation could not run, 2 for a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .options import input_size_option, max_tokens_option, weights_option

if TYPE_CHECKING:
    from ..io.inputs import ExpandedInputs

DEFAULT_COUNT = 128  # depthany.quantize.DEFAULT_CALIBRATION (not imported here: keeps --help free of torch)
DEFAULT_HOLDOUT_COUNT = 16


@click.command("quantize")
@click.argument("model", required=False)
@weights_option(extra_help="Default: the zoo weights of MODEL.")
@click.option("--calibration", "-c", multiple=True, required=True, metavar="IMAGES",
              help="Calibration images: files, folders (recursive), globs or .txt lists; repeatable. Use photos "
                   "like the ones the model will see.")
@click.option("--holdout", multiple=True, metavar="IMAGES",
              help="Held-out images for the accuracy gate (never calibrated on); default: every k-th "
                   "calibration image is held out instead.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The OpenVINO IR to write (.xml; .bin and the gate report <name>.gate.json go beside it).")
@click.option("--count", type=click.IntRange(min=1), default=DEFAULT_COUNT, show_default=True,
              help="Calibration images used at most (spread over the list).")
@click.option("--holdout-count", type=click.IntRange(min=1), default=DEFAULT_HOLDOUT_COUNT, show_default=True,
              help="Held-out images used at most.")
@click.option("--max-absrel", type=click.FloatRange(min=0), default=0.015, show_default=True,
              help="Gate: the largest mean AbsRel of int8 against fp32 on the held-out images, as a fraction "
                   "(0.015 = 1.5 %).")
@click.option("--keep-float", multiple=True, metavar="REGEX",
              help="Also keep in floating point the operations whose module path matches, e.g. "
                   "'depth_head\\.scratch\\.refinenet1' or 'blocks\\.11\\.mlp'; repeatable.")
@input_size_option(extra_help="Calibration and the gate run at it, as predict --input-size would.")
@max_tokens_option()
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads (default: torch's).")
@click.option("--cache/--no-cache", default=True, show_default=True,
              help="Copy a model that passes the gate into the cache, where --precision int8 finds it.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def quantize(model: str | None, weights: Path | None, calibration: tuple[str, ...], holdout: tuple[str, ...],
             output: Path, count: int, holdout_count: int, max_absrel: float, keep_float: tuple[str, ...],
             input_size: int | None, max_tokens: int, threads: int | None, cache: bool, overwrite: bool,
             quiet: bool) -> None:
    """Quantise MODEL (zoo name, Hugging Face alias, or --weights) to int8 for OpenVINO, calibrated on your
    images, and check it against the fp32 model on held-out images (AbsRel, delta1). Fails when the mean
    AbsRel exceeds --max-absrel.

    \b
    Examples:
      depthany quantize da2-small --calibration photos/ -o da2-small-int8.xml
      depthany quantize --weights mine.safetensors -c train_list.txt --holdout val/ -o mine-int8.xml
      depthany predict photos/ --model da2-small --precision int8 --out depth/
    """
    import torch

    from ..io.inputs import expand_inputs
    from ..models import DepthAnything
    from ..quantize import AccuracyGateError, QuantizeError, quantize_model
    from ..weights import load_model

    if output.suffix != ".xml":
        raise click.BadParameter(f"{output}: the quantised model is an OpenVINO IR, give a .xml path",
                                 param_hint="--output")
    if output.exists() and not overwrite:
        raise click.UsageError(f"{output} exists; pass --overwrite to replace it")
    cal = _images(expand_inputs(calibration), "--calibration")
    held = _images(expand_inputs(holdout), "--holdout") if holdout else None
    if threads:
        torch.set_num_threads(threads)
    try:
        net, spec = load_model(model, weights)
        if not isinstance(net, DepthAnything):
            raise ValueError(f"{spec.name}: depthany quantize handles the V1/V2 relative and metric models; the V1 "
                             "metric (ZoeDepth) models run in floating point")
        click.echo(f"quantising {spec.name}: {min(count, len(cal))} of {len(cal)} images to calibrate, "
                   f"held-out images {'from --holdout' if held else 'taken from them'}", err=True)
        result = quantize_model(net, spec, cal, output, holdout=held, count=count, holdout_count=holdout_count,
                                max_absrel=max_absrel, keep_float=keep_float, input_size=input_size,
                                max_tokens=max_tokens, cache=cache, progress=not quiet, threads=threads)
    except AccuracyGateError as e:
        _summary(e.report, output)
        raise click.ClickException(str(e)) from None
    except (QuantizeError, ValueError, OSError) as e:  # WeightsError is a ValueError
        raise click.ClickException(str(e)) from None
    _summary(result.report, output)
    if result.cached is not None:
        click.echo(f"cached as {result.cached}; use it with --precision int8 (predict, video, serve, bench)")


def _images(found: ExpandedInputs, option: str) -> list[Path]:
    items = found.items
    for problem in found.problems:
        click.echo(f"{option}: {problem.target}: {problem.reason}", err=True)
    if not items:
        raise click.BadParameter("no images found", param_hint=option)
    return [it.path for it in items]


def _summary(report: dict[str, Any], output: Path) -> None:
    for bad in report.get("unreadable", []):
        click.echo(f"skipped {bad['image']}: {bad['reason']}", err=True)
    verdict = "passed" if report["ok"] else "FAILED"
    click.echo(f"wrote {output} (+ .bin) and {output.with_name(output.stem + '.gate.json')}")
    click.echo(f"accuracy gate {verdict}: mean AbsRel {100 * report['absrel']:.3f} % (worst image "
               f"{100 * report['absrel_worst']:.3f} %, bound {100 * report['max_absrel']:.2f} %), delta1 "
               f"{report['delta1']:.4f} on {report['images']} held-out images; "
               f"{len(report['kept_float']['operations'])} operations kept in float")
