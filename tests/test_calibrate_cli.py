"""``depthany calibrate fit`` / ``apply`` end to end on saved predictions and on a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from plyfile import PlyData

from depthany.cli.main import cli
from depthany.geometry import Calibration

H, W = 48, 64
S0, T0 = 0.4, 0.05


def _pred_and_depth() -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    d = 0.5 + 0.03 * u + 0.02 * v
    return d.astype(np.float32), 1.0 / (S0 * d.astype(np.float64) + T0)


def _run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    return res.exit_code, res.output


def test_fit_from_npy_and_csv_then_apply_to_folder(tmp_path: Path) -> None:
    d, z = _pred_and_depth()
    preds = tmp_path / "preds"
    preds.mkdir()
    np.save(preds / "frame0.npy", d)
    np.save(preds / "frame1.npy", 0.5 * d + 0.1)
    rows = ["u,v,depth_m"] + [f"{u},{v},{float(z[v, u])!r}" for u, v in [(3, 4), (60, 40), (30, 20), (10, 44), (50, 5)]]
    rows.append("20,30,50.0")  # one gross outlier
    (tmp_path / "pts.csv").write_text("\n".join(rows) + "\n")
    cal_path = tmp_path / "cam.json"
    code, out = _run(["calibrate", "fit", str(preds / "frame0.npy"), "--points", str(tmp_path / "pts.csv"),
                      "-o", str(cal_path), "--save-depth", str(tmp_path / "f0_metric.npy")])
    assert code == 0, out
    assert "inliers: 5" in out and "no" in out.splitlines()[-2]  # the outlier row is marked
    cal = Calibration.load(cal_path)
    assert (cal.scale, cal.shift) == (pytest.approx(S0, rel=1e-6), pytest.approx(T0, abs=1e-6))
    np.testing.assert_allclose(np.load(tmp_path / "f0_metric.npy"), z, rtol=1e-5)

    # photos with a 35 mm-equivalent focal length give the point clouds their intrinsics
    photos = tmp_path / "photos"
    photos.mkdir()
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 28
    Image.fromarray(np.full((H, W, 3), 120, np.uint8)).save(photos / "frame0.jpg", exif=exif)
    out_dir = tmp_path / "metric"
    code, out = _run(["calibrate", "apply", str(cal_path), str(preds), "-o", str(out_dir), "--ply", "--images",
                      str(photos), "--fov", "70"])
    assert code == 0, out
    assert "calibrated 2 prediction(s)" in out
    np.testing.assert_allclose(np.load(out_dir / "frame0.npy"), z, rtol=1e-5)
    np.testing.assert_allclose(np.load(out_dir / "frame1.npy"), cal.apply(0.5 * d + 0.1, warn=False), rtol=1e-6)
    ply0 = PlyData.read(str(out_dir / "frame0.ply"))
    assert "intrinsics_source user-fov" in ply0.comments  # --fov beats EXIF
    assert np.all(ply0["vertex"]["red"] > 100)  # coloured from the photo
    code, out = _run(["calibrate", "apply", str(cal_path), str(preds / "frame0.npy"), "-o", str(tmp_path / "m2"),
                      "--ply", "--images", str(photos)])
    assert code == 0, out
    assert "intrinsics_source exif-35mm" in PlyData.read(str(tmp_path / "m2" / "frame0.ply")).comments
    code, out = _run(["calibrate", "apply", str(cal_path), str(preds / "frame1.npy"), "-o", str(tmp_path / "m3"),
                      "--ply", "--fx", "50", "--cx", "10", "--keep-flying", "--ascii"])
    assert code == 0, out
    ply3 = PlyData.read(str(tmp_path / "m3" / "frame1.ply"))
    assert ply3.text and ply3["vertex"].count == H * W
    assert any(c.startswith("intrinsics fx 50 fy 50 cx 10 cy 23.5") for c in ply3.comments)


def test_fit_single_distance_and_sparse_png(tmp_path: Path) -> None:
    d, z = _pred_and_depth()
    np.save(tmp_path / "p.npy", d)
    code, out = _run(["calibrate", "fit", str(tmp_path / "p.npy"), "--distance", "10", "20", "2.0", "-o",
                      str(tmp_path / "one.json"), "--json"])
    assert code == 0, out
    data = json.loads(out)
    assert data["mode"] == "scale" and data["scale"] == pytest.approx(1 / (2.0 * d[20, 10]), rel=1e-6)

    mm = np.zeros((H, W), np.uint16)
    mm[::5, ::7] = np.round(z[::5, ::7] * 1000).astype(np.uint16)
    Image.fromarray(mm).save(tmp_path / "lidar.png")
    code, out = _run(["calibrate", "fit", str(tmp_path / "p.npy"), "--sparse-depth", str(tmp_path / "lidar.png"),
                      "-o", str(tmp_path / "sparse.json")])
    assert code == 0, out
    cal = Calibration.load(tmp_path / "sparse.json")
    assert cal.n_points == int((mm > 0).sum()) and cal.scale == pytest.approx(S0, rel=1e-3)
    assert "lidar.png" in cal.source


def test_cli_errors_are_readable(tmp_path: Path) -> None:
    d, _ = _pred_and_depth()
    np.save(tmp_path / "p.npy", d)
    res = CliRunner().invoke(cli, ["calibrate", "fit", str(tmp_path / "p.npy")])
    assert res.exit_code != 0 and "exactly one of --points" in res.output
    res = CliRunner().invoke(cli, ["calibrate", "fit", str(tmp_path / "p.npy"), "--distance", "999", "1", "2"])
    assert res.exit_code == 1 and "outside the 64x48 image" in res.output and "Traceback" not in res.output
    (tmp_path / "x.json").write_text("{}")
    res = CliRunner().invoke(cli, ["calibrate", "apply", str(tmp_path / "x.json"), str(tmp_path / "p.npy"),
                                   "-o", str(tmp_path / "o")])
    assert res.exit_code == 1 and "not a depthany calibration" in res.output
    res = CliRunner().invoke(cli, ["calibrate", "fit", str(tmp_path / "p.npy"), "--distance", "1", "1", "2",
                                   "--fx", "100", "--fov", "60"])
    assert res.exit_code == 2 and "--fx or --fov" in res.output


def test_fit_runs_a_model_on_an_image(tmp_path: Path, smooth_image: np.ndarray) -> None:
    from conftest import random_model, tiny_spec
    from depthany.weights import save_weights

    spec = tiny_spec()
    weights = save_weights(random_model(spec).state_dict(), spec, tmp_path / "tiny.safetensors", "depthany")
    Image.fromarray(smooth_image).save(tmp_path / "img.png")
    code, out = _run(["calibrate", "fit", str(tmp_path / "img.png"), "--weights", str(weights),
                      "--distance", "80", "60", "3.0", "-o", str(tmp_path / "c.json"),
                      "--ply", str(tmp_path / "img.ply"), "--fov", "60", "--save-depth", str(tmp_path / "m.npy")])
    assert code == 0, out
    cal = Calibration.load(tmp_path / "c.json")
    assert cal.model == spec.name and cal.mode == "scale"
    metric = np.load(tmp_path / "m.npy")
    assert metric.shape == smooth_image.shape[:2]
    assert metric[60, 80] == pytest.approx(3.0, rel=1e-5)  # the known point is reproduced
    ply = PlyData.read(str(tmp_path / "img.ply"))
    assert ply["vertex"].count > 0 and f"model {spec.name}" in ply.comments


def test_fit_source_is_the_library_behind_the_cli(tmp_path: Path) -> None:
    """``depthany.calibration_fit.fit_source`` (what ``calibrate fit`` calls) recovers the analytic scale/shift,
    writes what was asked in order, and refuses anything but exactly one source of distances."""
    from depthany.calibration_fit import fit_source, gather_anchors, load_prediction

    d, z = _pred_and_depth()
    np.save(tmp_path / "p.npy", d)
    pts = [(3.0, 4.0, float(z[4, 3])), (60.0, 40.0, float(z[40, 60])), (30.0, 20.0, float(z[20, 30]))]
    outcome = fit_source(tmp_path / "p.npy", distances=pts, output=tmp_path / "c.json",
                         save_depth=tmp_path / "sub" / "m.npy")
    assert outcome.written == [tmp_path / "c.json", tmp_path / "sub" / "m.npy"]
    assert (outcome.calibration.scale, outcome.calibration.shift) == (pytest.approx(S0, rel=1e-6),
                                                                     pytest.approx(T0, abs=1e-6))
    np.testing.assert_allclose(outcome.metric.values, z, rtol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "sub" / "m.npy"), z, rtol=1e-5)
    assert Calibration.load(tmp_path / "c.json").to_dict() == outcome.calibration.to_dict()
    with pytest.raises(ValueError, match="exactly one"):
        gather_anchors((H, W))
    with pytest.raises(ValueError, match="exactly one"):
        gather_anchors((H, W), points=tmp_path / "x.csv", distances=pts)
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="bad.npy.*expected an \\(H, W\\)"):
        load_prediction(tmp_path / "bad.npy")
