"""``depthany calibrate``: fit metres to a relative prediction from known distances, then apply the fit.

    depthany calibrate fit photo.jpg --model da2-small --points known.csv -o cam.json
    depthany calibrate fit pred.npy --sparse-depth lidar.png --depth-scale 0.001 -o cam.json
    depthany calibrate fit photo.jpg --model da2-small --distance 320 240 2.5 -o cam.json
    depthany calibrate apply cam.json preds/ -o metric/ --ply --images photos/

All logic lives in :mod:`depthany.calibration_fit` (building the prediction, gathering the known distances,
writing the outputs) and :mod:`depthany.geometry`; this module only parses arguments and prints.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from ..geometry.apply import apply_to_folder
from ..geometry.calibrate import Calibration
from .options import model_options


def _intrinsics_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by the verbs that may write point clouds."""
    opts = [
        click.option("--fov", type=float, help="Field of view in degrees (instead of EXIF / the 60 deg default)."),
        click.option("--fov-axis", type=click.Choice(["horizontal", "vertical", "diagonal"]),
                     default="horizontal", show_default=True, help="Which extent --fov measures."),
        click.option("--fx", type=float, help="Focal length in pixels (fy defaults to fx)."),
        click.option("--fy", type=float, help="Vertical focal length in pixels."),
        click.option("--cx", type=float, help="Principal point x in pixels (default: image centre)."),
        click.option("--cy", type=float, help="Principal point y in pixels (default: image centre)."),
        click.option("--max-depth", type=float, help="Drop points at or beyond this many metres (sky)."),
        click.option("--keep-flying", is_flag=True, help="Keep flying pixels at depth discontinuities."),
        click.option("--ascii", "ascii_ply", is_flag=True, help="Write ASCII PLY instead of binary."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _ply_kwargs(fov: float | None, fov_axis: str, fx: float | None, fy: float | None, cx: float | None,
                cy: float | None, max_depth: float | None, keep_flying: bool, ascii_ply: bool) -> dict[str, Any]:
    """Keyword arguments for :func:`depthany.geometry.pointcloud.write_result_ply`, checked before any work."""
    if fx is None and fy is not None:
        raise click.BadParameter("--fy needs --fx", param_hint="--fy")
    if fx is None and fov is None and (cx is not None or cy is not None):
        raise click.BadParameter("--cx/--cy need --fx or --fov", param_hint="--cx")
    if fx is not None and fov is not None:
        raise click.BadParameter("give --fx or --fov, not both", param_hint="--fov")
    return {"fx": fx, "fy": fy, "cx": cx, "cy": cy, "fov": fov, "fov_axis": fov_axis, "max_depth": max_depth,
            "drop_flying": not keep_flying, "ascii": ascii_ply}


@contextlib.contextmanager
def _echo_warnings() -> Iterator[None]:
    """Show library warnings as one 'warning:' line on stderr instead of Python's file:line format."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            for w in caught:
                click.echo(f"warning: {w.message}", err=True)


@click.group()
def calibrate() -> None:
    """Turn relative predictions into metric depth from known distances (fit once, apply to a folder)."""


@calibrate.command("fit")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@model_options()
@click.option("--kind", type=click.Choice(["relative", "metric"]), default="relative", show_default=True,
              help="What a .npy SOURCE holds: relative disparity or metric depth in metres.")
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The photo of a .npy SOURCE (colours and EXIF for --ply).")
@click.option("--points", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV of u,v,depth_m (pixels of the displayed image, metres).")
@click.option("--sparse-depth", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sparse depth map (.npy metres, 16-bit .png, .tif); 0 = unknown.")
@click.option("--depth-scale", type=float, help="Metres per unit of an integer sparse map [0.001 = mm].")
@click.option("--distance", "distances", type=(float, float, float), multiple=True, metavar="U V METRES",
              help="One known point (repeatable).")
@click.option("--mode", type=click.Choice(["auto", "scale-shift", "scale"]), default="auto", show_default=True,
              help="auto: scale only for a single point, scale and shift otherwise.")
@click.option("--inlier-tol", type=float, default=0.1, show_default=True,
              help="Relative depth error still counted as an inlier (0.1 = 10 %).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the robust fit's sampling.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration JSON [<source stem>.calibration.json].")
@click.option("--save-depth", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write this image's metric depth (.npy, float32 metres, 0 = unknown).")
@click.option("--ply", "ply_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write this image's point cloud.")
@click.option("--json", "as_json", is_flag=True, help="Print the calibration as JSON instead of the report.")
@_intrinsics_options
def fit(source: Path, model: str | None, weights: Path | None, device: str, precision: str, input_size: int | None,
        max_tokens: int, kind: str, image: Path | None, points: Path | None, sparse_depth: Path | None, depth_scale: float | None,
        distances: tuple[tuple[float, float, float], ...], mode: str, inlier_tol: float, seed: int,
        output: Path | None, save_depth: Path | None, ply_path: Path | None, as_json: bool,
        **ply: Any) -> None:
    """Fit a calibration for SOURCE (an image, run through the model, or a saved .npy prediction)."""
    from ..calibration_fit import fit_source

    given = [n for n, v in (("--points", points), ("--sparse-depth", sparse_depth), ("--distance", distances))
             if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --points, --sparse-depth or --distance"
                               + (f" (got {', '.join(given)})" if given else ""))
    ply_kw = _ply_kwargs(**ply)
    with _echo_warnings():
        try:
            outcome = fit_source(source, points=points, sparse_depth=sparse_depth, depth_scale=depth_scale,
                                 distances=distances, mode=mode, inlier_tol=inlier_tol, seed=seed, output=output,
                                 save_depth=save_depth, ply=ply_path, ply_options=ply_kw, kind=kind, image=image,
                                 model=model, weights=weights, device=device, precision=precision,
                                 input_size=input_size, max_tokens=max_tokens)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(outcome.calibration.to_dict(), indent=2))
        return
    click.echo(outcome.calibration.report())
    click.echo(outcome.residuals.table())
    click.echo("saved " + ", ".join(str(p) for p in outcome.written))


@calibrate.command("apply")
@click.argument("calibration_file", metavar="CALIBRATION", type=click.Path(exists=True, dir_okay=False,
                                                                           path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for metric <stem>.npy (and <stem>.ply).")
@click.option("--ply", is_flag=True, help="Also write a point cloud per prediction.")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the source photos (<stem>.jpg ...): colours and EXIF intrinsics for --ply.")
@_intrinsics_options
def apply(calibration_file: Path, inputs: tuple[Path, ...], out_dir: Path, ply: bool, images: Path | None,
          **ply_args: Any) -> None:
    """Apply a saved CALIBRATION to .npy predictions (files or folders) from the same camera and model."""
    kw = _ply_kwargs(**ply_args)
    with _echo_warnings():
        try:
            cal = Calibration.load(calibration_file)
            report = apply_to_folder(cal, list(inputs), out_dir, ply=ply, images=images, **kw)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
    npy = sum(p.suffix == ".npy" for p in report.written)
    click.echo(f"calibrated {npy} prediction(s) with {calibration_file} ({cal.mode}, fitted on "
               f"{cal.model or 'unknown model'}) -> {out_dir}")
    for f, why in report.failed:
        click.echo(f"failed: {f}: {why}", err=True)
    if report.failed:
        raise SystemExit(1)
