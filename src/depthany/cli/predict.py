"""``depthany predict``: depth for images, folders, globs and ``.txt`` lists, written in any output formats.

    depthany predict photo.jpg --model da2-small --out depth/ --format npy,color
    depthany predict photos/ list.txt "shots/**/*.png" --model da2-large --out depth/ --format png16,sbs
    depthany predict photo.jpg --weights my_model.safetensors --out depth/ --format npy

Exit status: 0 when every input succeeded, 1 when any input failed (the others are still processed and
written), 2 for a usage or set-up error (bad option, model or weights not available).

Every image runs within the network-input budget (``--max-tokens``, :mod:`depthany.budget`): a larger one is
shrunk to fit with a note on stderr; one too thin to fit fails on its own (exit status 1).

All work is done by :mod:`depthany.io` and :class:`depthany.predictor.DepthPredictor`; this module parses
arguments and reports.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from ..budget import DEFAULT_MAX_TOKENS, MAX_TOKENS_HELP
from ..io.image import DEFAULT_MAX_PIXELS
from ..precision import INFERENCE_PRECISIONS

REAL_MODELS_HINT = ("for real photos use --model da2-small (Apache-2.0), da2-base or da2-large; "
                    "`depthany models` lists them all")


@dataclass
class _Report:
    ok: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, target: str, reason: str) -> None:
        prefix = f"{target}: "
        self.failures.append((target, reason[len(prefix):] if reason.startswith(prefix) else reason))


def _setup_error(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _ply_options(fx: float | None, fov: float | None) -> dict[str, Any]:
    if fx is not None and fov is not None:
        raise click.BadParameter("give --fx or --fov, not both", param_hint="--fov")
    return {k: v for k, v in (("fx", fx), ("fov", fov)) if v is not None}


@click.command("predict")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", "-m", help="Zoo name (da2-small, da1-large, da2-metric-indoor-base, ...) or HF repo id. "
              "Default: the bundled da2-mini, or whatever --weights describes.")
@click.option("--weights", "-w", type=click.Path(path_type=Path),
              help="Local weights file or folder (official .pth, transformers folder, depthany .safetensors).")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder; sub-folders of the inputs are mirrored.")
@click.option("--format", "-f", "formats", default="npy,color", show_default=True,
              help="Comma-separated output formats: npy, png16, pfm, exr, color, gray, sbs, controlnet, ply.")
@click.option("--input-size", type=int, help="Network short side, a multiple of 14 (default: the model's; 518).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N, mps or auto (a GPU when one is present).")
@click.option("--precision", type=click.Choice(INFERENCE_PRECISIONS), default="fp32", show_default=True,
              help="fp32 reproduces the official outputs; bf16/fp16 are faster on GPUs; int8 runs the model made "
                   "by `depthany quantize` for these weights (OpenVINO).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images of the same network size per forward pass.")
@click.option("--backend", default="auto", show_default=True,
              help="Inference engine: torch, onnxruntime, openvino, or auto (OpenVINO on CPUs when installed, "
                   "else torch).")
@click.option("--cmap", default="auto", show_default=True,
              help="Colour map for color/sbs: Spectral_r, Spectral, inferno, turbo, gray; auto = the official "
                   "script's (V2: Spectral_r, V1: inferno).")
@click.option("--alpha-background", default="255,255,255", show_default=True,
              help="R,G,B that transparent pixels are composited on, or 'none' to drop alpha like cv2.imread.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse larger images (decompression bombs).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=DEFAULT_MAX_TOKENS, show_default=True,
              help=MAX_TOKENS_HELP)
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose outputs all exist already.")
@click.option("--png16-scale", type=float, help="Fixed png16 quantisation: value = offset + scale * q "
              "(e.g. 0.001 for millimetres). Default: each image's min..max over 0..65535.")
@click.option("--png16-offset", type=float, help="Offset for --png16-scale (default 0).")
@click.option("--fx", type=float, help="ply: focal length in pixels (default: EXIF, else a 60 degree field of view).")
@click.option("--fov", type=float, help="ply: horizontal field of view in degrees.")
def predict(inputs: tuple[str, ...], model: str | None, weights: Path | None, out_dir: Path, formats: str,
            input_size: int | None, device: str, precision: str, batch_size: int, backend: str, cmap: str,
            alpha_background: str, max_pixels: int, max_tokens: int, skip_existing: bool, png16_scale: float | None,
            png16_offset: float | None, fx: float | None, fov: float | None) -> None:
    """Predict depth for INPUTS: image files, folders (searched recursively), globs or .txt lists."""
    from ..io.colormap import cmap_name, official_cmap
    from ..io.image import parse_background
    from ..io.inputs import expand_inputs
    from ..outputs import OutputFormatError, parse_formats, planned_paths

    try:
        chosen = parse_formats(formats)
    except OutputFormatError as e:
        raise click.BadParameter(str(e), param_hint="--format") from None
    try:
        background = parse_background(alpha_background)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--alpha-background") from None
    if cmap != "auto":
        try:
            cmap = cmap_name(cmap)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--cmap") from None
    if png16_offset is not None and png16_scale is None:
        raise click.BadParameter("--png16-offset needs --png16-scale", param_hint="--png16-offset")
    if png16_scale is not None and not png16_scale > 0:
        raise click.BadParameter("must be > 0", param_hint="--png16-scale")
    ply_options = _ply_options(fx, fov)

    report = _Report()
    found = expand_inputs(inputs, exclude=[out_dir])
    for problem in found.problems:
        report.fail(problem.target, problem.reason)
    todo = found.items
    if skip_existing:
        todo = [it for it in todo if not all(p.exists() for p in planned_paths(out_dir / it.key, chosen))]
        report.skipped = len(found.items) - len(todo)

    if todo:
        predictor = _load_predictor(model, weights, device, precision, input_size, batch_size, backend, max_tokens)
        if any(f.name == "ply" for f in chosen) and predictor.spec.arch.head != "metric":
            _setup_error(f"--format ply needs a metric model (metres); {predictor.spec.name} predicts relative "
                         "disparity. Use a da2-metric-* model, or `depthany calibrate` first")
        if cmap == "auto":
            cmap = official_cmap(predictor.spec.arch.family)
        _run(predictor, todo, chosen, out_dir, report, max_pixels=max_pixels, background=background, cmap=cmap,
             png16_scale=png16_scale, png16_offset=png16_offset, options={"ply": ply_options})
    _summary(report, out_dir)
    if report.failures:
        sys.exit(1)


def _load_predictor(model: str | None, weights: Path | None, device: str, precision: str,
                    input_size: int | None, batch_size: int, backend: str, max_tokens: int) -> Any:
    from .. import zoo
    from ..predictor import DepthPredictor

    default = model is None and weights is None
    if default:
        click.echo(f"note: no --model given, using the bundled default model {zoo.BUNDLED_NAME} (tiny, trained on "
                   f"synthetic scenes, for trying depthany out); {REAL_MODELS_HINT}", err=True)
    try:
        predictor = DepthPredictor.from_pretrained(model, weights, device=device, precision=precision,  # type: ignore[arg-type]
                                                   input_size=input_size, batch_size=batch_size, backend=backend,
                                                   max_tokens=max_tokens)
    except (ValueError, OSError, ImportError, RuntimeError) as e:
        hint = f"\n  {REAL_MODELS_HINT}" if default else ""
        _setup_error(f"{e}{hint}")
    spec = predictor.spec
    what = "metric depth [m]" if spec.arch.head == "metric" else "relative disparity"
    click.echo(f"model {spec.name} ({what}), device {predictor.device}, {precision}, input size "
               f"{predictor.input_size}, budget {predictor.max_tokens:,} tokens, backend {predictor.backend}", err=True)
    return predictor


def _run(predictor: Any, items: list[Any], formats: list[Any], out_dir: Path, report: _Report, *,
         max_pixels: int, background: tuple[int, int, int] | None, cmap: str, png16_scale: float | None,
         png16_offset: float | None, options: dict[str, dict[str, Any]]) -> None:
    from tqdm import tqdm  # type: ignore[import-untyped]

    from ..budget import InputBudgetError, shrink_note
    from ..io.image import ImageReadError, LoadedImage, read_image
    from ..outputs import OutputContext, write_outputs

    queued: list[tuple[Any, LoadedImage | None]] = []  # index = position in the stream given to the predictor
    with tqdm(total=len(items), unit="img", file=sys.stderr, disable=None, dynamic_ncols=True) as bar:

        def stream() -> Iterator[LoadedImage]:
            for item in items:
                try:
                    loaded = read_image(item.path, max_pixels=max_pixels, alpha_background=background)
                except (ImageReadError, OSError) as e:
                    report.fail(str(item.path), str(e))
                    bar.update()
                    continue
                queued.append((item, loaded))
                yield loaded

        for i, res in predictor.iter_predict(stream()):
            item, loaded = queued[i]
            queued[i] = (item, None)  # let the image go once its outputs are written
            if isinstance(res, InputBudgetError):
                report.fail(str(item.path), str(res))
            elif isinstance(res, Exception):
                report.fail(str(item.path), f"prediction failed ({type(res).__name__}: {res})")
            else:
                budget = res.meta.get("input_budget", {})
                if budget.get("shrunk"):
                    bar.write(f"note: {item.path}: {shrink_note(budget, res.image_size)}", file=sys.stderr)
                ctx = OutputContext(res, loaded.rgb, out_dir / item.key, cmap=cmap, png16_scale=png16_scale,
                                    png16_offset=png16_offset, options=options)
                try:
                    write_outputs(ctx, formats)
                    report.ok += 1
                except Exception as e:  # one image's bad output must not stop the batch
                    report.fail(str(item.path), f"writing outputs failed ({type(e).__name__}: {e})")
            bar.update()


def _summary(report: _Report, out_dir: Path) -> None:
    parts = [f"{report.ok} ok", f"{len(report.failures)} failed"]
    if report.skipped:
        parts.append(f"{report.skipped} skipped (outputs exist)")
    click.echo(f"done: {', '.join(parts)}; outputs in {out_dir}", err=True)
    for target, reason in report.failures:
        click.echo(f"  FAILED {target}: {reason}", err=True)
