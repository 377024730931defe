"""``depthany multiview``: several photos of one scene -> per-view depth, confidence, camera poses and exports.

    depthany multiview room/*.jpg --model da3-small --out scene/
    depthany multiview a.jpg b.jpg c.jpg --model da3-base --out scene/ --resolution network --export ply,colmap

Writes, under ``--out``: ``<name>.npy`` (depth, float32) and ``<name>_conf.npy`` (confidence) per view,
``poses.npz`` (``extrinsics`` (N, 3, 4) world-to-camera, ``intrinsics`` (N, 3, 3) in pixels of the written maps,
``names``, ``reference``, ``image_sizes``), and the exports: ``points.ply`` (fused, confidence-filtered point cloud
in world coordinates), ``colmap/`` (COLMAP text model) and ``scene.glb`` (points and cameras). The world frame is
the reference view's camera; depths and translations share one unknown scale.

Exit status: 0 on success, 1 when the views could not be processed (unreadable image, views of different sizes,
over the bounds), 2 for a usage or set-up error (bad option, model or weights not available).
All logic lives in :mod:`depthany.multiview` and :mod:`depthany.geometry.scene`; this module parses and prints.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ..io.image import DEFAULT_MAX_PIXELS
from .options import device_option, input_size_option, model_option, weights_option

EXPORT_HELP = "Comma-separated exports: ply (fused point cloud), colmap (text model), glb (points + cameras), or none."


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _exports(text: str) -> list[str]:
    from ..geometry.scene import EXPORTS

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in EXPORTS]
    if unknown:
        raise click.BadParameter(f"unknown export {', '.join(map(repr, unknown))}; choose from "
                                 f"{', '.join(EXPORTS)} or none", param_hint="--export")
    return list(dict.fromkeys(names))


@click.command("multiview", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder.")
@model_option(help_text="Any-view Depth Anything 3 model: da3-small (default without --weights), da3-base "
                        "(Apache-2.0), da3-large, da3-giant (CC-BY-NC-4.0), or a Hugging Face repo id.")
@weights_option(help_text="Local weights: the official folder (config.json + model.safetensors) or a depthany file.")
@device_option()
@click.option("--resolution", type=click.Choice(["image", "network"]), default="image", show_default=True,
              help="Maps and intrinsics at each image's size, or at the network's processing resolution (the "
                   "official output, exactly).")
@click.option("--export", "exports", default="ply,colmap,glb", show_default=True, help=EXPORT_HELP)
@input_size_option(help_text="process_res: the longest side of every view at the network (default 504).")
@click.option("--ref-view", type=click.Choice(["saddle_balanced", "saddle_sim_range", "first", "middle"]),
              default="saddle_balanced", show_default=True,
              help="How the reference view (the world frame) is chosen from 3 views on.")
@click.option("--conf-percentile", type=click.FloatRange(0, 100), default=40.0, show_default=True,
              help="Exports keep the pixels at or above this percentile of all confidences.")
@click.option("--max-views", type=click.IntRange(min=1), default=None, help="The most views one run takes [32].")
@click.option("--max-view-tokens", "max_tokens", type=click.IntRange(min=1), default=None,
              help="The most patch tokens over all views together [41,472 = 32 views at 504 px].")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse images with more pixels than this (decompression bombs).")
def multiview(inputs: tuple[str, ...], out_dir: Path, model: str | None, weights: Path | None, resolution: str,
              exports: str, input_size: int | None, ref_view: str, conf_percentile: float, max_views: int | None,
              max_tokens: int | None, max_pixels: int, device: str) -> None:
    """Depth, confidence and cameras for INPUTS, several views of one scene (files, folders, globs, .txt lists)."""
    from ..io.image import ImageReadError, read_image
    from ..io.inputs import expand_inputs

    chosen = _exports(exports)
    found = expand_inputs(inputs, exclude=[out_dir])
    for problem in found.problems:
        _fail(f"{problem.target}: {problem.reason}", 2)
    items = found.items
    if not items:
        _fail("no images given", 2)

    predictor = _load(model, weights, device, input_size, ref_view, max_views, max_tokens)
    try:
        predictor.check_views(len(items))
    except ValueError as e:
        _fail(str(e), 1)
    views = []
    for item in items:
        try:
            views.append(read_image(item.path, max_pixels=max_pixels, exif_orientation=False))  # official reader
        except (ImageReadError, OSError) as e:
            _fail(f"{item.path}: {e}" if str(item.path) not in str(e) else str(e), 1)
    names = [_colmap_name(item) for item in items]
    try:
        result = predictor.predict(views, names, resolution="network",
                                   progress=lambda line: click.echo(line, err=True))
    except ValueError as e:
        _fail(str(e), 1)
    _write(result, [str(item.key) for item in items], views, out_dir, chosen, resolution, conf_percentile)
    click.echo(f"done: {len(items)} views, reference view {result.names[result.reference]}; outputs in {out_dir}",
               err=True)


def _load(model: str | None, weights: Path | None, device: str, input_size: int | None, ref_view: str,
          max_views: int | None, max_tokens: int | None) -> Any:
    from ..multiview import MultiViewPredictor

    options: dict[str, Any] = {"input_size": input_size, "ref_view_strategy": ref_view}
    if max_views is not None:
        options["max_views"] = max_views
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    try:
        predictor = MultiViewPredictor.from_pretrained(model, weights, device=device, **options)
    except (ValueError, OSError, ImportError, RuntimeError) as e:
        _fail(str(e), 2)
    click.echo(f"model {predictor.spec.name} (any-view depth + cameras), device {predictor.device}, process_res "
               f"{predictor.input_size}, reference view: {predictor.ref_view_strategy}", err=True)
    return predictor


def _colmap_name(item: Any) -> str:
    """The image's name in the COLMAP model: its output key with the file's suffix (``a/x.jpg``)."""
    key, suffix = str(item.key), item.path.suffix
    return key if key.endswith(suffix) else key + suffix


def _write(result: Any, keys: list[str], views: list[Any], out_dir: Path, exports: list[str], resolution: str,
           conf_percentile: float) -> None:
    import numpy as np

    from ..geometry.scene import export_scene
    from ..io.atomic import atomic_path
    from ..multiview import at_image_size

    maps = at_image_size(result, [v.rgb for v in views]) if resolution == "image" else result
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, key in enumerate(keys):
        base = out_dir / key
        base.parent.mkdir(parents=True, exist_ok=True)
        for suffix, values in ((".npy", maps.depth[i]), ("_conf.npy", maps.conf[i])):
            with atomic_path(base.with_name(base.name + suffix)) as tmp, open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(values, dtype=np.float32))
    with atomic_path(out_dir / "poses.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, extrinsics=maps.extrinsics.astype(np.float32), intrinsics=maps.intrinsics.astype(np.float32),
                 names=np.array(result.names), reference=np.int64(result.reference),
                 image_sizes=np.array(result.image_sizes, dtype=np.int64),
                 map_size=np.array(maps.depth.shape[1:], dtype=np.int64))
    if exports:
        written = export_scene(result, out_dir, exports, conf_percentile)
        for name, paths in written.items():
            click.echo(f"{name}: {', '.join(str(p) for p in paths)}", err=True)
