"""``depthany eval`` end to end on a tiny RGB-D folder: a tiny random model, saved predictions, a baseline."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import random_model, tiny_spec
from depthany.cli.main import cli
from depthany.data.rgbd import RGBDWriter
from depthany.weights import save_weights
from official_oracle import official_v2_infer_image


@pytest.fixture
def rgbd_root(tmp_path, rng):
    root = tmp_path / "worlds"
    h, w = 42, 56
    with RGBDWriter(root, depth_encoding="npy") as wr:
        for k in range(3):
            rows = (np.arange(h)[:, None] + 0.5) / h
            depth = 1.0 / (0.1 + 0.8 * rows + 0.05 * k) * np.ones((1, w))
            depth[:3] = 0.0  # sky: invalid
            wr.write(f"w{k}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8), depth.astype(np.float32))
    return root


def _run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["eval", *args], catch_exceptions=False)
    return res.exit_code, res.output


def expected_disparity_lsq_eval_depth(net: torch.nn.Module, root: Path, stems: list[str], input_size: int
                                      ) -> dict[str, list[float]]:
    """``disparity_lsq_eval_depth`` on an RGB-D folder, written out here from its description (Marigold
    ``eval.py --alignment least_square_disparity``; docs/reference/evaluation_facts.md), on predictions of the
    official ``infer_image`` (tests/official_oracle.py). Per image: valid = gt > 1e-3 (the folder's range, no
    upper bound); least-squares s, t of [pred, 1] -> 1 / gt over valid pixels with pred > 0; aligned disparity
    clipped at 1e-3, inverted, clipped at 1e-3; AbsRel and delta1 over valid pixels."""
    cv2 = pytest.importorskip("cv2")
    out: dict[str, list[float]] = {"abs_rel": [], "delta1": [], "n_valid": []}
    for stem in stems:
        gt = np.load(root / "depth" / f"{stem}.npy").astype(np.float64)
        pred = official_v2_infer_image(net, cv2.imread(str(root / "rgb" / f"{stem}.png")), input_size)
        pred = pred.astype(np.float64)
        valid = gt > 1e-3
        fit = valid & (pred > 0)
        (s, t), *_ = np.linalg.lstsq(np.stack([pred[fit], np.ones(int(fit.sum()))], 1), 1.0 / gt[fit], rcond=None)
        depth = np.maximum(1.0 / np.maximum(s * pred[valid] + t, 1e-3), 1e-3)
        g = gt[valid]
        out["abs_rel"].append(float(np.mean(np.abs(depth - g) / g)))
        out["delta1"].append(float(np.mean(np.maximum(depth / g, g / depth) < 1.25)))
        out["n_valid"].append(int(valid.sum()))
    return out


def test_eval_tiny_model_on_rgbd_folder(tmp_path, rgbd_root) -> None:
    spec = tiny_spec()
    net = random_model(spec)
    weights = save_weights(net.state_dict(), spec, tmp_path / "tiny.safetensors", fmt="depthany")
    out = tmp_path / "out"
    code, text = _run(["--weights", str(weights), "--dataset", "rgbd", "--root", str(rgbd_root), "--input-size",
                       "56", "--out", str(out), "--save-predictions", str(tmp_path / "preds"), "--quiet"])
    assert code == 0, text
    assert "disparity_lsq_eval_depth" in text and "3 evaluated, 0 skipped" in text
    doc = json.loads((out / "metrics.json").read_text())
    prov = doc["provenance"]
    assert prov["source"]["model"] == spec.name and prov["source"]["input_size"] == 56
    assert prov["dataset"]["dataset"] == "rgbd" and prov["settings"]["max_depth_is_inf"]
    assert prov["command"].startswith("depthany eval") and doc["counts"]["evaluated"] == 3
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert [r["id"] for r in rows] == ["w0", "w1", "w2"] and all(r["status"] == "ok" for r in rows)
    want = expected_disparity_lsq_eval_depth(net, rgbd_root, ["w0", "w1", "w2"], 56)
    assert min(want["abs_rel"]) > 1e-3  # a random model is far from the truth: the numbers are not trivial
    for r, a, d1, n in zip(rows, want["abs_rel"], want["delta1"], want["n_valid"]):
        assert float(r["abs_rel"]) == pytest.approx(a, rel=1e-4)
        assert float(r["delta1"]) == pytest.approx(d1, abs=1.5 / n)  # one pixel may sit on the 1.25 boundary
    assert doc["metrics"]["abs_rel"] == pytest.approx(np.mean(want["abs_rel"]), rel=1e-4)  # unweighted mean
    assert doc["metrics"]["delta1"] == pytest.approx(np.mean(want["delta1"]), abs=1.5 / min(want["n_valid"]))
    # The saved raw predictions re-evaluate to the same numbers.
    code, _ = _run(["--predictions", str(tmp_path / "preds"), "--dataset", "rgbd", "--root", str(rgbd_root),
                    "--out", str(tmp_path / "again"), "--quiet"])
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert code == 0 and again["metrics"]["abs_rel"] == pytest.approx(doc["metrics"]["abs_rel"], rel=1e-6)


def test_eval_saved_affine_predictions_give_zero_error(tmp_path, rgbd_root) -> None:
    from depthany.eval.datasets import open_dataset

    ds = open_dataset("rgbd", rgbd_root)
    preds = tmp_path / "preds"
    preds.mkdir()
    for i, sid in enumerate(ds.ids):
        d = ds.load(i).depth.astype(np.float64)
        disp = np.where(d > 0, 1.0 / np.maximum(d, 1e-9), 0.0)
        np.save(preds / f"{sid}.npy", (3.0 * disp + 0.2).astype(np.float32))  # affine in disparity
    for protocol in ("disparity_lsq_eval_depth", "disparity_lsq_eval_disparity"):
        out = tmp_path / protocol
        code, text = _run(["--predictions", str(preds), "--dataset", "rgbd", "--root", str(rgbd_root),
                           "--protocol", protocol, "--out", str(out), "--quiet"])
        m = json.loads((out / "metrics.json").read_text())["metrics"]
        assert code == 0 and m["abs_rel"] < 1e-5 and m["delta1"] == 1.0, text


def test_eval_baseline_and_errors(tmp_path, rgbd_root) -> None:
    code, text = _run(["--baseline", "ground-plane", "--dataset", "rgbd", "--root", str(rgbd_root),
                       "--out", str(tmp_path / "b"), "--quiet"])
    assert code == 0 and "baseline: ground-plane" in text
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["metrics"]["abs_rel"] < 1e-5
    code, text = _run(["--predictions", str(tmp_path), "--dataset", "rgbd", "--root", str(rgbd_root),
                       "--protocol", "marigold_depth_lsq", "--quiet"])
    assert code != 0 and "relative disparity" in text
    code, text = _run(["--baseline", "constant", "--predictions", str(tmp_path), "--dataset", "rgbd",
                       "--root", str(rgbd_root)])
    assert code != 0 and "one prediction source" in text
    code, text = _run(["--baseline", "constant", "--dataset", "nyuv2", "--root", str(tmp_path / "missing")])
    assert code != 0 and "does not exist" in text
    code, text = _run(["--predictions", str(tmp_path), "--dataset", "rgbd", "--root", str(rgbd_root),
                       "--out", str(tmp_path / "none"), "--quiet"])  # no .npy files at all
    assert code != 0 and "no sample could be evaluated" in text


def test_eval_da2k_from_the_cli(tmp_path) -> None:
    from PIL import Image

    Image.new("RGB", (6, 8)).save(tmp_path / "a.png")  # 8 rows, 6 columns
    ann = {"a.png": [{"point1": [7, 2], "point2": [0, 2], "closer_point": "point1"},  # bottom nearer: right
                     {"point1": [1, 2], "point2": [6, 2], "closer_point": "point1"}]}  # top nearer: wrong
    (tmp_path / "annotations.json").write_text(json.dumps(ann))
    code, text = _run(["--baseline", "ground-plane", "--dataset", "da2k", "--root", str(tmp_path),
                       "--out", str(tmp_path / "o"), "--quiet"])
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert code == 0 and "50.00 %" in text and doc["metrics"]["overall"] == 0.5
    assert doc["provenance"]["protocol"]["id"] == "da2k_pairwise"


def _da2k_root(root: Path) -> dict[str, list[dict[str, object]]]:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(root / "a.png")
    ann = {"a.png": [{"point1": [19, 2], "point2": [0, 2], "closer_point": "point1"},  # bottom nearer
                     {"point1": [1, 2], "point2": [18, 2], "closer_point": "point1"}]}  # top nearer
    (root / "annotations.json").write_text(json.dumps(ann))
    return ann


DA2K_REFUSED_ARGS = [
    ["--split", "test"], ["--protocol", "zoedepth_metric"], ["--min-depth", "0.1"], ["--max-depth", "10"],
    ["--crop", "nyu_eigen"], ["--crop-order", "fraction_on_full"], ["--mask-mode", "mask_only"],
    ["--alignment-max-res", "64"], ["--layout", "bts"], ["--depth-variant", "raw"], ["--image-pass", "clean"],
    ["--gt-size", "10x10"], ["--depth-scale", "1000"], ["--kb-crop"],
]


@pytest.mark.parametrize("args", DA2K_REFUSED_ARGS, ids=lambda a: a[0])
def test_eval_da2k_refuses_options_that_do_not_apply(tmp_path, args: list[str]) -> None:
    """Each option DA-2K has no use for is a usage error naming it (exit 2), not silently dropped."""
    from depthany.cli.evaluate import DA2K_REFUSED

    _da2k_root(tmp_path)
    res = CliRunner().invoke(cli, ["eval", "--baseline", "ground-plane", "--dataset", "da2k", "--root", str(tmp_path),
                                   "--out", str(tmp_path / "o"), "--quiet", *args])
    assert res.exit_code == 2, res.output
    assert f"--dataset da2k does not take {args[0]}" in res.output
    assert not (tmp_path / "o").exists()
    assert len(DA2K_REFUSED_ARGS) == len(DA2K_REFUSED)  # every refused option has its case here


def test_eval_da2k_forwards_list_save_predictions_and_flip_tta(tmp_path) -> None:
    from depthany.predictor import DepthPredictor

    spec = tiny_spec()
    weights = save_weights(random_model(spec, seed=6).state_dict(), spec, tmp_path / "tiny.safetensors",
                           fmt="depthany")
    root = tmp_path / "da2k"
    ann = _da2k_root(root)
    # --list: another annotations file (only the first pair) is the one scored
    (tmp_path / "one.json").write_text(json.dumps({"a.png": ann["a.png"][:1]}))
    model = ["--weights", str(weights), "--input-size", "70", "--device", "cpu", "--dataset", "da2k",
             "--root", str(root), "--quiet"]
    code, text = _run([*model, "--list", str(tmp_path / "one.json"), "--out", str(tmp_path / "o1"),
                       "--save-predictions", str(tmp_path / "preds"), "--flip-tta"])
    assert code == 0, text
    doc = json.loads((tmp_path / "o1" / "metrics.json").read_text())
    assert doc["provenance"]["dataset"]["annotations"] == str(tmp_path / "one.json")
    assert doc["provenance"]["source"]["flip_tta"] is True
    assert sum(int(r["pairs"]) for r in csv.DictReader((tmp_path / "o1" / "per_image.csv").open())) == 1
    # --save-predictions with --flip-tta: the mean of the prediction and the flipped image's, flipped back
    predictor = DepthPredictor.from_pretrained(weights=weights, input_size=70)
    from PIL import Image

    rgb = np.asarray(Image.open(root / "a.png").convert("RGB"))
    flipped = predictor.predict(np.ascontiguousarray(rgb[:, ::-1])).values[:, ::-1]
    expected = 0.5 * (predictor.predict(rgb).values + flipped)
    saved = np.load(tmp_path / "preds" / "a.npy")
    assert saved.shape == (20, 30) and np.ptp(saved) > 0
    np.testing.assert_allclose(saved, expected, rtol=1e-6, atol=1e-7)
    # without --flip-tta the prediction differs (so the flag was not a no-op), and saved predictions replay
    code, text = _run([*model, "--out", str(tmp_path / "o2"), "--save-predictions", str(tmp_path / "plain")])
    assert code == 0 and not np.allclose(np.load(tmp_path / "plain" / "a.npy"), saved)
    np.testing.assert_allclose(np.load(tmp_path / "plain" / "a.npy"), predictor.predict(rgb).values, rtol=1e-6)
    code, text = _run(["--predictions", str(tmp_path / "plain"), "--dataset", "da2k", "--root", str(root),
                       "--out", str(tmp_path / "o3"), "--quiet"])
    a = json.loads((tmp_path / "o2" / "metrics.json").read_text())["metrics"]
    assert code == 0 and json.loads((tmp_path / "o3" / "metrics.json").read_text())["metrics"] == a
    code, text = _run(["--baseline", "ground-plane", "--dataset", "da2k", "--root", str(root), "--flip-tta",
                       "--quiet", "--out", str(tmp_path / "o4")])
    assert code == 2 and "--flip-tta needs a model" in text
