"""``depthany segment``: semantic segmentation of images, folders, globs and ``.txt`` lists with a trained model.

    depthany segment photo.jpg --weights runs/seg/final.safetensors --out seg/ --format labels,color,overlay
    depthany segment data/cityscapes/leftImg8bit/val --weights city.safetensors --out preds/ --format labels
    depthany segment photos/ --weights city.safetensors --out seg/ --mode slide --crop 896 --stride 518 \\
        --ratios 0.5,0.75,1.0,1.25,1.5,1.75,2.0 --flip

Inputs are expanded and read exactly as ``depthany predict`` reads them (:mod:`depthany.io.inputs`,
:mod:`depthany.io.image`); ``labels`` PNGs land at ``<out>/<key>.png``, the layout ``depthany eval --task semseg
--predictions`` reads. Inference settings default to the weights file's own (a recipe's ``seg.test``: the V1
recipes' sliding window of 896 with stride 518 (Cityscapes) / 426 (ADE20K)); options override them.

Exit status: 0 when every input succeeded, 1 when any input failed (the others are still processed and
written), 2 for a usage or set-up error (bad option, unreadable weights, a window above the budget).

Work per image is bounded (``--max-tokens`` per network pass, views and score maps limited, labels assembled
in bands: :mod:`depthany.seg.infer`); an image that needed a smaller view says so on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..io.image import DEFAULT_MAX_PIXELS
from .options import device_option, max_tokens_option
from .predict import summarize

if TYPE_CHECKING:
    from ..batch import BatchReport

MAX_TOKENS_HELP = ("Work bound: patch tokens of one network pass, (h/14)*(w/14) (a sliding window, or a whole view, "
                   "which is shrunk to fit); see docs/segmentation.md.")


def _setup_error(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _resize(value: str | None) -> Any:
    """``LONGxSHORT`` -> (long, short); ``none`` -> None (keep the input size); None -> not given."""
    if value is None:
        return "keep"
    if value.lower() == "none":
        return None
    try:
        a, b = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected LONGxSHORT such as 3584x896, or none; got {value!r}",
                                 param_hint="--resize") from None
    return (a, b)


def _ratios(value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated scale ratios such as 0.5,1.0,1.5, got {value!r}",
                                 param_hint="--ratios") from None


@click.command("segment")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--weights", "-w", type=click.Path(path_type=Path), required=True,
              help="Segmentation weights (.safetensors written by depthany train for a task: semseg recipe).")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder; sub-folders of the inputs are mirrored.")
@click.option("--format", "-f", "formats", default="labels,color", show_default=True,
              help="Comma-separated: labels (8-bit class indices, <key>.png), color (palette PNG), overlay.")
@click.option("--mode", type=click.Choice(["whole", "slide"]), default=None,
              help="whole image or sliding windows (default: the weights file's).")
@click.option("--crop", type=click.IntRange(min=1), default=None, help="Sliding-window size in pixels.")
@click.option("--stride", type=click.IntRange(min=1), default=None, help="Sliding-window step in pixels.")
@click.option("--resize", default=None, help="Resize to fit LONGxSHORT before inference (mmseg's Resize scale, "
              "e.g. 3584x896), or none to keep the input size.")
@click.option("--ratios", default=None, help="Multi-scale test: comma-separated ratios of the input size "
              "(e.g. 0.5,0.75,1.0,1.25,1.5,1.75,2.0); softmax scores of the views are averaged.")
@click.option("--flip/--no-flip", default=None, help="Also run every view mirrored (averaged softmax).")
@click.option("--alpha", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="overlay: opacity of the class colours.")
@device_option()
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse larger images (decompression bombs).")
@max_tokens_option(MAX_TOKENS_HELP)
@click.option("--alpha-background", default="255,255,255", show_default=True,
              help="R,G,B that transparent pixels are composited on, or 'none' to drop alpha like cv2.imread.")
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose outputs all exist already.")
def segment(inputs: tuple[str, ...], weights: Path, out_dir: Path, formats: str, mode: str | None,
            crop: int | None, stride: int | None, resize: str | None, ratios: str | None, flip: bool | None,
            alpha: float, device: str, max_pixels: int, max_tokens: int, alpha_background: str,
            skip_existing: bool) -> None:
    """Segment INPUTS (image files, folders searched recursively, globs or .txt lists) into class labels."""
    from ..io.image import parse_background
    from ..io.inputs import expand_inputs
    from ..seg.outputs import parse_seg_formats, planned_seg_paths

    try:
        chosen = parse_seg_formats(formats)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--format") from None
    try:
        background = parse_background(alpha_background)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--alpha-background") from None
    overrides: dict[str, Any] = {"mode": mode, "crop": crop, "stride": stride, "ratios": _ratios(ratios),
                                 "flip": flip}
    size = _resize(resize)
    if size != "keep":
        overrides["resize"] = size

    from ..batch import BatchReport

    report = BatchReport()
    found = expand_inputs(inputs, exclude=[out_dir])
    for problem in found.problems:
        report.fail(problem.target, problem.reason)
    todo = found.items
    if skip_existing:
        todo = [it for it in todo if not all(p.exists() for p in planned_seg_paths(out_dir / it.key, chosen))]
        report.skipped = len(found.items) - len(todo)
    if todo:
        segmenter = _load(weights, device, max_tokens, overrides)
        _run(segmenter, todo, chosen, out_dir, report, max_pixels, background, alpha)
    summarize(report, out_dir)
    if report.failures:
        sys.exit(1)


def _load(weights: Path, device: str, max_tokens: int, overrides: dict[str, Any]) -> Any:
    from ..runtime.devices import pick_device
    from ..seg.segmenter import Segmenter

    try:
        dev = pick_device(device)
        segmenter = Segmenter.from_weights(weights, dev, max_tokens=max_tokens,
                                           **{k: v for k, v in overrides.items() if v is not None or k == "resize"})
    except (ValueError, OSError, TypeError) as e:
        _setup_error(str(e))
    s, cfg = segmenter.spec, segmenter.inference
    how = f"{cfg.mode}" + (f" {cfg.crop}/{cfg.stride}" if cfg.mode == "slide" else "")
    how += f", resize {'x'.join(map(str, cfg.resize)) if cfg.resize else 'none'}"
    if cfg.ratios or cfg.flip:
        how += f", ratios {','.join(map(str, cfg.ratios)) or '1'}{' + flip' if cfg.flip else ''}"
    click.echo(f"model {s.name} ({s.encoder.name} {s.head} head, {s.num_classes} classes {s.classes.name}), device "
               f"{dev}, {how}, budget {max_tokens:,} tokens", err=True)
    return segmenter


def _run(segmenter: Any, items: list[Any], formats: list[str], out_dir: Path, report: BatchReport, max_pixels: int,
         background: tuple[int, int, int] | None, alpha: float) -> None:
    from tqdm import tqdm  # type: ignore[import-untyped]

    from ..io.image import ImageReadError, read_image
    from ..seg.outputs import write_seg_outputs

    for item in tqdm(items, unit="img", file=sys.stderr, disable=None, dynamic_ncols=True):
        try:
            loaded = read_image(item.path, max_pixels=max_pixels, alpha_background=background)
        except (ImageReadError, OSError) as e:
            report.fail(str(item.path), str(e))
            continue
        try:
            result = segmenter.segment(loaded.rgb)
        except Exception as e:  # one image's failure must not stop the batch
            report.fail(str(item.path), f"segmentation failed ({type(e).__name__}: {e})")
            continue
        if result.notes is not None and result.notes.shrunk:
            tqdm.write(f"note: {item.path}: {result.notes.note(result.labels.shape)}", file=sys.stderr)
        try:
            write_seg_outputs(result, loaded.rgb, out_dir / item.key, formats, alpha)
            report.ok += 1
        except Exception as e:
            report.fail(str(item.path), f"writing outputs failed ({type(e).__name__}: {e})")
