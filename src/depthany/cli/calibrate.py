"""``depthany calibrate``: fit metres to a relative prediction from known distances, then apply the fit.

    depthany calibrate fit photo.jpg --model da2-small --points known.csv -o cam.json
    depthany calibrate fit pred.npy --sparse-depth lidar.png --depth-scale 0.001 -o cam.json
    depthany calibrate fit photo.jpg --model da2-small --distance 320 240 2.5 -o cam.json
    depthany calibrate apply cam.json preds/ -o metric/ --ply --images photos/

All logic lives in :mod:`depthany.geometry`; this module only parses arguments and prints.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..geometry.anchors import Anchors, anchors_from_sparse, read_points_csv, read_sparse_depth
from ..geometry.apply import apply_to_folder
from ..geometry.calibrate import Calibration, fit_calibration


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


def _load_prediction(source: Path, model: str | None, weights: Path | None, device: str,
                     input_size: int | None, kind: str, image: Path | None) -> tuple[Any, np.ndarray | None]:
    """(DepthResult, RGB image or None) for an image run through a model, or a saved .npy prediction."""
    from ..io.image import read_image
    from ..result import DepthResult

    if source.suffix.lower() == ".npy":
        try:
            values = np.load(source, allow_pickle=False)
        except Exception as e:
            raise ValueError(f"{source}: not a readable .npy array ({e})") from e
        if values.ndim != 2:
            raise ValueError(f"{source}: expected an (H, W) prediction, got shape {values.shape}")
        rgb, meta = None, {}
        if image is not None:
            loaded = read_image(image)
            rgb = loaded.rgb
            meta = {"exif": loaded.exif, "orientation": loaded.orientation, "raw_size": loaded.raw_size}
        out_kind = {"metric": "metric_depth", "relative-depth": "relative_depth"}.get(kind, "relative_disparity")
        return DepthResult(values.astype(np.float32), out_kind, model or "unknown", values.shape,  # type: ignore[arg-type]
                           values.shape, str(source), meta), rgb
    from ..predictor import DepthPredictor

    predictor = DepthPredictor.from_pretrained(model, weights, device=device, input_size=input_size)
    loaded = read_image(source)
    result = predictor.predict(loaded.rgb)
    result.source = str(source)
    result.meta.update(exif=loaded.exif, orientation=loaded.orientation, raw_size=loaded.raw_size)
    return result, loaded.rgb


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
@click.option("--model", help="Zoo model to run on an image SOURCE (default: the bundled model).")
@click.option("--weights", type=click.Path(exists=True, path_type=Path), help="Local weights for an image SOURCE.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, mps or auto.")
@click.option("--input-size", type=int, help="Network short side (default: the model's).")
@click.option("--kind", type=click.Choice(["relative", "relative-depth", "metric"]), default="relative",
              show_default=True, help="What a .npy SOURCE holds: relative disparity (V1/V2), relative depth up to "
              "scale (Depth Anything 3; use --mode scale) or metric depth in metres.")
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
def fit(source: Path, model: str | None, weights: Path | None, device: str, input_size: int | None, kind: str,
        image: Path | None, points: Path | None, sparse_depth: Path | None, depth_scale: float | None,
        distances: tuple[tuple[float, float, float], ...], mode: str, inlier_tol: float, seed: int,
        output: Path | None, save_depth: Path | None, ply_path: Path | None, as_json: bool,
        **ply: Any) -> None:
    """Fit a calibration for SOURCE (an image, run through a model, or a saved .npy prediction)."""
    given = [n for n, v in (("--points", points), ("--sparse-depth", sparse_depth), ("--distance", distances))
             if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --points, --sparse-depth or --distance"
                               + (f" (got {', '.join(given)})" if given else ""))
    ply_kw = _ply_kwargs(**ply)
    with _echo_warnings():
        try:
            result, rgb = _load_prediction(source, model, weights, device, input_size, kind, image)
            anchors: Anchors | np.ndarray
            if points is not None:
                anchors = read_points_csv(points)
            elif sparse_depth is not None:
                anchors = anchors_from_sparse(read_sparse_depth(sparse_depth, depth_scale), result.values.shape,
                                              sparse_depth.name)
            else:
                anchors = Anchors.from_points(list(distances), f"--distance ({len(distances)} points)")
            cal, residuals = fit_calibration(result, anchors, mode=mode.replace("-", "_"), inlier_tol=inlier_tol,
                                             seed=seed)
            out = output or Path(f"{source.stem}.calibration.json")
            cal.save(out)
            metric = cal.apply_result(result)
            if save_depth is not None:
                save_depth.parent.mkdir(parents=True, exist_ok=True)
                np.save(save_depth, metric.values)
            if ply_path is not None:
                from ..geometry.pointcloud import write_result_ply

                write_result_ply(metric, rgb, ply_path, **ply_kw)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(cal.to_dict(), indent=2))
        return
    click.echo(cal.report())
    click.echo(residuals.table())
    click.echo(f"saved {out}" + (f", {save_depth}" if save_depth else "") + (f", {ply_path}" if ply_path else ""))


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
