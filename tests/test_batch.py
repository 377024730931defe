"""``depthany.batch.predict_files``: the read -> predict -> write loop behind ``depthany predict``, called from
Python. The files must hold what :meth:`DepthPredictor.predict` gives for each image; bad inputs are reported
and the batch carries on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import random_model, tiny_spec
from depthany.batch import BatchPlan, BatchReport, plan_batch, predict_files
from depthany.io.colormap import get_lut
from depthany.predictor import DepthPredictor


@pytest.fixture(scope="module")
def predictor() -> DepthPredictor:
    spec = tiny_spec()
    return DepthPredictor(random_model(spec, seed=4), spec, "cpu", input_size=70)


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def noise(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_predict_files_writes_the_predictors_values_and_reports_failures(tmp_path: Path,
                                                                         predictor: DepthPredictor) -> None:
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    images = {"a": noise(30, 40, 1), "sub/b": noise(40, 30, 2), "strip": noise(20, 200, 3)}
    for key, arr in images.items():
        Image.fromarray(arr).save(src / f"{key}.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    notes: list[str] = []
    small = predictor.with_settings(max_tokens=50)  # the strip (5 x 50 patches officially) is shrunk
    report = predict_files(small, [src, tmp_path / "missing.jpg"], tmp_path / "out", "npy,color",
                           cmap="turbo", log=notes.append)
    assert isinstance(report, BatchReport) and report.ok == 3
    assert sorted(t for t, _ in report.failures) == sorted([str(src / "broken.png"), str(tmp_path / "missing.jpg")])
    for key, arr in images.items():
        direct = small.predict(arr).values
        np.testing.assert_array_equal(np.load(tmp_path / "out" / f"{key}.npy"), direct)
        levels = ((direct - direct.min()) / (direct.max() - direct.min()) * 255.0).astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"{key}_color.png")),
                                      get_lut("turbo")[levels])
    assert [t for t, _ in report.shrunk] == [str(src / "strip.png")]
    assert notes == [f"note: {src / 'strip.png'}: {report.shrunk[0][1]}"] and "ran at" in notes[0]
    assert len(report.written) == 6 and all(p.exists() for p in report.written)

    again = predict_files(small, [src], tmp_path / "out", "npy,color", skip_existing=True)
    assert (again.ok, again.skipped, len(again.failures)) == (0, 3, 1)  # only the broken file is tried again


def test_plan_needs_no_model_and_bad_settings_fail_before_any_work(tmp_path: Path,
                                                                   predictor: DepthPredictor) -> None:
    Image.fromarray(noise(20, 20, 0)).save(tmp_path / "x.png")
    plan = plan_batch([tmp_path / "x.png"], tmp_path / "out", "npy,ply")
    assert isinstance(plan, BatchPlan) and [f.name for f in plan.formats] == ["npy", "ply"]
    with pytest.raises(ValueError, match="--format ply needs a metric model"):
        predict_files(predictor, plan, tmp_path / "out")
    with pytest.raises(ValueError, match="unknown output format 'tiff'"):
        predict_files(predictor, [tmp_path / "x.png"], tmp_path / "out", "npy,tiff")
    with pytest.raises(ValueError, match="unknown colour map 'jet'"):
        predict_files(predictor, [tmp_path / "x.png"], tmp_path / "out", "npy", cmap="jet")
    with pytest.raises(ValueError, match="png16_offset needs png16_scale"):
        predict_files(predictor, [tmp_path / "x.png"], tmp_path / "out", "png16", png16_offset=1.0)
    assert not (tmp_path / "out").exists()
