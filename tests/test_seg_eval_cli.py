"""`depthany eval --task semseg` through the CLI, on files written in the published layouts: saved predictions
(Cityscapes train ids, ADE20K class indices with reduce-zero-label) and a model (synthetic worlds), metrics
against an independent confusion matrix, metrics.json / per_image.csv as specified, and the errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from depthany.cli.main import cli
from depthany.seg.datasets.cityscapes import CITYSCAPES_CLASSES
from depthany.seg.score import write_label_png
from depthany.seg.segmenter import Segmenter
from depthany.seg.spec import InferenceCfg
from depthany.seg.weights import save_seg_weights
from depthany.synth import WorldConfig
from depthany.synth.dataset import generate
from depthany.synth.labels import SYNTH_CLASSES
from seg_helpers import cityscapes_root, confusion_oracle, lively, png


def evaluate(*args: object) -> object:
    return CliRunner().invoke(cli, ["eval", "--task", "semseg", "--quiet", *map(str, args)])


def check_metrics(data: dict, oracle: tuple, names: tuple[str, ...]) -> None:
    a_acc, miou, macc, iou, acc = oracle
    assert set(data["metrics"]) == {"aAcc", "mIoU", "mAcc"}
    assert data["metrics"]["aAcc"] == pytest.approx(a_acc, rel=1e-12)  # percent, unrounded
    assert data["metrics"]["mIoU"] == pytest.approx(miou, rel=1e-12)
    assert data["metrics"]["mAcc"] == pytest.approx(macc, rel=1e-12)
    assert list(data["per_class"]) == list(names)
    for k, name in enumerate(names):
        row = data["per_class"][name]
        assert row["IoU"] == (None if math.isnan(iou[k]) else pytest.approx(iou[k] * 100))
        assert row["Acc"] == (None if math.isnan(acc[k]) else pytest.approx(acc[k] * 100))


def test_cityscapes_predictions_in_the_official_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    root, gts = cityscapes_root(tmp_path, rng)  # leftImg8bit/val/<city>/..., gtFine labelIds (+ labelTrainIds)
    ids = sorted(gts)
    preds = {}
    for sid in ids:  # mostly right, some noise, and one class predicted that is nowhere in the ground truth
        p = np.where(rng.random(gts[sid].shape) < 0.6, gts[sid] % 19, rng.integers(0, 19, gts[sid].shape))
        preds[sid] = p.astype(np.uint8)
        write_label_png(tmp_path / "preds" / f"{sid}.png", preds[sid])
    res = evaluate("--dataset", "cityscapes", "--root", root, "--predictions", tmp_path / "preds", "--out",
                   tmp_path / "out")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    check_metrics(data, confusion_oracle([preds[i] for i in ids], [gts[i] for i in ids], 19), CITYSCAPES_CLASSES.names)
    assert data["counts"] == {"listed": 2, "scored": 2, "skipped": 0}
    assert data["provenance"]["command"].startswith("depthany eval --task semseg")
    rows = list(csv.DictReader((tmp_path / "out" / "per_image.csv").open()))
    assert [r["id"] for r in rows] == ids == ["aachen/aachen_000001_000019_leftImg8bit",
                                              "frankfurt/frankfurt_000000_000294_leftImg8bit"]
    one = confusion_oracle([preds[ids[0]]], [gts[ids[0]]], 19)
    assert float(rows[0]["mIoU"]) == pytest.approx(one[1])

    (tmp_path / "preds" / f"{ids[1]}.png").unlink()  # a missing prediction is a skipped row; the rest is scored
    res = evaluate("--dataset", "cityscapes", "--root", root, "--predictions", tmp_path / "preds", "--out",
                   tmp_path / "out2")
    assert res.exit_code == 0  # type: ignore[attr-defined]
    data = json.loads((tmp_path / "out2" / "metrics.json").read_text())
    assert data["counts"]["skipped"] == 1
    check_metrics(data, confusion_oracle([preds[ids[0]]], [gts[ids[0]]], 19), CITYSCAPES_CLASSES.names)


def test_ade20k_predictions_with_reduce_zero_label(tmp_path: Path) -> None:
    root = tmp_path / "ADEChallengeData2016"
    rng = np.random.default_rng(4)
    raws, preds = [], []
    for i in (1, 2):
        name = f"ADE_val_{i:08d}"
        raw = rng.integers(0, 151, (9, 11)).astype(np.uint8)  # 0 = unlabelled, k = class k - 1
        (root / "images" / "validation").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((9, 11, 3), np.uint8)).save(root / "images" / "validation" / f"{name}.jpg")
        png(root / "annotations" / "validation" / f"{name}.png", raw)
        pred = rng.integers(0, 150, raw.shape).astype(np.uint8)
        pred[:4] = np.maximum(raw[:4].astype(int) - 1, 0)
        write_label_png(tmp_path / "preds" / f"{name}.png", pred)
        raws.append(raw)
        preds.append(pred)
    res = evaluate("--dataset", "ade20k", "--root", root, "--predictions", tmp_path / "preds", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    data = json.loads((tmp_path / "o" / "metrics.json").read_text())
    reduced = [np.where(r == 0, 255, r.astype(int) - 1) for r in raws]  # written out here from mmseg's rule
    from depthany.seg.datasets.ade20k import ADE20K_CLASSES

    check_metrics(data, confusion_oracle(preds, reduced, 150), ADE20K_CLASSES.names)
    # 198 pixels cannot hold 150 classes: absent ones are null (JSON has no NaN), as mmseg's NaN
    assert sum(v["IoU"] is None for v in data["per_class"].values()) > 0
    assert ": NaN" not in (tmp_path / "o" / "metrics.json").read_text()


def test_a_model_on_synthetic_worlds_and_its_saved_labels(tmp_path: Path) -> None:
    generate(tmp_path / "w", 3, WorldConfig(40, 30, "mixed"), seed=2)
    model = lively("linear", 11, classes=SYNTH_CLASSES, inference=InferenceCfg(mode="whole", resize=None))
    weights = save_seg_weights(model, tmp_path / "m.safetensors")
    res = evaluate("--dataset", "synth", "--root", tmp_path / "w", "--weights", weights, "--out", tmp_path / "a",
                   "--save-predictions", tmp_path / "saved")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    first = json.loads((tmp_path / "a" / "metrics.json").read_text())
    from depthany.seg.datasets import open_seg_dataset

    ds = open_seg_dataset("synth", tmp_path / "w")
    seg = Segmenter(model)
    preds = [seg.segment(ds.load(i).rgb()).labels for i in range(3)]
    check_metrics(first, confusion_oracle(preds, [ds.load(i).labels for i in range(3)], 29), SYNTH_CLASSES.names)
    assert first["provenance"]["source"]["weights"] == str(weights)

    # the same numbers from the saved predictions, and from `depthany segment --format labels` (the same layout)
    seg_res = CliRunner().invoke(cli, ["segment", str(tmp_path / "w" / "rgb"), "--weights", str(weights), "--out",
                                       str(tmp_path / "segmented"), "--format", "labels"])
    assert seg_res.exit_code == 0, seg_res.output
    for folder in ("saved", "segmented"):
        res = evaluate("--dataset", "synth", "--root", tmp_path / "w", "--predictions", tmp_path / folder, "--out",
                       tmp_path / f"from-{folder}")
        assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
        again = json.loads((tmp_path / f"from-{folder}" / "metrics.json").read_text())
        assert again["metrics"] == first["metrics"] and again["per_class"] == first["per_class"]


@pytest.mark.parametrize("args, code, message", [
    (["--dataset", "synth"], 2, "give exactly one"),
    (["--dataset", "synth", "--weights", "m.safetensors", "--predictions", "p"], 2, "give exactly one"),
    (["--dataset", "synth", "--predictions", "p", "--protocol", "marigold_depth_lsq"], 2,
     "--protocol: depth evaluation only"),
    (["--dataset", "synth", "--weights", "m.safetensors"], 2, "predicts toy classes (4), the dataset has synth"),
    (["--dataset", "cityscapes", "--predictions", "p"], 1, "--root must be the folder holding leftImg8bit/"),
    (["--dataset", "synth", "--predictions", "p", "--limit", "1"], 1, "no sample could be scored"),
])
def test_errors(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    generate(tmp_path / "w", 1, WorldConfig(24, 16, "indoor"), seed=0)
    save_seg_weights(lively(), tmp_path / "m.safetensors")
    (tmp_path / "p").mkdir()
    args = [str(tmp_path / a) if a in ("m.safetensors", "p") else a for a in args]
    res = evaluate("--root", tmp_path / "w", "--out", tmp_path / "o", *args)
    assert res.exit_code == code and message in res.output, res.output  # type: ignore[attr-defined]


def test_a_segmentation_dataset_needs_task_semseg(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["eval", "--dataset", "ade20k", "--root", str(tmp_path), "--predictions",
                                   str(tmp_path)])
    assert res.exit_code == 2 and "--dataset ade20k is a segmentation dataset; add --task semseg" in res.output
