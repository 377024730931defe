"""The runner: per-image averaging, skip accounting, resizing, provenance, baselines; and DA-2K scoring."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from depthany.eval import baselines, da2k
from depthany.eval.datasets.base import DatasetError, EvalDataset, EvalSample
from depthany.eval.runner import evaluate, resize_to
from depthany.eval.settings import EvalSettings
from depthany.eval.sources import BaselineSource, DirectorySource


class MemoryDataset(EvalDataset):
    """GT maps held in memory; ``bad`` ids raise on load."""

    name = "memory"

    def __init__(self, root: Path, depths: dict[str, np.ndarray], bad: tuple[str, ...] = ()) -> None:
        super().__init__(root, "test")
        self.depths, self.bad = depths, bad
        self.ids = list(depths)

    def load(self, index: int) -> EvalSample:
        sid = self.ids[index]
        if sid in self.bad:
            raise DatasetError(f"{sid}: corrupt file")
        d = self.depths[sid]
        return EvalSample(sid, d.astype(np.float32), lambda: np.zeros((*d.shape, 3), np.uint8))

    def settings(self, family: str) -> EvalSettings:
        return EvalSettings(1e-3, 10.0, mask_mode="range", source="test")


def test_dataset_score_is_the_unweighted_mean_of_per_image_scores(tmp_path) -> None:
    a = np.full((4, 4), 2.0)  # 16 valid pixels, AbsRel 0.5
    b = np.zeros((4, 4))
    b[0, 0] = 4.0  # 1 valid pixel, AbsRel 0
    preds = tmp_path / "p"
    preds.mkdir()
    np.save(preds / "a.npy", np.full((4, 4), 3.0, np.float32))
    np.save(preds / "b.npy", np.full((4, 4), 4.0, np.float32))
    rep = evaluate(MemoryDataset(tmp_path, {"a": a, "b": b}), DirectorySource(preds, "depth"), "zoedepth_metric",
                   progress=False)
    assert [r["n_valid"] for r in rep.rows] == [16, 1]
    assert rep.mean()["abs_rel"] == pytest.approx(0.25)  # (0.5 + 0) / 2, not the pixel-pooled 8/17 * ...
    pooled = (16 * 0.5 + 0) / 17
    assert abs(rep.mean()["abs_rel"] - pooled) > 0.2


def test_bad_samples_are_skipped_counted_and_the_run_goes_on(tmp_path) -> None:
    g = {k: np.full((6, 8), 2.0 + i) for i, k in enumerate(["x", "y", "z", "w"])}
    preds = tmp_path / "p"
    (preds / "sub").mkdir(parents=True)
    for k in ("x", "y"):
        np.save(preds / f"{k}.npy", (1.0 / g[k]).astype(np.float32)[None])  # (1, H, W) accepted
    np.save(preds / "w.npy", np.ones((2, 3, 4), np.float32))  # wrong rank
    rep = evaluate(MemoryDataset(tmp_path, g, bad=("y",)), DirectorySource(preds), "disparity_lsq_eval_depth",
                   progress=False)
    status = {r["id"]: (r["status"], r["reason"].split(":")[0]) for r in rep.rows}
    assert status == {"x": ("ok", ""), "y": ("skipped", "DatasetError"), "z": ("skipped", "FileNotFoundError"),
                      "w": ("skipped", "ValueError")}
    assert rep.counts()["evaluated"] == 1 and rep.counts()["skipped"] == 3
    assert rep.rows[0]["degenerate_fit"]  # a constant map: minimum-norm fit, still scored


def test_predictions_are_resized_bilinear_align_corners(tmp_path) -> None:
    small = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32)
    big = resize_to(small, (3, 5))
    assert big[0, 0] == 0 and big[-1, -1] == 3 and big[1, 2] == pytest.approx(1.5)  # corners kept exactly
    g = np.linspace(1, 5, 30 * 40).reshape(30, 40)
    preds = tmp_path / "p"
    preds.mkdir()
    np.save(preds / "a.npy", np.asarray(resize_to((g + 1.0).astype(np.float32), (15, 20))))
    rep = evaluate(MemoryDataset(tmp_path, {"a": g}), DirectorySource(preds, "depth"), "marigold_depth_lsq",
                   progress=False)
    assert rep.rows[0]["status"] == "ok" and rep.rows[0]["abs_rel"] < 0.01


def test_report_files_carry_provenance(tmp_path) -> None:
    g = {"a": np.linspace(1, 5, 48).reshape(6, 8)}
    rep = evaluate(MemoryDataset(tmp_path, g), BaselineSource("ground-plane"), "disparity_lsq_eval_depth",
                   progress=False, limit=1, extra_provenance={"command": "test"})
    json_path, csv_path = rep.save(tmp_path / "out")
    doc = json.loads(json_path.read_text())
    prov = doc["provenance"]
    assert prov["protocol"]["id"] == "disparity_lsq_eval_depth" and prov["dataset"]["split"] == "test"
    assert prov["settings"]["min_depth"] == 1e-3 and prov["settings"]["crop"] == "none"
    assert prov["source"] == {"source": "baseline", "baseline": "ground-plane", "prediction_kind": "depth"}
    assert prov["software"]["depthany"] and prov["limit"] == 1 and prov["command"] == "test"
    assert doc["counts"]["evaluated"] == 1 and "never released" in doc["note"]
    rows = list(csv.DictReader(csv_path.open()))
    assert rows[0]["id"] == "a" and float(rows[0]["abs_rel"]) == pytest.approx(doc["metrics"]["abs_rel"])
    assert "disparity_lsq_eval_depth" in rep.table()


def test_baselines(tmp_path) -> None:
    h, w = 12, 9
    gp = baselines.ground_plane_depth((h, w))
    assert gp.shape == (h, w) and np.all(np.diff(1.0 / gp[:, 0]) > 0)  # disparity rises toward the bottom
    gt = 1.0 / (0.2 + 0.5 * (np.arange(h)[:, None] + 0.5) / h) * np.ones((1, w))  # a ground plane scene
    rep = evaluate(MemoryDataset(tmp_path, {"g": gt}), BaselineSource("ground-plane"), "disparity_lsq_eval_depth",
                   progress=False)
    assert rep.rows[0]["abs_rel"] < 1e-6  # float32 GT and prediction
    const = evaluate(MemoryDataset(tmp_path, {"g": gt}), BaselineSource("constant"), "marigold_depth_lsq",
                     progress=False)
    assert const.rows[0]["degenerate_fit"] and const.counts()["degenerate_fit"] == 1
    gv = gt.ravel()
    assert const.rows[0]["abs_rel"] == pytest.approx(np.mean(np.abs(gv.mean() - gv) / gv))  # best constant
    with pytest.raises(ValueError, match="baseline must be"):
        BaselineSource("zeros")


# ------------------------------------------------------------------------------------------------ DA-2K


def _da2k(tmp_path: Path) -> None:
    ann = {
        "images/indoor/a.jpg": [{"point1": [1, 1], "point2": [5, 5], "closer_point": "point1"},
                                {"point1": [5, 1], "point2": [1, 5], "closer_point": "point1"}],
        "images/aerial/b.jpg": [{"point1": [0, 0], "point2": [7, 9], "closer_point": "point1"}],
        "images/aerial/c.jpg": [{"point1": [0, 0], "point2": [70, 9], "closer_point": "point1"}],  # out of image
    }
    (tmp_path / "annotations.json").write_text(json.dumps(ann))
    for name in ("indoor/a", "aerial/b", "aerial/c"):
        p = tmp_path / "images" / f"{name}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (10, 8)).save(p)
    preds = tmp_path / "preds" / "images"
    (preds / "indoor").mkdir(parents=True)
    (preds / "aerial").mkdir(parents=True)
    disp = np.zeros((8, 10), np.float32)
    disp[1, 1], disp[5, 5] = 2.0, 1.0  # pair 1 right (closer = larger disparity)
    disp[5, 1], disp[1, 5] = 1.0, 1.0  # pair 2 tie -> wrong
    np.save(preds / "indoor" / "a.npy", disp)
    b = np.zeros((4, 5), np.float32)
    b[0, 0] = 3.0  # predicted at lower resolution, upsampled to 8x10
    np.save(preds / "aerial" / "b.npy", b)
    np.save(preds / "aerial" / "c.npy", b)


def test_da2k_accuracy_per_scenario_and_kinds(tmp_path) -> None:
    _da2k(tmp_path)
    rep = da2k.evaluate_da2k(tmp_path, DirectorySource(tmp_path / "preds", "disparity"), progress=False)
    acc = rep.accuracy()
    assert acc["per_scenario"] == {"aerial": 1.0, "indoor": 0.5} and acc["pairs"] == 3
    assert acc["overall"] == pytest.approx(2 / 3)
    assert rep.counts() == {"listed": 3, "evaluated": 2, "skipped": 1}
    assert "outside" in next(r["reason"] for r in rep.rows if r["status"] != "ok")
    as_depth = da2k.evaluate_da2k(tmp_path, DirectorySource(tmp_path / "preds", "depth"), progress=False)
    assert as_depth.accuracy()["overall"] == 0.0  # same maps read as depth: every non-tied pair flips
    json_path, _ = rep.save(tmp_path / "out")
    assert json.loads(json_path.read_text())["metrics"]["per_scenario"]["indoor"] == 0.5


def test_da2k_helpers(tmp_path) -> None:
    assert da2k.scenario_of("images/transparent_reflective/x.jpg") == "transparent_reflective"
    assert da2k.scenario_of("outdoor/x.jpg") == "outdoor" and da2k.scenario_of("misc/x.jpg") == "misc"
    pair = da2k.PointPair((0, 0), (0, 1), "point2")
    assert da2k.pair_correct(np.array([[1.0, 2.0]]), pair, "disparity")
    assert not da2k.pair_correct(np.array([[1.0, 2.0]]), pair, "depth")
    (tmp_path / "annotations.json").write_text(json.dumps({"x.jpg": [{"point1": [0, 0]}]}))
    with pytest.raises(DatasetError, match="malformed"):
        da2k.read_annotations(tmp_path / "annotations.json")
