"""Segmentation readers on files written in the published layouts (Cityscapes leftImg8bit + gtFine, ADE20K
ADEChallengeData2016, synthetic folders), and scoring saved predictions into metrics.json + per_image.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depthany.seg.datasets import DatasetError, open_seg_dataset
from depthany.seg.datasets.ade20k import ADE20K_CLASSES
from depthany.seg.datasets.base import reduce_zero_label
from depthany.seg.datasets.cityscapes import CITYSCAPES_CLASSES, label_ids_to_train_ids
from depthany.seg.score import read_prediction_png, score, score_predictions, write_label_png
from depthany.synth import WorldConfig
from depthany.synth.dataset import generate
from seg_helpers import CS_LABELS, cityscapes_root, confusion_oracle, png


def test_cityscapes_label_ids_map_to_the_19_train_ids_like_cityscapesscripts() -> None:
    ids = np.arange(256, dtype=np.uint8).reshape(16, 16)
    train = label_ids_to_train_ids(ids).ravel()
    table = {i: t for _, i, t in CS_LABELS}
    assert [int(train[i]) for i in range(34)] == [table[i] for i in range(34)]
    assert (train[34:] == 255).all()
    # the 19 train ids name the same classes, in mmseg's order
    names = {t: n for n, _, t in CS_LABELS if t != 255}
    assert CITYSCAPES_CLASSES.names == tuple(names[k] for k in range(19))


def test_cityscapes_reader_ids_order_and_label_source(tmp_path: Path) -> None:
    root, gts = cityscapes_root(tmp_path, np.random.default_rng(0))
    ds = open_seg_dataset("cityscapes", root)
    assert ds.ids == sorted(gts)  # sorted by image path like mmseg: aachen first
    for i, sid in enumerate(ds.ids):
        s = ds.load(i)
        np.testing.assert_array_equal(s.labels, gts[sid])
        assert s.rgb().shape == (6, 8, 3)
    assert ds.load(0).meta["labels"].endswith("_gtFine_labelTrainIds.png")
    assert ds.load(1).meta["labels"].endswith("_gtFine_labelIds.png")
    with pytest.raises(DatasetError, match="leftImg8bit/ and gtFine/"):
        open_seg_dataset("cityscapes", tmp_path)
    with pytest.raises(DatasetError, match="gtFine"):
        open_seg_dataset("cityscapes", root, "train")


def test_ade20k_reader_reduces_zero_label(tmp_path: Path) -> None:
    root = tmp_path / "ADEChallengeData2016"
    raw = np.arange(0, 151, dtype=np.uint8)[:150].reshape(10, 15)
    raw[0, 0], raw[0, 1] = 0, 150
    Image.fromarray(np.zeros((10, 15, 3), np.uint8)).save(_mk(root / "images" / "validation" / "ADE_val_00000001.jpg"))
    png(root / "annotations" / "validation" / "ADE_val_00000001.png", raw)
    ds = open_seg_dataset("ade20k", root)
    assert ds.ids == ["ADE_val_00000001"] and len(ds.classes) == 150 and ds.classes is ADE20K_CLASSES
    lab = ds.load(0).labels
    assert lab[0, 0] == 255 and lab[0, 1] == 149  # 0 -> ignore, k -> k - 1
    np.testing.assert_array_equal(lab[raw > 0], raw[raw > 0] - 1)
    np.testing.assert_array_equal(reduce_zero_label(np.array([0, 1, 150, 254, 255], np.uint8)), [255, 0, 149, 253, 255])
    assert ADE20K_CLASSES.names[7] == "bed" and ADE20K_CLASSES.colors[149] == (92, 0, 255)


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_scoring_saved_cityscapes_predictions(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    root, gts = cityscapes_root(tmp_path, rng)
    preds = tmp_path / "preds"
    ids = sorted(gts)
    pred0 = np.where(rng.random(gts[ids[0]].shape) < 0.7, gts[ids[0]] % 19, rng.integers(0, 19, (6, 8)))
    write_label_png(preds / f"{ids[0]}.png", pred0.astype(np.uint8))
    # the second prediction is missing: reported and skipped, the rest is scored
    report = score_predictions(open_seg_dataset("cityscapes", root), preds)
    json_path, csv_path = report.save(tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["counts"] == {"listed": 2, "scored": 1, "skipped": 1}
    a_acc, miou, macc, iou, _ = confusion_oracle([pred0], [gts[ids[0]]], 19)
    assert data["metrics"]["mIoU"] == pytest.approx(miou) and data["metrics"]["aAcc"] == pytest.approx(a_acc)
    assert data["metrics"]["mAcc"] == pytest.approx(macc)
    assert set(data["per_class"]) == set(CITYSCAPES_CLASSES.names)
    for k, name in enumerate(CITYSCAPES_CLASSES.names):
        assert data["per_class"][name]["IoU"] == (None if np.isnan(iou[k]) else pytest.approx(iou[k] * 100))
    assert data["mmseg_rounded"]["mIoU"] == round(miou, 2)
    assert data["provenance"]["dataset"]["dataset"] == "cityscapes"
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["id"] for r in rows] == ids and rows[0]["status"] == "ok"
    assert rows[1]["status"] == "skipped" and "prediction not found" in rows[1]["reason"]


def test_scoring_ade20k_predictions_in_class_index_space(tmp_path: Path) -> None:
    root = tmp_path / "ADEChallengeData2016"
    rng = np.random.default_rng(2)
    raw = rng.integers(0, 151, (12, 9)).astype(np.uint8)
    Image.fromarray(np.zeros((12, 9, 3), np.uint8)).save(_mk(root / "images" / "validation" / "ADE_val_00000002.jpg"))
    png(root / "annotations" / "validation" / "ADE_val_00000002.png", raw)
    perfect = np.where(raw > 0, raw.astype(int) - 1, rng.integers(0, 150, raw.shape)).astype(np.uint8)
    write_label_png(tmp_path / "p" / "ADE_val_00000002.png", perfect)
    m = score_predictions(open_seg_dataset("ade20k", root), tmp_path / "p").metrics()
    assert m.aAcc == 100.0 and m.mIoU == 100.0  # GT 0 pixels are ignored whatever is predicted there
    present = np.unique(raw[raw > 0]) - 1
    assert (~np.isnan(m.iou)).sum() == len(present)


def test_bad_predictions_are_reported_per_image(tmp_path: Path) -> None:
    generate(tmp_path / "w", 3, WorldConfig(24, 16, "outdoor"), seed=0)
    ds = open_seg_dataset("synth", tmp_path / "w")
    preds = tmp_path / "p"
    write_label_png(preds / f"{ds.ids[0]}.png", ds.load(0).labels)  # perfect
    write_label_png(preds / f"{ds.ids[1]}.png", np.zeros((8, 8), np.uint8))  # wrong size
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(preds / f"{ds.ids[2]}.png")  # a colour picture
    report = score_predictions(ds, preds)
    status = [(r["status"], r["reason"].split(":")[0]) for r in report.rows]
    assert status == [("ok", ""), ("skipped", "DatasetError"), ("skipped", "DatasetError")]
    assert "8x8 but the label image is 24x16" in report.rows[1]["reason"]
    assert "mode 'RGB'" in report.rows[2]["reason"]
    assert report.metrics().mIoU == 100.0 and report.metrics().aAcc == 100.0
    with pytest.raises(DatasetError, match="not a folder"):
        score_predictions(ds, tmp_path / "nope")
    with pytest.raises(DatasetError, match="mode 'RGB'"):
        read_prediction_png(preds / f"{ds.ids[2]}.png")


def test_score_saves_predictions_that_score_the_same(tmp_path: Path) -> None:
    generate(tmp_path / "w", 2, WorldConfig(24, 16, "mixed"), seed=3)
    ds = open_seg_dataset("synth", tmp_path / "w")
    guess = lambda s: np.full(s.labels.shape, 1, np.uint8)  # noqa: E731 - "everything is ground"
    first = score(ds, guess, save_predictions=tmp_path / "saved", source={"source": "constant"})
    again = score_predictions(ds, tmp_path / "saved")
    assert first.metrics().mIoU == again.metrics().mIoU and first.rows[0]["mIoU"] == again.rows[0]["mIoU"]
    assert first.provenance["source"] == {"source": "constant"}
    assert "mIoU" in first.table()


def test_synth_reader_refuses_folders_without_labels(tmp_path: Path) -> None:
    generate(tmp_path / "w", 1, WorldConfig(16, 16, "indoor"), seed=0)
    info = json.loads((tmp_path / "w" / "dataset.json").read_text())
    del info["semantic"]
    (tmp_path / "w" / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="no semantic labels"):
        open_seg_dataset("synth", tmp_path / "w")
    with pytest.raises(ValueError, match="must be one of cityscapes, ade20k, synth"):
        open_seg_dataset("voc", tmp_path)
