"""One exact inference path (depthany.inference): strict fp32 inside the predictor's forward pass, the same
numbers from the predictor, ``depthany bench``'s end-to-end pipeline and training validation, the banded
resize bit-identical to the whole-image one, and the seam model families plug into."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import random_model, tiny_spec
from depthany import transforms, zoo
from depthany.backends.torch_backend import TorchRunner
from depthany.bench.pipeline import OursPipeline, synthetic_jpegs
from depthany.inference import PIPELINES, DepthAnythingPipeline, InferencePipeline, pipeline_for
from depthany.io.image import read_image
from depthany.precision import is_strict_fp32
from depthany.predictor import DepthPredictor

cv2 = pytest.importorskip("cv2")


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def official(model: torch.nn.Module, rgb: np.ndarray, input_size: int, corners: bool) -> np.ndarray:
    """Independent oracle, the official steps written out: float64 / 255, cv2 INTER_CUBIC to the lower-bound
    multiple of 14, ImageNet normalisation, the model, bilinear back to the image size."""
    h, w = rgb.shape[:2]
    scale = max(input_size / h, input_size / w)

    def side(x: float) -> int:
        y = int(np.round(x / 14) * 14)
        return y if y >= input_size else int(np.ceil(x / 14) * 14)

    img = cv2.resize(rgb / 255.0, (side(scale * w), side(scale * h)), interpolation=cv2.INTER_CUBIC)
    img = (img - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None]
    with torch.inference_mode():
        out = model(x)
    return torch.nn.functional.interpolate(out[:, None], (h, w), mode="bilinear", align_corners=corners)[0, 0].numpy()


# ------------------------------------------------------------------------------------------- strict fp32


def test_tf32_is_off_inside_the_predictors_forward_pass_and_restored_after(smooth_image) -> None:
    spec = tiny_spec()
    model = random_model(spec)
    seen: list[tuple[object, ...]] = []

    def record(module: object, args: object, out: object) -> None:
        seen.append((torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
                     torch.backends.cudnn.allow_tf32, is_strict_fp32()))

    hook = model.register_forward_hook(record)
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    try:
        torch.set_float32_matmul_precision("medium")  # a user who wants TF32 on CUDA / bf16 matmuls on CPUs
        torch.backends.cudnn.allow_tf32 = True
        DepthPredictor(model, spec, "cpu", input_size=42).predict(smooth_image)
        assert seen == [("highest", False, False, True)]
        assert torch.get_float32_matmul_precision() == "medium" and torch.backends.cudnn.allow_tf32 is True
        seen.clear()
        DepthPredictor(model, spec, "cpu", precision="bf16", input_size=42).predict(smooth_image)
        assert seen == [("medium", True, True, False)]  # reduced precision leaves the user's settings alone
    finally:
        hook.remove()
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]


# ------------------------------------------------------------------------------------------- one path


def test_bench_end_to_end_output_equals_the_predictors() -> None:
    spec = tiny_spec()
    model = random_model(spec, seed=4)
    predictor = DepthPredictor(model, spec, "cpu", input_size=42)
    images = synthetic_jpegs(2, 30, 40, seed=1)
    pipe = OursPipeline(TorchRunner(model), spec, input_size=42)
    pipe(images)
    assert len(pipe.outputs) == 2 and not np.array_equal(pipe.outputs[0], pipe.outputs[1])
    # the same batch as the bench's (a batch of 2 and two batches of 1 differ in the last float bit: the
    # matmul kernels block differently), so compare with the predictor's batch
    for got, res, data in zip(pipe.outputs, predictor.predict_batch(images), images):
        ref = res.values
        assert got.shape == ref.shape == (30, 40) and got.dtype == np.float32
        np.testing.assert_array_equal(got, ref)
        oracle = official(model, read_image(data).rgb, 42, spec.preprocess.output_align_corners)
        np.testing.assert_allclose(got, oracle, rtol=1e-5, atol=1e-6)
    # the budget too: both shrink the same way
    small = OursPipeline(TorchRunner(model), spec, input_size=42, max_tokens=6)
    small(images[:1])
    shrunk = predictor.with_settings(max_tokens=6).predict(images[0])
    assert shrunk.meta["input_budget"]["shrunk"] and shrunk.network_size == (28, 42)
    np.testing.assert_array_equal(small.outputs[0], shrunk.values)


def test_training_validation_scores_the_predictors_output(tmp_path: Path) -> None:
    from depthany.data.rgbd import RGBDWriter
    from depthany.runtime.dist import DistEnv
    from depthany.train.config import ValCfg
    from depthany.train.validate import Validator, relative_errors

    spec = tiny_spec()
    model = random_model(spec, seed=5)
    rng = np.random.default_rng(0)
    with RGBDWriter(tmp_path / "val") as w:
        samples = [(noise(36, 50, seed=i), rng.uniform(1, 10, (36, 50)).astype(np.float32)) for i in range(2)]
        for i, (rgb, depth) in enumerate(samples):
            w.write(f"s{i}", rgb, depth)
    val = Validator(ValCfg(path=str(tmp_path / "val"), input_size=56), spec, 56)
    got = val.run(model, DistEnv(0, 1, 0, torch.device("cpu")))
    predictor = DepthPredictor(model, spec, "cpu", input_size=56)
    preds = [predictor.predict(rgb).values for rgb, _ in samples]
    expected = [relative_errors(preds[i], val.folder[i].depth, val.folder[i].valid) for i in range(2)]
    assert got["images"] == 2
    assert got["abs_rel"] == pytest.approx(np.mean([e[0] for e in expected]), rel=1e-12)
    assert got["delta1"] == pytest.approx(np.mean([e[1] for e in expected]), rel=1e-12)


# ------------------------------------------------------------------------------------------- banded resize


@pytest.mark.parametrize("h, w, size", [(1000, 1300, None), (480, 640, None), (20, 30, None), (2, 3000, (28, 42000)),
                                        (3000, 2, (42000, 28)), (333, 517, (1036, 1610))])
@pytest.mark.parametrize("with_cv2", [True, False])
def test_banded_resize_is_bit_identical_to_the_whole_image(monkeypatch, h: int, w: int,
                                                           size: tuple[int, int] | None, with_cv2: bool) -> None:
    """Images above BAND_PIXELS are converted and resized in bands of rows; forced here on small images."""
    rgb = noise(h, w, seed=h * w)
    pre = zoo.V2_PRE
    whole = transforms.preprocess(rgb, pre, 518, size)  # reference: OpenCV on the whole float64 image
    if not with_cv2:
        monkeypatch.setattr(transforms, "_cv2", None)
    monkeypatch.setattr(transforms, "BAND_PIXELS", 997)  # a prime: bands of uneven height
    banded = transforms.preprocess(rgb, pre, 518, size)
    assert banded.shape == whole.shape and torch.equal(banded, whole)


# ------------------------------------------------------------------------------------------- the seam


def test_pipeline_is_chosen_from_the_spec_and_families_can_register_their_own(smooth_image) -> None:
    spec = tiny_spec()
    assert isinstance(pipeline_for(spec), DepthAnythingPipeline) and spec.preprocess.pipeline == "depth_anything"
    assert all(s.preprocess.pipeline in PIPELINES for s in zoo.MODELS.values())

    class Flipped(DepthAnythingPipeline):  # e.g. a family that averages the flipped prediction
        name = "test-flip"

        def forward(self, runner, x):  # type: ignore[no-untyped-def]
            return 0.5 * (super().forward(runner, x) + super().forward(runner, x.flip(-1)).flip(-1))

        def extras(self, out, prepared):  # type: ignore[no-untyped-def]
            return {"constant": np.ones(prepared.image_size, np.float32)}

    import dataclasses

    flip_spec = dataclasses.replace(spec, preprocess=dataclasses.replace(spec.preprocess, pipeline="test-flip"))
    with pytest.raises(ValueError, match="needs the 'test-flip' pipeline"):
        pipeline_for(flip_spec)
    PIPELINES["test-flip"] = Flipped
    try:
        model = random_model(spec, seed=6)
        flipped = DepthPredictor(model, flip_spec, "cpu", input_size=42).predict(smooth_image)
        plain = DepthPredictor(model, spec, "cpu", input_size=42)
        mirror = plain.predict(np.ascontiguousarray(smooth_image[:, ::-1])).values[:, ::-1]
        np.testing.assert_allclose(flipped.values, 0.5 * (plain.predict(smooth_image).values + mirror), atol=1e-5)
        assert flipped.meta["extras"]["constant"].shape == smooth_image.shape[:2]
    finally:
        del PIPELINES["test-flip"]
    assert issubclass(Flipped, InferencePipeline)
