"""``depthany predict``: depth for images, folders, globs and ``.txt`` lists, written in any output formats.

    depthany predict photo.jpg --model da2-small --out depth/ --format npy,color
    depthany predict photos/ list.txt "shots/**/*.png" --model da2-large --out depth/ --format png16,sbs
    depthany predict photo.jpg --weights my_model.safetensors --out depth/ --format npy
    depthany predict photo.jpg --model da3-metric-large --fx 1400 --out depth/ --format npy,ply

Depth Anything 3 (``da3-mono-large``: relative depth, ``da3-metric-large``: metres) writes maps at the image's size
by default; ``--resolution network`` keeps the official processing resolution (the official output, exactly).

Exit status: 0 when every input succeeded, 1 when any input failed (the others are still processed and
written), 2 for a usage or set-up error (bad option, model or weights not available).

Every image runs within the network-input budget (``--max-tokens``, :mod:`depthany.budget`): a larger one is
shrunk to fit with a note on stderr; one too thin to fit fails on its own (exit status 1).

All work is done by :func:`depthany.batch.predict_files` (read -> predict -> write, failures reported);
this module parses arguments and reports.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..io.image import DEFAULT_MAX_PIXELS
from .options import model_options

if TYPE_CHECKING:
    from ..batch import BatchReport

REAL_MODELS_HINT = ("for real photos use --model da2-small (Apache-2.0), da2-base or da2-large; "
                    "`depthany models` lists them all")


def _setup_error(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _ply_options(fx: float | None, fov: float | None) -> dict[str, Any]:
    if fx is not None and fov is not None:
        raise click.BadParameter("give --fx or --fov, not both", param_hint="--fov")
    return {k: v for k, v in (("fx", fx), ("fov", fov)) if v is not None}


@click.command("predict")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder; sub-folders of the inputs are mirrored.")
@click.option("--format", "-f", "formats", default="npy,color", show_default=True,
              help="Comma-separated output formats: npy, png16, pfm, exr, color, gray, sbs, controlnet, ply, sky.")
@model_options(cmap=True, int8=True)
@click.option("--resolution", type=click.Choice(["image", "network"]), default="image", show_default=True,
              help="Depth Anything 3: maps at the image's size, or at the network's processing resolution (the "
                   "official output). (Depth Anything 3's --input-size is process_res, the longest side: 504.)")
@click.option("--exif-orientation", type=click.Choice(["apply", "ignore"]), default=None,
              help="Turn photos by their EXIF orientation (like viewers and cv2.imread, the V1/V2 readers), or use "
                   "the stored pixels (like PIL's convert('RGB'), the official Depth Anything 3 reader) "
                   "[default: the model family's official reader: ignore for Depth Anything 3, else apply].")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images of the same network size per forward pass.")
@click.option("--backend", default="auto", show_default=True,
              help="Inference engine: torch, onnxruntime, openvino, or auto (OpenVINO on CPUs when installed, "
                   "else torch).")
@click.option("--alpha-background", default="255,255,255", show_default=True,
              help="R,G,B that transparent pixels are composited on, or 'none' to drop alpha like cv2.imread.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse larger images (decompression bombs).")
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose outputs all exist already.")
@click.option("--png16-scale", type=float, help="Fixed png16 quantisation: value = offset + scale * q "
              "(e.g. 0.001 for millimetres). Default: each image's min..max over 0..65535.")
@click.option("--png16-offset", type=float, help="Offset for --png16-scale (default 0).")
@click.option("--fx", type=float, help="Focal length in pixels of the input image, for ply and DA3Metric's metres "
              "(default: EXIF, else a 60 degree field of view).")
@click.option("--fov", type=float, help="Horizontal field of view in degrees (instead of --fx).")
def predict(inputs: tuple[str, ...], out_dir: Path, formats: str, model: str | None, weights: Path | None,
            device: str, precision: str, input_size: int | None, cmap: str, max_tokens: int, resolution: str,
            exif_orientation: str | None, batch_size: int, backend: str, alpha_background: str, max_pixels: int,
            skip_existing: bool, png16_scale: float | None, png16_offset: float | None, fx: float | None,
            fov: float | None) -> None:
    """Predict depth for INPUTS: image files, folders (searched recursively), globs or .txt lists."""
    from ..batch import BatchReport, check_formats, plan_batch, predict_files
    from ..io.image import parse_background
    from ..outputs import OutputFormatError

    try:
        plan = plan_batch(inputs, out_dir, formats, skip_existing)
    except OutputFormatError as e:
        raise click.BadParameter(str(e), param_hint="--format") from None
    try:
        background = parse_background(alpha_background)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--alpha-background") from None
    if png16_offset is not None and png16_scale is None:
        raise click.BadParameter("--png16-offset needs --png16-scale", param_hint="--png16-offset")
    if png16_scale is not None and not png16_scale > 0:
        raise click.BadParameter("must be > 0", param_hint="--png16-scale")
    ply_options = _ply_options(fx, fov)

    if plan.items:
        predictor = _load_predictor(model, weights, device, precision, input_size, batch_size, backend, max_tokens,
                                    resolution, ply_options)
        try:
            check_formats(predictor, plan.formats)
        except ValueError as e:
            _setup_error(str(e))
        report = predict_files(predictor, plan, out_dir, cmap=cmap, max_pixels=max_pixels, background=background,
                               png16_scale=png16_scale, png16_offset=png16_offset, options={"ply": ply_options},
                               log=lambda m: click.echo(m, err=True), progress=True,
                               exif_orientation=None if exif_orientation is None else exif_orientation == "apply")
    else:
        report = BatchReport.from_plan(plan)
    summarize(report, out_dir)
    if report.failures:
        sys.exit(1)


def summarize(report: BatchReport, out_dir: Path) -> None:
    """The batch's closing lines on stderr: counts, then every failure with its reason."""
    parts = [f"{report.ok} ok", f"{len(report.failures)} failed"]
    if report.skipped:
        parts.append(f"{report.skipped} skipped (outputs exist)")
    click.echo(f"done: {', '.join(parts)}; outputs in {out_dir}", err=True)
    for target, reason in report.failures:
        click.echo(f"  FAILED {target}: {reason}", err=True)


def _load_predictor(model: str | None, weights: Path | None, device: str, precision: str,
                    input_size: int | None, batch_size: int, backend: str, max_tokens: int,
                    resolution: str = "image", camera: dict[str, Any] | None = None) -> Any:
    from .. import zoo
    from ..predictor import DepthPredictor
    from ..weights import resolve_spec

    named = None if weights is not None or model is None else model
    if named is not None and not Path(named).exists():
        try:
            spec = resolve_spec(named)
        except ValueError:
            spec = None
        if spec is not None and spec.arch.views is not None:
            _setup_error(f"{spec.name} is an any-view Depth Anything 3 model: it takes several views of one scene; "
                         f"run `depthany multiview IMG... --model {spec.name} --out DIR`")
        if spec is not None and resolution == "network" and not spec.arch.is_da3:
            _setup_error(f"--resolution network is for Depth Anything 3 models; {spec.name} writes at the image's "
                         "size")
    options: dict[str, Any] = {"resolution": resolution} if resolution != "image" else {}

    default = model is None and weights is None
    if default:
        click.echo(f"note: no --model given, using the bundled default model {zoo.BUNDLED_NAME} (tiny, trained on "
                   f"synthetic scenes, for trying depthany out); {REAL_MODELS_HINT}", err=True)
    try:
        predictor = DepthPredictor.from_pretrained(model, weights, device=device, precision=precision,  # type: ignore[arg-type]
                                                   input_size=input_size, batch_size=batch_size, backend=backend,
                                                   max_tokens=max_tokens, camera=camera, **options)
    except TypeError as e:
        if "resolution" not in str(e):
            raise
        _setup_error("--resolution network is for Depth Anything 3 models; this model writes at the image's size")
    except (ValueError, OSError, ImportError, RuntimeError) as e:
        hint = f"\n  {REAL_MODELS_HINT}" if default else ""
        _setup_error(f"{e}{hint}")
    spec = predictor.spec
    what = {"metric_depth": "metric depth [m]", "relative_depth": "relative depth"}.get(spec.output_kind,
                                                                                       "relative disparity")
    click.echo(f"model {spec.name} ({what}), device {predictor.device}, {precision}, input size "
               f"{predictor.input_size}, budget {predictor.max_tokens:,} tokens, backend {predictor.backend}", err=True)
    return predictor
