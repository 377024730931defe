"""``depthany eval --task semseg``: mmseg's mIoU / mAcc / aAcc of a segmentation model or of saved label PNGs.

    depthany eval --task semseg --dataset cityscapes --root data/cityscapes --weights city.safetensors
    depthany eval --task semseg --dataset ade20k --root data/ADEChallengeData2016 --predictions preds/
    depthany eval --task semseg --dataset synth --root worlds --weights runs/seg/final.safetensors

Writes ``metrics.json`` (``aAcc``, ``mIoU``, ``mAcc`` in percent, unrounded; per-class IoU / Acc, null where mmseg
gives NaN) and ``per_image.csv`` (:mod:`depthany.seg.score`). Argument parsing only; ``depthany eval`` dispatches
here on ``--task semseg``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

# options of depthany eval that score depth and mean nothing for segmentation
DEPTH_ONLY = ("model", "pred_kind", "baseline", "baseline_value", "protocol", "input_size", "precision", "flip_tta",
              "min_depth", "max_depth", "crop", "crop_order", "mask_mode", "alignment_max_res", "list_file",
              "layout", "depth_variant", "image_pass", "gt_size", "depth_scale", "kb_crop")


def run_semseg(kw: dict[str, Any], command: str) -> None:
    """Score ``--weights`` or ``--predictions`` on ``--dataset`` and write the report (``kw``: eval's options)."""
    from ..runtime.devices import pick_device
    from ..seg.datasets import open_seg_dataset
    from ..seg.score import score, score_predictions
    from ..seg.segmenter import Segmenter

    ctx = click.get_current_context()
    given = [n for n in DEPTH_ONLY if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]
    if given:
        flags = ", ".join("--" + n.replace("_", "-").replace("list-file", "list") for n in given)
        raise click.UsageError(f"{flags}: depth evaluation only, not with --task semseg")
    if (kw["weights"] is None) == (kw["predictions"] is None):
        raise click.UsageError("--task semseg scores a model (--weights RUN.safetensors) or saved label PNGs "
                               "(--predictions DIR): give exactly one")
    # index the split first, so a wrong --root fails before a model is loaded
    dataset = open_seg_dataset(kw["dataset_name"], kw["root"], kw["split"])
    progress = not kw["quiet"]
    if kw["predictions"] is not None:
        if kw["save_predictions"] is not None:
            raise click.UsageError("--save-predictions needs a model (--weights)")
        report = score_predictions(dataset, kw["predictions"], kw["limit"], progress)
    else:
        segmenter = Segmenter.from_weights(kw["weights"], pick_device(kw["device"]), max_tokens=kw["max_tokens"])
        if segmenter.classes.names != dataset.classes.names:
            raise click.UsageError(f"{kw['weights']} predicts {segmenter.classes.name} classes "
                                   f"({segmenter.spec.num_classes}), the dataset has {dataset.classes.name} "
                                   f"({len(dataset.classes)})")
        source = {"source": "model", "weights": str(kw["weights"]), "spec": segmenter.spec.name,
                  "inference": segmenter.inference.__dict__, "max_tokens": kw["max_tokens"]}
        report = score(dataset, lambda s: segmenter.segment(s.rgb()).labels, kw["limit"], source,
                       kw["save_predictions"], progress)
    report.provenance["command"] = command
    out = kw["out"] or Path("eval_out") / f"{kw['dataset_name']}-semseg"
    json_path, csv_path = report.save(out)
    click.echo(report.table())
    click.echo(f"wrote {json_path} and {csv_path}")
    if report.counts()["scored"] == 0:
        reasons = "; ".join(sorted({r["reason"] for r in report.rows})[:3])
        raise click.ClickException(f"no sample could be scored ({reasons})")
