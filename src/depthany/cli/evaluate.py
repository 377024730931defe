"""``depthany eval``: score a model, saved predictions or a trivial baseline on a benchmark under a named protocol.

Only argument parsing lives here; the work is in :mod:`depthany.eval`.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from ..eval.baselines import BASELINES
from ..eval.crops import CROP_ORDERS, CROPS
from ..eval.datasets import DATASETS
from ..eval.protocols import PROTOCOLS
from ..eval.settings import MASK_MODES
from ..seg.datasets import SEG_DATASETS
from .options import (
    device_option,
    input_size_option,
    max_tokens_option,
    model_option,
    precision_option,
    weights_option,
)

DATASET_NAMES = [*DATASETS, "da2k", *SEG_DATASETS]


def _parse_size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected HxW such as 4032x6048, got {value!r}", param_hint="--gt-size") from None
    return h, w


def _auto_protocol(kind: str, is_model_metric: bool) -> str:
    if kind == "disparity":
        return "disparity_lsq_eval_depth"
    return "zoedepth_metric" if is_model_metric else "disparity_lsq_eval_depth"


@click.command("eval", context_settings={"show_default": True})
@click.option("--task", type=click.Choice(["depth", "semseg"]), default="depth",
              help="semseg: mIoU / mAcc / aAcc as mmseg computes them on cityscapes, ade20k or synth "
                   "(docs/segmentation.md).")
@model_option()
@weights_option()
@click.option("--predictions", type=click.Path(path_type=Path), default=None,
              help="Evaluate saved predictions <DIR>/<sample id>.npy instead of running a model.")
@click.option("--pred-kind", type=click.Choice(["disparity", "depth"]), default="disparity",
              help="What the saved --predictions hold.")
@click.option("--baseline", type=click.Choice(BASELINES), default=None,
              help="Evaluate a trivial predictor instead of a model (see docs/evaluation.md).")
@click.option("--baseline-value", type=float, default=1.0, help="Depth of the constant baseline.")
@click.option("--dataset", "dataset_name", type=click.Choice(DATASET_NAMES), required=True)
@click.option("--root", type=click.Path(path_type=Path), required=True, help="Your copy of the dataset.")
@click.option("--split", default=None, help="Split (default per dataset, see docs/evaluation.md).")
@click.option("--protocol", type=click.Choice(["auto", *PROTOCOLS]), default="auto",
              help="auto: disparity_lsq_eval_depth, or zoedepth_metric for metric models.")
@input_size_option()
@device_option()
@precision_option()
@max_tokens_option()
@click.option("--flip-tta/--no-flip-tta", default=None, help="Horizontal-flip averaging (default: the protocol's).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder for metrics.json and per_image.csv [default: eval_out/<dataset>-<protocol>].")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N samples.")
@click.option("--save-predictions", type=click.Path(path_type=Path), default=None,
              help="Also save raw predictions as <DIR>/<id>.npy for later --predictions runs.")
@click.option("--min-depth", type=float, default=None, help="Override the dataset's GT range (metres).")
@click.option("--max-depth", type=float, default=None)
@click.option("--crop", type=click.Choice(CROPS), default=None, help="Override the evaluation crop.")
@click.option("--crop-order", type=click.Choice(CROP_ORDERS), default=None, help="KITTI fraction-crop frame.")
@click.option("--mask-mode", type=click.Choice(MASK_MODES), default=None)
@click.option("--alignment-max-res", type=int, default=None, help="Fit scale/shift at this max resolution.")
@click.option("--list", "list_file", type=click.Path(path_type=Path), default=None, help="Sample list file.")
@click.option("--layout", default=None, help="nyuv2: auto, mat, bts or marigold.")
@click.option("--depth-variant", type=click.Choice(["raw", "filled"]), default=None, help="nyuv2 GT source.")
@click.option("--image-pass", type=click.Choice(["final", "clean"]), default=None, help="sintel image pass.")
@click.option("--gt-size", default=None, help="eth3d GT size HxW (default 4032x6048).")
@click.option("--depth-scale", type=float, default=None, help="filelist: 16-bit PNG units per metre.")
@click.option("--kb-crop/--no-kb-crop", default=None, help="kitti: KB crop image and GT (default on).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(**kw: Any) -> None:
    """Evaluate on a benchmark and write metrics.json (with provenance) and per_image.csv.

    \b
    depthany eval --model da2-small --dataset nyuv2 --root data/nyu --protocol disparity_lsq_eval_depth
    depthany eval --predictions preds/ --dataset kitti --root data/kitti --protocol marigold_depth_lsq --pred-kind depth
    depthany eval --dataset rgbd --root worlds/ --baseline ground-plane
    depthany eval --task semseg --dataset cityscapes --root data/cityscapes --predictions preds/
    """
    from ..eval.datasets.base import DatasetError

    try:
        if kw.pop("task") == "semseg":
            from .evaluate_seg import run_semseg

            run_semseg(kw, _command_line())
            return
        if kw["dataset_name"] in SEG_DATASETS:
            raise click.UsageError(f"--dataset {kw['dataset_name']} is a segmentation dataset; add --task semseg")
        _run(kw)
    except (DatasetError, ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e


def _source(kw: dict[str, Any]) -> tuple[Any, bool]:
    from ..eval.sources import BaselineSource, DirectorySource, ModelSource

    chosen = [n for n in ("predictions", "baseline") if kw[n] is not None]
    if kw["model"] or kw["weights"]:
        chosen.append("model/weights")
    if len(chosen) > 1:
        raise click.UsageError(f"choose one prediction source, got {' and '.join(chosen)}")
    if kw["predictions"] is not None:
        return DirectorySource(kw["predictions"], kw["pred_kind"]), False
    if kw["baseline"] is not None:
        return BaselineSource(kw["baseline"], kw["baseline_value"]), False
    from ..predictor import DepthPredictor

    predictor = DepthPredictor.from_pretrained(kw["model"], kw["weights"], device=kw["device"],
                                               precision=kw["precision"], input_size=kw["input_size"],
                                               max_tokens=kw["max_tokens"])
    return ModelSource(predictor), predictor.spec.arch.head == "metric"


def _command_line() -> str:
    """The options that differ from their defaults, as a re-runnable ``depthany eval`` command."""
    ctx = click.get_current_context()
    parts = ["depthany", "eval"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if not isinstance(param, click.Option) or value is None or value == param.default:
            continue
        if param.is_flag:
            flag = param.opts[0] if value else (param.secondary_opts or [param.opts[0]])[0]
            parts.append(flag)
        else:
            parts += [param.opts[0], shlex.quote(str(value))]
    return " ".join(parts)


# Options DA-2K has no use for: it is scored by pairwise ordering on annotated points (one protocol, no split,
# no depth range, crop, mask or alignment) and has one reader. --list, --flip-tta, --save-predictions apply.
DA2K_REFUSED = ("split", "protocol", "min_depth", "max_depth", "crop", "crop_order", "mask_mode",
                "alignment_max_res", "layout", "depth_variant", "image_pass", "gt_size", "depth_scale", "kb_crop")


def _refuse_for_da2k(kw: dict[str, Any]) -> None:
    """A usage error (exit 2) naming every given option that DA-2K would ignore."""
    ctx = click.get_current_context()
    given = [p.opts[0] for p in ctx.command.params
             if p.name in DA2K_REFUSED and kw[p.name] is not None and kw[p.name] != p.default]
    if given:
        raise click.UsageError(f"--dataset da2k does not take {', '.join(given)}: DA-2K is scored by pairwise "
                               "depth ordering of annotated points (protocol da2k_pairwise), with no split, depth "
                               "range, crop, mask or alignment")


def _flip(source: Any, flip_tta: bool | None, default: bool) -> None:
    """Set the model source's flip averaging (``flip_tta`` None: ``default``); refuse it for other sources."""
    if hasattr(source, "flip_tta"):
        source.flip_tta = default if flip_tta is None else flip_tta
    elif flip_tta:
        raise click.UsageError("--flip-tta needs a model (saved predictions and baselines cannot be flipped)")


def _run(kw: dict[str, Any]) -> None:
    from ..eval.da2k import PROTOCOL_ID, evaluate_da2k
    from ..eval.datasets import open_dataset
    from ..eval.protocols import get_protocol
    from ..eval.runner import evaluate as run_eval

    extra = {"command": _command_line()}
    progress = not kw["quiet"]
    if kw["dataset_name"] == "da2k":
        _refuse_for_da2k(kw)
        source, _ = _source(kw)
        _flip(source, kw["flip_tta"], False)
        report: Any = evaluate_da2k(kw["root"], source, kw["limit"], progress, annotations=kw["list_file"],
                                    extra_provenance=extra, save_predictions=kw["save_predictions"])
        protocol_id = PROTOCOL_ID
    else:
        # Index the dataset before loading a (possibly large) model, so a wrong --root fails fast.
        dataset = open_dataset(
            kw["dataset_name"], kw["root"], kw["split"], list_file=kw["list_file"], layout=kw["layout"],
            depth=kw["depth_variant"], image_pass=kw["image_pass"], gt_size=_parse_size(kw["gt_size"]),
            depth_scale=kw["depth_scale"], kb_crop=kw["kb_crop"])
        source, is_metric_model = _source(kw)
        protocol_id = kw["protocol"]
        if protocol_id == "auto":
            protocol_id = _auto_protocol(source.kind, is_metric_model)
        proto = get_protocol(protocol_id)
        _flip(source, kw["flip_tta"], proto.flip_tta)
        settings = dataset.settings(proto.family).replace(
            min_depth=kw["min_depth"], max_depth=kw["max_depth"], crop=kw["crop"], crop_order=kw["crop_order"],
            mask_mode=kw["mask_mode"], alignment_max_res=kw["alignment_max_res"])
        report = run_eval(dataset, source, proto, settings, kw["limit"], kw["save_predictions"], progress,
                          extra_provenance=extra)
    out = kw["out"] or Path("eval_out") / f"{kw['dataset_name']}-{protocol_id}"
    json_path, csv_path = report.save(out)
    click.echo(report.table())
    click.echo(f"wrote {json_path} and {csv_path}")
    if report.counts()["evaluated"] == 0:
        reasons = "; ".join(sorted({r["reason"] for r in report.rows})[:3])
        raise click.ClickException(f"no sample could be evaluated ({reasons})")
